/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_backend_posix.c -- the POSIX backend, tested directly through its
 * table: locks and clocks, threads, processes and what a child inherits,
 * exits and signals, the waitset, the notifier and parent death.
 *
 * Timing checks only assert "not early" and "not absurdly late" (5 s), so
 * they hold on a slow, loaded machine.  SIGPIPE keeps its default action:
 * a write that raised it would kill this program and fail the run.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "pebble_backend.h"

/* The built-in entry point (hidden in libpebble, linked in here). */
const pebble_backend *pebble__backend_posix_get(void);

static const pebble_backend *bk;

#define MS ((uint64_t)1000000u)
#define SEC ((uint64_t)1000000000u)
#define TOO_LATE (5 * SEC)  /* a wait this much past its time is broken */
#define CHILD_WAIT (20 * SEC) /* how long a test waits for a child */
#define FD_SCAN 1024          /* descriptors compared between processes */

/* Descriptors open when the program started: the harness's, not ours. */
static unsigned char fds_at_start[FD_SCAN];

static void scan_fds(unsigned char *open_fds) {
  int fd;
  for (fd = 0; fd < FD_SCAN; fd++)
    open_fds[fd] = fcntl(fd, F_GETFD) != -1;
}

static int log_lines;
static void host_log(int level, const char *fmt, ...) {
  (void)level;
  (void)fmt;
  log_lines++;
}
static const pebble_host host = {.struct_size = sizeof(pebble_host),
                                 .log = host_log};

static uint64_t since(uint64_t start) { return bk->now_ns() - start; }

/* ------------------------------------------------------------------ */
/* helpers for processes                                               */
/* ------------------------------------------------------------------ */

static pebble_bk_proc *start(pebble_child_main_fn fn, void *arg) {
  pebble_bk_proc *p = NULL;
  int err = -1;
  int rc = bk->proc_start(&p, fn, arg, &err);
  CU_ASSERT_EQUAL(rc, PEBBLE_OK);
  CU_ASSERT_EQUAL(err, 0);
  CU_ASSERT_PTR_NOT_NULL(p);
  if (p != NULL)
    CU_ASSERT(bk->proc_pid(p) > 0);
  return p;
}

/* Wait until the watch tagged `tag` reports one of `want`; the events
 * seen, or 0 when CHILD_WAIT passed. */
static unsigned wait_events(pebble_bk_waitset *ws, void *tag, unsigned want) {
  uint64_t deadline = bk->now_ns() + CHILD_WAIT;
  for (;;) {
    pebble_wait_event ev[8];
    size_t n = 0, i;
    if (bk->waitset_wait(ws, deadline, ev, 8, &n) != PEBBLE_OK)
      return 0;
    for (i = 0; i < n; i++)
      if (ev[i].tag == tag && (ev[i].events & want))
        return ev[i].events;
    if (bk->now_ns() >= deadline)
      return 0;
  }
}

/* Read up to len bytes through the waitset, until end-of-file. */
static size_t read_from(pebble_bk_waitset *ws, pebble_bk_proc *p, void *buf,
                        size_t len) {
  size_t got = 0;
  bk->waitset_watch(ws, p, PEBBLE_EV_READ, p);
  while (got < len) {
    size_t done = 0;
    int rc = bk->proc_read(p, (char *)buf + got, len - got, &done);
    if (rc == PEBBLE_OK && done == 0)
      break;
    if (rc == PEBBLE_OK) {
      got += done;
      continue;
    }
    CU_ASSERT_EQUAL(rc, PEBBLE_ENOTREADY);
    if (rc != PEBBLE_ENOTREADY || wait_events(ws, p, PEBBLE_EV_READ) == 0)
      break;
  }
  bk->waitset_watch(ws, p, 0, NULL);
  return got;
}

/* Wait for the exit, reap, destroy; check nothing is left to reap. */
static pebble_bk_exit finish(pebble_bk_waitset *ws, pebble_bk_proc *p) {
  pebble_bk_exit ex;
  pid_t pid = (pid_t)bk->proc_pid(p);
  memset(&ex, 0, sizeof ex);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_EXIT, p), PEBBLE_OK);
  CU_ASSERT(wait_events(ws, p, PEBBLE_EV_EXIT) & PEBBLE_EV_EXIT);
  CU_ASSERT_EQUAL(bk->proc_reap(p, &ex), PEBBLE_OK);
  /* After the reap: kill is a no-op and reap repeats the same answer. */
  CU_ASSERT_EQUAL(bk->proc_kill(p, 1), PEBBLE_OK);
  bk->proc_destroy(p); /* also drops the watch */
  CU_ASSERT_EQUAL(waitpid(pid, NULL, WNOHANG), -1);
  CU_ASSERT_EQUAL(errno, ECHILD);
  return ex;
}

static pebble_bk_waitset *new_waitset(void) {
  pebble_bk_waitset *ws = NULL;
  CU_ASSERT_EQUAL_FATAL(bk->waitset_create(&ws), PEBBLE_OK);
  return ws;
}

/* ------------------------------------------------------------------ */
/* table, clock, locks                                                 */
/* ------------------------------------------------------------------ */

static void test_table(void) {
  const unsigned must = PEBBLE_CAP_THREADS | PEBBLE_CAP_PROCESSES |
                        PEBBLE_CAP_FORK | PEBBLE_CAP_KILL_GROUP;
  CU_ASSERT_PTR_NOT_NULL_FATAL(bk);
  CU_ASSERT_PTR_EQUAL(pebble__backend_posix_get(), bk);
  CU_ASSERT_EQUAL(bk->abi_major, PEBBLE_BACKEND_ABI_MAJOR);
  CU_ASSERT_EQUAL(bk->abi_minor, PEBBLE_BACKEND_ABI_MINOR);
  CU_ASSERT_EQUAL(bk->struct_size, sizeof(pebble_backend));
  CU_ASSERT_STRING_EQUAL(bk->name, "posix");
  CU_ASSERT(bk->description != NULL && strlen(bk->description) > 10);
  CU_ASSERT_EQUAL(bk->caps & must, must);
#if defined(__linux__) && !defined(PEBBLE_NO_PDEATHSIG)
  CU_ASSERT(bk->caps & PEBBLE_CAP_PDEATHSIG);
#else
  CU_ASSERT_FALSE(bk->caps & PEBBLE_CAP_PDEATHSIG);
#endif
#if defined(__linux__) && !defined(PEBBLE_NO_PIDFD)
  CU_ASSERT(bk->caps & PEBBLE_CAP_PIDFD);
#else
  CU_ASSERT_FALSE(bk->caps & PEBBLE_CAP_PIDFD);
#endif
  CU_ASSERT(bk->init && bk->shutdown && bk->fork_generation && bk->now_ns);
  CU_ASSERT(bk->proc_start && bk->proc_reap && bk->waitset_wait);
  CU_ASSERT(bk->notifier_create && bk->notifier_clear);
  /* init again (as after a shutdown) is fine; so is a NULL host */
  CU_ASSERT_EQUAL(bk->init(NULL), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->init(&host), PEBBLE_OK);
}

static void test_clock(void) {
  uint64_t a = bk->now_ns(), b = bk->now_ns();
  CU_ASSERT(a > 0);
  CU_ASSERT(b >= a);
}

