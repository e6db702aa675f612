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
 *                            stopped remote worker; the pool goes on
 *   launch_pool DIR refused  the launcher fails (missing, or ends at
 *                            once): the future fails with a message
 *                            naming the launcher, no hang
 *   launch_pool DIR orphan   dies by SIGKILL while a remote task runs,
 *                            its process ids in DIR/orphan (the script
 *                            checks that they go)
 *
 * DIR is a scratch directory the tasks write their process ids into
 * (the remote host is this host, so the test can count its processes).
 * Prints "tests N N F" like CUnit, for the matrix's counting.
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

static const char *dir;
static int checks, failed;

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

static pebble_pool *make_pool(unsigned workers) {
  pebble_pool_options o;
  pebble_pool *pool = NULL;
  int rc;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_method = PEBBLE_START_SPAWN;
  rc = pebble_pool_create(&pool, PEBBLE_PROCESS, &o);
  if (rc != PEBBLE_OK) {
    fprintf(stderr, "pool: %s\n", pebble_last_error());
    exit(1);
  }
  return pool;
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
  else if (launcher > 0)
    CHECK(rc == PEBBLE_OK && pebble_future_status(f) == PEBBLE_EDIED &&
              strstr(msg, silent ? "said nothing" : "launcher") != NULL,
          "launcher killed: %s (%s)",
          pebble_status_name(pebble_future_status(f)), msg);
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

int main(int argc, char **argv) {
  char host[256];
  pebble_register("square", t_square);
  pebble_register("fail", t_fail);
  pebble_register("big", t_big);
  pebble_register("crash", t_crash);
  pebble_register("hang", t_hang);
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "pebble_worker_main: %s\n", pebble_last_error());
    return 1;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR work|refused\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  if (strcmp(argv[2], "refused") == 0) {
    refused();
  } else if (strcmp(argv[2], "orphan") == 0) {
    orphan();
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
    CHECK(pebble_pool_close(pool) == PEBBLE_OK, "close");
    CHECK(pebble_pool_join(pool, PEBBLE_SEC(120)) == PEBBLE_OK, "join: %s",
          pebble_last_error());
    pebble_pool_destroy(pool);
  }
  printf("  tests %d %d %d\n", checks, checks - failed, failed);
  return failed == 0 ? 0 : 1;
}
