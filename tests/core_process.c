/* SPDX-License-Identifier: Apache-2.0 */
/* core_process.c -- one-shot process tasks: results, failures, crashes,
 * timeouts, cancellation, large messages, and the hard edges of forking
 * from a multi-threaded library. */
#include "core_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#ifndef _WIN32
#include <poll.h>
#endif
#include <sys/stat.h>

static int echo_int(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 9, "not an int");
  return pebble_result_int(ctx, v * 2);
}
static int fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 42, "Ops! %d", 7);
}
static int segv(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  raise(SIGSEGV);
  return 0;
}
/* A real NULL write: the sanitizers must not turn it into their own exit. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((no_sanitize_undefined, no_sanitize_address))
#elif defined(__clang__)
__attribute__((no_sanitize("undefined", "address")))
#endif
static int null_write(pebble_ctx *ctx, const void *arg, size_t size) {
  volatile int *p = NULL;
  (void)ctx, (void)arg, (void)size;
  *p = 1;
  return 0;
}
static int aborts(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  abort();
}
static int kills_self(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  kill(getpid(), SIGKILL);
  pause();
  return 0;
}
static int exits(pebble_ctx *ctx, const void *arg, size_t size) {
  int code = size == sizeof(int) ? *(const int *)arg : 0;
  (void)ctx;
  _exit(code); /* exit() would run the sanitizers' leak check */
}
static int sleeps(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  for (;;)
    pause();
  return 0;
}

static pebble_future *run(pebble_task_fn fn, const void *arg, size_t size,
                          const pebble_task_options *o) {
  pebble_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_PROCESS, fn, arg, size, o, &f),
                        PEBBLE_OK);
  return f;
}

static void test_result(void) {
  int64_t v = 21, out = 0;
  pebble_future *f = run(echo_int, &v, sizeof v, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 42);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_DONE);
  pebble_future_release(f);
}

/* Sleeps a second, then doubles its argument: outlives a short thread. */
static int naps_then_echoes(pebble_ctx *ctx, const void *arg, size_t size) {
  usleep(1000000);
  return echo_int(ctx, arg, size);
}
static void *launch_and_leave(void *out) {
  int64_t v = 4;
  if (pebble_run(PEBBLE_PROCESS, naps_then_echoes, &v, sizeof v, NULL,
                 (pebble_future **)out) != PEBBLE_OK)
    *(pebble_future **)out = NULL;
  return NULL;
}
/* The thread that launched a task ends long before the task does: the
 * task's process must not die with that thread (a parent-death signal is
 * sent when the thread that forked ends, not the process). */
static void test_launcher_thread_ends(void) {
  pthread_t t;
  pebble_future *f = NULL;
  int64_t out = 0;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, launch_and_leave, &f), 0);
  CU_ASSERT_EQUAL_FATAL(pthread_join(t, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 8);
  pebble_future_release(f);
}

static void test_failure_crosses(void) {
  pebble_future *f = run(fails, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETASK);
  CU_ASSERT_EQUAL(pebble_future_task_code(f), 42);
  CU_ASSERT_STRING_EQUAL(pebble_future_message(f), "Ops! 7");
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_FAILED);
  pebble_future_release(f);
}

static void expect_signal(pebble_task_fn fn, int sig) {
  pebble_exit_info x;
  pebble_future *f;
  SKIP_ON_WINDOWS(SIGNALS_WHY);
  f = run(fn, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  memset(&x, 0, sizeof x);
  x.struct_size = sizeof x;
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.signal, sig);
  CU_ASSERT(x.pid > 0);
  CU_ASSERT_EQUAL(x.killed_by_library, 0);
  CU_ASSERT_EQUAL(x.status_known, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_future_message(f),
                                pebble_signal_name(sig)));
  pebble_future_release(f);
}

static void test_sigsegv(void) { expect_signal(segv, SIGSEGV); }
static void test_null_write(void) { expect_signal(null_write, SIGSEGV); }
static void test_abort(void) { expect_signal(aborts, SIGABRT); }
static void test_sigkill(void) { expect_signal(kills_self, SIGKILL); }

static void expect_exit(int code) {
  pebble_exit_info x;
  pebble_future *f = run(exits, &code, sizeof code, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  x.struct_size = sizeof x;
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.exited, 1);
  CU_ASSERT_EQUAL(x.exit_code, code);
  CU_ASSERT_EQUAL(x.signal, 0);
  pebble_future_release(f);
}
static void test_exit0(void) { expect_exit(0); }
static void test_exit3(void) { expect_exit(3); }

