/* SPDX-License-Identifier: Apache-2.0 */
/* core_observe.c -- watching tasks and pools from outside: the pid of the
 * process that runs a task, a pool's worker pids, a cancel that says
 * whether the task had started, the pool's state, statistics that count a
 * task as soon as its future shows it resolved, and a timeout that counts
 * from the task's start, not from its process's. */
#include "core_util.h"

#include <pthread.h>

/* ---- tasks (registered: spawned workers find them by name) ---- */

static int my_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, (int64_t)getpid());
}

/* Sleeps its argument in milliseconds, then returns its pid. */
static int nap(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t ms;
  if (pebble_arg_int(arg, size, &ms) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  while (ms > 0 && pebble_should_stop(ctx) == PEBBLE_OK) {
    usleep(1000);
    ms--;
  }
  return pebble_result_int(ctx, (int64_t)getpid());
}

static int fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 3, "failing on purpose");
}

static int init_fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 1, "no database today");
}

/* An initializer that takes its time: a worker's slow start. */
static int init_slow(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  usleep(2000 * 1000);
  return 0;
}

/* ---- a slow process start, for one-shot tasks ----
 * While the marker file exists, every new process of this program is slow
 * to get to its task: a forked one in a fork handler (fork, forkserver),
 * a spawned one before pebble_worker_main() (spawn). */
#define SLOW_START_US (2000 * 1000)
static char marker[128];

static int slow_wanted(void) { return marker[0] && access(marker, F_OK) == 0; }
static void slow_child(void) {
  if (slow_wanted())
    usleep(SLOW_START_US);
}

/* ---- helpers ---- */

static pebble_future *run_int(pebble_kind kind, pebble_task_fn fn,
                              int64_t v, pebble_time_t timeout) {
  pebble_task_options o;
  pebble_future *f = NULL;
  pebble_task_options_init(&o);
  o.timeout = timeout;
  CU_ASSERT_EQUAL(pebble_run(kind, fn, &v, sizeof v, &o, &f), PEBBLE_OK);
  return f;
}

static pebble_pool *pool_of(pebble_kind kind, unsigned workers,
                            int send_ahead) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_eagerly = 1;
  o.send_ahead = send_ahead;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, kind, &o), PEBBLE_OK);
  return p;
}

/* Wait a bounded while for f to leave PEBBLE_PENDING. */
static int started(pebble_future *f) {
  int i;
  for (i = 0; i < 6000 && pebble_future_state(f) == PEBBLE_PENDING; i++)
    usleep(5000);
  return pebble_future_state(f) == PEBBLE_RUNNING;
}

/* Wait a bounded while for f's pid. */
static long pid_of(pebble_future *f) {
  long pid = 0;
  int i, rc = PEBBLE_ESTATE;
  for (i = 0; i < 6000 && rc == PEBBLE_ESTATE; i++)
    if ((rc = pebble_future_pid(f, &pid)) == PEBBLE_ESTATE)
      usleep(5000);
  CU_ASSERT_EQUAL(rc, PEBBLE_OK);
  return pid;
}

static size_t worker_pids(pebble_pool *p, long *pids, size_t cap) {
  size_t n = 0;
  CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, pids, cap, &n), PEBBLE_OK);
  return n;
}

static int listed(const long *pids, size_t n, long pid) {
  size_t i;
  for (i = 0; i < n; i++)
    if (pids[i] == pid)
      return 1;
  return 0;
}

/* ---- a: the pid of a task's process ---- */

static void test_pid_one_shot(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_future *f = run_int(PEBBLE_PROCESS, nap, 300, PEBBLE_DEFAULT), *t;
  int64_t result = 0;
  long pid = pid_of(f), after = 0;
  CU_ASSERT(pid > 0);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &result),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(pid, (long)result); /* the process that ran it */
  CU_ASSERT_EQUAL(pebble_future_pid(f, &after), PEBBLE_OK); /* it has run */
  CU_ASSERT_EQUAL(after, pid);
  CU_ASSERT_EQUAL(pebble_future_pid(f, NULL), PEBBLE_EINVAL);
  pebble_future_release(f);

  t = run_int(PEBBLE_THREAD, nap, 1, PEBBLE_DEFAULT);
  after = 7;
  CU_ASSERT_EQUAL(pebble_future_pid(t, &after), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(after, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "thread task"));
  CU_ASSERT_EQUAL(pebble_future_wait(t, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_pid(t, &after), PEBBLE_EINVAL);
  pebble_future_release(t);
}

