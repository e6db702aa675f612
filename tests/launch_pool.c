/* SPDX-License-Identifier: Apache-2.0 */
/*
 * launch_pool.c -- a process pool whose workers are started through a
 * launcher (PEBBLE_LAUNCHER, set by the calling script: tests/launcher.sh
 * with a local launcher, tests/launcher-ssh.sh through ssh to this host).
 *
 *   launch_pool DIR work     results, task errors, a big result, a crash
 *                            with signal and host, timeouts and a cancel
 *                            that end the remote worker and what it
 *                            started, a killed launcher, a killed and a
 *                            stopped remote worker; the pool goes on;
 *                            then max_tasks, an initializer and a
 *                            completion queue
 *   launch_pool DIR broken   a failing initializer: the tasks resolve
 *                            PEBBLE_EBROKEN with its message (rounds)
 *   launch_pool DIR refused  the launcher fails (missing, or ends at
 *                            once): the future fails with a message
 *                            naming the launcher, no hang
 *   launch_pool DIR options  the pool options launcher, launcher_heartbeat
 *                            and launcher_start_timeout: refused where
 *                            wrong (naming the field), ahead of the
 *                            environment, the string copied; the
 *                            remote statistics of a local pool
 *   launch_pool DIR parallel 4 workers behind a launcher that waits 3 s
 *                            start at the same time (a census)
 *   launch_pool DIR orphan   dies by SIGKILL while a remote task runs,
 *                            its process ids in DIR/orphan (the script
 *                            checks that they go)
 *   launch_pool DIR netcut   the network to the workers' host is cut
 *                            while their tasks run (the command in
 *                            PEBBLE_TEST_CUT, tests/launcher-netcut.sh):
 *                            every future of theirs resolves, saying so,
 *                            within PEBBLE_TEST_CUT_BOUND seconds, and
 *                            the pool goes on with workers started
 *                            through the launcher the command set
 *
 * DIR is a scratch directory the tasks write their process ids into
 * (the remote host is this host, so the test can count its processes).
 * Prints "tests N N F" like CUnit, for the matrix's counting, and a line
 * "part MODE: RESULT" for the conformance table (tests/matrix-table.sh),
 * MODE followed by PEBBLE_TEST_PART when the calling script names the
 * variant.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pebble.h"

static const char *dir, *mode;
static int checks, failed;
static char note[160]; /* a figure for the table's line */

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      failed++;                                                              \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

/* The counts, and the table's line. */
static void summary(void) {
  const char *part = getenv("PEBBLE_TEST_PART");
  printf("  tests %d %d %d\n", checks, checks - failed, failed);
  printf("part %s%s%s: ", mode, part != NULL ? "/" : "", part ? part : "");
  if (failed > 0)
    printf("FAIL (%d of %d checks failed)\n", failed, checks);
  else
    printf("pass (%d checks%s%s)\n", checks, note[0] ? "; " : "", note);
}

/* ---- the tasks (registered: the worker runs on "another host") ---- */

static int t_square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "bad argument");
  return pebble_result_int(ctx, v * v);
}

static int t_fail(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  return pebble_fail(ctx, 42, "this task fails on purpose");
}

/* n bytes, byte i is (i * 7 + 3) & 255. */
static int t_big(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n = 0;
  unsigned char *p;
  int64_t i;
  pebble_arg_int(arg, size, &n);
  p = pebble_result_alloc(ctx, (size_t)n);
  if (p == NULL)
    return pebble_fail(ctx, 1, "no memory");
  for (i = 0; i < n; i++)
    p[i] = (unsigned char)((i * 7 + 3) & 255);
  return 0;
}

static int t_crash(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  raise(SIGSEGV);
  return 0;
}

/* Writes "WORKER CHILD" (its pid and a child's that sleeps in its group)
 * to DIR/NAME, then sleeps: the faults act on it. */
static int t_hang(pebble_ctx *ctx, const void *arg, size_t size) {
  char path[4096], tmp[4200];
  FILE *f;
  pid_t child;
  (void)ctx;
  if (size == 0 || size >= sizeof path)
    return pebble_fail(ctx, 1, "bad argument");
  memcpy(path, arg, size);
  path[size] = '\0';
  child = fork();
  if (child == 0) {
    execlp("sleep", "sleep", "300", (char *)NULL);
    _exit(127);
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "w");
  if (f == NULL)
    return pebble_fail(ctx, 1, "cannot write %s", tmp);
  fprintf(f, "%ld %ld\n", (long)getpid(), (long)child);
  fclose(f);
  rename(tmp, path);
  for (;;)
    pause();
  return 0;
}

/* The name of the host the task runs on (tests/launcher-netcut.sh gives
 * the far side a name of its own). */
static int t_host(pebble_ctx *ctx, const void *arg, size_t size) {
  char host[256];
  (void)arg;
  (void)size;
  if (gethostname(host, sizeof host) != 0)
    return pebble_fail(ctx, 1, "gethostname: %s", strerror(errno));
  host[sizeof host - 1] = '\0';
  return pebble_result_string(ctx, host);
}

/* The initializer's state, seen by the tasks of the worker it ran in. */
static int64_t init_state;