static void test_invalid_arguments(void) {
  pebble_bk_mutex *m = NULL;
  pebble_bk_cond *c = NULL;
  pebble_bk_waitset *ws;
  pebble_bk_exit ex;
  size_t n = 5;
  char b;
  CU_ASSERT_EQUAL(bk->thread_create(NULL, NULL, NULL, NULL, 0),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->thread_join(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->mutex_create(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->cond_create(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->cond_wait(NULL, NULL, 0), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->mutex_create(&m), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->cond_create(&c), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->cond_wait(c, NULL, 0), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->cond_wait(NULL, m, 0), PEBBLE_EINVAL);
  bk->mutex_lock(NULL);
  bk->mutex_unlock(NULL);
  bk->cond_signal(NULL);
  bk->cond_broadcast(NULL);
  bk->cond_destroy(NULL);
  bk->mutex_destroy(NULL);
  bk->cond_destroy(c);
  bk->mutex_destroy(m);
  CU_ASSERT_EQUAL(bk->proc_start(NULL, NULL, NULL, NULL), PEBBLE_EINVAL);
  CU_ASSERT(bk->proc_pid(NULL) < 0);
  CU_ASSERT_EQUAL(bk->proc_read(NULL, &b, 1, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(bk->proc_write(NULL, &b, 1, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->proc_kill(NULL, 1), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->proc_reap(NULL, &ex), PEBBLE_EINVAL);
  bk->proc_destroy(NULL);
  CU_ASSERT_EQUAL(bk->chan_write_all(NULL, &b, 1), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->chan_read_all(NULL, &b, 1), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->waitset_create(NULL), PEBBLE_EINVAL);
  ws = new_waitset();
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, NULL, PEBBLE_EV_READ, NULL),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->waitset_watch(NULL, NULL, 0, NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->waitset_wait(NULL, 0, NULL, 0, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, 0, NULL, 4, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, 0, NULL, 0, NULL), PEBBLE_EINVAL);
  bk->waitset_wake(NULL);
  bk->waitset_destroy(ws);
  bk->waitset_destroy(NULL);
  CU_ASSERT_EQUAL(bk->notifier_create(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->notifier_handle(NULL), -1);
  bk->notifier_set(NULL);
  bk->notifier_clear(NULL);
  bk->notifier_destroy(NULL);
}

static void test_cond_timeout(void) {
  pebble_bk_mutex *m = NULL;
  pebble_bk_cond *c = NULL;
  uint64_t t0, deadline;
  int rc;
  CU_ASSERT_EQUAL_FATAL(bk->mutex_create(&m), PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(bk->cond_create(&c), PEBBLE_OK);
  bk->mutex_lock(m);
  t0 = bk->now_ns();
  deadline = t0 + 100 * MS;
  do /* PEBBLE_OK may be a spurious wake-up */
    rc = bk->cond_wait(c, m, deadline);
  while (rc == PEBBLE_OK);
  CU_ASSERT_EQUAL(rc, PEBBLE_ENOTREADY);
  CU_ASSERT(bk->now_ns() >= deadline);
  CU_ASSERT(since(t0) < 100 * MS + TOO_LATE);
  /* a deadline already behind us */
  t0 = bk->now_ns();
  CU_ASSERT_EQUAL(bk->cond_wait(c, m, t0 > 1 ? t0 - 1 : 0), PEBBLE_ENOTREADY);
  CU_ASSERT(since(t0) < TOO_LATE);
  bk->mutex_unlock(m);
  bk->cond_destroy(c);
  bk->mutex_destroy(m);
}

typedef struct signal_pair {
  pebble_bk_mutex *m;
  pebble_bk_cond *c;
  int flag;
} signal_pair;

static void set_flag_and_signal(void *arg) {
  signal_pair *s = arg;
  bk->mutex_lock(s->m);
  s->flag = 1;
  bk->cond_broadcast(s->c);
  bk->mutex_unlock(s->m);
}

static void test_cond_signal(void) {
  signal_pair s;
  pebble_bk_thread *t = NULL;
  uint64_t deadline;
  int rc = PEBBLE_OK;
  memset(&s, 0, sizeof s);
  CU_ASSERT_EQUAL_FATAL(bk->mutex_create(&s.m), PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(bk->cond_create(&s.c), PEBBLE_OK);
  bk->mutex_lock(s.m);
  CU_ASSERT_EQUAL(bk->thread_create(&t, set_flag_and_signal, NULL, &s, 0),
                  PEBBLE_OK);
  deadline = bk->now_ns() + CHILD_WAIT;
  while (!s.flag && rc == PEBBLE_OK)
    rc = bk->cond_wait(s.c, s.m, deadline);
  CU_ASSERT_EQUAL(s.flag, 1);
  bk->mutex_unlock(s.m);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  bk->cond_destroy(s.c);
  bk->mutex_destroy(s.m);
}

/* ------------------------------------------------------------------ */
/* threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct thread_probe {
  int ran, returned, unwound;
  uint64_t id;
  int blocked_int, blocked_usr1;
  pebble_bk_thread *inner;
  struct thread_probe *inner_probe;
} thread_probe;

static void record_mask(thread_probe *p) {
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  p->blocked_int = sigismember(&cur, SIGINT);
  p->blocked_usr1 = sigismember(&cur, SIGUSR1);
}

static void probe_returns(void *arg) {
  thread_probe *p = arg;
  p->ran = 1;
  p->id = bk->thread_self_id();
  record_mask(p);
  p->returned = 1;
}

static void probe_exits(void *arg) {
  thread_probe *p = arg;
  p->ran = 1;
  pthread_exit(NULL);
}

static void probe_unwound(void *arg) {
  thread_probe *p = arg;
  p->unwound = 1;
}

/* An internal thread that creates an ordinary one. */
static void probe_spawns(void *arg) {
  thread_probe *p = arg;
  record_mask(p);
  p->ran = bk->thread_create(&p->inner, probe_returns, NULL, p->inner_probe,
                             0) == PEBBLE_OK;
}

static void test_thread_join_and_unwound(void) {
  thread_probe a, b;
  pebble_bk_thread *t = NULL;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(
      bk->thread_create(&t, probe_returns, probe_unwound, &a, 0), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT(a.ran && a.returned);
  CU_ASSERT_EQUAL(a.unwound, 0);
  CU_ASSERT(a.id != 0 && a.id != bk->thread_self_id());
  CU_ASSERT_EQUAL(bk->thread_self_id(), bk->thread_self_id());

  CU_ASSERT_EQUAL_FATAL(
      bk->thread_create(&t, probe_exits, probe_unwound, &b, 0), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT(b.ran);
  CU_ASSERT_EQUAL(b.unwound, 1);

  /* pthread_exit with no unwound hook is fine too */
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, probe_exits, NULL, &b, 0),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_create(&t, probe_exits, NULL, &b, 0x80),
                  PEBBLE_EINVAL);
}

static void test_thread_signal_masks(void) {
  thread_probe outer, inner, plain;
  pebble_bk_thread *t = NULL;
  memset(&outer, 0, sizeof outer);
  memset(&inner, 0, sizeof inner);
  memset(&plain, 0, sizeof plain);
  outer.inner_probe = &inner;
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, probe_spawns, NULL, &outer,
                                          PEBBLE_BK_THREAD_INTERNAL),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT_EQUAL(outer.blocked_int, 1);
  CU_ASSERT_EQUAL(outer.blocked_usr1, 1);
  CU_ASSERT_EQUAL_FATAL(outer.ran, 1);
  CU_ASSERT_EQUAL(bk->thread_join(outer.inner), PEBBLE_OK);
  /* a task thread gets the application's mask, not the library's */
  CU_ASSERT_EQUAL(inner.returned, 1);
  CU_ASSERT_EQUAL(inner.blocked_int, 0);
  CU_ASSERT_EQUAL(inner.blocked_usr1, 0);
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, probe_returns, NULL, &plain, 0),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT_EQUAL(plain.blocked_int, 0);
}

/* ------------------------------------------------------------------ */
/* processes                                                           */
/* ------------------------------------------------------------------ */

static const char hello[] = "hello from the child";

static int child_hello(void *arg, pebble_bk_chan *chan) {
  (void)arg;
  return bk->chan_write_all(chan, hello, sizeof hello) == PEBBLE_OK ? 0 : 9;
}

static void test_proc_hello(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p = start(child_hello, NULL);
  char buf[64];
  size_t got;
  pebble_bk_exit ex;
  if (p == NULL)
    return;
  memset(buf, 0, sizeof buf);
  got = read_from(ws, p, buf, sizeof buf);
  CU_ASSERT_EQUAL(got, sizeof hello);
  CU_ASSERT_STRING_EQUAL(buf, hello);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.status_known, 1);
  CU_ASSERT_EQUAL(ex.exited, 1);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  CU_ASSERT_EQUAL(ex.signal, 0);
  bk->waitset_destroy(ws);
  /* No other child either: a guardian, where there is one, was adopted
   * by init. */
  CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);
  CU_ASSERT_EQUAL(errno, ECHILD);
}

/* Sends six one-byte messages, each with the read end of a pipe that
 * holds that message's index. */
#define HANDLES_SENT 6
static int child_sends_handles(void *arg, pebble_bk_chan *chan) {
  int i;
  (void)arg;
  for (i = 0; i < HANDLES_SENT; i++) {
    int fds[2];
    char c = (char)('a' + i), n = (char)i;
    if (pipe(fds) != 0 || write(fds[1], &n, 1) != 1)
      return 8;
    close(fds[1]);
    if (bk->chan_send_handle(chan, &c, 1, fds[0]) != PEBBLE_OK)
      return 9;
    close(fds[0]); /* the parent has its own */
  }
  return 0;
}

static int count_fds(void) {
  int n = 0, fd;
  for (fd = 0; fd < 1024; fd++)
    n += fcntl(fd, F_GETFD) != -1;
  return n;
}

/* Descriptors arrive with the bytes they were sent with, are taken oldest
 * first, and no more than a few are kept: the rest are closed, and so are
 * those nobody took when the process is destroyed. */
static void test_pass_handles(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p;
  char buf[HANDLES_SENT + 1];
  intptr_t h;
  int i, fds;
  pebble_bk_exit ex;
  /* What the backend keeps open once it has run a child is the baseline. */
  if ((p = start(child_hello, NULL)) == NULL)
    return;
  finish(ws, p);
  bk->waitset_destroy(ws);
  fds = count_fds();
  ws = new_waitset();
  CU_ASSERT_EQUAL(bk->chan_send_handle(NULL, "x", 1, 0), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->proc_take_handle(NULL, &h), PEBBLE_EINVAL);
  if ((p = start(child_sends_handles, NULL)) == NULL)
    return;
  memset(buf, 0, sizeof buf);
  CU_ASSERT_EQUAL(read_from(ws, p, buf, HANDLES_SENT), HANDLES_SENT);
  CU_ASSERT_STRING_EQUAL(buf, "abcdef");
  /* Reaped, not destroyed: what came stays until taken or destroyed. */
  memset(&ex, 0, sizeof ex);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_EXIT, p), PEBBLE_OK);
  CU_ASSERT(wait_events(ws, p, PEBBLE_EV_EXIT) & PEBBLE_EV_EXIT);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, 0, NULL), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->proc_reap(p, &ex), PEBBLE_OK);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  /* Two taken here; two more left for destroy to close. */
  for (i = 0; i < 2; i++) {
    char n = -1;
    CU_ASSERT_EQUAL_FATAL(bk->proc_take_handle(p, &h), PEBBLE_OK);
    CU_ASSERT_EQUAL(read((int)h, &n, 1), 1);
    CU_ASSERT_EQUAL(n, i);
    CU_ASSERT(fcntl((int)h, F_GETFD) & FD_CLOEXEC);
    close((int)h);
  }
  bk->proc_destroy(p);
  bk->waitset_destroy(ws);
  CU_ASSERT_EQUAL(count_fds(), fds);

  /* Taken until none is left.  A forked child's messages come through a
   * pipe and its descriptors wait on the socket until taken, one for
   * each take: all six come, in order (through the socket alone, as a
   * spawned child sends them, a read keeps four and closes the rest). */
  ws = new_waitset();
  if ((p = start(child_sends_handles, NULL)) == NULL)
    return;
  CU_ASSERT_EQUAL(read_from(ws, p, buf, HANDLES_SENT), HANDLES_SENT);
  for (i = 0; i < HANDLES_SENT; i++) {
    char n = -1;
    CU_ASSERT_EQUAL_FATAL(bk->proc_take_handle(p, &h), PEBBLE_OK);
    CU_ASSERT_EQUAL(read((int)h, &n, 1), 1);
    CU_ASSERT_EQUAL(n, i);
    close((int)h);
  }
  CU_ASSERT_EQUAL(bk->proc_take_handle(p, &h), PEBBLE_ENOTFOUND);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  bk->waitset_destroy(ws);
  CU_ASSERT_EQUAL(count_fds(), fds);
}