static void test_pid_pool_task(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = pool_of(PEBBLE_PROCESS, 2, PEBBLE_SEND_AHEAD_AUTO);
  pebble_pool *one = pool_of(PEBBLE_PROCESS, 1, PEBBLE_SEND_AHEAD_NEVER);
  pebble_future *busy, *queued;
  long pid = 0, pids[8];
  int i;
  for (i = 0; i < 20; i++) {
    pebble_future *f = schedule_int(p, my_pid, 0, PEBBLE_DEFAULT);
    int64_t result = 0;
    int rc = pebble_future_get_int(f, PEBBLE_SEC(60), &result);
    CU_ASSERT_EQUAL(rc, PEBBLE_OK);
    if (rc != PEBBLE_OK)
      printf("(task %d: %s: %s) ", i, pebble_status_name(rc),
             pebble_future_message(f));
    CU_ASSERT_EQUAL(pebble_future_pid(f, &pid), PEBBLE_OK);
    CU_ASSERT_EQUAL(pid, (long)result);
    CU_ASSERT(listed(pids, worker_pids(p, pids, 8), pid));
    pebble_future_release(f);
  }
  /* Queued behind a busy worker: not started; cancelled there: never. */
  busy = schedule_int(one, nap, 30000, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(started(busy), 1);
  queued = schedule_int(one, my_pid, 0, PEBBLE_DEFAULT);
  pid = 7;
  CU_ASSERT_EQUAL(pebble_future_pid(queued, &pid), PEBBLE_ESTATE);
  CU_ASSERT_EQUAL(pid, 0);
  CU_ASSERT_EQUAL(pebble_future_cancel(queued), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_pid(queued, &pid), PEBBLE_ENOTFOUND);
  CU_ASSERT(pid_of(busy) > 0);
  CU_ASSERT(listed(pids, worker_pids(one, pids, 8), pid_of(busy)));
  pebble_future_release(busy);
  pebble_future_release(queued);
  CU_ASSERT_EQUAL(pebble_pool_destroy(one), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* ---- b: a pool's worker pids ---- */

/* Wait a bounded while for the pool to list n workers, `gone` not among
 * them. */
static size_t settle_workers(pebble_pool *p, long *pids, size_t n,
                             long gone) {
  size_t got = 0;
  int i;
  for (i = 0; i < 6000; i++) {
    got = worker_pids(p, pids, n);
    if (got == n && !listed(pids, got, gone))
      break;
    usleep(5000);
  }
  return got;
}

static void test_worker_pids(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = pool_of(PEBBLE_PROCESS, 2, PEBBLE_SEND_AHEAD_AUTO), *tp;
  long pids[2] = {0, 0}, now[2], one = 0, victim;
  size_t n = 5;
  int i;
  CU_ASSERT_EQUAL_FATAL(settle_workers(p, pids, 2, 0), 2);
  CU_ASSERT(pids[0] > 0 && pids[1] > 0 && pids[0] != pids[1]);
  /* Too small an array: the first cap, and the full count. */
  CU_ASSERT_EQUAL(worker_pids(p, &one, 1), 2);
  CU_ASSERT(one == pids[0] || one == pids[1]);
  CU_ASSERT_EQUAL(worker_pids(p, NULL, 0), 2);
  CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, NULL, 1, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, pids, 2, NULL), PEBBLE_EINVAL);
  /* A worker killed from outside leaves the list; its replacement joins
   * it, and the tasks run in the listed processes. */
  victim = pids[0];
  CU_ASSERT_EQUAL(kill((pid_t)victim, SIGKILL), 0);
  CU_ASSERT_EQUAL(settle_workers(p, now, 2, victim), 2);
  CU_ASSERT(!listed(now, 2, victim));
  CU_ASSERT(listed(now, 2, pids[1]));
  for (i = 0; i < 10; i++) {
    pebble_future *f = schedule_int(p, my_pid, 0, PEBBLE_DEFAULT);
    int64_t result = 0;
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &result),
                    PEBBLE_OK);
    CU_ASSERT(listed(now, 2, (long)result));
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);

  tp = pool_of(PEBBLE_THREAD, 2, PEBBLE_SEND_AHEAD_AUTO);
  n = 5;
  CU_ASSERT_EQUAL(pebble_pool_worker_pids(tp, pids, 2, &n), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL(pebble_pool_destroy(tp), PEBBLE_OK);
}