static int t_init(pebble_ctx *ctx, const void *arg, size_t size) {
  if (pebble_arg_int(arg, size, &init_state) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "bad argument");
  return 0;
}

static int t_bad_init(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  return pebble_fail(ctx, 5, "this initializer fails on purpose");
}

/* The initializer's state in the high half, the worker's pid below. */
static int t_state(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  return pebble_result_int(ctx, init_state * ((int64_t)1 << 32) +
                                    (int64_t)getpid());
}

/* ---- helpers ---- */

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* Wait (up to 60 s) for a t_hang task's file; 0 when it never came. */
static int read_pids(pebble_future *fut, const char *path, long *worker,
                     long *child) {
  int i;
  for (i = 0; i < 600 && pebble_future_state(fut) < PEBBLE_DONE; i++) {
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      int n = fscanf(f, "%ld %ld", worker, child);
      fclose(f);
      if (n == 2)
        return 1;
    }
    sleep_ms(100);
  }
  return 0;
}

/* The process is gone from this host (not even a zombie of ours), within
 * a generous bound. */
static int gone(long pid) {
  int i;
  for (i = 0; i < 300; i++) {
    char path[64], state = '?';
    FILE *f;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
      return 1;
    /* A zombie waiting for a parent that is being killed too. */
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f != NULL) {
      if (fscanf(f, "%*d (%*[^)]) %c", &state) == 1 && state == 'Z') {
        fclose(f);
        sleep_ms(100);
        continue;
      }
      fclose(f);
    }
    sleep_ms(100);
  }
  return 0;
}

/* The pool's launcher comes from its options when the calling script
 * sets PEBBLE_TEST_POOL_LAUNCHER (and PEBBLE_TEST_POOL_HEARTBEAT,
 * seconds), else from PEBBLE_LAUNCHER.  The option's string is in a
 * buffer spoilt after the pool is made: the pool must keep a copy. */
static pebble_pool *make_pool_with(pebble_pool_options *o) {
  pebble_pool *pool = NULL;
  const char *launcher = getenv("PEBBLE_TEST_POOL_LAUNCHER");
  const char *beat = getenv("PEBBLE_TEST_POOL_HEARTBEAT");
  char *buf = NULL;
  int rc;
  o->start_method = PEBBLE_START_SPAWN;
  if (launcher != NULL) {
    buf = strdup(launcher);
    o->launcher = buf;
  }
  if (beat != NULL)
    o->launcher_heartbeat = PEBBLE_SEC(atoi(beat));
  rc = pebble_pool_create(&pool, PEBBLE_PROCESS, o);
  o->launcher = NULL;
  if (rc != PEBBLE_OK) {
    fprintf(stderr, "pool: %s\n", pebble_last_error());
    exit(1);
  }
  if (buf != NULL) {
    memset(buf, 'x', strlen(buf));
    free(buf);
  }
  return pool;
}

static pebble_pool *make_pool(unsigned workers) {
  pebble_pool_options o;
  pebble_pool_options_init(&o);
  o.workers = workers;
  return make_pool_with(&o);
}

static void get_stats(pebble_pool *pool, pebble_pool_stats *s) {
  memset(s, 0, sizeof *s);
  s->struct_size = sizeof *s;
  CHECK(pebble_pool_stats_get(pool, s) == PEBBLE_OK, "stats: %s",
        pebble_last_error());
}

static pebble_future *go(pebble_pool *pool, pebble_task_fn fn,
                         const void *arg, size_t size, pebble_time_t timeout) {
  pebble_task_options o;
  pebble_future *f = NULL;
  int rc;
  pebble_task_options_init(&o);
  o.timeout = timeout;
  rc = pebble_pool_schedule(pool, fn, arg, size, &o, &f);
  CHECK(rc == PEBBLE_OK, "schedule: %s", pebble_last_error());
  return f;
}

static void expect_square(pebble_pool *pool, int64_t v, const char *after) {
  pebble_future *f = go(pool, t_square, &v, sizeof v, PEBBLE_DEFAULT);
  int64_t r = 0;
  int rc = f != NULL ? pebble_future_get_int(f, PEBBLE_SEC(120), &r)
                     : PEBBLE_EINVAL;
  CHECK(rc == PEBBLE_OK && r == v * v, "after %s: %s (%s)", after,
        pebble_status_name(rc), f ? pebble_future_message(f) : "");
  pebble_future_release(f);
}

static void hang_path(char *path, size_t size, const char *name) {
  snprintf(path, size, "%s/%s", dir, name);
  unlink(path);
}