#define ECHO_SIZE ((size_t)3 << 20) /* well beyond any socket buffer */

static uint64_t checksum(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211u;
  return h;
}

/* Waits for a go on the pipe, reads ECHO_SIZE bytes from the channel,
 * answers with their checksum. */
static int child_checksum(void *arg, pebble_bk_chan *chan) {
  const int *go = arg;
  unsigned char *buf = malloc(ECHO_SIZE);
  uint64_t sum;
  char b;
  if (read(go[0], &b, 1) != 1)
    return 8;
  if (buf == NULL || bk->chan_read_all(chan, buf, ECHO_SIZE) != PEBBLE_OK)
    return 9;
  sum = checksum(buf, ECHO_SIZE);
  free(buf);
  return bk->chan_write_all(chan, &sum, sizeof sum) == PEBBLE_OK ? 0 : 9;
}

static void test_proc_large_write_and_echo(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p;
  unsigned char *data = malloc(ECHO_SIZE);
  size_t sent = 0, i, done = 0;
  uint64_t sum = 0;
  int would_block = 0, go[2];
  char b;
  pebble_bk_exit ex;

  CU_ASSERT_PTR_NOT_NULL_FATAL(data);
  CU_ASSERT_EQUAL_FATAL(pipe(go), 0);
  for (i = 0; i < ECHO_SIZE; i++)
    data[i] = (unsigned char)(i * 7 + (i >> 12));
  p = start(child_checksum, go);
  close(go[0]);
  if (p == NULL) {
    close(go[1]);
    free(data);
    return;
  }
  /* nothing to read yet: not ready, not end-of-file */
  CU_ASSERT_EQUAL(bk->proc_read(p, &b, 1, &done), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(bk->proc_read(p, &b, 0, &done), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->proc_write(p, NULL, 0, &done), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_WRITE, p), PEBBLE_OK);
  while (sent < ECHO_SIZE) {
    int rc = bk->proc_write(p, data + sent, ECHO_SIZE - sent, &done);
    if (rc == PEBBLE_OK) {
      sent += done;
      continue;
    }
    CU_ASSERT_EQUAL_FATAL(rc, PEBBLE_ENOTREADY);
    /* The child reads nothing until now: the write really was
     * non-blocking, with a full socket. */
    if (!would_block)
      CU_ASSERT_EQUAL(write(go[1], "g", 1), 1);
    would_block = 1;
    if (!(wait_events(ws, p, PEBBLE_EV_WRITE) & PEBBLE_EV_WRITE))
      break;
  }
  CU_ASSERT_EQUAL(sent, ECHO_SIZE);
  CU_ASSERT_EQUAL(would_block, 1);
  close(go[1]);
  CU_ASSERT_EQUAL(read_from(ws, p, &sum, sizeof sum), sizeof sum);
  CU_ASSERT(sum == checksum(data, ECHO_SIZE));
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.exited, 1);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  free(data);
  bk->waitset_destroy(ws);
}

