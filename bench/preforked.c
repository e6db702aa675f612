/* SPDX-License-Identifier: Apache-2.0 */
/*
 * preforked.c -- the plain pre-forked pools (see procs.h).
 *
 * PREFORKED_PIPES, the reference: each child has its own task pipe and
 * result pipe.  A child reads as many tasks as are there in one read()
 * and answers each with one write(); the parent writes one task per
 * write(), keeps every child's pipe supplied without blocking (at most
 * PIPES_IN_FLIGHT tasks per child, so the children share the work
 * evenly), and reads each child's results as many as are there per
 * read().
 *
 * PREFORKED_SHARED, the weaker line kept for comparison: every child
 * reads one task per read() from one shared pipe and writes its result
 * to one shared pipe.
 */
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

typedef struct msg {
  uint64_t id;
  uint64_t value;
} msg;

/* Tasks in flight per child: 16 KiB of a 64 KiB pipe, so no write ever
 * blocks and no child runs out while the parent reads the others. */
#define PIPES_IN_FLIGHT 1024
#define READ_MSGS 256 /* messages a read() takes at most */

typedef struct child_io {
  int task_w, result_r; /* the parent's ends */
  size_t in_flight;
  size_t partial; /* bytes of a message cut by a read (never in practice) */
  unsigned char part[sizeof(msg)];
  pid_t pid;
} child_io;

struct preforked {
  enum preforked_kind kind;
  unsigned n;
  child_io *c; /* PREFORKED_PIPES: one each; SHARED: c[0] holds the pipes */
  pid_t *pids;
};

static void echo_one_by_one(int task_r, int result_w) {
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

static void echo_buffered(int task_r, int result_w) {
  unsigned char buf[READ_MSGS * sizeof(msg)];
  size_t have = 0;
  for (;;) {
    size_t at = 0;
    ssize_t got = read(task_r, buf + have, sizeof buf - have);
    if (got == 0)
      _exit(0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      _exit(3);
    }
    have += (size_t)got;
    for (; have - at >= sizeof(msg); at += sizeof(msg)) {
      msg m;
      memcpy(&m, buf + at, sizeof m);
      if (write(result_w, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(4);
    }
    memmove(buf, buf + at, have - at);
    have -= at;
  }
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

preforked *preforked_start(enum preforked_kind kind, unsigned children) {
  preforked *p = calloc(1, sizeof *p);
  unsigned i, pipes = kind == PREFORKED_PIPES ? children : 1;
  if (p == NULL || (p->c = calloc(pipes, sizeof *p->c)) == NULL ||
      (p->pids = calloc(children, sizeof *p->pids)) == NULL)
    bench_die("out of memory");
  p->kind = kind;
  p->n = children;
  for (i = 0; i < pipes; i++) {
    int task[2], result[2];
    unsigned j, first = kind == PREFORKED_PIPES ? i : 0;
    unsigned last = kind == PREFORKED_PIPES ? i + 1 : children;
    if (pipe(task) != 0 || pipe(result) != 0)
      bench_die("pipe failed");
    for (j = first; j < last; j++) {
      pid_t pid = fork();
      if (pid < 0)
        bench_die("fork failed");
      if (pid == 0) {
        bench_close_others(task[0], result[1]);
        if (kind == PREFORKED_PIPES)
          echo_buffered(task[0], result[1]);
        echo_one_by_one(task[0], result[1]);
      }
      p->pids[j] = pid;
    }
    close(task[0]);
    close(result[1]);
    p->c[i].task_w = task[1];
    p->c[i].result_r = result[0];
    set_nonblock(task[1]);
    set_nonblock(result[0]);
  }
  return p;
}

/* Read what c's result pipe holds; returns the whole messages read, or
 * -1 if nothing was there. */
static long drain(child_io *c) {
  unsigned char buf[READ_MSGS * sizeof(msg)];
  ssize_t r;
  size_t total;
  memcpy(buf, c->part, c->partial);
  r = read(c->result_r, buf + c->partial, sizeof buf - c->partial);
  if (r < 0 && errno == EAGAIN)
    return -1;
  if (r <= 0)
    bench_die("preforked: a child is gone");
  total = c->partial + (size_t)r;
  c->partial = total % sizeof(msg);
  memcpy(c->part, buf + total - c->partial, c->partial);
  return (long)(total / sizeof(msg));
}

/* Write tasks to c while it has room; returns how many went. */
static size_t supply(child_io *c, size_t *sent, size_t n, size_t cap) {
  size_t went = 0;
  while (*sent < n && c->in_flight < cap) {
    msg m = {*sent, *sent};
    ssize_t w = write(c->task_w, &m, sizeof m); /* one write per task */
    if (w != (ssize_t)sizeof m) {
      if (w < 0 && errno == EAGAIN)
        break;
      bench_die("preforked: write failed");
    }
    (*sent)++;
    c->in_flight++;
    went++;
  }
  return went;
}

void preforked_burst(preforked *p, size_t n) {
  unsigned i, pipes = p->kind == PREFORKED_PIPES ? p->n : 1;
  size_t sent = 0, got = 0;
  size_t cap = p->kind == PREFORKED_PIPES ? PIPES_IN_FLIGHT : (size_t)-1;
  struct pollfd fds[2 * 64];
  if (pipes > 64)
    bench_die("preforked: at most 64 children");
  while (got < n) {
    int progress = 0;
    unsigned nf = 0;
    for (i = 0; i < pipes; i++)
      progress |= supply(&p->c[i], &sent, n, cap) > 0;
    for (i = 0; i < pipes; i++) {
      long k = drain(&p->c[i]);
      if (k > 0) {
        got += (size_t)k;
        p->c[i].in_flight -= (size_t)k;
        progress = 1;
      }
    }
    if (progress)
      continue;
    for (i = 0; i < pipes; i++) {
      fds[nf].fd = p->c[i].result_r;
      fds[nf++].events = POLLIN;
      if (sent < n && p->c[i].in_flight < cap) {
        fds[nf].fd = p->c[i].task_w;
        fds[nf++].events = POLLOUT;
      }
    }
    poll(fds, nf, -1);
  }
}

void preforked_round_trip(preforked *p) {
  msg m = {1, 42};
  struct pollfd pf;
  child_io *c = &p->c[0];
  if (write(c->task_w, &m, sizeof m) != (ssize_t)sizeof m)
    bench_die("preforked: round trip failed");
  pf.fd = c->result_r;
  pf.events = POLLIN;
  for (;;) {
    ssize_t r = read(c->result_r, &m, sizeof m);
    if (r == (ssize_t)sizeof m && m.value == 42)
      return;
    if (r < 0 && errno == EAGAIN) {
      poll(&pf, 1, -1);
      continue;
    }
    bench_die("preforked: round trip failed");
  }
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
  unsigned i, pipes = p->kind == PREFORKED_PIPES ? p->n : 1;
  for (i = 0; i < pipes; i++)
    close(p->c[i].task_w); /* the children read end-of-file and leave */
  for (i = 0; i < p->n; i++)
    waitpid(p->pids[i], NULL, 0);
  for (i = 0; i < pipes; i++)
    close(p->c[i].result_r);
  free(p->pids);
  free(p->c);
  free(p);
}