/* pebble_future_wait_exit: by event, to the reap; at once where there is
 * nothing to wait for; bounded by its timeout. */
static void test_wait_exit(void) {
  int64_t v = 5, out = 0;
  pebble_exit_info x;
  pebble_future *f, *t;
  pebble_pool *pool;
  double t0;

  f = run(echo_int, &v, sizeof v, NULL);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(60)), PEBBLE_OK);
  /* Resolved by then, and the process gone. */
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_NOWAIT, &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 10);
  memset(&x, 0, sizeof x);
  x.struct_size = sizeof x;
  CU_ASSERT_EQUAL_FATAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.exited, 1);
  CU_ASSERT_EQUAL(x.exit_code, 0);
  CU_ASSERT(process_ended(x.pid));
  CU_ASSERT(gone_within((pid_t)x.pid, 10)); /* its pid released, soon */
  /* Again, from the record. */
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_NOWAIT), PEBBLE_OK);
  pebble_future_release(f);

  /* Still running: out of time, after the time given. */
  f = run(sleeps, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_NOWAIT),
                  PEBBLE_ENOTREADY);
  t0 = now_s();
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_MSEC(100)),
                  PEBBLE_ENOTREADY);
  CU_ASSERT(now_s() - t0 >= 0.099);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "not reaped within"));
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT(exit_info_within(f, &x, 30));
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  CU_ASSERT(process_ended(x.pid));
  pebble_future_release(f);

  /* Nothing to wait for. */
  CU_ASSERT_EQUAL(pebble_future_wait_exit(NULL, PEBBLE_FOREVER),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_THREAD, echo_int, &v, sizeof v,
                                   NULL, &t),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(t, -5), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(t, PEBBLE_FOREVER),
                  PEBBLE_ENOTFOUND);
  CU_ASSERT_EQUAL(pebble_future_get_int(t, PEBBLE_SEC(30), &out), PEBBLE_OK);
  pebble_future_release(t);
  /* A pool's worker that finished the task lives on (core_pool has the
   * rest). */
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&pool, PEBBLE_PROCESS, NULL),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(
      pebble_pool_schedule(pool, echo_int, &v, sizeof v, NULL, &t),
      PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(t, PEBBLE_SEC(60)),
                  PEBBLE_ENOTFOUND);
  CU_ASSERT_EQUAL(pebble_future_get_int(t, PEBBLE_NOWAIT, &out), PEBBLE_OK);
  pebble_future_release(t);
  CU_ASSERT_EQUAL(pebble_pool_destroy(pool), PEBBLE_OK);
}

/* A cancel racing the launch: whichever wins, the wait ends, and says
 * which way it went -- a process that started is reaped before the wait
 * returns PEBBLE_OK, and PEBBLE_ENOTFOUND means none ever started. */
static void test_wait_exit_cancel_race(void) {
  int i, reaped = 0, never = 0;
  for (i = 0; i < 40; i++) {
    pebble_exit_info x;
    pebble_future *f = run(sleeps, NULL, 0, NULL);
    long pid = 0;
    int rc;
    if (i % 2 == 1)
      usleep((unsigned)(i * 50)); /* let some launches start */
    CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
    rc = pebble_future_wait_exit(f, PEBBLE_SEC(60));
    CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_ENOTFOUND);
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_NOWAIT, NULL, NULL),
                    PEBBLE_ECANCELED);
    x.struct_size = sizeof x;
    if (rc == PEBBLE_OK) {
      reaped++;
      CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
      CU_ASSERT_EQUAL(x.killed_by_library, 1);
      CU_ASSERT(process_ended(x.pid));
    } else if (rc == PEBBLE_ENOTFOUND) {
      never++;
      CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_ENOTFOUND);
      CU_ASSERT_NOT_EQUAL(pebble_future_pid(f, &pid), PEBBLE_OK);
    }
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(reaped + never, 40);
  printf("(%d reaped, %d never started) ", reaped, never);
}


static int term_marker(pebble_ctx *ctx, const void *arg, size_t size) {
  static int fd;
#ifdef _WIN32
  (void)ctx;
  fd = test_fifo_writer(arg, size);
  signal(SIGTERM, SIG_IGN);
#else
  struct sigaction sa;
  (void)ctx;
  fd = test_fifo_writer(arg, size);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN; /* ignores SIGTERM: only SIGKILL ends it */
  sigaction(SIGTERM, &sa, NULL);
#endif
  (void)!write(fd, "r", 1);
  for (;;)
    pause();
  return 0;
}