static int child_returns_7(void *arg, pebble_bk_chan *chan) {
  (void)arg;
  (void)chan;
  return 7;
}

static int child_calls_exit(void *arg, pebble_bk_chan *chan) {
  (void)arg;
  (void)chan;
  exit(0);
}

static int child_segfaults(void *arg, pebble_bk_chan *chan) {
  (void)arg;
  (void)chan;
  raise(SIGSEGV);
  return 0;
}

static int child_aborts(void *arg, pebble_bk_chan *chan) {
  (void)arg;
  (void)chan;
  abort();
}

/* A destroyed handle leaves no descriptor behind, at once: where there
 * are no pidfds, the helper thread's end of the exit socket used to close
 * a moment after the destroy, which a caller counting its descriptors
 * saw.  Children that end at once make the helper's last steps race with
 * the destroy; many rounds make a lingering one show. */
#define ROUNDS 40
static void test_destroy_leaves_nothing(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p;
  int fds, i, fd_diffs = 0;
  if ((p = start(child_returns_7, NULL)) == NULL)
    return;
  finish(ws, p);
  fds = count_fds();
  for (i = 0; i < ROUNDS; i++) {
    if ((p = start(child_returns_7, NULL)) == NULL)
      break;
    CU_ASSERT_EQUAL(finish(ws, p).exit_code, 7);
    fd_diffs += count_fds() != fds;
  }
  CU_ASSERT_EQUAL(fd_diffs, 0);
  bk->waitset_destroy(ws);
}

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
static void wait_to_be_killed(void) {
  for (;;)
    pause();
}

/* Says it is ready, then waits to be killed. */
static int child_waits(void *arg, pebble_bk_chan *chan) {
  char ready = 'r';
  (void)arg;
  bk->chan_write_all(chan, &ready, 1);
  wait_to_be_killed();
}

static pebble_bk_exit run_to_end(pebble_child_main_fn fn) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_exit ex;
  pebble_bk_proc *p = start(fn, NULL);
  memset(&ex, 0, sizeof ex);
  if (p != NULL)
    ex = finish(ws, p);
  bk->waitset_destroy(ws);
  return ex;
}

static void test_exit_codes(void) {
  pebble_bk_exit ex = run_to_end(child_returns_7);
  CU_ASSERT_EQUAL(ex.status_known, 1);
  CU_ASSERT_EQUAL(ex.exited, 1);
  CU_ASSERT_EQUAL(ex.exit_code, 7);
  ex = run_to_end(child_calls_exit);
  CU_ASSERT_EQUAL(ex.exited, 1);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  CU_ASSERT_EQUAL(ex.signal, 0);
}

static void test_crash_signals(void) {
  /* Checks the signal number: under AddressSanitizer this needs
   * ASAN_OPTIONS=handle_segv=0, as the test wrapper sets. */
  pebble_bk_exit ex = run_to_end(child_segfaults);
  CU_ASSERT_EQUAL(ex.status_known, 1);
  CU_ASSERT_EQUAL(ex.exited, 0);
  CU_ASSERT_EQUAL(ex.signal, SIGSEGV);
  ex = run_to_end(child_aborts);
  CU_ASSERT_EQUAL(ex.exited, 0);
  CU_ASSERT_EQUAL(ex.signal, SIGABRT);
}

static void test_kill_signals(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_exit ex;
  pebble_bk_proc *p;
  char r = 0;

  /* SIGKILL from outside the library */
  p = start(child_waits, NULL);
  if (p == NULL)
    return;
  CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1);
  CU_ASSERT_EQUAL(kill((pid_t)bk->proc_pid(p), SIGKILL), 0);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.signal, SIGKILL);

  /* proc_kill: 0 asks (SIGTERM), 1 kills */
  p = start(child_waits, NULL);
  CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1);
  CU_ASSERT_EQUAL(bk->proc_kill(p, 0), PEBBLE_OK);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.signal, SIGTERM);
  p = start(child_waits, NULL);
  CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1);
  CU_ASSERT_EQUAL(bk->proc_kill(p, 1), PEBBLE_OK);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.signal, SIGKILL);
  bk->waitset_destroy(ws);
}

static void test_reap_too_early_and_destroy_running(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_exit ex;
  pebble_bk_proc *p = start(child_waits, NULL);
  pid_t pid;
  char r = 0;
  if (p == NULL)
    return;
  pid = (pid_t)bk->proc_pid(p);
  CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1);
  CU_ASSERT_EQUAL(bk->proc_reap(p, &ex), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(kill(pid, 0), 0); /* still there */
  /* destroy while running and watched: killed, reaped, unwatched */
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_EXIT, p), PEBBLE_OK);
  bk->proc_destroy(p);
  CU_ASSERT_EQUAL(waitpid(pid, NULL, WNOHANG), -1);
  CU_ASSERT_EQUAL(errno, ECHILD);
  bk->waitset_destroy(ws);
}

/* What the child reports about the state it was given. */
typedef struct child_report {
  int stdin_is_dev_null;
  int own_group;
  int sigusr1_default;
  int sigusr2_blocked;
  uint64_t fork_generation;
  unsigned char open_fds[FD_SCAN];
  unsigned char sockets[FD_SCAN];
} child_report;

static int is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int child_inspects(void *arg, pebble_bk_chan *chan) {
  child_report r;
  struct stat in, null;
  struct sigaction sa;
  sigset_t mask;
  int fd;
  (void)arg;
  memset(&r, 0, sizeof r);
  r.stdin_is_dev_null = fstat(0, &in) == 0 && stat("/dev/null", &null) == 0 &&
                        in.st_rdev == null.st_rdev && in.st_ino == null.st_ino;
  r.own_group = getpgrp() == getpid();
  r.sigusr1_default = sigaction(SIGUSR1, NULL, &sa) == 0 &&
                      sa.sa_handler == SIG_DFL;
  sigprocmask(SIG_SETMASK, NULL, &mask);
  r.sigusr2_blocked = sigismember(&mask, SIGUSR2);
  r.fork_generation = bk->fork_generation();
  scan_fds(r.open_fds);
  for (fd = 0; fd < FD_SCAN; fd++)
    r.sockets[fd] = r.open_fds[fd] && is_socket(fd);
  return bk->chan_write_all(chan, &r, sizeof r) == PEBBLE_OK ? 0 : 9;
}

static void on_sigusr1(int sig) { (void)sig; }

#define OTHERS_MAX 30

/* `others` children alive meanwhile, each holding library descriptors in
 * the parent (more than the registry's static table holds, with 30). */