/* A task runs on the host named `want`. */
static void expect_host(pebble_pool *pool, const char *want,
                        const char *when) {
  pebble_future *f = go(pool, t_host, NULL, 0, PEBBLE_DEFAULT);
  const char *got = NULL;
  int rc = f != NULL ? pebble_future_get_string(f, PEBBLE_SEC(120), &got)
                     : PEBBLE_EINVAL;
  CHECK(rc == PEBBLE_OK && strcmp(got, want) == 0,
        "%s: the task ran on '%s', not on '%s' (%s)", when,
        rc == PEBBLE_OK ? got : "?", want,
        f ? pebble_future_message(f) : "");
  pebble_future_release(f);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the scenarios ---- */

static void results(pebble_pool *pool) {
  pebble_future *f[40];
  int64_t i;
  for (i = 0; i < 40; i++)
    f[i] = go(pool, t_square, &i, sizeof i, PEBBLE_DEFAULT);
  for (i = 0; i < 40; i++) {
    int64_t r = -1;
    int rc = pebble_future_get_int(f[i], PEBBLE_SEC(120), &r);
    CHECK(rc == PEBBLE_OK && r == i * i, "task %d: %s (%s)", (int)i,
          pebble_status_name(rc), pebble_future_message(f[i]));
    pebble_future_release(f[i]);
  }
}

static void task_error(pebble_pool *pool) {
  pebble_future *f = go(pool, t_fail, NULL, 0, PEBBLE_DEFAULT);
  int rc = pebble_future_get(f, PEBBLE_SEC(120), NULL, NULL);
  CHECK(rc == PEBBLE_ETASK && pebble_future_task_code(f) == 42 &&
            strstr(pebble_future_message(f), "on purpose") != NULL,
        "%s (%s)", pebble_status_name(rc), pebble_future_message(f));
  pebble_future_release(f);
}

static void big_result(pebble_pool *pool) {
  int64_t n = 8 << 20, i;
  pebble_future *f = go(pool, t_big, &n, sizeof n, PEBBLE_DEFAULT);
  const unsigned char *p = NULL;
  size_t size = 0;
  int rc = pebble_future_get(f, PEBBLE_SEC(120), (const void **)&p, &size);
  int intact = rc == PEBBLE_OK && size == (size_t)n;
  for (i = 0; intact && i < n; i++)
    intact = p[i] == (unsigned char)((i * 7 + 3) & 255);
  CHECK(intact, "%s, %zu bytes (%s)", pebble_status_name(rc), size,
        pebble_future_message(f));
  pebble_future_release(f);
}

static void crash(pebble_pool *pool, const char *host) {
  pebble_future *f = go(pool, t_crash, NULL, 0, PEBBLE_DEFAULT);
  pebble_exit_info info;
  char want[300];
  int rc = pebble_future_get(f, PEBBLE_SEC(120), NULL, NULL);
  const char *msg = pebble_future_message(f);
  snprintf(want, sizeof want, "on host %s ", host);
  CHECK(rc == PEBBLE_EDIED && strstr(msg, want) != NULL &&
            strstr(msg, "SIGSEGV") != NULL,
        "%s (%s)", pebble_status_name(rc), msg);
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CHECK(pebble_future_exit_info(f, &info) == PEBBLE_OK &&
            info.signal == SIGSEGV,
        "exit info signal %d", info.signal);
  pebble_future_release(f);
  expect_square(pool, 5, "a crash");
}

/* A task that hangs, ended by its timeout or a cancel: the remote worker
 * and the process it started are gone from the host. */
static void timeout_or_cancel(pebble_pool *pool, int cancel) {
  char path[4096];
  long worker = 0, child = 0;
  pebble_future *f;
  int rc;
  hang_path(path, sizeof path, cancel ? "cancel" : "timeout");
  f = go(pool, t_hang, path, strlen(path),
         cancel ? PEBBLE_DEFAULT : PEBBLE_SEC(3));
  CHECK(read_pids(f, path, &worker, &child), "the task never started");
  if (cancel)
    pebble_future_cancel(f);
  rc = pebble_future_wait(f, PEBBLE_SEC(120));
  CHECK(rc == PEBBLE_OK && pebble_future_status(f) ==
                               (cancel ? PEBBLE_ECANCELED : PEBBLE_ETIMEDOUT),
        "%s: %s (%s)", cancel ? "cancel" : "timeout",
        pebble_status_name(pebble_future_status(f)),
        pebble_future_message(f));
  CHECK(worker > 0 && gone(worker), "remote worker %ld is still there",
        worker);
  CHECK(child > 0 && gone(child), "its child %ld is still there", child);
  pebble_future_release(f);
  expect_square(pool, 6, cancel ? "a cancel" : "a timeout");
}

/* Faults from outside: the launcher killed, the remote worker killed, the
 * remote worker stopped (its task has a timeout). */
static void fault(pebble_pool *pool, const char *what, const char *host) {
  char path[4096], want[300];
  long worker = 0, child = 0, launcher = 0;
  int stop = strcmp(what, "stop") == 0;
  int silent = strcmp(what, "silent") == 0;
  pebble_future *f;
  const char *msg;
  int rc;
  hang_path(path, sizeof path, what);
  f = go(pool, t_hang, path, strlen(path),
         stop ? PEBBLE_SEC(3) : PEBBLE_DEFAULT);
  CHECK(read_pids(f, path, &worker, &child), "%s: the task never started",
        what);
  if (strcmp(what, "launcher") == 0 || silent) {
    CHECK(pebble_future_pid(f, &launcher) == PEBBLE_OK && launcher > 0,
          "no launcher pid");
    /* Stopped, the launcher forwards nothing: as a silent network. */
    if (launcher > 0)
      kill((pid_t)launcher, silent ? SIGSTOP : SIGKILL);
  } else if (worker > 0)
    kill((pid_t)worker, stop ? SIGSTOP : SIGKILL);
  rc = pebble_future_wait(f, PEBBLE_SEC(120));
  msg = pebble_future_message(f);
  snprintf(want, sizeof want, "%ld on host %s was killed by signal 9",
           worker, host);
  if (stop)
    CHECK(rc == PEBBLE_OK && pebble_future_status(f) == PEBBLE_ETIMEDOUT,
          "stop: %s (%s)", pebble_status_name(pebble_future_status(f)), msg);
  else if (launcher > 0) {
    char where[300];
    /* Silent for 3 heartbeats: its first one said where the worker is. */
    snprintf(where, sizeof where, "of remote worker %ld on host %s", worker,
             host);
    CHECK(rc == PEBBLE_OK && pebble_future_status(f) == PEBBLE_EDIED &&
              strstr(msg, silent ? "said nothing" : "launcher") != NULL &&
              (!silent || strstr(msg, where) != NULL),
          "launcher %s: %s (%s)", silent ? "silent" : "killed",
          pebble_status_name(pebble_future_status(f)), msg);
  }
  else
    CHECK(rc == PEBBLE_OK && pebble_future_status(f) == PEBBLE_EDIED &&
              strstr(msg, want) != NULL,
          "worker killed: %s (%s), wanted '%s'",
          pebble_status_name(pebble_future_status(f)), msg, want);
  CHECK(worker > 0 && gone(worker), "%s: remote worker %ld is still there",
        what, worker);
  CHECK(child > 0 && gone(child), "%s: its child %ld is still there", what,
        child);
  pebble_future_release(f);
  expect_square(pool, 7, what);
}

/* max_tasks, an initializer (its state reaches the tasks) and a
 * completion queue, with remote workers (a failing initializer: the part
 * of its own, broken()). */
static void features(void) {
  pebble_pool_options o;
  pebble_pool *pool;
  pebble_pool_stats s;
  pebble_cqueue *q = NULL;
  pebble_future *f;
  int64_t seven = 7, i, sum = 0, r;
  long pid[6] = {0};
  int rc;

  pebble_pool_options_init(&o);
  o.workers = 1;
  o.max_tasks = 2;
  o.initializer = t_init;
  o.initializer_arg = &seven;
  o.initializer_arg_size = sizeof seven;
  pool = make_pool_with(&o);
  for (i = 0; i < 6; i++) {
    r = -1;
    f = go(pool, t_state, NULL, 0, PEBBLE_DEFAULT);
    rc = f != NULL ? pebble_future_get_int(f, PEBBLE_SEC(120), &r) : -1;
    CHECK(rc == PEBBLE_OK && r >> 32 == 7,
          "task %d after the initializer: %s (%s), state %lld", (int)i,
          pebble_status_name(rc), f ? pebble_future_message(f) : "-",
          (long long)(r >> 32));
    pid[i] = (long)(r & 0xffffffff);
    pebble_future_release(f);
  }
  CHECK(pid[0] == pid[1] && pid[2] == pid[3] && pid[4] == pid[5] &&
            pid[1] != pid[2] && pid[3] != pid[4],
        "max_tasks 2: workers %ld %ld %ld %ld %ld %ld", pid[0], pid[1],
        pid[2], pid[3], pid[4], pid[5]);
  get_stats(pool, &s);
  CHECK(s.worker_restarts >= 2 && s.remote_restarts >= 2,
        "max_tasks 2: worker_restarts %llu, remote_restarts %llu",
        (unsigned long long)s.worker_restarts,
        (unsigned long long)s.remote_restarts);

  CHECK(pebble_cqueue_create(&q) == PEBBLE_OK, "cqueue: %s",
        pebble_last_error());
  for (i = 0; q != NULL && i < 8; i++) {
    f = go(pool, t_square, &i, sizeof i, PEBBLE_DEFAULT);
    CHECK(f != NULL && pebble_cqueue_add(q, f) == PEBBLE_OK, "cqueue add");
    pebble_future_release(f);
  }
  for (i = 0; q != NULL && i < 8; i++) {
    f = NULL;
    r = 0;
    rc = pebble_cqueue_wait(q, PEBBLE_SEC(120), &f);
    CHECK(rc == PEBBLE_OK && f != NULL &&
              pebble_future_get_int(f, 0, &r) == PEBBLE_OK,
          "cqueue: future %d: %s", (int)i, pebble_status_name(rc));
    sum += r;
    if (f != NULL)
      pebble_future_release(f);
  }
  CHECK(sum == 140, "cqueue: the squares of 0..7 add up to %lld, not 140",
        (long long)sum);
  pebble_cqueue_destroy(q);
  CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
  CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
        pebble_last_error());
  pebble_pool_destroy(pool);
}