/* ---- c: cancel that says whether the task had started ---- */

static void cancel_in_pool(pebble_kind kind, int send_ahead) {
  pebble_pool *p = pool_of(kind, 1, send_ahead);
  pebble_future *busy, *queued, *done;
  int was = -1;
  busy = schedule_int(p, nap, kind == PEBBLE_THREAD ? 30000 : 400,
                      PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(started(busy), 1);
  queued = schedule_int(p, my_pid, 0, PEBBLE_DEFAULT);
  if (send_ahead == PEBBLE_SEND_AHEAD_ALWAYS) { /* let it go ahead */
    int i;
    for (i = 0; i < 200 && pool_stats(p).sent_ahead == 0; i++)
      usleep(5000);
  }
  CU_ASSERT_EQUAL(pebble_future_cancel_ex(queued, &was), PEBBLE_OK);
  CU_ASSERT_EQUAL(was, 0); /* queued, or sent ahead and skipped */
  if (kind == PEBBLE_THREAD) {
    CU_ASSERT_EQUAL(pebble_future_cancel_ex(busy, &was), PEBBLE_OK);
    CU_ASSERT_EQUAL(was, 1);
    was = -1;
    CU_ASSERT_EQUAL(pebble_future_cancel_ex(busy, &was), PEBBLE_OK);
    CU_ASSERT_EQUAL(was, 1); /* again: the first cancel's answer */
  } else {
    CU_ASSERT_EQUAL(pebble_future_wait(busy, PEBBLE_SEC(60)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_status(busy), PEBBLE_OK);
  }
  was = -1;
  CU_ASSERT_EQUAL(pebble_future_cancel_ex(queued, &was), PEBBLE_OK);
  CU_ASSERT_EQUAL(was, 0);
  CU_ASSERT_EQUAL(pebble_future_state(queued), PEBBLE_CANCELLED);
  /* Resolved by its task first: EALREADY, and it had run. */
  done = schedule_int(p, my_pid, 0, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_wait(done, PEBBLE_SEC(60)), PEBBLE_OK);
  was = -1;
  CU_ASSERT_EQUAL(pebble_future_cancel_ex(done, &was), PEBBLE_EALREADY);
  CU_ASSERT_EQUAL(was, 1);
  CU_ASSERT_EQUAL(pool_stats(p).cancelled, kind == PEBBLE_THREAD ? 2 : 1);
  pebble_future_release(busy);
  pebble_future_release(queued);
  pebble_future_release(done);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_cancel_ex(void) {
  pebble_future *f;
  const char *name, *reason;
  int was = -1;
  cancel_in_pool(PEBBLE_THREAD, PEBBLE_SEND_AHEAD_AUTO);
  if (PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    return;
  cancel_in_pool(PEBBLE_PROCESS, PEBBLE_SEND_AHEAD_NEVER);
  pebble_backend_choice(&name, &reason);
  if (strcmp(name, "posix") == 0) /* the backend that sends ahead */
    cancel_in_pool(PEBBLE_PROCESS, PEBBLE_SEND_AHEAD_ALWAYS);
  /* A running process task in a pool, and a one-shot one: killed. */
  {
    pebble_pool *p = pool_of(PEBBLE_PROCESS, 1, PEBBLE_SEND_AHEAD_NEVER);
    f = schedule_int(p, nap, 30000, PEBBLE_DEFAULT);
    CU_ASSERT(pid_of(f) > 0);
    CU_ASSERT_EQUAL(pebble_future_cancel_ex(f, &was), PEBBLE_OK);
    CU_ASSERT_EQUAL(was, 1);
    pebble_future_release(f);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
  f = run_int(PEBBLE_PROCESS, nap, 30000, PEBBLE_DEFAULT);
  CU_ASSERT(pid_of(f) > 0);
  was = -1;
  CU_ASSERT_EQUAL(pebble_future_cancel_ex(f, &was), PEBBLE_OK);
  CU_ASSERT_EQUAL(was, 1);
  CU_ASSERT_EQUAL(pebble_future_cancel_ex(f, NULL), PEBBLE_EINVAL);
  pebble_future_release(f);
}

/* ---- d: the pool's state ---- */

static pebble_pool_state state_of(pebble_pool *p) {
  pebble_pool_state s = (pebble_pool_state)-1;
  CU_ASSERT_EQUAL(pebble_pool_state_get(p, &s), PEBBLE_OK);
  return s;
}

static void states_of(pebble_kind kind) {
  pebble_pool *p = pool_of(kind, 2, PEBBLE_SEND_AHEAD_AUTO);
  pebble_pool_options o;
  pebble_future *f;
  int i;
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_OPEN);
  f = schedule_int(p, nap, 50, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_CLOSED);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_CLOSED);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_OK); /* it drained */
  CU_ASSERT_EQUAL(pebble_pool_stop(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_STOPPED);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);

  p = pool_of(kind, 2, PEBBLE_SEND_AHEAD_AUTO);
  CU_ASSERT_EQUAL(pebble_pool_stop(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_STOPPED);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);

  pebble_pool_options_init(&o);
  o.workers = 1;
  o.initializer = init_fails;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, kind, &o), PEBBLE_OK);
  f = schedule_int(p, my_pid, 0, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 0; i < 6000 && state_of(p) != PEBBLE_POOL_BROKEN; i++)
    usleep(5000);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_BROKEN);
  CU_ASSERT_EQUAL(pebble_pool_stop(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(state_of(p), PEBBLE_POOL_STOPPED);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_state_get(NULL, NULL), PEBBLE_EINVAL);
}