static void check_child_environment(int others) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_notifier *nt = NULL;
  pebble_bk_proc *other[OTHERS_MAX], *p;
  unsigned char parent_fds[FD_SCAN];
  struct sigaction sa, old_sa;
  sigset_t usr2, old_mask;
  child_report r;
  int app_pipe[2], fd, library_fds = 0, extra = 0, extra_fd = -1;
  int saved_stdin, i;
  char ready = 0;
  uint64_t gen = bk->fork_generation();

  /* The parent holds other library descriptors: other children's
   * channels and exit descriptors, a waitset, a notifier. */
  CU_ASSERT_EQUAL_FATAL(bk->notifier_create(&nt), PEBBLE_OK);
  for (i = 0; i < others; i++) {
    other[i] = start(child_waits, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other[i]);
    CU_ASSERT_EQUAL(read_from(ws, other[i], &ready, 1), 1);
  }
  CU_ASSERT_EQUAL_FATAL(pipe(app_pipe), 0); /* the application's own */
  /* A handler and a blocked signal the child must not inherit. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &old_sa);
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);

  /* Standard input the child must not get: our pipe. */
  saved_stdin = dup(0);
  CU_ASSERT_FATAL(saved_stdin > 2);
  CU_ASSERT_EQUAL(dup2(app_pipe[0], 0), 0);
  p = start(child_inspects, NULL);
  scan_fds(parent_fds);
  dup2(saved_stdin, 0);
  close(saved_stdin);
  sigaction(SIGUSR1, &old_sa, NULL);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(&r, 0, sizeof r);
  CU_ASSERT_EQUAL(read_from(ws, p, &r, sizeof r), sizeof r);
  CU_ASSERT_EQUAL(r.stdin_is_dev_null, 1);
  CU_ASSERT_EQUAL(r.own_group, 1);
  CU_ASSERT_EQUAL(r.sigusr1_default, 1);
  CU_ASSERT_EQUAL(r.sigusr2_blocked, 0);
  CU_ASSERT(r.fork_generation != gen);
  /* The application's descriptors are inherited... */
  CU_ASSERT_EQUAL(r.open_fds[app_pipe[0]], 1);
  CU_ASSERT_EQUAL(r.open_fds[app_pipe[1]], 1);
  /* ...but of the library's, only the child's own channel: its socket,
   * and the pipe its messages go through. */
  for (fd = 3; fd < FD_SCAN; fd++) {
    if (fds_at_start[fd] || fd == app_pipe[0] || fd == app_pipe[1] ||
        fd == saved_stdin)
      continue;
    library_fds += parent_fds[fd];
    if (r.open_fds[fd]) {
      extra++;
      if (r.sockets[fd])
        extra_fd = fd;
    }
  }
  CU_ASSERT(library_fds >= 3 * others + 1); /* the check means something */
  CU_ASSERT_EQUAL(extra, 2);
  CU_ASSERT(extra_fd >= 0); /* its channel */
  finish(ws, p);
  for (i = 0; i < others; i++) {
    CU_ASSERT_EQUAL(bk->proc_kill(other[i], 1), PEBBLE_OK);
    finish(ws, other[i]);
  }
  close(app_pipe[0]);
  close(app_pipe[1]);
  bk->notifier_destroy(nt);
  bk->waitset_destroy(ws);
}

static void test_child_environment(void) { check_child_environment(1); }

/* The registry of library descriptors outgrows its static table. */
static void test_child_environment_many(void) {
  check_child_environment(OTHERS_MAX);
}

/* The library starts processes from its manager thread, which blocks
 * every signal: the child must still start with none blocked.  The
 * thread lives until the child is gone, as the contract asks: the
 * parent-death signal follows the thread that forked. */
typedef struct starter {
  pebble_bk_proc *proc;
  int rc;
  int started[2]; /* the thread says it started the child */
  int done[2];    /* the test says the thread may end */
} starter;

static void start_from_library_thread(void *arg) {
  starter *st = arg;
  int err = 0;
  char b = 0;
  st->rc = bk->proc_start(&st->proc, child_inspects, NULL, &err);
  if (write(st->started[1], &b, 1) != 1 || read(st->done[0], &b, 1) != 1)
    st->rc = -100;
}

static void test_start_from_library_thread(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_thread *t = NULL;
  starter st;
  child_report r;
  char b = 0;
  memset(&st, 0, sizeof st);
  CU_ASSERT_EQUAL_FATAL(pipe(st.started), 0);
  CU_ASSERT_EQUAL_FATAL(pipe(st.done), 0);
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, start_from_library_thread, NULL,
                                          &st, PEBBLE_BK_THREAD_INTERNAL),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(read(st.started[0], &b, 1), 1);
  CU_ASSERT_EQUAL(st.rc, PEBBLE_OK);
  if (st.rc == PEBBLE_OK) {
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(read_from(ws, st.proc, &r, sizeof r), sizeof r);
    CU_ASSERT_EQUAL(r.sigusr2_blocked, 0);
    CU_ASSERT_EQUAL(r.own_group, 1);
    finish(ws, st.proc);
  }
  CU_ASSERT_EQUAL(write(st.done[1], &b, 1), 1);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  close(st.started[0]);
  close(st.started[1]);
  close(st.done[0]);
  close(st.done[1]);
  bk->waitset_destroy(ws);
}

static void test_write_to_dead_child(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p = start(child_returns_7, NULL);
  pebble_bk_exit ex;
  size_t done = 1;
  char buf[4096];
  int i, rc = PEBBLE_OK;
  if (p == NULL)
    return;
  memset(buf, 'x', sizeof buf);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_EXIT, p), PEBBLE_OK);
  CU_ASSERT(wait_events(ws, p, PEBBLE_EV_EXIT) & PEBBLE_EV_EXIT);
  /* SIGPIPE is at its default action: raising it would end this test. */
  for (i = 0; i < 4 && rc == PEBBLE_OK; i++)
    rc = bk->proc_write(p, buf, sizeof buf, &done);
  CU_ASSERT_EQUAL(rc, PEBBLE_EDIED);
  CU_ASSERT_EQUAL(done, 0);
  CU_ASSERT_EQUAL(bk->proc_read(p, buf, sizeof buf, &done), PEBBLE_OK);
  CU_ASSERT_EQUAL(done, 0); /* end-of-file */
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.exit_code, 7);
  bk->waitset_destroy(ws);
}

static void test_status_unknown_when_sigchld_ignored(void) {
  struct sigaction ign, old;
  pebble_bk_waitset *ws;
  pebble_bk_proc *p;
  pebble_bk_exit ex;
  char r = 0;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGCHLD, &ign, &old);
  ex = run_to_end(child_returns_7);
  CU_ASSERT_EQUAL(ex.status_known, 0);
  /* a running child can still be killed: it is still ours */
  ws = new_waitset();
  p = start(child_waits, NULL);
  if (p != NULL) {
    CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1);
    CU_ASSERT_EQUAL(bk->proc_kill(p, 1), PEBBLE_OK);
    ex = finish(ws, p); /* the exit arrives: it died */
    CU_ASSERT_EQUAL(ex.status_known, 0);
  }
  bk->waitset_destroy(ws);
  sigaction(SIGCHLD, &old, NULL);
}

/* Forks a grandchild that stays in the group, holding the write end of
 * the test's pipe; reports its pid and exits. */