static void test_grace_does_not_delay(void) {
  pebble_task_options o;
  pebble_exit_info x;
  pebble_future *f;
  test_fifo p;
  char c;
  double t0;
  CU_ASSERT_EQUAL_FATAL(test_fifo_open(&p), 0);
  pebble_task_options_init(&o);
  /* Long enough for a slow start (a spawned worker under a sanitizer on
   * a loaded machine) to ignore SIGTERM before the deadline. */
  o.timeout = PEBBLE_SEC(1);
  o.kill_grace = PEBBLE_SEC(4);
  t0 = now_s();
  f = run(term_marker, p.path, strlen(p.path) + 1, &o);
  {
    /* Bounded: a worker that never writes must fail the test, not hang. */
    struct pollfd pfd = {p.rd, POLLIN, 0};
    CU_ASSERT_EQUAL_FATAL(poll(&pfd, 1, 30000), 1);
  }
  CU_ASSERT_EQUAL(read(p.rd, &c, 1), 1);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  /* Resolved at the deadline, not after the 4 s grace. */
  CU_ASSERT(now_s() - t0 < 3.9);
  CU_ASSERT(exit_info_within(f, &x, 15));
  CU_ASSERT(now_s() - t0 >= 4.0); /* SIGTERM was ignored: SIGKILL later */
  CU_ASSERT_EQUAL(x.signal, SIGKILL);
  test_fifo_close(&p);
  pebble_future_release(f);
}

static void test_cancel_running(void) {
  pebble_exit_info x;
  pebble_future *f;
  SKIP_ON_WINDOWS(SIGNALS_WHY);
  f = run(sleeps, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_MSEC(200)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_CANCELLED);
  CU_ASSERT_EQUAL(pebble_future_get(f, 0, NULL, NULL), PEBBLE_ECANCELED);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT(exit_info_within(f, &x, 10));
  CU_ASSERT_EQUAL(x.signal, SIGKILL);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  pebble_future_release(f);
}

/* A task's process stopped from outside has not died: a bounded wait
 * runs out, and once continued its result comes; stopped for longer than
 * its timeout, it times out and is killed and reaped all the same. */
static void test_stopped_process(void) {
#ifdef _WIN32
  skip_test(__func__, "stops processes with SIGSTOP, which Windows does not "
                      "have");
#else
  pebble_task_options o;
  pebble_exit_info x;
  pebble_future *f;
  int64_t us = 200000, out = 0;
  pid_t pid;
  f = run(nap_us, &us, sizeof us, NULL);
  CU_ASSERT((pid = stop_process_of(f)) > 0);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_MSEC(400)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_RUNNING);
  CU_ASSERT_EQUAL(kill(pid, SIGCONT), 0);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 200000);
  CU_ASSERT(exit_info_within(f, &x, 10));
  CU_ASSERT_EQUAL(x.exited, 1);
  CU_ASSERT_EQUAL(x.exit_code, 0);
  pebble_future_release(f);

  pebble_task_options_init(&o);
  o.timeout = PEBBLE_MSEC(300);
  us = 20000000;
  f = run(nap_us, &us, sizeof us, &o);
  CU_ASSERT((pid = stop_process_of(f)) > 0);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT(exit_info_within(f, &x, 10));
  CU_ASSERT_EQUAL(x.signal, SIGKILL);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  CU_ASSERT(gone_within(pid, 10));
  pebble_future_release(f);
#endif
}

static void test_cancel_after_done(void) {
  int64_t v = 1, out;
  pebble_future *f = run(echo_int, &v, sizeof v, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_EALREADY);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, 0, &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 2);
  pebble_future_release(f);
}