/* A failing initializer breaks the pool: the task handed to the worker
 * still in its initializer resolves PEBBLE_EBROKEN with the
 * initializer's message, never PEBBLE_EDIED (the worker's failure report
 * must come back through the launcher before its end does).  A race:
 * several rounds, with one and with two workers. */
#define BROKEN_ROUNDS 8
static void broken(void) {
  int round;
  for (round = 0; round < BROKEN_ROUNDS; round++) {
    pebble_pool_options o;
    pebble_pool *pool;
    pebble_future *f[2] = {NULL, NULL};
    int64_t seven = 7, r = 0;
    int i, n = 1 + round % 2;
    pebble_pool_options_init(&o);
    o.workers = (unsigned)n;
    o.initializer = t_bad_init;
    pool = make_pool_with(&o);
    for (i = 0; i < n; i++) {
      int rc = pebble_pool_schedule(pool, t_square, &seven, sizeof seven,
                                    NULL, &f[i]);
      if (rc == PEBBLE_OK)
        rc = pebble_future_get_int(f[i], PEBBLE_SEC(120), &r);
      CHECK(rc == PEBBLE_EBROKEN &&
                strstr(f[i] != NULL ? pebble_future_message(f[i])
                                    : pebble_last_error(),
                       "fails on purpose") != NULL,
            "round %d, task %d of %d: a failing initializer: %s (%s)",
            round, i, n, pebble_status_name(rc),
            f[i] != NULL ? pebble_future_message(f[i])
                         : pebble_last_error());
      if (f[i] != NULL)
        pebble_future_release(f[i]);
    }
    pebble_pool_destroy(pool);
  }
  snprintf(note, sizeof note, "%d pools, every task EBROKEN",
           BROKEN_ROUNDS);
}