static void test_state(void) {
  states_of(PEBBLE_THREAD);
  if (PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    return;
  states_of(PEBBLE_PROCESS);
}

/* ---- e: statistics count a task by the time its future resolves ---- */

/* A callback that takes its time: a thread pool runs it on the worker
 * right after the future resolves, before the worker goes on. */
static void slow_callback(pebble_future *f, void *data) {
  (void)f, (void)data;
  usleep(20000);
}

static void stats_rounds(pebble_kind kind, int rounds) {
  pebble_pool *p = pool_of(kind, 2, PEBBLE_SEND_AHEAD_AUTO);
  uint64_t done = 0, failed = 0, timed_out = 0;
  int i, bad = 0;
  for (i = 0; i < rounds; i++) {
    pebble_task_options o;
    pebble_future *f = NULL;
    pebble_pool_stats st;
    int64_t v = 0;
    pebble_task_options_init(&o);
    if (i % 50 == 7) {
      o.timeout = PEBBLE_MSEC(20); /* times out */
      v = 60000;
    }
    if (i < 10)
      o.callback = slow_callback;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(p, i % 5 == 3 ? fails : nap,
                                               &v, sizeof v, &o, &f),
                          PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
    st = pool_stats(p);
    switch (pebble_future_status(f)) {
    case PEBBLE_OK:
      done++;
      break;
    case PEBBLE_ETIMEDOUT:
      timed_out++;
      break;
    default:
      failed++;
    }
    if (st.done != done || st.failed != failed || st.timed_out != timed_out)
      bad++;
    pebble_future_release(f);
  }
  if (bad)
    printf("(%d of %d rounds counted late) ", bad, rounds);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(timed_out > 0 && failed > 0 && done > 0);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_stats_at_resolve(void) {
  stats_rounds(PEBBLE_THREAD, 2000);
  if (PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    return;
  stats_rounds(PEBBLE_PROCESS, 400);
}

/* ---- f: a timeout counts from the task's start ---- */

static void test_slow_start_one_shot(void) {
  pebble_future *f, *g;
  int fd;
  int64_t v = 0;
  SKIP_IF_NO_PROCESSES();
  fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  /* Its process takes two seconds to get to it: not a timeout of 700 ms
   * (the task itself is quick, so a loaded machine has time to spare). */
  f = run_int(PEBBLE_PROCESS, my_pid, 0, PEBBLE_MSEC(700));
  /* The timeout still holds once it has started. */
  g = run_int(PEBBLE_PROCESS, nap, 30000, PEBBLE_MSEC(700));
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &v), PEBBLE_OK);
  if (pebble_future_status(f) != PEBBLE_OK)
    printf("(%s) ", pebble_future_message(f));
  CU_ASSERT_EQUAL(pebble_future_wait(g, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(g), PEBBLE_ETIMEDOUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_future_message(g), "700 ms"));
  CU_ASSERT_PTR_NULL(strstr(pebble_future_message(g), "never started"));
  unlink(marker);
  pebble_future_release(f);
  pebble_future_release(g);
}

static void test_slow_start_pool(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future *f;
  int64_t v = 0;
  SKIP_IF_NO_PROCESSES();
  pebble_pool_options_init(&o);
  o.workers = 1;
  o.initializer = init_slow;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                        PEBBLE_OK);
  /* The new worker's initializer takes two seconds before it takes the
   * task: not a timeout of 700 ms. */
  f = schedule_int(p, my_pid, 0, PEBBLE_MSEC(700));
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &v), PEBBLE_OK);
  if (pebble_future_status(f) != PEBBLE_OK)
    printf("(%s) ", pebble_future_message(f));
  pebble_future_release(f);
  f = schedule_int(p, nap, 30000, PEBBLE_MSEC(300));
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(strstr(pebble_future_message(f), "never started"));
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One worker: tasks queued behind a long one get their whole timeout from
 * their own start, not from when they were scheduled. */