#define BIG ((size_t)100 << 20)
static int big_echo(pebble_ctx *ctx, const void *arg, size_t size) {
  unsigned char *out = pebble_result_alloc(ctx, size);
  size_t i;
  if (out == NULL)
    return pebble_fail(ctx, 1, "no result buffer");
  for (i = 0; i < size; i++)
    out[i] = (unsigned char)(((const unsigned char *)arg)[i] ^ 0x5a);
  return 0;
}
static void test_100mb(void) {
  unsigned char *in = malloc(BIG);
  const unsigned char *out;
  const void *data;
  size_t size = 0, i, bad = 0;
  pebble_future *f;
  CU_ASSERT_PTR_NOT_NULL_FATAL(in);
  for (i = 0; i < BIG; i++)
    in[i] = (unsigned char)(i * 131 + (i >> 13));
  f = run(big_echo, in, BIG, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(120), &data, &size),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(size, BIG);
  out = data;
  for (i = 0; i < size && i < BIG; i++)
    bad += out[i] != (unsigned char)(in[i] ^ 0x5a);
  CU_ASSERT_EQUAL(bad, 0);
  pebble_future_release(f);
  free(in);
}

static int reads_stdin(pebble_ctx *ctx, const void *arg, size_t size) {
  char c;
  struct stat a, b;
  (void)arg, (void)size;
  if (fstat(0, &a) != 0 || stat("/dev/null", &b) != 0)
    return pebble_fail(ctx, 1, "stat failed");
  if (a.st_rdev != b.st_rdev || read(0, &c, 1) != 0)
    return pebble_fail(ctx, 2, "stdin is not /dev/null");
  return 0;
}
static void test_stdin_devnull(void) {
  pebble_future *f;
  SKIP_ON_WINDOWS("its worker reads stdin as a POSIX /dev/null");
  f = run(reads_stdin, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_OK);
  pebble_future_release(f);
}

static void test_no_leaks(void) {
  int64_t v = 3, out;
  int i, fds, kids;
  pebble_future *f = run(echo_int, &v, sizeof v, NULL); /* warm-up */
  pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  pebble_future_release(f);
  /* Children of earlier tests may still be ending on a slow machine: a
   * bounded wait for them, then the baseline.  Without a parent-death
   * signal the backend keeps a guardian process, counted in it. */
  for (i = 0; i < 1000 && count_children() > 1; i++)
    usleep(10000);
  usleep(200000);
  fds = count_fds();
  kids = count_children();
  for (i = 0; i < 50; i++) {
    f = run(i % 5 == 4 ? segv : echo_int, &v, sizeof v, NULL);
    pebble_future_wait(f, PEBBLE_SEC(30));
    pebble_future_release(f);
  }
  /* Reaps follow results by a moment; give them a bounded while. */
  for (i = 0; i < 500 && (count_children() > kids || count_fds() > fds); i++)
    usleep(10000);
  CU_ASSERT(count_children() <= kids);
  CU_ASSERT(kids <= 1);
  CU_ASSERT(count_fds() <= fds);
}

/* Run in a forked child: buffered output must not be printed twice. */
static void flush_body(void) {
  int64_t v = 1, out;
  pebble_future *f;
  printf("x"); /* no newline: still in the buffer */
  if (pebble_run(PEBBLE_PROCESS, echo_int, &v, sizeof v, NULL, &f) == 0)
    pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  fflush(stdout);
  _exit(0);
}
static void test_stdio_flushed(void) {
  int p[2], st;
  char buf[16] = {0};
  pid_t pid;
  SKIP_ON_WINDOWS(NO_FORK_WHY);
  SKIP_IF_TSAN(); /* the child starts the library's threads */
  CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
  pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    setvbuf(stdout, NULL, _IOFBF, 4096);
    flush_body();
  }
  close(p[1]);
  CU_ASSERT(read(p[0], buf, sizeof buf - 1) >= 1);
  waitpid(pid, &st, 0);
  CU_ASSERT_STRING_EQUAL(buf, "x");
  close(p[0]);
}

/* Another thread keeps writing to a fully buffered stdout while process
 * tasks start: whatever it wrote after the library's flush and before a
 * fork sits in the child's copy of the buffer, and must not come out of
 * the child a second time. */