/* The launcher cannot start the worker: the future says so, soon. */
static void refused(void) {
  pebble_pool *pool = make_pool(1);
  int64_t v = 3;
  pebble_future *f = go(pool, t_square, &v, sizeof v, PEBBLE_DEFAULT);
  int rc = pebble_future_wait(f, PEBBLE_SEC(120));
  const char *msg = pebble_future_message(f);
  CHECK(rc == PEBBLE_OK && pebble_future_status(f) == PEBBLE_EDIED &&
            strstr(msg, "launcher") != NULL,
        "%s (%s)", pebble_status_name(pebble_future_status(f)), msg);
  printf("refused: %s\n", msg);
  pebble_future_release(f);
  {
    /* The launcher that failed is a remote worker lost: counted before
     * its task's future resolves (its replacement, after). */
    pebble_pool_stats s;
    get_stats(pool, &s);
    CHECK(s.remote_lost >= 1, "stats: remote_lost %llu",
          (unsigned long long)s.remote_lost);
  }
  pebble_pool_stop(pool);
  pebble_pool_destroy(pool);
}

/* The application dies (SIGKILL) while a remote task runs; the calling
 * script checks that the process ids in DIR/orphan go. */
static void orphan(void) {
  pebble_pool *pool = make_pool(1);
  char path[4096];
  long worker = 0, child = 0;
  pebble_future *f;
  hang_path(path, sizeof path, "orphan");
  f = go(pool, t_hang, path, strlen(path), PEBBLE_DEFAULT);
  if (!read_pids(f, path, &worker, &child)) {
    fprintf(stderr, "orphan: the task never started\n");
    exit(1);
  }
  kill(getpid(), SIGKILL);
}

/* Both workers run a hanging task on the far host, four more tasks wait
 * in the queue; then the network is cut (PEBBLE_TEST_CUT: the link set
 * down and the launcher pointed at this host).  The hanging tasks'
 * futures fail within the bound, as a lost launcher on the far host; the
 * queued ones run on the new workers, here.  Whether the far side's
 * processes went too is the calling script's census (it sees that
 * host's processes, not this program). */