static int child_leaves_grandchild(void *arg, pebble_bk_chan *chan) {
  pid_t g = fork();
  long gpid = (long)g;
  (void)arg;
  if (g == 0)
    wait_to_be_killed();
  return bk->chan_write_all(chan, &gpid, sizeof gpid) == PEBBLE_OK ? 0 : 9;
}

static int readable_within(int fd, int ms) {
  struct pollfd pfd;
  pfd.fd = fd;
  pfd.events = POLLIN;
  pfd.revents = 0;
  return poll(&pfd, 1, ms) == 1;
}

static void test_reap_kills_grandchild(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p;
  pebble_bk_exit ex;
  int alive[2];
  long gpid = 0;
  char b;

  CU_ASSERT_EQUAL_FATAL(pipe(alive), 0);
  p = start(child_leaves_grandchild, NULL);
  close(alive[1]); /* now only the child and the grandchild hold it */
  if (p == NULL) {
    close(alive[0]);
    return;
  }
  CU_ASSERT_EQUAL(read_from(ws, p, &gpid, sizeof gpid), sizeof gpid);
  CU_ASSERT(gpid > 0);
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_EXIT, p), PEBBLE_OK);
  CU_ASSERT(wait_events(ws, p, PEBBLE_EV_EXIT) & PEBBLE_EV_EXIT);
  /* the child is gone, its grandchild is not */
  CU_ASSERT_FALSE(readable_within(alive[0], 0));
  CU_ASSERT_EQUAL(bk->proc_reap(p, &ex), PEBBLE_OK);
  CU_ASSERT_EQUAL(ex.exit_code, 0);
  /* the reap killed the group: the last writer is gone */
  if (readable_within(alive[0], (int)(CHILD_WAIT / MS))) {
    CU_ASSERT_EQUAL(read(alive[0], &b, 1), 0);
  } else {
    CU_FAIL("the grandchild outlived the reap");
    kill((pid_t)gpid, SIGKILL);
  }
  bk->proc_destroy(p);
  close(alive[0]);
  bk->waitset_destroy(ws);
}

/* Many children at once, with fewer event slots than children. */
static int child_sends_index(void *arg, pebble_bk_chan *chan) {
  int i = (int)(intptr_t)arg;
  return bk->chan_write_all(chan, &i, sizeof i) == PEBBLE_OK ? 0 : 9;
}

#define MANY 8