#define PRINTED_LINES 40000
static atomic_int printing_done;
static void *print_lines(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < PRINTED_LINES; i++)
    printf("%07d\n", i);
  fflush(stdout);
  atomic_store(&printing_done, 1);
  return NULL;
}
static void printed_once_body(void) {
  pthread_t writer;
  pebble_future *f;
  int i, rc;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  if (pthread_create(&writer, NULL, print_lines, NULL) != 0)
    _exit(20);
  for (i = 0; i < 400 && !atomic_load(&printing_done); i++) {
    int64_t v = i;
    if ((rc = pebble_run(PEBBLE_PROCESS, echo_int, &v, sizeof v, NULL,
                         &f)) != PEBBLE_OK)
      _exit(21);
    if (pebble_future_wait(f, PEBBLE_SEC(60)) != PEBBLE_OK)
      _exit(22);
    pebble_future_release(f);
  }
  pthread_join(writer, NULL);
  fflush(stdout);
  _exit(0);
}
static void test_printed_once(void) {
  int p[2], st, lines = 0, bad = 0, expect = 0;
  char buf[8192], line[16];
  size_t used = 0;
  ssize_t n;
  SKIP_ON_WINDOWS(NO_FORK_WHY);
  pid_t pid;
  SKIP_IF_TSAN();
  CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    printed_once_body();
  }
  close(p[1]);
  /* Every line once, in order: 0000000, 0000001, ... */
  while ((n = read(p[0], buf, sizeof buf)) > 0) {
    ssize_t k;
    for (k = 0; k < n; k++) {
      if (buf[k] != '\n') {
        if (used < sizeof line - 1)
          line[used++] = buf[k];
        continue;
      }
      line[used] = '\0';
      used = 0;
      if (atoi(line) != expect)
        bad++;
      expect = atoi(line) + 1;
      lines++;
    }
  }
  close(p[0]);
  CU_ASSERT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
            WEXITSTATUS(st) == 0);
  if (lines != PRINTED_LINES || bad != 0)
    printf("(%d lines, %d out of order, for %d written) ", lines, bad,
           PRINTED_LINES);
  CU_ASSERT_EQUAL(lines, PRINTED_LINES);
  CU_ASSERT_EQUAL(bad, 0);
}

static void sigchld_ignored_body(void) {
  pebble_future *f;
  pebble_exit_info x;
#ifdef SIGCHLD
  signal(SIGCHLD, SIG_IGN);
#endif
  if (pebble_run(PEBBLE_PROCESS, segv, NULL, 0, NULL, &f) != 0)
    _exit(1);
  if (pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL) != PEBBLE_EDIED)
    _exit(2);
  x.struct_size = sizeof x;
  if (pebble_future_exit_info(f, &x) != PEBBLE_OK)
    _exit(3);
  /* A forkserver worker is the server's child, not ours: our SIGCHLD
   * setting does not reach it and its status is known.  Our own children
   * are reaped by the kernel, so theirs is not. */
  if (forkserver_mode() ? !(x.status_known && x.signal == SIGSEGV)
                        : x.status_known != 0)
    _exit(4);
  _exit(0);
}
static void test_sigchld_ignored(void) {
  CU_ASSERT(in_child(sigchld_ignored_body));
}

static pebble_future *parent_future;
static void after_fork_body(void) {
  int64_t v = 5, out = 0;
  int rc;
  pebble_future *f;
  /* The parent's future belongs to the parent. */
  if (pebble_future_wait(parent_future, 0) != PEBBLE_EFORKED)
    _exit(1);
  /* Pebble works afresh in the child. */
  if ((rc = pebble_run(PEBBLE_PROCESS, echo_int, &v, sizeof v, NULL, &f)) !=
          0 ||
      (rc = pebble_future_get_int(f, PEBBLE_SEC(30), &out)) != 0 ||
      out != 10) {
    /* Say why in the log: this one failed once in many loaded runs. */
    fprintf(stderr, "after fork: process task: %s (%s), out %lld\n",
            pebble_strerror(rc), pebble_last_error(), (long long)out);
    _exit(2);
  }
  pebble_future_release(f);
  if (pebble_run(PEBBLE_THREAD, echo_int, &v, sizeof v, NULL, &f) != 0 ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &out) != 0 || out != 10)
    _exit(3);
  pebble_future_release(f);
  _exit(0);
}
static void test_after_fork(void) {
  parent_future = run(sleeps, NULL, 0, NULL);
  CU_ASSERT(in_child(after_fork_body));
  pebble_future_cancel(parent_future);
  pebble_future_release(parent_future);
}

/* The application forks while Pebble is starting a process of its own
 * (the one-shot launched just before, started by a library thread).  The
 * kernel copies the descriptor table before the memory, so a descriptor
 * opened in that instant could leave the child bookkeeping for a number
 * it does not have; the child's own next worker then lost a descriptor
 * before exec and died (apr backend, spawn).  Many rounds: the window is
 * narrow. */