static void netcut(const char *local_host) {
  const char *cut = getenv("PEBBLE_TEST_CUT");
  const char *remote = getenv("PEBBLE_TEST_REMOTE_HOST");
  const char *b = getenv("PEBBLE_TEST_CUT_BOUND");
  double bound = b != NULL ? atof(b) : 0, t0, took = 0;
  pebble_pool *pool;
  pebble_future *hang[2], *queued[4];
  char path[2][4096], self_ns[64] = "", ns[64], want[2][300];
  int64_t v;
  int i, rc;
  if (cut == NULL || remote == NULL || bound <= 0) {
    fprintf(stderr, "netcut: PEBBLE_TEST_CUT, PEBBLE_TEST_REMOTE_HOST and "
                    "PEBBLE_TEST_CUT_BOUND must be set\n");
    exit(2);
  }
  pool = make_pool(2);
  expect_host(pool, remote, "before the cut");
  if (readlink("/proc/self/ns/net", self_ns, sizeof self_ns - 1) < 0)
    self_ns[0] = '\0';
  for (i = 0; i < 2; i++) {
    char name[32];
    snprintf(name, sizeof name, "netcut-%d", i);
    hang_path(path[i], sizeof path[i], name);
    hang[i] = go(pool, t_hang, path[i], strlen(path[i]), PEBBLE_DEFAULT);
  }
  for (v = 0; v < 4; v++)
    queued[v] = go(pool, t_square, &v, sizeof v, PEBBLE_DEFAULT);
  for (i = 0; i < 2; i++) {
    long worker = 0, child = 0;
    char link[64];
    ssize_t n;
    CHECK(read_pids(hang[i], path[i], &worker, &child),
          "netcut: task %d never started", i);
    snprintf(want[i], sizeof want[i], "remote worker %ld on host %s", worker,
             remote);
    /* Running behind the link: in the other network namespace. */
    snprintf(link, sizeof link, "/proc/%ld/ns/net", worker);
    n = readlink(link, ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    CHECK(n > 0 && strcmp(ns, self_ns) != 0,
          "netcut: worker %ld is not behind the link (%s, here %s)", worker,
          ns, self_ns);
  }
  t0 = now_s();
  rc = system(cut);
  CHECK(rc == 0, "netcut: the cut command failed (%d): %s", rc, cut);
  for (i = 0; i < 2; i++) {
    const char *msg;
    double left = bound - (now_s() - t0);
    rc = pebble_future_wait(
        hang[i], PEBBLE_MSEC(left > 0 ? (long)(left * 1000) : 0));
    took = now_s() - t0;
    msg = pebble_future_message(hang[i]);
    if (rc != PEBBLE_OK) {
      /* The rest would wait as long: end here, and the launchers too. */
      long launcher = 0;
      int j;
      CHECK(0, "netcut: task %d unresolved %.1f s after the cut", i, took);
      for (j = i; j < 2; j++)
        if (pebble_future_pid(hang[j], &launcher) == PEBBLE_OK &&
            launcher > 0)
          kill((pid_t)launcher, SIGKILL);
      summary();
      exit(1);
    }
    /* A lost launcher, and which worker on which host. */
    CHECK(pebble_future_status(hang[i]) == PEBBLE_EDIED &&
              strstr(msg, "launcher") != NULL &&
              strstr(msg, "lost") != NULL && strstr(msg, want[i]) != NULL,
          "netcut: task %d: %s (%s), wanted a lost launcher and '%s'", i,
          pebble_status_name(pebble_future_status(hang[i])), msg, want[i]);
    printf("netcut: task %d: %s: %s\n", i,
           pebble_status_name(pebble_future_status(hang[i])), msg);
    pebble_future_release(hang[i]);
  }
  printf("netcut: every future of the cut workers resolved %.2f s after the "
         "cut (bound %.0f s)\n",
         took, bound);
  snprintf(note, sizeof note, "resolved %.1f s after the cut", took);
  for (v = 0; v < 4; v++) {
    int64_t r = -1;
    rc = pebble_future_get_int(queued[v], PEBBLE_SEC(120), &r);
    CHECK(rc == PEBBLE_OK && r == v * v, "netcut: queued task %d: %s (%s)",
          (int)v, pebble_status_name(rc), pebble_future_message(queued[v]));
    pebble_future_release(queued[v]);
  }
  /* The pool goes on, its workers started through the new launcher. */
  expect_host(pool, local_host, "after the cut");
  expect_square(pool, 8, "the cut");
  CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
  CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
        pebble_last_error());
  pebble_pool_destroy(pool);
}

/* Writes `text` to DIR/name, executable. */
static void write_script(const char *name, const char *text, char *path,
                         size_t size) {
  FILE *f;
  snprintf(path, size, "%s/%s", dir, name);
  f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
}

/* pebble_pool_create() with opts: the status, and the message named
 * `field` when it failed. */
static void expect_refused(pebble_kind kind, const pebble_pool_options *o,
                           int want, const char *field, const char *what) {
  pebble_pool *pool = NULL;
  int rc = pebble_pool_create(&pool, kind, o);
  CHECK(rc == want && pool == NULL &&
            strstr(pebble_last_error(), field) != NULL,
        "%s: %s, wanted %s naming %s (%s)", what, pebble_status_name(rc),
        pebble_status_name(want), field, pebble_last_error());
  if (pool != NULL) {
    pebble_pool_stop(pool);
    pebble_pool_destroy(pool);
  }
}

/* The launcher options: refused where wrong, with a message naming the
 * field; taken ahead of the environment (PEBBLE_LAUNCHER and
 * PEBBLE_LAUNCHER_HEARTBEAT are set by the calling script to values that
 * would fail or differ); the strings copied. */