static void test_many_children(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p[MANY];
  int got[MANY], exited[MANY], i, left = MANY;
  uint64_t deadline;
  for (i = 0; i < MANY; i++) {
    got[i] = -1;
    exited[i] = 0;
    p[i] = start(child_sends_index, (void *)(intptr_t)i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
    bk->waitset_watch(ws, p[i], PEBBLE_EV_READ | PEBBLE_EV_EXIT, p[i]);
  }
  deadline = bk->now_ns() + CHILD_WAIT;
  while (left > 0 && bk->now_ns() < deadline) {
    pebble_wait_event ev[2];
    size_t n = 0, k;
    CU_ASSERT_EQUAL_FATAL(bk->waitset_wait(ws, deadline, ev, 2, &n),
                          PEBBLE_OK);
    CU_ASSERT(n <= 2);
    for (k = 0; k < n; k++) {
      for (i = 0; i < MANY && ev[k].tag != p[i]; i++)
        ;
      CU_ASSERT_FATAL(i < MANY);
      if (ev[k].events & PEBBLE_EV_READ) {
        size_t done = 0;
        int v = -1;
        if (bk->proc_read(p[i], &v, sizeof v, &done) == PEBBLE_OK &&
            done == sizeof v)
          got[i] = v;
        else /* end-of-file after the message: only the exit is left */
          bk->waitset_watch(ws, p[i], PEBBLE_EV_EXIT, p[i]);
      }
      if ((ev[k].events & PEBBLE_EV_EXIT) && !exited[i]) {
        pebble_bk_exit ex;
        CU_ASSERT_EQUAL(bk->proc_reap(p[i], &ex), PEBBLE_OK);
        CU_ASSERT_EQUAL(ex.exit_code, 0);
        bk->waitset_watch(ws, p[i], 0, NULL);
        exited[i] = 1;
        left--;
      }
    }
  }
  CU_ASSERT_EQUAL(left, 0);
  for (i = 0; i < MANY; i++) {
    CU_ASSERT_EQUAL(got[i], i);
    bk->proc_destroy(p[i]);
  }
  bk->waitset_destroy(ws);
}

/* ------------------------------------------------------------------ */
/* the spawn start method                                              */
/* ------------------------------------------------------------------ */

/* What a spawned worker (this program, re-run) reports. */
typedef struct spawn_report {
  int adopted;
  int variable_gone;
  int stdin_is_dev_null;
  int own_group;
  char argv0[128];
  unsigned char open_fds[FD_SCAN];
  unsigned char sockets[FD_SCAN];
} spawn_report;

/* main() of this program when it was spawned as a worker: reads a number,
 * reports, and exits with that number. */
static int worker_main(char **argv) {
  pebble_bk_chan *chan = NULL;
  spawn_report r;
  struct stat in, null;
  int code = 0, fd;
  memset(&r, 0, sizeof r);
  r.adopted = bk->chan_adopt(&chan) == PEBBLE_OK;
  if (!r.adopted)
    return 90;
  r.variable_gone = getenv("PEBBLE_WORKER_CHANNEL") == NULL;
  r.stdin_is_dev_null = fstat(0, &in) == 0 && stat("/dev/null", &null) == 0 &&
                        in.st_rdev == null.st_rdev && in.st_ino == null.st_ino;
  r.own_group = getpgrp() == getpid();
  snprintf(r.argv0, sizeof r.argv0, "%s", argv[0] ? argv[0] : "");
  scan_fds(r.open_fds);
  for (fd = 0; fd < FD_SCAN; fd++)
    r.sockets[fd] = r.open_fds[fd] && is_socket(fd);
  if (bk->chan_read_all(chan, &code, sizeof code) != PEBBLE_OK ||
      bk->chan_write_all(chan, &r, sizeof r) != PEBBLE_OK)
    return 91;
  return code;
}

/* Send code, read the report, check the exit. */
static void talk_to_worker(pebble_bk_waitset *ws, pebble_bk_proc *p, int code,
                           spawn_report *r) {
  size_t done = 0;
  pebble_bk_exit ex;
  CU_ASSERT_EQUAL(bk->proc_write(p, &code, sizeof code, &done), PEBBLE_OK);
  CU_ASSERT_EQUAL(done, sizeof code);
  memset(r, 0, sizeof *r);
  CU_ASSERT_EQUAL(read_from(ws, p, r, sizeof *r), sizeof *r);
  ex = finish(ws, p);
  CU_ASSERT_EQUAL(ex.exited, 1);
  CU_ASSERT_EQUAL(ex.exit_code, code);
}

static void test_spawn_self(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_notifier *nt = NULL;
  pebble_bk_proc *p = NULL, *other;
  spawn_report r;
  char self[512];
  ssize_t n;
  int err = -1, fd, extra = 0, extra_fd = -1;
  char ready;

  CU_ASSERT(bk->caps & PEBBLE_CAP_SPAWN);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bk->proc_spawn);
  /* other library descriptors the worker must not see */
  CU_ASSERT_EQUAL_FATAL(bk->notifier_create(&nt), PEBBLE_OK);
  other = start(child_waits, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(other);
  CU_ASSERT_EQUAL(read_from(ws, other, &ready, 1), 1);

  CU_ASSERT_EQUAL(bk->proc_spawn(&p, NULL, NULL, &err), PEBBLE_OK);
  CU_ASSERT_EQUAL(err, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  talk_to_worker(ws, p, 42, &r);
  CU_ASSERT_EQUAL(r.adopted, 1);
  CU_ASSERT_EQUAL(r.variable_gone, 1);
  CU_ASSERT_EQUAL(r.stdin_is_dev_null, 1);
  CU_ASSERT_EQUAL(r.own_group, 1);
  n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    CU_ASSERT_STRING_EQUAL(r.argv0, self);
  }
  for (fd = 3; fd < FD_SCAN; fd++)
    if (!fds_at_start[fd] && r.open_fds[fd]) {
      extra++;
      extra_fd = fd;
    }
  CU_ASSERT_EQUAL(extra, 1); /* only its channel */
  if (extra == 1)
    CU_ASSERT_EQUAL(r.sockets[extra_fd], 1);

  /* argv[0] of our choosing */
  p = NULL;
  CU_ASSERT_EQUAL(bk->proc_spawn(&p, NULL, "pebble-worker", &err), PEBBLE_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  talk_to_worker(ws, p, 3, &r);
  CU_ASSERT_STRING_EQUAL(r.argv0, "pebble-worker");

  CU_ASSERT_EQUAL(bk->proc_kill(other, 1), PEBBLE_OK);
  finish(ws, other);
  bk->notifier_destroy(nt);
  bk->waitset_destroy(ws);
}

static void test_spawn_other_programs(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_proc *p = (pebble_bk_proc *)&p;
  pebble_bk_exit ex;
  int err = 0;

  /* a program that cannot be run: refused, and no child left behind */
  CU_ASSERT_EQUAL(bk->proc_spawn(&p, "/nonexistent/pebble-worker", NULL, &err),
                  PEBBLE_ESYSTEM);
  CU_ASSERT_EQUAL(err, ENOENT);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT(waitpid(-1, NULL, WNOHANG) <= 0);
  CU_ASSERT_EQUAL(bk->proc_spawn(&p, "", NULL, &err), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->proc_spawn(NULL, NULL, NULL, &err), PEBBLE_EINVAL);

  /* any program can be a process; this one ignores the channel */
  if (access("/bin/sh", X_OK) == 0) {
    p = NULL;
    CU_ASSERT_EQUAL(bk->proc_spawn(&p, "/bin/sh", NULL, &err), PEBBLE_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* stdin is /dev/null: the shell reads no command and exits 0 */
    ex = finish(ws, p);
    CU_ASSERT_EQUAL(ex.exited, 1);
    CU_ASSERT_EQUAL(ex.exit_code, 0);
  }
  bk->waitset_destroy(ws);
}

static void test_chan_adopt_outside_a_worker(void) {
  pebble_bk_chan *chan = (pebble_bk_chan *)&chan;
  CU_ASSERT_EQUAL(bk->chan_adopt(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->chan_adopt(&chan), PEBBLE_ENOTFOUND);
  CU_ASSERT_PTR_NULL(chan);
  setenv("PEBBLE_WORKER_CHANNEL", "nonsense", 1);
  CU_ASSERT_EQUAL(bk->chan_adopt(&chan), PEBBLE_EINVAL);
  CU_ASSERT_PTR_NULL(getenv("PEBBLE_WORKER_CHANNEL"));
  setenv("PEBBLE_WORKER_CHANNEL", "1000", 1); /* not open */
  CU_ASSERT_EQUAL(bk->chan_adopt(&chan), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(bk->chan_adopt(&chan), PEBBLE_ENOTFOUND);
}

/* ------------------------------------------------------------------ */
/* parent death                                                        */
/* ------------------------------------------------------------------ */

static void test_worker_dies_with_parent(void) {
  int alive[2], report[2];
  pid_t middle, worker = 0;
  int st = 0;
  char b;

  CU_ASSERT_EQUAL_FATAL(pipe(alive), 0);
  CU_ASSERT_EQUAL_FATAL(pipe(report), 0);
  middle = fork();
  CU_ASSERT_FATAL(middle >= 0);
  if (middle == 0) {
    /* A parent of its own: starts a worker, waits until it runs the
     * task (past its set-up), says who it is, and dies. */
    pebble_bk_waitset *ws = NULL;
    pebble_bk_proc *p = NULL;
    pebble_wait_event ev;
    int err = 0;
    size_t n = 0, done = 0;
    char ready = 0;
    pid_t w;
    close(report[0]);
    close(alive[0]);
    if (bk->waitset_create(&ws) != PEBBLE_OK ||
        bk->proc_start(&p, child_waits, NULL, &err) != PEBBLE_OK ||
        bk->waitset_watch(ws, p, PEBBLE_EV_READ, p) != PEBBLE_OK)
      _exit(2);
    close(alive[1]); /* only the worker holds it now */
    while (bk->proc_read(p, &ready, 1, &done) == PEBBLE_ENOTREADY)
      if (bk->waitset_wait(ws, bk->now_ns() + CHILD_WAIT, &ev, 1, &n) !=
              PEBBLE_OK ||
          n == 0)
        _exit(4);
    if (done != 1)
      _exit(5);
    w = (pid_t)bk->proc_pid(p);
    if (write(report[1], &w, sizeof w) != (ssize_t)sizeof w)
      _exit(3);
    _exit(0);
  }
  close(report[1]);
  close(alive[1]);
  CU_ASSERT_EQUAL(read(report[0], &worker, sizeof worker),
                  (ssize_t)sizeof worker);
  CU_ASSERT(worker > 0);
  CU_ASSERT_EQUAL(waitpid(middle, &st, 0), middle);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* The worker's end of `alive` closes when it dies. */
  if (readable_within(alive[0], (int)(CHILD_WAIT / MS))) {
    CU_ASSERT_EQUAL(read(alive[0], &b, 1), 0);
  } else {
    CU_FAIL("the worker outlived its parent");
    if (worker > 0)
      kill(worker, SIGKILL);
  }
  close(alive[0]);
  close(report[0]);
}

/* ------------------------------------------------------------------ */
/* waitset and notifier                                                */
/* ------------------------------------------------------------------ */

static void test_waitset_deadline(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_wait_event ev[4];
  size_t n = 9;
  uint64_t t0 = bk->now_ns(), deadline = t0 + 50 * MS;
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, deadline, ev, 4, &n), PEBBLE_OK);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT(bk->now_ns() >= deadline);
  CU_ASSERT(since(t0) < 50 * MS + TOO_LATE);
  /* below a millisecond: still not early */
  t0 = bk->now_ns();
  deadline = t0 + 300000u;
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, deadline, ev, 4, &n), PEBBLE_OK);
  CU_ASSERT(bk->now_ns() >= deadline);
  /* already passed: returns at once */
  t0 = bk->now_ns();
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, 0, ev, 4, &n), PEBBLE_OK);
  CU_ASSERT(since(t0) < TOO_LATE);
  bk->waitset_destroy(ws);
}

typedef struct waker {
  pebble_bk_waitset *ws;
  int delay_ms;
} waker;

static void wake_later(void *arg) {
  waker *w = arg;
  struct timespec ts;
  ts.tv_sec = 0;
  ts.tv_nsec = (long)w->delay_ms * 1000000L;
  nanosleep(&ts, NULL);
  bk->waitset_wake(w->ws);
}