static void fork_during_start_body(void) {
  int64_t v = 5, out = 0;
  pebble_future *f;
  int rc;
  if ((rc = pebble_run(PEBBLE_PROCESS, echo_int, &v, sizeof v, NULL, &f)) !=
          0 ||
      (rc = pebble_future_get_int(f, PEBBLE_SEC(30), &out)) != 0 ||
      out != 10) {
    fprintf(stderr, "fork during start: %s (%s), out %lld\n",
            pebble_strerror(rc), pebble_last_error(), (long long)out);
    _exit(2);
  }
  pebble_future_release(f);
  _exit(0);
}
static void test_fork_during_start(void) {
  int round, rounds = under_valgrind() ? 10 : 150, bad = 0;
  /* Its own runtime, not Pebble: a fork while another thread starts one
   * can leave the child ASan's thread registry locked (the child then
   * hangs in its first pthread_create), and this test forks exactly
   * then, many times.  The race it runs is a descriptor race, which
   * ASan does not watch anyway. */
  if (UNDER_ASAN &&
      skip_test(__func__, "AddressSanitizer's thread registry is not "
                          "fork-safe while another thread starts one"))
    return;
  for (round = 0; round < rounds && bad == 0; round++) {
    pebble_future *starting = run(sleeps, NULL, 0, NULL);
    if (!in_child(fork_during_start_body)) {
      printf("(round %d) ", round);
      bad++;
    }
    pebble_future_cancel(starting);
    pebble_future_release(starting);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static int nested(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 4, a = 0, b = 0;
  pebble_future *f;
  (void)arg, (void)size;
  if (pebble_run(PEBBLE_THREAD, echo_int, &v, sizeof v, NULL, &f) ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &a))
    return pebble_fail(ctx, 1, "nested thread: %s", pebble_last_error());
  pebble_future_release(f);
  if (pebble_run(PEBBLE_PROCESS, echo_int, &v, sizeof v, NULL, &f) ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &b))
    return pebble_fail(ctx, 2, "nested process: %s", pebble_last_error());
  pebble_future_release(f);
  return pebble_result_int(ctx, a + b);
}
static void test_nested(void) {
  int64_t out = 0;
  pebble_future *f;
  int rc;
  /* The worker, forked from this threaded program, starts threads and
   * a process of its own.  AddressSanitizer does not take its allocator's
   * and thread registry's locks around fork: one held by another thread
   * at the fork stays held in the worker, whose threads then wait for it
   * for ever (seen about once in 25 runs, apr-fork row; the glibc
   * allocator takes its locks around fork). */
  if (UNDER_ASAN &&
      skip_test(__func__, "AddressSanitizer's locks are not fork-safe: "
                          "a worker that starts threads can hang"))
    return;
  SKIP_IF_TSAN(); /* the worker starts threads of its own */
  f = run(nested, NULL, 0, NULL);
  rc = pebble_future_get_int(f, PEBBLE_SEC(60), &out);
  if (rc != PEBBLE_OK) /* which way it failed, for a rare failure */
    printf("%s (%s) ", pebble_status_name(rc), pebble_future_message(f));
  CU_ASSERT_EQUAL(rc, PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 16);
  pebble_future_release(f);
}

static int report_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  pid_t me = getpid();
  (void)ctx, (void)size;
  (void)!write(*(const int *)arg, &me, sizeof me);
  for (;;)
    pause();
  return 0;
}
/* The workers' parent is a fresh run of this program, started by exec
 * straight after the fork: a forked copy of this threaded program that
 * starts the library's threads can inherit a lock another thread held at
 * the fork (AddressSanitizer's allocator takes none around fork; the
 * copy's manager thread then waited on one for ever, about once in 50 runs
 * of the spawn row under ASan). */