static void options(void) {
  pebble_pool_options o;
  pebble_pool *pool = NULL;
  pebble_future *f;
  char script[4200], words[4200], line[8192] = "";
  char launcher[8400];
  FILE *w;
  int64_t v = 12, r = 0;
  int rc;

  pebble_pool_options_init(&o);
  CHECK(o.launcher == NULL && o.launcher_heartbeat == PEBBLE_DEFAULT &&
            o.launcher_start_timeout == PEBBLE_DEFAULT,
        "defaults");
  o.workers = 1;
  o.launcher = "";
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher", "empty");
  o.launcher = "  ";
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher", "blank");
  o.launcher = "env";
  expect_refused(PEBBLE_THREAD, &o, PEBBLE_EINVAL, "launcher", "threads");
  o.start_method = PEBBLE_START_FORK;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher", "fork");
  o.start_method = PEBBLE_START_FORKSERVER;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher",
                 "forkserver");
  o.start_method = PEBBLE_START_SPAWN;
  o.launcher_heartbeat = 0;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_heartbeat",
                 "heartbeat 0");
  o.launcher_heartbeat = PEBBLE_MSEC(1500);
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_heartbeat",
                 "heartbeat 1.5 s");
  o.launcher_heartbeat = PEBBLE_SEC(3601);
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_heartbeat",
                 "heartbeat 3601 s");
  o.launcher_heartbeat = PEBBLE_FOREVER;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_heartbeat",
                 "heartbeat forever");
  o.launcher_heartbeat = PEBBLE_DEFAULT;
  o.launcher_start_timeout = 0;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_start_timeout",
                 "start timeout 0");
  o.launcher_start_timeout = -5;
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_start_timeout",
                 "start timeout -5");
  /* Without a launcher, its settings are still for spawned workers of a
   * process pool only. */
  o.launcher = NULL;
  o.launcher_start_timeout = PEBBLE_SEC(10);
  expect_refused(PEBBLE_THREAD, &o, PEBBLE_EINVAL, "launcher_start_timeout",
                 "start timeout, threads");
  o.start_method = PEBBLE_START_FORK;
  o.launcher_start_timeout = PEBBLE_DEFAULT;
  o.launcher_heartbeat = PEBBLE_SEC(2);
  expect_refused(PEBBLE_PROCESS, &o, PEBBLE_EINVAL, "launcher_heartbeat",
                 "heartbeat, fork");

  /* Accepted: a launcher that writes its words to a file, then runs
   * them; the start method left to its default (spawn, with a
   * launcher, whatever PEBBLE_START_METHOD says). */
  snprintf(words, sizeof words, "%s/words", dir);
  unlink(words);
  {
    char text[9000];
    snprintf(text, sizeof text,
             "#!/bin/sh\necho \"$*\" > '%s'\nexec \"$@\"\n", words);
    write_script("record.sh", text, script, sizeof script);
  }
  snprintf(launcher, sizeof launcher, "sh %s", script);
  pebble_pool_options_init(&o);
  o.workers = 1;
  o.launcher = launcher;
  o.launcher_heartbeat = PEBBLE_SEC(4);
  o.launcher_start_timeout = PEBBLE_FOREVER;
  rc = pebble_pool_create(&pool, PEBBLE_PROCESS, &o);
  CHECK(rc == PEBBLE_OK, "accepted: %s", pebble_last_error());
  if (rc != PEBBLE_OK)
    return;
  /* The caller's buffer is its own again. */
  snprintf(launcher, sizeof launcher, "/nonexistent/launcher");
  f = go(pool, t_square, &v, sizeof v, PEBBLE_DEFAULT);
  rc = pebble_future_get_int(f, PEBBLE_SEC(120), &r);
  CHECK(rc == PEBBLE_OK && r == 144, "through the option's launcher: %s (%s)",
        pebble_status_name(rc), pebble_future_message(f));
  pebble_future_release(f);
  w = fopen(words, "r");
  if (w != NULL) {
    if (fgets(line, sizeof line, w) == NULL)
      line[0] = '\0';
    fclose(w);
  }
  /* The option's launcher ran (not PEBBLE_LAUNCHER's), with the
   * option's heartbeat (not PEBBLE_LAUNCHER_HEARTBEAT's). */
  CHECK(strstr(line, "PEBBLE_WORKER_CHANNEL=stdio") != NULL &&
            strstr(line, "PEBBLE_WORKER_HEARTBEAT=4 ") != NULL,
        "the launcher's words: '%s'", line);
  {
    pebble_pool_stats s;
    get_stats(pool, &s);
    CHECK(s.remote_restarts == 0 && s.remote_lost == 0,
          "stats: remote_restarts %llu, remote_lost %llu",
          (unsigned long long)s.remote_restarts,
          (unsigned long long)s.remote_lost);
  }
  CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
  CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
        pebble_last_error());
  pebble_pool_destroy(pool);

  /* A pool without a launcher counts no remote worker, and a worker's
   * crash there counts a restart, not a remote one.  Its worker_program
   * (this program) is in a buffer spoilt once the pool is made, and
   * every worker starts after that: the pool keeps a copy. */
  unsetenv("PEBBLE_LAUNCHER");
  pebble_pool_options_init(&o);
  o.workers = 1;
  o.start_method = PEBBLE_START_SPAWN;
  {
    ssize_t n = readlink("/proc/self/exe", launcher, sizeof launcher - 1);
    launcher[n > 0 ? n : 0] = '\0';
    if (n > 0)
      o.worker_program = launcher;
  }
  rc = pebble_pool_create(&pool, PEBBLE_PROCESS, &o);
  CHECK(rc == PEBBLE_OK, "local: %s", pebble_last_error());
  snprintf(launcher, sizeof launcher, "/nonexistent/program");
  if (rc == PEBBLE_OK) {
    pebble_pool_stats s;
    f = go(pool, t_crash, NULL, 0, PEBBLE_DEFAULT);
    pebble_future_wait(f, PEBBLE_SEC(120));
    pebble_future_release(f);
    expect_square(pool, 3, "a local crash");
    get_stats(pool, &s);
    CHECK(s.worker_restarts == 1 && s.remote_restarts == 0 &&
              s.remote_lost == 0,
          "local stats: worker_restarts %llu, remote_restarts %llu, "
          "remote_lost %llu",
          (unsigned long long)s.worker_restarts,
          (unsigned long long)s.remote_restarts,
          (unsigned long long)s.remote_lost);
    pebble_pool_stop(pool);
    pebble_pool_destroy(pool);
  }
}

/* Workers start in parallel: a pool of 4 behind a launcher that takes 3 s
 * before it runs the worker.  Each launcher, as it starts, leaves a
 * marker, and after its 3 s counts the markers there, then takes its own
 * away: started one after another (each once the one before said its
 * first word) none would ever see another's marker; started together,
 * one sees all four.  The time to the first results is printed, not
 * checked. */