static void test_waitset_wake_from_thread(void) {
  pebble_bk_waitset *ws = new_waitset();
  pebble_bk_thread *t = NULL;
  pebble_wait_event ev[4];
  waker w;
  size_t n = 9;
  uint64_t t0;
  w.ws = ws;
  w.delay_ms = 50;
  t0 = bk->now_ns();
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, wake_later, NULL, &w, 0),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, PEBBLE_BK_FOREVER, ev, 4, &n),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT(since(t0) < TOO_LATE);
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  /* a wake before the wait is not lost, and is drained afterwards */
  bk->waitset_wake(ws);
  bk->waitset_wake(ws);
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, PEBBLE_BK_FOREVER, ev, 4, &n),
                  PEBBLE_OK);
  t0 = bk->now_ns();
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, t0 + 20 * MS, ev, 4, &n), PEBBLE_OK);
  CU_ASSERT(bk->now_ns() >= t0 + 20 * MS); /* nothing left to wake it */
  bk->waitset_destroy(ws);
}

/* Changing the watch list from another thread wakes the waiter, which
 * then reports nothing stale. */
typedef struct rewatcher {
  pebble_bk_waitset *ws;
  pebble_bk_proc *proc;
  int rc;
} rewatcher;

static void rewatch_later(void *arg) {
  rewatcher *rw = arg;
  struct timespec ts;
  ts.tv_sec = 0;
  ts.tv_nsec = 50 * 1000000L;
  nanosleep(&ts, NULL);
  rw->rc = bk->waitset_watch(rw->ws, rw->proc, PEBBLE_EV_EXIT, rw->proc);
}

static void test_waitset_watch_from_thread(void) {
  pebble_bk_waitset *ws = new_waitset(), *other = new_waitset();
  pebble_bk_thread *t = NULL;
  pebble_wait_event ev[4];
  pebble_bk_proc *p = start(child_waits, NULL);
  rewatcher rw;
  size_t n = 9, i;
  uint64_t t0;
  char r = 0;
  if (p == NULL)
    return;
  CU_ASSERT_EQUAL(read_from(ws, p, &r, 1), 1); /* nothing more will come */
  /* one waitset per process */
  CU_ASSERT_EQUAL(bk->waitset_watch(ws, p, PEBBLE_EV_READ, p), PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->waitset_watch(other, p, PEBBLE_EV_READ, p), PEBBLE_EBUSY);
  bk->waitset_destroy(other);
  rw.ws = ws;
  rw.proc = p;
  rw.rc = -1;
  t0 = bk->now_ns();
  CU_ASSERT_EQUAL_FATAL(bk->thread_create(&t, rewatch_later, NULL, &rw, 0),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->waitset_wait(ws, t0 + TOO_LATE, ev, 4, &n), PEBBLE_OK);
  CU_ASSERT(since(t0) < TOO_LATE); /* woken by the change */
  for (i = 0; i < n; i++)
    CU_ASSERT_FALSE(ev[i].events & PEBBLE_EV_READ); /* nothing to read */
  CU_ASSERT_EQUAL(bk->thread_join(t), PEBBLE_OK);
  CU_ASSERT_EQUAL(rw.rc, PEBBLE_OK);
  CU_ASSERT_EQUAL(bk->proc_kill(p, 1), PEBBLE_OK);
  finish(ws, p);
  bk->waitset_destroy(ws);
}

static void test_notifier(void) {
  pebble_bk_notifier *nt = NULL;
  int fd;
  CU_ASSERT_EQUAL_FATAL(bk->notifier_create(&nt), PEBBLE_OK);
  fd = (int)bk->notifier_handle(nt);
  CU_ASSERT(fd > 2);
  CU_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  CU_ASSERT_FALSE(readable_within(fd, 0));
  bk->notifier_set(nt);
  CU_ASSERT(readable_within(fd, 0));
  bk->notifier_set(nt); /* idempotent */
  CU_ASSERT(readable_within(fd, 0));
  bk->notifier_clear(nt);
  CU_ASSERT_FALSE(readable_within(fd, 0));
  bk->notifier_clear(nt);
  CU_ASSERT_FALSE(readable_within(fd, 0));
  bk->notifier_set(nt);
  CU_ASSERT(readable_within(fd, 0));
  bk->notifier_destroy(nt);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  CU_pSuite s;
  unsigned failures;

  (void)argc;
  scan_fds(fds_at_start);
  signal(SIGPIPE, SIG_DFL);
  bk = pebble__backend_posix_get();
  if (bk == NULL || bk->init(&host) != PEBBLE_OK) {
    fprintf(stderr, "the POSIX backend did not start\n");
    return 1;
  }
  if (getenv("PEBBLE_WORKER_CHANNEL") != NULL)
    return worker_main(argv); /* spawned by test_spawn_self */
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 1;
  s = CU_add_suite("backend_posix", NULL, NULL);
  if (s == NULL ||
      !CU_add_test(s, "table metadata", test_table) ||
      !CU_add_test(s, "monotonic clock", test_clock) ||
      !CU_add_test(s, "invalid arguments", test_invalid_arguments) ||
      !CU_add_test(s, "cond_wait deadline", test_cond_timeout) ||
      !CU_add_test(s, "cond_wait signalled", test_cond_signal) ||
      !CU_add_test(s, "thread join and unwound",
                   test_thread_join_and_unwound) ||
      !CU_add_test(s, "thread signal masks", test_thread_signal_masks) ||
      !CU_add_test(s, "child writes, parent reads", test_proc_hello) ||
      !CU_add_test(s, "descriptors passed by a child", test_pass_handles) ||
      !CU_add_test(s, "destroy leaves no descriptor",
                   test_destroy_leaves_nothing) ||
      !CU_add_test(s, "large non-blocking write",
                   test_proc_large_write_and_echo) ||
      !CU_add_test(s, "exit codes", test_exit_codes) ||
      !CU_add_test(s, "crash signals", test_crash_signals) ||
      !CU_add_test(s, "kill signals", test_kill_signals) ||
      !CU_add_test(s, "reap too early, destroy running",
                   test_reap_too_early_and_destroy_running) ||
      !CU_add_test(s, "child environment", test_child_environment) ||
      !CU_add_test(s, "child environment, 30 other children",
                   test_child_environment_many) ||
      !CU_add_test(s, "start from a library thread",
                   test_start_from_library_thread) ||
      !CU_add_test(s, "write to a dead child", test_write_to_dead_child) ||
      !CU_add_test(s, "status unknown with SIGCHLD ignored",
                   test_status_unknown_when_sigchld_ignored) ||
      !CU_add_test(s, "reap kills the grandchild",
                   test_reap_kills_grandchild) ||
      !CU_add_test(s, "many children", test_many_children) ||
      !CU_add_test(s, "spawn this program", test_spawn_self) ||
      !CU_add_test(s, "spawn other programs", test_spawn_other_programs) ||
      !CU_add_test(s, "chan_adopt outside a worker",
                   test_chan_adopt_outside_a_worker) ||
      !CU_add_test(s, "worker dies with its parent",
                   test_worker_dies_with_parent) ||
      !CU_add_test(s, "waitset deadline", test_waitset_deadline) ||
      !CU_add_test(s, "waitset wake from a thread",
                   test_waitset_wake_from_thread) ||
      !CU_add_test(s, "waitset watch from a thread",
                   test_waitset_watch_from_thread) ||
      !CU_add_test(s, "notifier", test_notifier)) {
    CU_cleanup_registry();
    return 1;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  failures = CU_get_number_of_failures();
  CU_cleanup_registry();
  bk->shutdown();
  return failures ? 1 : 0;
}