static void queued_behind(pebble_kind kind) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future *a, *b, *c;
  double b_done, c_done;
  pebble_pool_options_init(&o);
  o.workers = 1;
  o.start_eagerly = 1;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, kind, &o), PEBBLE_OK);
  a = schedule_int(p, nap, 1500, PEBBLE_FOREVER);
  /* Counted from its scheduling, b would time out while a runs. */
  b = schedule_int(p, nap, 20, PEBBLE_MSEC(1000));
  c = schedule_int(p, nap, 30000, PEBBLE_MSEC(300));
  CU_ASSERT_EQUAL(pebble_future_wait(b, PEBBLE_SEC(60)), PEBBLE_OK);
  b_done = seconds_now();
  CU_ASSERT_EQUAL(pebble_future_status(a), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(b), PEBBLE_OK);
  if (pebble_future_status(b) != PEBBLE_OK)
    printf("(%s) ", pebble_future_message(b));
  CU_ASSERT_EQUAL(pebble_future_wait(c, PEBBLE_SEC(60)), PEBBLE_OK);
  c_done = seconds_now();
  CU_ASSERT_EQUAL(pebble_future_status(c), PEBBLE_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(strstr(pebble_future_message(c), "never started"));
  /* c starts after b is done and has its 300 ms from then (the margin is
   * for the wake-up of this thread after b, on a loaded machine). */
  CU_ASSERT(c_done - b_done >= 0.15);
  if (c_done - b_done < 0.15)
    printf("(c timed out %.0f ms after b was done) ",
           (c_done - b_done) * 1000);
  pebble_future_release(a);
  pebble_future_release(b);
  pebble_future_release(c);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_queued_timeout_threads(void) { queued_behind(PEBBLE_THREAD); }
static void test_queued_timeout_processes(void) {
  SKIP_IF_NO_PROCESSES();
  queued_behind(PEBBLE_PROCESS);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"a task's pid is its process's (one-shot)", test_pid_one_shot},
      {"a pool task's pid is its worker's", test_pid_pool_task},
      {"a pool lists its worker pids, and follows a death",
       test_worker_pids},
      {"cancel says whether the task had started", test_cancel_ex},
      {"a pool's state: open, closed, stopped, broken", test_state},
      {"statistics count a task when its future resolves",
       test_stats_at_resolve},
      {"a one-shot timeout counts from the task's start",
       test_slow_start_one_shot},
      {"a pool task's timeout counts from its start", test_slow_start_pool},
      {"a thread pool task queued behind a long one: its timeout counts "
       "from its start",
       test_queued_timeout_threads},
      {"a process pool task queued behind a long one: its timeout counts "
       "from its start",
       test_queued_timeout_processes},
      CU_TEST_INFO_NULL};
  const char *mark = getenv("PEBBLE_OBSERVE_MARK");
  int rc;
  /* Before anything starts a process (a forkserver starts with the
   * library): every process of this program knows the marker. */
  if (mark == NULL) {
    snprintf(marker, sizeof marker, "/tmp/pebble-observe-%ld",
             (long)getpid());
    setenv("PEBBLE_OBSERVE_MARK", marker, 1);
  } else {
    snprintf(marker, sizeof marker, "%s", mark);
  }
  pthread_atfork(NULL, NULL, slow_child);
  if (getenv("PEBBLE_WORKER_CHANNEL") != NULL)
    slow_child();
  REGISTER_TASK(my_pid);
  REGISTER_TASK(nap);
  REGISTER_TASK(fails);
  REGISTER_TASK(init_fails);
  REGISTER_TASK(init_slow);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  rc = run_suite("observe", tests);
  unlink(marker);
  return rc;
}
