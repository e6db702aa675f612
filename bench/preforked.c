/*
 * preforked.c -- the plain pre-forked pool (see procs.h).  The parent
 * keeps the task pipe full without blocking and drains results as they
 * come, so the children never wait for the parent while work remains.
 */
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

typedef struct msg {
  uint64_t id;
  uint64_t value;
} msg;

struct preforked {
  int task_w, result_r; /* the parent's ends */
  unsigned n;
  pid_t *pids;
};

static void child(int task_r, int result_w) {
  msg m;
  for (;;) {
    ssize_t got = read(task_r, &m, sizeof m);
    if (got == 0)
      _exit(0);
    if (got != (ssize_t)sizeof m) {
      if (got < 0 && errno == EINTR)
        continue;
      _exit(3);
    }
    /* The no-op: the argument comes back as the result. */
    if (write(result_w, &m, sizeof m) != (ssize_t)sizeof m)
      _exit(4);
  }
}

preforked *preforked_start(unsigned children) {
  preforked *p = calloc(1, sizeof *p);
  int task[2], result[2];
  unsigned i;
  if (p == NULL || (p->pids = calloc(children, sizeof *p->pids)) == NULL)
    bench_die("out of memory");
  if (pipe(task) != 0 || pipe(result) != 0)
    bench_die("pipe failed");
  for (i = 0; i < children; i++) {
    pid_t pid = fork();
    if (pid < 0)
      bench_die("fork failed");
    if (pid == 0) {
      bench_close_others(task[0], result[1]);
      child(task[0], result[1]);
    }
    p->pids[i] = pid;
  }
  close(task[0]);
  close(result[1]);
  p->task_w = task[1];
  p->result_r = result[0];
  p->n = children;
  return p;
}

static void set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

void preforked_burst(preforked *p, size_t n) {
  size_t sent = 0, got = 0, partial = 0;
  msg buf[256];
  set_nonblock(p->task_w, 1);
  set_nonblock(p->result_r, 1);
  while (got < n) {
    struct pollfd fds[2];
    ssize_t r;
    while (sent < n) { /* one write per task */
      msg m = {sent, sent};
      if (write(p->task_w, &m, sizeof m) != (ssize_t)sizeof m) {
        if (errno != EAGAIN)
          bench_die("preforked: write failed");
        break;
      }
      sent++;
    }
    r = read(p->result_r, (char *)buf + partial, sizeof buf - partial);
    if (r > 0) {
      partial += (size_t)r;
      got += partial / sizeof(msg);
      partial %= sizeof(msg); /* whole writes: always 0 in practice */
      continue;
    }
    if (r == 0 || errno != EAGAIN)
      bench_die("preforked: a child is gone");
    fds[0].fd = p->result_r;
    fds[0].events = POLLIN;
    fds[1].fd = p->task_w;
    fds[1].events = sent < n ? POLLOUT : 0;
    poll(fds, 2, -1);
  }
  set_nonblock(p->task_w, 0);
  set_nonblock(p->result_r, 0);
}

void preforked_round_trip(preforked *p) {
  msg m = {1, 42};
  if (write(p->task_w, &m, sizeof m) != (ssize_t)sizeof m ||
      read(p->result_r, &m, sizeof m) != (ssize_t)sizeof m || m.value != 42)
    bench_die("preforked: round trip failed");
}

void bench_close_others(int keep_a, int keep_b) {
  int fd, max = (int)sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536)
    max = 65536;
  for (fd = 3; fd < max; fd++)
    if (fd != keep_a && fd != keep_b)
      close(fd);
}

void preforked_stop(preforked *p) {
  unsigned i;
  close(p->task_w); /* the children read end-of-file and leave */
  for (i = 0; i < p->n; i++)
    waitpid(p->pids[i], NULL, 0);
  close(p->result_r);
  free(p->pids);
  free(p);
}