#define PARENT_DEATH_HELPER "--parent-death-helper"
static const char *this_program; /* argv[0] */
static int parent_death_helper(const char *fd_text) {
  int fd = atoi(fd_text);
  pebble_future *f;
  if (pebble_run(PEBBLE_PROCESS, report_pid, &fd, sizeof fd, NULL, &f) !=
      PEBBLE_OK) {
    fprintf(stderr, "parent-death helper: %s\n", pebble_last_error());
    return 2;
  }
  for (;;)
    pause();
}
static void test_parent_death(void) {
  int p[2], st;
  char fd_text[16];
  pid_t parent, worker = 0;
  SKIP_ON_WINDOWS(NO_FORK_WHY);
  SKIP_IF_TSAN(); /* the helper starts the library's threads */
  CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
  snprintf(fd_text, sizeof fd_text, "%d", p[1]);
  parent = fork();
  if (parent == 0) {
    close(p[0]);
#ifndef _WIN32 /* never reached there: no fork */
    execl(this_program, this_program, PARENT_DEATH_HELPER, fd_text,
          (char *)NULL);
#endif
    _exit(127);
  }
  close(p[1]);
  CU_ASSERT_EQUAL(read(p[0], &worker, sizeof worker), (ssize_t)sizeof worker);
  kill(parent, SIGKILL);
  waitpid(parent, &st, 0);
  CU_ASSERT(worker > 0 && gone_within(worker, 10));
  close(p[0]);
}

static void test_sigpipe_never(void) {
  /* SIGPIPE stays at its default action: a write to a dead worker would
   * end this program.  Many short-lived crashing workers exercise it. */
  int i;
#ifdef SIGPIPE
  signal(SIGPIPE, SIG_DFL);
#else
  if (skip_test(__func__, "Windows has no SIGPIPE"))
    return;
#endif
  for (i = 0; i < 20; i++) {
    pebble_future *f = run(segv, NULL, 0, NULL);
    pebble_future_wait(f, PEBBLE_SEC(30));
    pebble_future_release(f);
  }
  CU_PASS("no SIGPIPE");
}

static void test_too_big(void) {
  static char buf[2048];
  pebble_task_options o;
  pebble_future *f = NULL;
  pebble_task_options_init(&o);
  o.max_message_size = 1024;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, echo_int, buf, sizeof buf, &o,
                             &f),
                  PEBBLE_ETOOBIG);
  CU_ASSERT_PTR_NULL(f);
  f = run(big_echo, buf, 1000, &o);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_OK);
  pebble_future_release(f);
  o.max_message_size = 999;
  f = NULL;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, big_echo, buf, 1000, &o, &f),
                  PEBBLE_ETOOBIG);
}

int main(int argc, char **argv) {
  CU_TestInfo tests[] = {
      {"result", test_result},
      {"the launching thread ends first", test_launcher_thread_ends},
      {"failure crosses the process boundary", test_failure_crosses},
      {"crash by SIGSEGV", test_sigsegv},
      {"crash by a NULL write", test_null_write},
      {"abort", test_abort},
      {"SIGKILL", test_sigkill},
      {"exit(0) before a result", test_exit0},
      {"exit(3)", test_exit3},
      {"kill grace does not delay the future",
       NEEDS_FIFOS(test_grace_does_not_delay)},
      {"cancel while running", test_cancel_running},
      {"wait for the reap", test_wait_exit},
      {"wait for the reap, cancelled as it launches",
       test_wait_exit_cancel_race},
      {"a stopped process is not a dead one", test_stopped_process},
      {"cancel after done", test_cancel_after_done},
      {"100 MB argument and result", test_100mb},
      {"stdin is /dev/null", test_stdin_devnull},
      {"no zombies, no descriptor leaks", test_no_leaks},
      {"stdio flushed before fork", test_stdio_flushed},
      {"output another thread writes is printed once", test_printed_once},
      {"SIGCHLD ignored by the application", test_sigchld_ignored},
      {"the application forks", test_after_fork},
      {"the application forks while a process starts", test_fork_during_start},
      {"a process task uses Pebble", test_nested},
      {"workers die with their parent", test_parent_death},
      {"never SIGPIPE", test_sigpipe_never},
      {"maximum message size", test_too_big},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(echo_int);
  REGISTER_TASK(naps_then_echoes);
  REGISTER_TASK(nap_us);
  REGISTER_TASK(fails);
  REGISTER_TASK(segv);
  REGISTER_TASK(null_write);
  REGISTER_TASK(aborts);
  REGISTER_TASK(kills_self);
  REGISTER_TASK(exits);
  REGISTER_TASK(sleeps);
  REGISTER_TASK(term_marker);
  REGISTER_TASK(big_echo);
  REGISTER_TASK(reads_stdin);
  REGISTER_TASK(nested);
  REGISTER_TASK(report_pid);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  this_program = argv[0];
  if (argc == 3 && strcmp(argv[1], PARENT_DEATH_HELPER) == 0)
    return parent_death_helper(argv[2]);
  if (skip_without_processes())
    return 77;
  return run_suite("process tasks", tests);
}