static void parallel(void) {
  char census[4200], seen[4200], script[4200], text[22000], launcher[8400];
  pebble_pool_options o;
  pebble_pool *pool = NULL;
  pebble_future *f[8];
  double t0, took;
  int64_t i;
  int rc, most = 0, n;
  FILE *in;
  snprintf(census, sizeof census, "%s/census", dir);
  snprintf(seen, sizeof seen, "%s/seen", dir);
  unlink(seen);
  snprintf(text, sizeof text,
           "#!/bin/sh\n"
           "mkdir -p '%s' && : > '%s/'$$\n"
           "sleep 3\n"
           "ls '%s' | wc -l >> '%s'\n"
           "rm -f '%s/'$$\n"
           "exec \"$@\"\n",
           census, census, census, seen, census);
  write_script("slow.sh", text, script, sizeof script);
  snprintf(launcher, sizeof launcher, "sh %s", script);
  pebble_pool_options_init(&o);
  o.workers = 4;
  o.launcher = launcher;
  t0 = now_s();
  rc = pebble_pool_create(&pool, PEBBLE_PROCESS, &o);
  CHECK(rc == PEBBLE_OK, "pool: %s", pebble_last_error());
  if (rc != PEBBLE_OK)
    return;
  for (i = 0; i < 8; i++)
    f[i] = go(pool, t_square, &i, sizeof i, PEBBLE_DEFAULT);
  for (i = 0; i < 8; i++) {
    int64_t r = -1;
    rc = pebble_future_get_int(f[i], PEBBLE_SEC(120), &r);
    CHECK(rc == PEBBLE_OK && r == i * i, "task %d: %s (%s)", (int)i,
          pebble_status_name(rc), pebble_future_message(f[i]));
    pebble_future_release(f[i]);
  }
  took = now_s() - t0;
  CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
  CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
        pebble_last_error());
  pebble_pool_destroy(pool);
  in = fopen(seen, "r");
  while (in != NULL && fscanf(in, "%d", &n) == 1)
    if (n > most)
      most = n;
  if (in != NULL)
    fclose(in);
  CHECK(most == 4, "at most %d of the 4 launchers ran at the same time",
        most);
  printf("parallel: %d of 4 launchers ran at the same time; 8 results "
         "%.1f s after the pool was made (each launcher waits 3 s)\n",
         most, took);
  snprintf(note, sizeof note, "%d launchers at once, results in %.1f s",
           most, took);
}

int main(int argc, char **argv) {
  char host[256];
  pebble_register("square", t_square);
  pebble_register("fail", t_fail);
  pebble_register("big", t_big);
  pebble_register("crash", t_crash);
  pebble_register("hang", t_hang);
  pebble_register("host", t_host);
  pebble_register("init", t_init);
  pebble_register("state", t_state);
  pebble_register("bad_init", t_bad_init);
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "pebble_worker_main: %s\n", pebble_last_error());
    return 1;
  }
  if (argc != 3) {
    fprintf(stderr,
            "usage: %s DIR "
            "work|refused|broken|orphan|netcut|options|parallel\n",
            argv[0]);
    return 2;
  }
  dir = argv[1];
  mode = argv[2];
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  if (strcmp(argv[2], "refused") == 0) {
    refused();
  } else if (strcmp(argv[2], "options") == 0) {
    options();
  } else if (strcmp(argv[2], "parallel") == 0) {
    parallel();
  } else if (strcmp(argv[2], "broken") == 0) {
    broken();
  } else if (strcmp(argv[2], "orphan") == 0) {
    orphan();
  } else if (strcmp(argv[2], "netcut") == 0) {
    netcut(host);
  } else {
    pebble_pool *pool = make_pool(2);
    results(pool);
    task_error(pool);
    big_result(pool);
    crash(pool, host);
    timeout_or_cancel(pool, 0);
    timeout_or_cancel(pool, 1);
    fault(pool, "worker", host);
    fault(pool, "stop", host);
    fault(pool, "launcher", host);
    fault(pool, "silent", host);
    results(pool);
    {
      /* Every worker is remote: each replacement counts in both; of the
       * faults, the killed and the silent launcher lost their worker
       * without a report, the rest were reported (a crash, a killed
       * worker) or ended by the pool (timeouts, the cancel). */
      pebble_pool_stats s;
      get_stats(pool, &s);
      CHECK(s.remote_restarts >= 7 && s.remote_restarts == s.worker_restarts,
            "stats: remote_restarts %llu, worker_restarts %llu",
            (unsigned long long)s.remote_restarts,
            (unsigned long long)s.worker_restarts);
      CHECK(s.remote_lost == 2, "stats: remote_lost %llu, wanted 2",
            (unsigned long long)s.remote_lost);
      printf("stats: worker_restarts %llu, remote_restarts %llu, "
             "remote_lost %llu\n",
             (unsigned long long)s.worker_restarts,
             (unsigned long long)s.remote_restarts,
             (unsigned long long)s.remote_lost);
    }
    CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
    CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
          pebble_last_error());
    pebble_pool_destroy(pool);
    features();
  }
  summary();
  return failed == 0 ? 0 : 1;
}
