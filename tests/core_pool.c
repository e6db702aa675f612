/* SPDX-License-Identifier: Apache-2.0 */
/* core_pool.c -- thread and process pools: the failure modes first. */
#include "core_util.h"

#include <pthread.h>
#include <stdatomic.h>

static int kinds[] = {PEBBLE_THREAD, PEBBLE_PROCESS};
/* Both kinds; the process half is left out, and said, under a backend
 * that runs no processes. */
#define EACH_KIND(k)                                                         \
  for (size_t k##_ = 0; k##_ < 2 && ((k = kinds[k##_]), 1); k##_++)          \
    if (PROCESS_HALF_SKIPPED(k)) {                                           \
    } else

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v * v);
}
static int worker_id(pebble_ctx *ctx, const void *arg, size_t size) {
  uint64_t id;
  pthread_t self = pthread_self();
  (void)arg, (void)size;
  id = (uint64_t)getpid() << 32;
  id ^= (uint64_t)(uintptr_t)self;
  usleep(20000);
  return pebble_result_set(ctx, &id, sizeof id);
}
static int crash(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  raise(SIGSEGV);
  return 0;
}
static int exit0(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  _exit(0);
}
static int cooperative(pebble_ctx *ctx, const void *arg, size_t size) {
  int ms = size == sizeof(int) ? *(const int *)arg : 5000, i;
  for (i = 0; i < ms; i++) {
    if (pebble_should_stop(ctx) != PEBBLE_OK)
      return 0;
    usleep(1000);
  }
  return 0;
}
static int marks(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)size;
  (void)!write(*(const int *)arg, "m", 1);
  return 0;
}

static pebble_pool *make(pebble_kind kind, unsigned workers, unsigned max) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.max_tasks = max;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, kind, &o), PEBBLE_OK);
  return p;
}
static pebble_future *sched(pebble_pool *p, pebble_task_fn fn,
                            const void *arg, size_t size,
                            pebble_time_t timeout) {
  pebble_task_options o;
  pebble_future *f = NULL;
  pebble_task_options_init(&o);
  o.timeout = timeout;
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, fn, arg, size, &o, &f), PEBBLE_OK);
  return f;
}
static int ok_square(pebble_pool *p, int64_t v) {
  int64_t out = 0;
  pebble_future *f = sched(p, square, &v, sizeof v, PEBBLE_DEFAULT);
  int rc = pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  pebble_future_release(f);
  return rc == PEBBLE_OK && out == v * v;
}

static void test_results(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 2, 0);
    pebble_future *f[10];
    int64_t i, out;
    for (i = 0; i < 10; i++)
      f[i] = sched(p, square, &i, sizeof i, PEBBLE_DEFAULT);
    CU_ASSERT_EQUAL(pebble_wait_all(f, 10, PEBBLE_SEC(60)), PEBBLE_OK);
    for (i = 0; i < 10; i++) {
      CU_ASSERT_EQUAL(pebble_future_get_int(f[i], 0, &out), PEBBLE_OK);
      CU_ASSERT_EQUAL(out, i * i);
      pebble_future_release(f[i]);
    }
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
}

static void test_timeout_process(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  pebble_pool_stats st;
  pebble_future *f;
  double t0 = now_s();
  f = sched(p, cooperative, NULL, 0, PEBBLE_MSEC(200));
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT(now_s() - t0 >= 0.19 && now_s() - t0 < 10);
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 5)); /* worker replaced, pool goes on */
  st.struct_size = sizeof st;
  pebble_pool_stats_get(p, &st);
  CU_ASSERT_EQUAL(st.timed_out, 1);
  CU_ASSERT(st.worker_restarts >= 1);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static int stubborn(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  usleep(1500000); /* ignores pebble_should_stop */
  return pebble_result_int(ctx, 1);
}
static void test_timeout_thread_abandoned(void) {
  pebble_pool *p = make(PEBBLE_THREAD, 1, 0);
  pebble_pool_stats st;
  pebble_future *t1, *t2;
  int64_t out = 0;
  double t0 = now_s();
  t1 = sched(p, stubborn, NULL, 0, PEBBLE_MSEC(100));
  t2 = sched(p, square, &(int64_t){6}, sizeof(int64_t), PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_get(t1, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT(now_s() - t0 < 1.4); /* at the deadline, not at the return */
  /* A replacement thread runs the queue while the abandoned one sleeps. */
  CU_ASSERT_EQUAL(pebble_future_get_int(t2, PEBBLE_SEC(30), &out), 0);
  CU_ASSERT_EQUAL(out, 36);
  st.struct_size = sizeof st;
  pebble_pool_stats_get(p, &st);
  if (now_s() - t0 < 1.4)
    CU_ASSERT_EQUAL(st.workers_abandoned, 1);
  CU_ASSERT_EQUAL(st.timed_out, 1);
  pebble_future_release(t1);
  pebble_future_release(t2);
  pebble_pool_close(p);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
  pebble_pool_destroy(p);
}

static void test_abandoned_join(void) {
  /* A thread task ignoring its deadline: join says busy until it ends. */
  pebble_pool *p = make(PEBBLE_THREAD, 1, 0);
  pebble_pool_stats st;
  pebble_future *f;
  f = sched(p, stubborn, NULL, 0, PEBBLE_MSEC(50));
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  pebble_future_release(f);
  st.struct_size = sizeof st;
  pebble_pool_close(p);
  /* The flagged task still runs: join says busy, then succeeds. */
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_MSEC(100)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
  pebble_pool_stats_get(p, &st);
  CU_ASSERT_EQUAL(st.workers_alive, 0);
  CU_ASSERT_EQUAL(st.workers_abandoned, 0);
  pebble_pool_destroy(p);
}

static void test_cancel_queued_never_starts(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 1, 0);
    int fds[2], ms = 400;
    pebble_future *busy, *queued;
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    busy = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
    queued = sched(p, marks, &fds[1], sizeof fds[1], PEBBLE_DEFAULT);
    CU_ASSERT_EQUAL(pebble_future_cancel(queued), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_state(queued), PEBBLE_CANCELLED);
    CU_ASSERT_EQUAL(pebble_future_wait(busy, PEBBLE_SEC(30)), PEBBLE_OK);
    CU_ASSERT(ok_square(p, 2)); /* the worker moved past the cancelled one */
    CU_ASSERT(pipe_is_empty(fds[0])); /* it never ran */
    pebble_future_release(busy);
    pebble_future_release(queued);
    close(fds[0]);
    close(fds[1]);
    pebble_pool_destroy(p);
  }
}

/* Until a worker has the task (bounded): a spawned worker may take far
 * longer than a forked one to start on a loaded machine. */
static int running_within(pebble_future *f, double seconds) {
  double end = now_s() + seconds;
  while (pebble_future_state(f) == PEBBLE_PENDING && now_s() < end)
    usleep(5000);
  return pebble_future_state(f) != PEBBLE_PENDING;
}

static void test_cancel_running_process(void) {
  SKIP_ON_WINDOWS(SIGNALS_WHY);
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  pebble_exit_info x;
  pebble_future *f = sched(p, cooperative, NULL, 0, PEBBLE_DEFAULT);
  CU_ASSERT(running_within(f, 30));
  usleep(100000); /* well into the task */
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(f, 0, NULL, NULL), PEBBLE_ECANCELED);
  x.struct_size = sizeof x;
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.signal, SIGKILL);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 3));
  pebble_pool_destroy(p);
}

/* A worker's end waited for: after the kill of a timeout or a cancel,
 * and a crash; nothing to wait for where the worker lives on, a task
 * never reached one, or for a thread pool's task. */
static void test_wait_exit(void) {
  pebble_pool *p;
  pebble_exit_info x;
  pebble_future *f, *queued;
  int64_t v = 6, out = 0;
  long pid = 0;
  int ms = 60000;
  double t0;
  SKIP_IF_NO_PROCESSES();
  p = make(PEBBLE_PROCESS, 1, 0);
  x.struct_size = sizeof x;

  f = sched(p, square, &v, sizeof v, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(60)),
                  PEBBLE_ENOTFOUND); /* resolved by then, worker alive */
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_NOWAIT, &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 36);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_ENOTFOUND);
  pebble_future_release(f);

  f = sched(p, cooperative, &ms, sizeof ms, PEBBLE_MSEC(200));
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ETIMEDOUT);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  CU_ASSERT(process_ended(x.pid));
  pebble_future_release(f);

  /* Cancelled while queued behind a long task: known at once, though the
   * worker is still busy.  (With a timeout, so that it is not sent ahead
   * to that worker: a task sent ahead is known to be skipped only when
   * the worker comes to it.) */
  f = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
  CU_ASSERT(running_within(f, 30));
  queued = sched(p, square, &v, sizeof v, PEBBLE_SEC(60));
  CU_ASSERT_EQUAL(pebble_future_cancel(queued), PEBBLE_OK);
  t0 = now_s();
  CU_ASSERT_EQUAL(pebble_future_wait_exit(queued, PEBBLE_SEC(30)),
                  PEBBLE_ENOTFOUND);
  CU_ASSERT(now_s() - t0 < 20);
  CU_ASSERT_NOT_EQUAL(pebble_future_pid(queued, &pid), PEBBLE_OK);
  pebble_future_release(queued);
  /* The running one, cancelled: its worker is killed and reaped. */
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  CU_ASSERT(process_ended(x.pid));
  pebble_future_release(f);

  f = sched(p, crash, NULL, 0, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_EDIED);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.killed_by_library, 0);
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 7)); /* the pool goes on */
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);

  p = make(PEBBLE_THREAD, 1, 0);
  f = sched(p, square, &v, sizeof v, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_wait_exit(f, PEBBLE_FOREVER),
                  PEBBLE_ENOTFOUND);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* Cancels racing the hand-over of tasks to two workers (some sent ahead):
 * every wait ends; PEBBLE_OK comes with the end of a worker killed for
 * the task, already reaped; PEBBLE_ENOTFOUND means no end is recorded for
 * the task then or later (looked at again once the pool has joined, when
 * every worker's end has been handled). */
static void test_wait_exit_cancel_race(void) {
  enum { N = 200 };
  pebble_pool *p;
  pebble_future *f[N];
  int rc_of[N], i, ok = 0, none = 0, ms = 2;
  SKIP_IF_NO_PROCESSES();
  p = make(PEBBLE_PROCESS, 2, 0);
  for (i = 0; i < N; i++)
    f[i] = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
  /* Some from the back first: still queued, or sent ahead; on a slow
   * machine (a sanitizer, a loaded CPU) the first few of the front may
   * be done by the time the loop reaches them. */
  for (i = N - 1; i >= 0; i -= 4) {
    int rc = pebble_future_cancel(f[i]);
    if (rc != PEBBLE_OK && rc != PEBBLE_EALREADY)
      printf("(cancel of task %d: %s) ", i, pebble_status_name(rc));
    CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_EALREADY);
  }
  for (i = 0; i < N; i++) {
    pebble_exit_info x;
    long pid = 0;
    int rc;
    if (i % 3 == 0)
      usleep(300);
    rc = pebble_future_cancel(f[i]); /* or it was done already */
    CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_EALREADY);
    /* At once: a kill's reap may still be on its way. */
    rc_of[i] = rc = pebble_future_wait_exit(f[i], PEBBLE_SEC(60));
    x.struct_size = sizeof x;
    if (rc == PEBBLE_OK) {
      ok++;
      CU_ASSERT_EQUAL(pebble_future_exit_info(f[i], &x), PEBBLE_OK);
      CU_ASSERT_EQUAL(x.killed_by_library, 1);
      CU_ASSERT(process_ended(x.pid));
      CU_ASSERT(pebble_future_pid(f[i], &pid) == PEBBLE_OK && pid == x.pid);
    } else {
      none++;
      CU_ASSERT_EQUAL(rc, PEBBLE_ENOTFOUND);
    }
  }
  CU_ASSERT_EQUAL(ok + none, N);
  CU_ASSERT(ok_square(p, 2));
  CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 0; i < N; i++) {
    pebble_exit_info x;
    x.struct_size = sizeof x;
    if (rc_of[i] == PEBBLE_ENOTFOUND)
      CU_ASSERT_EQUAL(pebble_future_exit_info(f[i], &x), PEBBLE_ENOTFOUND);
    pebble_future_release(f[i]);
  }
  printf("(%d workers ended for their task, %d tasks without) ", ok, none);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_crashes(void) {
  SKIP_ON_WINDOWS(SIGNALS_WHY);
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 2, 0);
  pebble_exit_info x;
  pebble_future *f = sched(p, crash, NULL, 0, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  x.struct_size = sizeof x;
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.signal, SIGSEGV);
  CU_ASSERT(x.pid > 0);
  pebble_future_release(f);
  f = sched(p, exit0, NULL, 0, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &x), PEBBLE_OK);
  CU_ASSERT_EQUAL(x.exited, 1);
  CU_ASSERT_EQUAL(x.exit_code, 0);
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 4));
  pebble_pool_destroy(p);
}

static int my_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, getpid());
}
static void test_idle_worker_killed(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  pebble_future *f = sched(p, my_pid, NULL, 0, PEBBLE_DEFAULT);
  int64_t pid = 0;
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &pid), 0);
  pebble_future_release(f);
  CU_ASSERT(pid > 0 && pid != getpid());
  kill((pid_t)pid, SIGKILL);
  CU_ASSERT(gone_within((pid_t)pid, 10));
  CU_ASSERT(ok_square(p, 7)); /* replaced */
  pebble_pool_destroy(p);
}

#ifndef _WIN32
/* A worker stopped from outside is neither dead nor done: its task's
 * timeout still ends it, a cancel still kills it, join waits for it to
 * be continued (it has not ended), and stop or destroy end it at once. */
static void stopped_workers(void) {
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  int64_t us = 20000000, out = 0;
  pebble_future *f;
  long pids[2];
  size_t n = 0;
  pid_t pid;
  double t0;

  f = sched(p, nap_us, &us, sizeof us, PEBBLE_MSEC(300));
  CU_ASSERT((pid = stop_process_of(f)) > 0);
  t0 = now_s();
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ETIMEDOUT);
  CU_ASSERT(now_s() - t0 < 15); /* the timeout, not the task's 20 s */
  CU_ASSERT(gone_within(pid, 10)); /* killed though stopped */
  pebble_future_release(f);

  f = sched(p, nap_us, &us, sizeof us, PEBBLE_DEFAULT);
  CU_ASSERT((pid = stop_process_of(f)) > 0);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_CANCELLED);
  CU_ASSERT(gone_within(pid, 10));
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 9)); /* replaced */

  /* Closed with its only worker stopped while idle: join waits, since
   * that worker has not ended; continued, it reads its notice to quit. */
  CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, pids, 2, &n), PEBBLE_OK);
  CU_ASSERT_FATAL(n == 1);
  CU_ASSERT_EQUAL(kill((pid_t)pids[0], SIGSTOP), 0);
  CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_MSEC(300)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(kill((pid_t)pids[0], SIGCONT), 0);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT(gone_within((pid_t)pids[0], 10));
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);

  /* Destroyed with one worker stopped in a task and one stopped idle:
   * both are killed, the task resolves, nothing waits for a continue. */
  {
    pebble_pool_options o;
    pebble_pool_options_init(&o);
    o.workers = 2;
    o.start_eagerly = 1;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
  }
  us = 20000000;
  f = sched(p, nap_us, &us, sizeof us, PEBBLE_DEFAULT);
  CU_ASSERT((pid = stop_process_of(f)) > 0);
  t0 = now_s();
  while (n != 2 && now_s() - t0 < 30) {
    CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, pids, 2, &n), PEBBLE_OK);
    if (n != 2)
      usleep(1000);
  }
  CU_ASSERT_FATAL(n == 2);
  CU_ASSERT_EQUAL(kill((pid_t)(pids[0] == pid ? pids[1] : pids[0]), SIGSTOP),
                  0);
  t0 = now_s();
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  CU_ASSERT(now_s() - t0 < 15);
  /* Stopped with the pool: cancelled, not a crash (docs/pools.md). */
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_CANCELLED);
  CU_ASSERT(pebble_future_get_int(f, 0, &out) != PEBBLE_OK);
  CU_ASSERT(gone_within((pid_t)pids[0], 10));
  CU_ASSERT(gone_within((pid_t)pids[1], 10));
  pebble_future_release(f);
}
#endif

#ifndef _WIN32
/* Until f's task is handed to a worker (its future RUNNING). */
static int handed_within(pebble_future *f, double seconds) {
  double end = now_s() + seconds;
  while (pebble_future_state(f) == PEBBLE_PENDING && now_s() < end)
    usleep(1000);
  return pebble_future_state(f) == PEBBLE_RUNNING;
}

/* The pid of p's only worker, idle: it has just run a task. */
static pid_t idle_worker_pid(pebble_pool *p) {
  pebble_future *f = sched(p, my_pid, NULL, 0, PEBBLE_DEFAULT);
  int64_t pid = 0;
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &pid), PEBBLE_OK);
  pebble_future_release(f);
  return (pid_t)pid;
}

/* A task handed to an idle worker that dies before it begins the task is
 * run again on another worker: that death is not the task's crash.  Here
 * the worker is stopped, handed the task (its channel takes the bytes, so
 * the future is RUNNING), then killed.  An untimed task goes straight
 * from the scheduling thread, a timed one through the manager thread.  A
 * task whose message is large is not run again: reading it may be what
 * killed the worker (docs/pools.md). */
static void unbegun_task_runs_again(void) {
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  const pebble_time_t timeouts[2] = {PEBBLE_DEFAULT, PEBBLE_SEC(60)};
  static unsigned char big[4096];
  pebble_exit_info info;
  pebble_future *f;
  pid_t idle;
  int i;
  for (i = 0; i < 2; i++) {
    int64_t v = 7 + i, out = 0;
    long pid = 0;
    idle = idle_worker_pid(p);
    CU_ASSERT_FATAL(idle > 0);
    CU_ASSERT_EQUAL(kill(idle, SIGSTOP), 0);
    f = sched(p, square, &v, sizeof v, timeouts[i]);
    CU_ASSERT(handed_within(f, 30));
    CU_ASSERT_EQUAL(kill(idle, SIGKILL), 0);
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(out, v * v);
    CU_ASSERT_EQUAL(pebble_future_pid(f, &pid), PEBBLE_OK);
    CU_ASSERT(pid > 0 && pid != idle);
    pebble_future_release(f);
    CU_ASSERT(gone_within(idle, 10));
  }

  /* Cancelled while it waits for another worker, or as it starts there:
   * cancelled, and the pool goes on. */
  {
    int64_t us = 20000000;
    long pid = 0;
    double t0;
    idle = idle_worker_pid(p);
    CU_ASSERT_EQUAL(kill(idle, SIGSTOP), 0);
    f = sched(p, nap_us, &us, sizeof us, PEBBLE_DEFAULT);
    CU_ASSERT(handed_within(f, 30));
    CU_ASSERT_EQUAL(kill(idle, SIGKILL), 0);
    t0 = now_s();
    while (pebble_future_pid(f, &pid) == PEBBLE_OK && pid == idle &&
           now_s() - t0 < 30)
      usleep(200);
    CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_CANCELLED);
    CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ECANCELED);
    pebble_future_release(f);
    CU_ASSERT(ok_square(p, 6));
  }

  /* A large message: the worker's death is the task's. */
  memset(big, 1, sizeof big);
  idle = idle_worker_pid(p);
  CU_ASSERT_EQUAL(kill(idle, SIGSTOP), 0);
  f = sched(p, square, big, sizeof big, PEBBLE_DEFAULT);
  CU_ASSERT(handed_within(f, 30));
  CU_ASSERT_EQUAL(kill(idle, SIGKILL), 0);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_EDIED);
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  CU_ASSERT_EQUAL(pebble_future_exit_info(f, &info), PEBBLE_OK);
  CU_ASSERT_EQUAL(info.pid, (long)idle);
  CU_ASSERT_EQUAL(info.signal, SIGKILL);
  pebble_future_release(f);
  CU_ASSERT(ok_square(p, 5));
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* The race the test above pins down: an idle worker killed from outside
 * just before a task is scheduled.  The task may find the worker gone,
 * reach its channel before the process is torn down, or wait for its
 * replacement: it succeeds every time, never charged with that death. */
static void idle_kill_then_schedule(void) {
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  int i, died = 0;
  for (i = 0; i < 40; i++) {
    int64_t v = i, out = -1;
    pid_t idle = idle_worker_pid(p);
    pebble_future *f;
    CU_ASSERT_FATAL(idle > 0);
    CU_ASSERT_EQUAL(kill(idle, SIGKILL), 0);
    f = sched(p, square, &v, sizeof v, PEBBLE_DEFAULT);
    if (pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK)
      died++;
    else
      CU_ASSERT_EQUAL(out, v * v);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(died, 0);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}
#endif

static void test_unbegun_task_runs_again(void) {
  SKIP_IF_NO_PROCESSES();
#ifdef _WIN32
  skip_test(__func__, "stops processes with SIGSTOP, which Windows does not "
                      "have");
#else
  if (workers_without_page() && skip_test(__func__, NO_PAGE_WHY))
    return;
  unbegun_task_runs_again();
#endif
}

static void test_idle_kill_then_schedule(void) {
  SKIP_IF_NO_PROCESSES();
#ifdef _WIN32
  skip_test(__func__, "kills processes with SIGKILL");
#else
  if (workers_without_page() && skip_test(__func__, NO_PAGE_WHY))
    return;
  idle_kill_then_schedule();
#endif
}

static void test_stopped_workers(void) {
  SKIP_IF_NO_PROCESSES();
#ifdef _WIN32
  skip_test(__func__, "stops processes with SIGSTOP, which Windows does not "
                      "have");
#else
  stopped_workers();
#endif
}

static int distinct_workers(pebble_kind k, unsigned workers, unsigned max,
                            int tasks) {
  pebble_pool *p = make(k, workers, max);
  pebble_future *f[16];
  uint64_t ids[16];
  int i, j, n = 0;
  for (i = 0; i < tasks; i++)
    f[i] = sched(p, worker_id, NULL, 0, PEBBLE_DEFAULT);
  pebble_wait_all(f, (size_t)tasks, PEBBLE_SEC(60));
  for (i = 0; i < tasks; i++) {
    const void *d;
    size_t s;
    uint64_t id = 0;
    if (pebble_future_get(f[i], 0, &d, &s) == 0 && s == sizeof id)
      memcpy(&id, d, sizeof id);
    for (j = 0; j < n && ids[j] != id; j++)
      ;
    if (j == n)
      ids[n++] = id;
    pebble_future_release(f[i]);
  }
  pebble_pool_destroy(p);
  return n;
}
static void test_max_tasks(void) {
  pebble_kind k;
  EACH_KIND(k) {
    int n = distinct_workers(k, 2, 0, 5);
    CU_ASSERT(n >= 1 && n <= 2);
    CU_ASSERT_EQUAL(distinct_workers(k, 1, 2, 4), 2);
  }
}

/* A worker at max_tasks is replaced even when the cap on threads leaves
 * no room beside it (max_abandoned 0, one worker): the worker on its way
 * out does not count against the thread replacing it.  Tasks one after
 * another: once task i + 1 resolved, the worker of task i has been
 * counted as replaced (it asks for its replacement and counts itself
 * under one hold of the pool's lock, before the new thread can take a
 * task). */
static void test_max_tasks_without_room(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool_options o;
    pebble_pool_stats st;
    pebble_pool *p = NULL;
    int i;
    pebble_pool_options_init(&o);
    o.workers = 1;
    o.max_tasks = 1;
    o.max_abandoned = 0;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &o), PEBBLE_OK);
    for (i = 0; i < 5; i++)
      CU_ASSERT(ok_square(p, i));
    st.struct_size = sizeof st;
    CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
    if (st.worker_restarts < 4)
      fprintf(stderr, "%s pool, max_abandoned 0: %llu workers replaced "
                      "after 5 tasks with max_tasks 1, expected 4 or 5\n",
              k == PEBBLE_THREAD ? "thread" : "process",
              (unsigned long long)st.worker_restarts);
    CU_ASSERT(st.worker_restarts >= 4);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
}

static int init_value;
static int init_sets(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  init_value = size == sizeof(int) ? *(const int *)arg : -1;
  return 0;
}
static int read_init(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, init_value);
}
static int init_fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 3, "no database");
}
static void test_initializer(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool_options o;
    pebble_pool *p;
    pebble_future *f;
    int v = 77;
    int64_t out = 0;
    init_value = 0;
    pebble_pool_options_init(&o);
    o.workers = 1;
    o.initializer = init_sets;
    o.initializer_arg = &v;
    o.initializer_arg_size = sizeof v;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &o), 0);
    f = sched(p, read_init, NULL, 0, PEBBLE_DEFAULT);
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), 0);
    CU_ASSERT_EQUAL(out, 77);
    pebble_future_release(f);
    pebble_pool_destroy(p);
  }
}
static void test_initializer_failure(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool_options o;
    pebble_pool *p;
    pebble_future *f[3], *g = NULL;
    int i;
    pebble_pool_options_init(&o);
    o.workers = 1;
    o.initializer = init_fails;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &o), 0);
    for (i = 0; i < 3; i++) {
      /* Either accepted and then failed, or refused once broken. */
      int rc = pebble_pool_schedule(p, square, &(int64_t){2},
                                    sizeof(int64_t), NULL, &f[i]);
      CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_EBROKEN);
      if (rc != PEBBLE_OK) {
        f[i] = NULL;
        continue;
      }
      CU_ASSERT_EQUAL(pebble_future_wait(f[i], PEBBLE_SEC(30)), PEBBLE_OK);
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_EBROKEN);
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_future_message(f[i]),
                                    "no database"));
      pebble_future_release(f[i]);
    }
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, square, NULL, 0, NULL, &g),
                    PEBBLE_EBROKEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "no database"));
    pebble_pool_destroy(p);
  }
}

static void test_close_stop_join(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 1, 0);
    pebble_future *f[6], *g = NULL;
    int i, ms = 300;
    /* join on an open pool is refused */
    CU_ASSERT_EQUAL(pebble_pool_join(p, 0), PEBBLE_ESTATE);
    for (i = 0; i < 3; i++)
      f[i] = sched(p, square, &(int64_t){i}, sizeof(int64_t), PEBBLE_DEFAULT);
    CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, square, NULL, 0, NULL, &g),
                    PEBBLE_ECLOSED);
    CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
    for (i = 0; i < 3; i++) {
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_OK); /* ran */
      pebble_future_release(f[i]);
    }
    pebble_pool_destroy(p);

    p = make(k, 1, 0);
    f[0] = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
    for (i = 1; i < 6; i++)
      f[i] = sched(p, square, &(int64_t){i}, sizeof(int64_t), PEBBLE_DEFAULT);
    usleep(50000);
    /* join with a short timeout while busy */
    pebble_pool_close(p);
    CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_MSEC(10)), PEBBLE_ENOTREADY);
    CU_ASSERT_EQUAL(pebble_pool_stop(p), PEBBLE_OK);
    for (i = 0; i < 6; i++) /* every future resolved by stop */
      CU_ASSERT(pebble_future_status(f[i]) != PEBBLE_ENOTREADY);
    for (i = 1; i < 6; i++)
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_ECANCELED);
    CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
    for (i = 0; i < 6; i++)
      pebble_future_release(f[i]);
    pebble_pool_destroy(p);
  }
}

/* A closed pool whose queue holds only cancelled tasks is done once its
 * running task is: join returns and the workers go (the cancelled tasks
 * are dropped as a worker looks for work, and that worker must then be
 * let go too).  Both kinds, and a process pool that sends ahead. */
static void test_close_with_only_cancelled_queued(void) {
  pebble_kind k;
  int ahead;
  EACH_KIND(k) {
    for (ahead = 0; ahead < (k == PEBBLE_PROCESS ? 2 : 1); ahead++) {
      pebble_pool_options o;
      pebble_pool *p = NULL;
      pebble_future *run, *queued[3];
      int i, ms = 300;
      size_t n = 99;
      long pids[4];
      pebble_pool_options_init(&o);
      o.workers = 1;
      o.send_ahead = ahead ? PEBBLE_SEND_AHEAD_AUTO : PEBBLE_SEND_AHEAD_NEVER;
      CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &o), PEBBLE_OK);
      run = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
      CU_ASSERT(running_within(run, 30));
      for (i = 0; i < 3; i++)
        queued[i] = sched(p, square, &(int64_t){i}, sizeof(int64_t),
                          PEBBLE_DEFAULT);
      usleep(50000); /* in the queue by now, not just in the inbox */
      for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(pebble_future_cancel(queued[i]), PEBBLE_OK);
      CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
      /* Joined once the running task is over (a join already waiting
       * is another path). */
      CU_ASSERT_EQUAL(pebble_future_wait(run, PEBBLE_SEC(30)), PEBBLE_OK);
      usleep(50000);
      CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
      CU_ASSERT_EQUAL(pebble_future_status(run), PEBBLE_OK);
      if (k == PEBBLE_PROCESS) {
        CU_ASSERT_EQUAL(pebble_pool_worker_pids(p, pids, 4, &n), PEBBLE_OK);
        CU_ASSERT_EQUAL(n, 0);
      }
      for (i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(pebble_future_status(queued[i]), PEBBLE_ECANCELED);
        pebble_future_release(queued[i]);
      }
      pebble_future_release(run);
      CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
    }
  }
}

static pebble_pool *_Atomic from_inside;
static atomic_int inside_join_rc, inside_stop_rc;
static int stops_own_pool(pebble_ctx *ctx, const void *arg, size_t size) {
  pebble_pool *p;
  (void)ctx, (void)arg, (void)size;
  while ((p = atomic_load(&from_inside)) == NULL)
    usleep(1000);
  atomic_store(&inside_join_rc, pebble_pool_join(p, 0));
  atomic_store(&inside_stop_rc, pebble_pool_stop(p));
  return 0;
}
static void test_stop_from_task(void) {
  pebble_pool *p = make(PEBBLE_THREAD, 2, 0);
  pebble_future *f = sched(p, stops_own_pool, NULL, 0, PEBBLE_DEFAULT);
  atomic_store(&from_inside, p);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(atomic_load(&inside_join_rc), PEBBLE_EDEADLK);
  CU_ASSERT_EQUAL(atomic_load(&inside_stop_rc), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
  pebble_future_release(f);
  pebble_pool_destroy(p);
  atomic_store(&from_inside, NULL);
}

static atomic_int cb_join_rc, cb_stop_rc, cb_ran;
static void stops_in_callback(pebble_future *f, void *user) {
  pebble_pool *p = user;
  (void)f;
  atomic_store(&cb_join_rc, pebble_pool_join(p, 0));
  atomic_store(&cb_stop_rc, pebble_pool_stop(p));
  atomic_store(&cb_ran, 1);
}
static void test_stop_from_callback(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 1, 0);
    pebble_task_options o;
    pebble_future *f;
    int i;
    atomic_store(&cb_ran, 0);
    pebble_task_options_init(&o);
    o.callback = stops_in_callback;
    o.callback_data = p;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, square, &(int64_t){2},
                                         sizeof(int64_t), &o, &f),
                    0);
    for (i = 0; i < 1000 && !atomic_load(&cb_ran); i++)
      usleep(10000);
    CU_ASSERT_EQUAL(atomic_load(&cb_join_rc), PEBBLE_EDEADLK);
    CU_ASSERT_EQUAL(atomic_load(&cb_stop_rc), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
    pebble_future_release(f);
    pebble_pool_destroy(p);
  }
}

#define BIG ((size_t)110 << 20)
static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  return pebble_result_set(ctx, arg, size);
}
static void test_big_argument(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 1, 0);
  unsigned char *in = malloc(BIG);
  const void *d;
  size_t s = 0, i;
  pebble_future *f, *g;
  CU_ASSERT_PTR_NOT_NULL_FATAL(in);
  for (i = 0; i < BIG; i++)
    in[i] = (unsigned char)(i * 7 + (i >> 11));
  f = sched(p, echo, in, BIG, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(120), &d, &s), PEBBLE_OK);
  CU_ASSERT_EQUAL(s, BIG);
  CU_ASSERT(s == BIG && memcmp(d, in, BIG) == 0);
  pebble_future_release(f);
  /* Stop while a large argument is in flight: everything resolves. */
  f = sched(p, echo, in, BIG, PEBBLE_DEFAULT);
  g = sched(p, echo, in, BIG, PEBBLE_DEFAULT);
  pebble_pool_stop(p);
  CU_ASSERT(pebble_future_status(f) != PEBBLE_ENOTREADY);
  CU_ASSERT(pebble_future_status(g) != PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
  pebble_future_release(f);
  pebble_future_release(g);
  pebble_pool_destroy(p);
  free(in);
}

/* Its argument: the result's size, bits inverted (4 bytes: none of them
 * zero for a small size), then padding to the size under test; returns
 * that many bytes, or a string of that length when the size has its top
 * bit set. */
#define AS_STRING 0x80000000u
#define TWICE 0x40000000u /* a first result, replaced by the one asked */
static unsigned char result_byte(uint32_t n, uint32_t j) {
  return (unsigned char)(n * 31u + j * 7u + 1u);
}
static int sized_result(pebble_ctx *ctx, const void *arg, size_t size) {
  uint32_t n, j;
  char buf[64];
  if (size < sizeof n)
    return 1;
  memcpy(&n, arg, sizeof n);
  n = ~n;
  if (n & TWICE) { /* first a result of another size, which this replaces */
    n &= ~TWICE;
    memset(buf, 'x', sizeof buf);
    if (pebble_result_set(ctx, buf, 40 - n) != PEBBLE_OK)
      return 2;
  }
  if (n & AS_STRING) {
    n &= ~AS_STRING;
    for (j = 0; j < n && j < sizeof buf - 1; j++)
      buf[j] = (char)('a' + (n + j) % 26);
    buf[j] = '\0';
    return pebble_result_string(ctx, buf);
  }
  for (j = 0; j < n && j < sizeof buf; j++)
    buf[j] = (char)result_byte(n, j);
  return pebble_result_set(ctx, buf, n);
}
/* Small results may be kept where the task's argument was, in the
 * future's own memory: every result size around that room's (16 bytes
 * in a pool task's block, the argument's size beside a larger argument,
 * none beside one kept apart), as bytes, as a string, and set over a
 * first result of another size (a task's small results are made in its
 * ctx, not malloc'd: the replaced one must not leak or show through);
 * all futures alive at once so that a result written past its room
 * would show in a neighbour, read after the pool is gone, and
 * released. */
static void test_small_results_in_place(void) {
  static const size_t arg_sizes[] = {4, 8, 15, 16, 17, 40, 256, 257};
  static const uint32_t variant[3] = {0, AS_STRING, TWICE};
  enum { NARG = sizeof arg_sizes / sizeof arg_sizes[0], MAXN = 40 };
  unsigned char arg[300];
  pebble_kind k;
  memset(arg, 0xA5, sizeof arg);
  EACH_KIND(k) {
    pebble_pool *p = make(k, 2, 0);
    pebble_future *f[NARG][MAXN + 1][3];
    size_t a;
    uint32_t n, str;
    for (a = 0; a < NARG; a++)
      for (n = 0; n <= MAXN; n++)
        for (str = 0; str < 3; str++) {
          uint32_t v = ~(n | variant[str]);
          memcpy(arg, &v, sizeof v);
          f[a][n][str] = sched(p, sized_result, arg, arg_sizes[a],
                               PEBBLE_DEFAULT);
        }
    for (a = 0; a < NARG; a++)
      for (n = 0; n <= MAXN; n++)
        for (str = 0; str < 3; str++)
          CU_ASSERT_EQUAL(pebble_future_wait(f[a][n][str], PEBBLE_SEC(60)),
                          PEBBLE_OK);
    /* Read with the pool gone (destroying it cancels only what waits). */
    pebble_pool_destroy(p);
    for (a = 0; a < NARG; a++)
      for (n = 0; n <= MAXN; n++) {
        const void *data = NULL;
        const char *text = NULL;
        size_t size = 99, len = 99;
        uint32_t j, bad = 0, twice;
        for (twice = 0; twice < 2; twice++) {
          data = NULL;
          size = 99;
          CU_ASSERT_EQUAL(pebble_future_get(f[a][n][twice ? 2 : 0],
                                            PEBBLE_SEC(60), &data, &size),
                          PEBBLE_OK);
          CU_ASSERT_EQUAL(size, n);
          /* An empty result points at a zero byte (the argument's was
           * not), and so does the byte after any result. */
          CU_ASSERT(data == NULL || size != n ||
                    ((const char *)data)[n] == '\0');
          for (j = 0; data != NULL && size == n && j < n; j++)
            bad += ((const unsigned char *)data)[j] != result_byte(n, j);
          CU_ASSERT_EQUAL(bad, 0);
        }
        CU_ASSERT_EQUAL(pebble_future_get_string(f[a][n][1], PEBBLE_SEC(60),
                                                 &text),
                        PEBBLE_OK);
        len = text != NULL ? strlen(text) : 99;
        CU_ASSERT_EQUAL(len, n);
        for (j = 0; text != NULL && len == n && j < n; j++)
          bad += text[j] != (char)('a' + (n + j) % 26);
        CU_ASSERT(text == NULL || len != n || text[n] == '\0');
        CU_ASSERT_EQUAL(bad, 0);
        if (bad != 0)
          printf("(argument of %zu bytes, result of %u: wrong bytes) ",
                 arg_sizes[a], (unsigned)n);
        pebble_future_release(f[a][n][0]);
        pebble_future_release(f[a][n][1]);
        pebble_future_release(f[a][n][2]);
      }
  }
}

/* A callback added while its future resolves runs once, whichever comes
 * first: the caller schedules every task, then follows the pool along
 * the queue, adding each future's callback as soon as its task has
 * started, so that the add races the thread settling that future (for a
 * process pool, the manager reading a batch of outcomes; a settle that
 * looked for callbacks before the append, without waiting out the
 * adder's lock, lost some in every run). */
static atomic_int callbacks_ran;
static void count_callback(pebble_future *f, void *user) {
  (void)f;
  (void)user;
  atomic_fetch_add(&callbacks_ran, 1);
}
static void test_callbacks_race_resolution(void) {
  enum { N = 20000 };
  static pebble_future *f[N];
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 2, 0);
    int64_t i;
    int spins;
    atomic_store(&callbacks_ran, 0);
    for (i = 0; i < N; i++)
      f[i] = sched(p, square, &i, sizeof i, PEBBLE_DEFAULT);
    for (i = 0; i < N; i++) {
      double t0 = now_s();
      while (pebble_future_state(f[i]) == PEBBLE_PENDING && now_s() - t0 < 60)
        ;
      CU_ASSERT_EQUAL(pebble_future_add_callback(f[i], count_callback, NULL),
                      PEBBLE_OK);
    }
    CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(120)), PEBBLE_OK);
    /* Callbacks run on the callback thread, after the futures resolve. */
    for (spins = 0; spins < 2000 && atomic_load(&callbacks_ran) < N; spins++)
      usleep(5000);
    CU_ASSERT_EQUAL(atomic_load(&callbacks_ran), N);
    if (atomic_load(&callbacks_ran) != N)
      printf("(%d of %d callbacks ran) ", atomic_load(&callbacks_ran), N);
    for (i = 0; i < N; i++)
      pebble_future_release(f[i]);
    pebble_pool_destroy(p);
  }
}

static void test_back_pressure(void) {
  pebble_kind k;
  EACH_KIND(k) {
    pebble_pool_options po;
    pebble_task_options o;
    pebble_pool *p;
    pebble_future *busy, *a, *b, *c = NULL;
    int ms = 1500;
    double t0;
    pebble_pool_options_init(&po);
    po.workers = 1;
    po.max_queued = 2;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &po), 0);
    busy = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
    CU_ASSERT(running_within(busy, 30)); /* running, not queued */
    a = sched(p, square, &(int64_t){1}, sizeof(int64_t), PEBBLE_DEFAULT);
    b = sched(p, square, &(int64_t){1}, sizeof(int64_t), PEBBLE_DEFAULT);
    pebble_task_options_init(&o);
    o.queue_wait = 0;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, square, NULL, 0, &o, &c),
                    PEBBLE_EWOULDBLOCK);
    o.queue_wait = PEBBLE_MSEC(200);
    t0 = now_s();
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, square, NULL, 0, &o, &c),
                    PEBBLE_EWOULDBLOCK);
    CU_ASSERT(now_s() - t0 >= 0.19 && now_s() - t0 < 1.4);
    pebble_future_cancel(busy);
    CU_ASSERT_EQUAL(pebble_future_wait(a, PEBBLE_SEC(30)), 0);
    pebble_future_release(busy);
    pebble_future_release(a);
    pebble_future_release(b);
    pebble_pool_destroy(p);
  }
}

/* A thread task that schedules square(arg 3) on the pool it is given,
 * waiting for room as long as it takes, and returns the result. */
static int blocked_submitter(pebble_ctx *ctx, const void *arg, size_t size) {
  pebble_pool *p = *(pebble_pool *const *)arg;
  pebble_task_options o;
  pebble_future *f = NULL;
  int64_t out = 0;
  int rc;
  (void)size;
  pebble_task_options_init(&o);
  o.queue_wait = PEBBLE_FOREVER;
  if ((rc = pebble_pool_schedule(p, square, &(int64_t){3}, sizeof(int64_t),
                                 &o, &f)) != PEBBLE_OK)
    return pebble_fail(ctx, rc, "schedule: %s", pebble_last_error());
  rc = pebble_future_get_int(f, PEBBLE_SEC(60), &out);
  pebble_future_release(f);
  if (rc != PEBBLE_OK)
    return pebble_fail(ctx, rc, "get: %s", pebble_last_error());
  return pebble_result_int(ctx, out);
}

/* Schedulers waiting for room in a full queue are woken as tasks leave it
 * (a signal is sent only while one waits, and a scheduler woken for room
 * it does not take hands the wake-up on): two of them, behind a busy
 * worker and a full queue, both get in once the worker moves on.  In a
 * process pool the first one's task then mostly goes straight to the
 * worker, leaving the queue's place to the second, which slept on before
 * the wake-up was handed on. */
static void test_blocked_submitter_woken(void) {
  pebble_kind k;
  EACH_KIND(k) {
    int round;
    for (round = 0; round < 3; round++) {
      pebble_pool_options po;
      pebble_pool *p;
      pebble_future *busy, *a, *s[2];
      int ms = 300, i;
      pebble_pool_options_init(&po);
      po.workers = 1;
      po.max_queued = 1;
      CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, k, &po), 0);
      busy = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
      CU_ASSERT(running_within(busy, 30)); /* running, not queued */
      a = sched(p, square, &(int64_t){2}, sizeof(int64_t), PEBBLE_DEFAULT);
      /* Both wait for room well before `busy` ends, unless the machine
       * is very loaded (then the round proves less, and still passes). */
      for (i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_THREAD, blocked_submitter,
                                         &p, sizeof p, NULL, &s[i]),
                              PEBBLE_OK);
      for (i = 0; i < 2; i++) {
        int64_t out = 0;
        /* Not a measure of speed: a scheduler never woken would wait
         * until the pool stops. */
        CU_ASSERT_EQUAL(pebble_future_get_int(s[i], PEBBLE_SEC(20), &out),
                        PEBBLE_OK);
        CU_ASSERT_EQUAL(out, 9);
      }
      CU_ASSERT_EQUAL(pebble_future_wait(a, PEBBLE_SEC(30)), PEBBLE_OK);
      pebble_pool_stop(p); /* wakes a scheduler left waiting */
      for (i = 0; i < 2; i++) {
        pebble_future_wait(s[i], PEBBLE_SEC(60));
        pebble_future_release(s[i]);
      }
      pebble_future_release(busy);
      pebble_future_release(a);
      pebble_pool_destroy(p);
    }
  }
}

static void test_nothing_left(void) {
  pebble_kind k;
  int fds, kids, i;
  EACH_KIND(k) {
    pebble_pool *p = make(k, 2, 0);
    CU_ASSERT(ok_square(p, 1));
    pebble_pool_destroy(p);
  }
  usleep(200000);
  fds = count_fds();
  kids = count_children();
  EACH_KIND(k) {
    pebble_pool *p = make(k, 2, 0);
    for (i = 0; i < 5; i++)
      CU_ASSERT(ok_square(p, i));
    pebble_pool_close(p);
    CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(30)), PEBBLE_OK);
    CU_ASSERT_EQUAL(count_children(), kids);
    pebble_pool_destroy(p);
  }
  CU_ASSERT_EQUAL(count_fds(), fds);
  CU_ASSERT_EQUAL(count_children(), kids);
}

static int nested_pool(pebble_ctx *ctx, const void *arg, size_t size) {
  pebble_pool *p;
  pebble_future *f;
  int64_t v = 9, out = 0;
  (void)arg, (void)size;
  if (pebble_pool_create(&p, PEBBLE_PROCESS, NULL) != 0)
    return pebble_fail(ctx, 1, "create: %s", pebble_last_error());
  pebble_pool_schedule(p, square, &v, sizeof v, NULL, &f);
  pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  pebble_future_release(f);
  pebble_pool_destroy(p);
  return pebble_result_int(ctx, out + 1);
}
static void test_nested(void) {
  pebble_kind k;
  SKIP_IF_NO_PROCESSES();
  EACH_KIND(k) {
    /* In a process worker the nested pool starts its manager thread in a
     * child forked from a threaded process, which TSan cannot follow. */
    if (k == PEBBLE_PROCESS && UNDER_TSAN &&
        skip_test("test_nested in a process worker", TSAN_FORK_WHY))
      continue;
    pebble_pool *p = make(k, 1, 0);
    pebble_future *f = sched(p, nested_pool, NULL, 0, PEBBLE_DEFAULT);
    int64_t out = 0;
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &out), 0);
    CU_ASSERT_EQUAL(out, 82);
    pebble_future_release(f);
    pebble_pool_destroy(p);
  }
}

static void test_thousand_crashes(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(PEBBLE_PROCESS, 2, 0);
  pebble_pool_stats st;
  pebble_future *f;
  /* A spawned replacement is a whole new run of this program (under a
   * sanitizer, a slow one): fewer of them prove the same. */
  int i, died = 0, n = spawn_mode() ? 300 : 1000;
  double t0 = now_s();
  for (i = 0; i < n; i++) {
    int rc;
    f = sched(p, crash, NULL, 0, PEBBLE_DEFAULT);
    rc = pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL);
    if (rc == PEBBLE_EDIED)
      died++;
    else /* which path it took, for a failure that is rare */
      printf("\n    crash %d of %d: %s (%d): %s\n", i + 1, n,
             pebble_strerror(rc), rc, pebble_future_message(f));
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(died, n);
  CU_ASSERT(ok_square(p, 12));
  /* Not a speed check (bench/ does those): a crash while running a task
   * must not count towards the respawn back-off, which would stretch
   * 1,000 crashes to about 1,000 s.  Generous for a loaded machine under
   * a sanitizer. */
  CU_ASSERT(now_s() - t0 < 600);
  st.struct_size = sizeof st;
  pebble_pool_stats_get(p, &st);
  CU_ASSERT_EQUAL(st.failed, (uint64_t)n);
  CU_ASSERT(st.worker_restarts >= (uint64_t)n);
  pebble_pool_destroy(p);
}

/* A worker dies and its replacement is starting when the pool is
 * destroyed: destroy must wait for that worker too, not free the pool
 * under it (the manager would read the freed pool at the worker's exit).
 * Replacements start when the pool starts eagerly or has work queued. */
static void test_destroy_while_replacing(void) {
  SKIP_IF_NO_PROCESSES();
  int i, kids = count_children(), n = spawn_mode() ? 10 : 40;
  for (i = 0; i < n; i++) {
    pebble_pool_options o;
    pebble_pool *p = NULL;
    pebble_future *f, *g = NULL;
    int64_t v = 3;
    pebble_pool_options_init(&o);
    o.workers = 1;
    o.start_eagerly = i % 2 == 0;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    f = sched(p, crash, NULL, 0, PEBBLE_DEFAULT);
    if (i % 2 == 1) /* queued behind the crash: needs a replacement */
      g = sched(p, square, &v, sizeof v, PEBBLE_DEFAULT);
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                    PEBBLE_EDIED);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
    if (g != NULL) { /* ran, or cancelled by the stop: resolved either way */
      int rc = pebble_future_get(g, 0, NULL, NULL);
      CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_ECANCELED);
      pebble_future_release(g);
    }
    pebble_future_release(f);
  }
  /* Every replacement was killed and reaped by its destroy. */
  CU_ASSERT_EQUAL(count_children(), kids);
}

#ifdef _WIN32
static void fork_refused_body(void) {}
static void fork_refused_once_body(void) {}
#else
#include <sys/resource.h>
/* In a child of the test: become user nobody, whose process count the
 * limit binds (it does not bind root), with a soft limit of one process;
 * the limit before goes to *before.  Ends the child if it cannot (0: not
 * root, nothing to prove here; 2: the limit could not be read or set). */
static void nobody_limited_to_one(struct rlimit *before) {
  struct rlimit one;
  if (setgid(65534) != 0 || setuid(65534) != 0)
    _exit(0);
  if (getrlimit(RLIMIT_NPROC, before) != 0) {
    printf("getrlimit failed\n");
    _exit(2);
  }
  one.rlim_cur = 1;
  one.rlim_max = before->rlim_max;
  if (setrlimit(RLIMIT_NPROC, &one) != 0) {
    printf("setrlimit failed\n");
    _exit(2);
  }
}

/* fork refused (EAGAIN): every queued future still resolves, with the
 * reason and the number of starts refused. */
static void fork_refused_body(void) {
  pebble_pool *p;
  pebble_future *f[3];
  struct rlimit before;
  int i;
  if (pebble_pool_create(&p, PEBBLE_PROCESS, NULL) != 0) {
    printf("create: %s\n", pebble_last_error());
    _exit(1);
  }
  nobody_limited_to_one(&before);
  for (i = 0; i < 3; i++)
    if (pebble_pool_schedule(p, square, &(int64_t){2}, sizeof(int64_t), NULL,
                             &f[i]) != 0)
      _exit(3);
  if (pebble_wait_all(f, 3, PEBBLE_SEC(30)) != PEBBLE_OK)
    { printf("stranded: %s\n", pebble_last_error()); _exit(4); }
  for (i = 0; i < 3; i++)
    if (pebble_future_status(f[i]) != PEBBLE_ESYSTEM ||
        pebble_future_sys_errno(f[i]) == 0 ||
        strstr(pebble_future_message(f[i]), " 3 times in a row: ") == NULL ||
        strstr(pebble_future_message(f[i]), " (start method ") == NULL) {
      printf("future %d: %s (%s)\n", i,
             pebble_status_name(pebble_future_status(f[i])),
             pebble_future_message(f[i]));
      _exit(5);
    }
  _exit(0);
}

/* A refusal that passes: the pool tries again (after its back-off) and
 * the queued tasks get their results.  What refuses is lifted when the
 * pool logs its first refused start: the process limit of user nobody
 * (fork, forkserver), or a worker program missing until then (spawn: a
 * process that changed its user may not run the program at all). */
static volatile sig_atomic_t refusals_seen;
static struct rlimit nproc_before;
static char missing_program[64], real_program[PATH_MAX];
static void lift_refusal(int level, const char *message, void *data) {
  (void)level, (void)data;
  if (strstr(message, "cannot start a worker process") == NULL ||
      refusals_seen++ != 0)
    return;
  if (missing_program[0] != '\0')
    (void)!symlink(real_program, missing_program);
  else
    setrlimit(RLIMIT_NPROC, &nproc_before);
}
static void fork_refused_once_body(void) {
  pebble_pool_options o;
  pebble_pool *p;
  pebble_future *f[3];
  char dir[] = "/tmp/pebble-refused-XXXXXX";
  int64_t out;
  int i, rc = 0;
  pebble_pool_options_init(&o);
  if (spawn_mode()) {
    ssize_t n = readlink("/proc/self/exe", real_program,
                         sizeof real_program - 1);
    if (n <= 0 || mkdtemp(dir) == NULL)
      _exit(6);
    real_program[n] = '\0';
    snprintf(missing_program, sizeof missing_program, "%s/worker", dir);
    o.worker_program = missing_program;
  }
  if (pebble_pool_create(&p, PEBBLE_PROCESS, &o) != 0) {
    printf("create: %s\n", pebble_last_error());
    _exit(1);
  }
  pebble_set_log_handler(lift_refusal, NULL, PEBBLE_LOG_ERROR);
  if (!spawn_mode())
    nobody_limited_to_one(&nproc_before);
  for (i = 0; i < 3; i++)
    if (pebble_pool_schedule(p, square, &(int64_t){i}, sizeof(int64_t), NULL,
                             &f[i]) != 0)
      _exit(3);
  for (i = 0; i < 3 && rc == 0; i++)
    if (pebble_future_get_int(f[i], PEBBLE_SEC(30), &out) != PEBBLE_OK ||
        out != i * i) {
      printf("future %d: %s (%s) ", i,
             pebble_status_name(pebble_future_status(f[i])),
             pebble_future_message(f[i]));
      rc = 4;
    }
  if (rc == 0 && refusals_seen != 1) {
    printf("%d refused starts seen, not 1 ", (int)refusals_seen);
    rc = 5;
  }
  if (missing_program[0] != '\0') {
    unlink(missing_program);
    rmdir(dir);
  }
  _exit(rc);
}
#endif
static void test_fork_refused(void) {
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT(in_child(fork_refused_body));
}
static void test_fork_refused_once(void) {
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT(in_child(fork_refused_once_body));
}

static int resolved(pebble_future *f) {
  return pebble_future_status(f) != PEBBLE_ENOTREADY;
}

/* pebble_wait_all waits for the last future first; the order must not
 * matter, a NULL entry is refused before any wait, a timeout still holds. */
static void test_wait_all_order(void) {
  pebble_pool *p = make(PEBBLE_THREAD, 2, 0);
  int long_ms = 30000, short_ms = 200;
  pebble_future *f[3], *with_null[3], *g[2];
  f[0] = sched(p, cooperative, &long_ms, sizeof long_ms, PEBBLE_DEFAULT);
  f[1] = sched(p, square, &(int64_t){3}, sizeof(int64_t), PEBBLE_DEFAULT);
  f[2] = sched(p, square, &(int64_t){4}, sizeof(int64_t), PEBBLE_DEFAULT);
  with_null[0] = f[0];
  with_null[1] = NULL;
  with_null[2] = f[2];
  CU_ASSERT_EQUAL(pebble_wait_all(with_null, 3, PEBBLE_SEC(60)),
                  PEBBLE_EINVAL);
  CU_ASSERT(strstr(pebble_last_error(), "futures[1]") != NULL);
  CU_ASSERT_FALSE(resolved(f[0])); /* nothing was waited for */
  /* The first never ends in time; the last two resolve meanwhile. */
  CU_ASSERT_EQUAL(pebble_wait_all(f, 3, PEBBLE_MSEC(100)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_wait_all(f + 1, 2, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_FALSE(resolved(f[0]));
  /* Resolved last but listed first. */
  CU_ASSERT_EQUAL(pebble_future_cancel(f[0]), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_wait_all(f, 3, PEBBLE_SEC(60)), PEBBLE_OK);
  /* Listed last, resolved last: the short task outlives the quick one. */
  g[0] = sched(p, square, &(int64_t){5}, sizeof(int64_t), PEBBLE_DEFAULT);
  g[1] = sched(p, cooperative, &short_ms, sizeof short_ms, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(pebble_wait_all(g, 2, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT(resolved(g[0]) && resolved(g[1]));
  CU_ASSERT_EQUAL(pebble_wait_all(g, 0, PEBBLE_NOWAIT), PEBBLE_OK);
  pebble_future_release(f[0]);
  pebble_future_release(f[1]);
  pebble_future_release(f[2]);
  pebble_future_release(g[0]);
  pebble_future_release(g[1]);
  pebble_pool_destroy(p);
}

/* Thread pools schedule without the pool lock.  Callers racing close or
 * stop: each call is either refused, or its future resolves (with its
 * result, or cancelled by stop); join returns; nothing is left queued. */
#define RACERS 4
#define RACE_MAX 4096
typedef struct racer {
  pebble_pool *pool;
  pebble_future *f[RACE_MAX];
  size_t n;
  int refused_rc;
} racer;
static void *race_schedule(void *arg) {
  racer *r = arg;
  int rc = PEBBLE_OK;
  while (r->n < RACE_MAX) {
    rc = pebble_pool_schedule(r->pool, square, &(int64_t){3},
                              sizeof(int64_t), NULL, &r->f[r->n]);
    if (rc != PEBBLE_OK)
      break;
    r->n++;
  }
  r->refused_rc = rc;
  return NULL;
}
/* Both kinds: most of a process pool's tasks too go in without the pool
 * lock while others wait in its queue. */
static void test_schedule_races_close(void) {
  static racer rs[RACERS];
  int round, rounds = 0;
  pebble_kind kind = PEBBLE_THREAD;
  EACH_KIND(kind)
  for (round = 0, rounds = kind == PEBBLE_THREAD ? 100 : 20; round < rounds;
       round++) {
    /* Workers are forked (on demand, and again after a close let them go)
     * while the racers allocate. */
    if (kind == PEBBLE_PROCESS && UNDER_ASAN && threaded_fork_mode() &&
        skip_test(__func__, ASAN_FORK_WHY))
      break;
    int stop = round % 2;
    pebble_pool *p = make(kind, 2, 0);
    pthread_t th[RACERS];
    size_t i, accepted = 0, ok = 0, cancelled = 0;
    int j;
    pebble_pool_stats st;
    for (j = 0; j < RACERS; j++) {
      rs[j].pool = p;
      rs[j].n = 0;
      CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, race_schedule, &rs[j]),
                            0);
    }
    usleep(200 + 150 * (round % 8));
    CU_ASSERT_EQUAL(stop ? pebble_pool_stop(p) : pebble_pool_close(p),
                    PEBBLE_OK);
    for (j = 0; j < RACERS; j++)
      pthread_join(th[j], NULL);
    if (pebble_pool_join(p, PEBBLE_SEC(60)) != PEBBLE_OK) {
      /* A task left behind: destroy would wait for it for ever. */
      CU_FAIL("join: tasks were left in the queue of a closed pool");
      return;
    }
    for (j = 0; j < RACERS; j++) {
      /* Refused for the pool's state, unless it ran out of room first. */
      CU_ASSERT(rs[j].n == RACE_MAX || rs[j].refused_rc == PEBBLE_ECLOSED);
      for (i = 0; i < rs[j].n; i++) {
        int st_rc = pebble_future_status(rs[j].f[i]);
        ok += st_rc == PEBBLE_OK;
        cancelled += st_rc == PEBBLE_ECANCELED;
        CU_ASSERT(st_rc == PEBBLE_OK || (stop && st_rc == PEBBLE_ECANCELED));
        pebble_future_release(rs[j].f[i]);
      }
      accepted += rs[j].n;
    }
    CU_ASSERT_EQUAL(ok + cancelled, accepted);
    st.struct_size = sizeof st;
    CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_EQUAL(st.done, ok);
    CU_ASSERT_EQUAL(st.cancelled, cancelled);
    pebble_pool_destroy(p);
  }
}

/* The queue's bound holds exactly while several callers race for its
 * last places without the lock. */
static pthread_barrier_t fill_start;
static void *race_fill(void *arg) {
  racer *r = arg;
  pebble_task_options o;
  int k;
  pebble_task_options_init(&o);
  o.queue_wait = PEBBLE_NOWAIT;
  pthread_barrier_wait(&fill_start);
  for (k = 0; k < 40; k++) {
    int rc = pebble_pool_schedule(r->pool, square, &(int64_t){2},
                                  sizeof(int64_t), &o, &r->f[r->n]);
    if (rc == PEBBLE_OK)
      r->n++;
    else if (rc != PEBBLE_EWOULDBLOCK)
      r->refused_rc = rc;
  }
  return NULL;
}
static void test_bound_races(void) {
  static racer rs[RACERS];
  int round;
  pebble_kind kind = PEBBLE_THREAD;
  EACH_KIND(kind)
  for (round = 0; round < 30; round++) {
    pebble_pool_options po;
    pebble_pool *p;
    pebble_future *busy;
    pthread_t th[RACERS];
    pebble_pool_stats st;
    int ms = 30000, j;
    size_t i, accepted = 0;
    pebble_pool_options_init(&po);
    po.workers = 1;
    po.max_queued = 64;
    /* Tasks sent ahead to the busy worker would leave the queue. */
    po.send_ahead = PEBBLE_SEND_AHEAD_NEVER;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, kind, &po), 0);
    busy = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
    CU_ASSERT(running_within(busy, 30));
    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&fill_start, NULL, RACERS), 0);
    for (j = 0; j < RACERS; j++) {
      rs[j].pool = p;
      rs[j].n = 0;
      rs[j].refused_rc = PEBBLE_OK;
      CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, race_fill, &rs[j]),
                            0);
    }
    for (j = 0; j < RACERS; j++) {
      pthread_join(th[j], NULL);
      CU_ASSERT_EQUAL(rs[j].refused_rc, PEBBLE_OK);
      accepted += rs[j].n;
    }
    pthread_barrier_destroy(&fill_start);
    CU_ASSERT_EQUAL(accepted, 64);
    st.struct_size = sizeof st;
    CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
    CU_ASSERT_EQUAL(st.queued, 64);
    pebble_future_cancel(busy);
    for (j = 0; j < RACERS; j++)
      for (i = 0; i < rs[j].n; i++) {
        CU_ASSERT_EQUAL(pebble_future_wait(rs[j].f[i], PEBBLE_SEC(60)),
                        PEBBLE_OK);
        CU_ASSERT_EQUAL(pebble_future_status(rs[j].f[i]), PEBBLE_OK);
        pebble_future_release(rs[j].f[i]);
      }
    pebble_future_release(busy);
    pebble_pool_destroy(p);
  }
}

/* Future ids stay unique and non-zero while schedulers race on one pool
 * and on another (each pool hands out ids a batch at a time, and a
 * scheduler that finds another in the pool's batch takes the library's):
 * the ids of every future, also of a one-shot task's, differ. */
#define ID_RACERS 4
#define ID_TASKS 3000
typedef struct {
  pebble_pool *pool;
  pebble_future *f[ID_TASKS];
} id_racer;
static void *race_ids(void *arg) {
  id_racer *r = arg;
  size_t i;
  for (i = 0; i < ID_TASKS; i++)
    if (pebble_pool_schedule(r->pool, square, &(int64_t){2}, sizeof(int64_t),
                             NULL, &r->f[i]) != PEBBLE_OK)
      r->f[i] = NULL;
  return NULL;
}
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static void test_ids_unique(void) {
  static id_racer rs[ID_RACERS];
  static uint64_t ids[ID_RACERS * ID_TASKS + 1];
  pebble_pool *p[2];
  pebble_future *one = NULL;
  pthread_t th[ID_RACERS];
  size_t i, n = 0;
  int j;
  for (j = 0; j < 2; j++)
    p[j] = make(PEBBLE_THREAD, 2, 0);
  for (j = 0; j < ID_RACERS; j++) {
    rs[j].pool = p[j % 2];
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, race_ids, &rs[j]), 0);
  }
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, square, &(int64_t){2},
                             sizeof(int64_t), NULL, &one),
                  PEBBLE_OK);
  for (j = 0; j < ID_RACERS; j++)
    pthread_join(th[j], NULL);
  if (one != NULL)
    ids[n++] = pebble_future_id(one);
  for (j = 0; j < ID_RACERS; j++)
    for (i = 0; i < ID_TASKS; i++) {
      CU_ASSERT_PTR_NOT_NULL(rs[j].f[i]);
      if (rs[j].f[i] == NULL)
        continue;
      ids[n++] = pebble_future_id(rs[j].f[i]);
      CU_ASSERT_EQUAL(pebble_future_wait(rs[j].f[i], PEBBLE_SEC(60)),
                      PEBBLE_OK);
      pebble_future_release(rs[j].f[i]);
    }
  qsort(ids, n, sizeof ids[0], cmp_u64);
  CU_ASSERT(n > 0 && ids[0] != 0);
  for (i = 1; i < n; i++)
    if (ids[i] == ids[i - 1]) {
      CU_FAIL("two futures have the same id");
      break;
    }
  pebble_future_wait(one, PEBBLE_SEC(60));
  pebble_future_release(one);
  for (j = 0; j < 2; j++)
    pebble_pool_destroy(p[j]);
}

/* A process pool's statistics count a task as queued until it starts,
 * also once it was sent ahead to a busy worker. */
static void test_stats_count_sent_ahead(void) {
  pebble_pool_options po;
  pebble_pool *p;
  pebble_future *busy, *f[10];
  pebble_pool_stats st;
  int ms = 30000, k, i;
  if (PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    return;
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.send_ahead = PEBBLE_SEND_AHEAD_ALWAYS;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &po), 0);
  busy = sched(p, cooperative, &ms, sizeof ms, PEBBLE_DEFAULT);
  CU_ASSERT(running_within(busy, 30));
  for (i = 0; i < 10; i++)
    f[i] = sched(p, square, &(int64_t){i}, sizeof(int64_t), PEBBLE_DEFAULT);
  st.struct_size = sizeof st;
  /* The manager sends them ahead soon after (a backend that can);
   * counted the same before. */
  for (k = 0; k < 300; k++) {
    CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
    CU_ASSERT_EQUAL(st.queued, 10);
    if (st.sent_ahead >= 10 || !ahead_expected())
      break;
    usleep(10000);
  }
  CU_ASSERT_EQUAL(st.sent_ahead, ahead_expected() ? 10 : 0);
  CU_ASSERT_EQUAL(st.queued, 10);
  pebble_future_cancel(busy);
  for (i = 0; i < 10; i++) {
    CU_ASSERT_EQUAL(pebble_future_wait(f[i], PEBBLE_SEC(60)), PEBBLE_OK);
    pebble_future_release(f[i]);
  }
  pebble_future_release(busy);
  pebble_pool_destroy(p);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
/* Tasks of one scheduler start in the order it scheduled them, in a
 * process pool with one worker, while the queue fills and empties: most
 * tasks go in without the pool lock behind others (and wait in an inbox
 * until the manager moves them to the queue), some go straight to the
 * idle worker; none may overtake one scheduled before it.  Each task
 * returns the time it started. */
static int start_time(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, now_ns());
}
#define ORDER_TASKS 20000
static void test_process_order(void) {
  static pebble_future *f[ORDER_TASKS];
  pebble_pool *p;
  unsigned seed = (unsigned)time(NULL);
  int64_t before = 0, at;
  size_t i, wrong = 0;
  if (PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    return;
  p = make(PEBBLE_PROCESS, 1, 0);
  for (i = 0; i < ORDER_TASKS; i++) {
    f[i] = sched(p, start_time, NULL, 0, PEBBLE_DEFAULT);
    /* The worker is forked for the first task: nothing allocates here
     * meanwhile (AddressSanitizer's allocator, see ASAN_FORK_WHY). */
    if (i == 0)
      CU_ASSERT_EQUAL(pebble_future_wait(f[0], PEBBLE_SEC(60)), PEBBLE_OK);
    /* Now and then the queue runs dry: the next task finds the worker
     * idle, or about to be. */
    if (rand_r(&seed) % 64 == 0) {
      CU_ASSERT_EQUAL(pebble_future_wait(f[i], PEBBLE_SEC(60)), PEBBLE_OK);
      if (rand_r(&seed) % 2)
        usleep(rand_r(&seed) % 200);
    }
  }
  for (i = 0; i < ORDER_TASKS; i++) {
    CU_ASSERT_EQUAL_FATAL(pebble_future_get_int(f[i], PEBBLE_SEC(60), &at),
                          PEBBLE_OK);
    wrong += at <= before;
    before = at;
    pebble_future_release(f[i]);
  }
  CU_ASSERT_EQUAL(wrong, 0);
  pebble_pool_destroy(p);
}

/* Workers that went to sleep are woken for every task: callers schedule
 * one task at a time with pauses that let the workers spin out and sleep;
 * a lost wake-up leaves a future unresolved (the wait times out).  In a
 * process pool the same races the scheduler's choice between handing its
 * task to an idle worker and leaving it to the manager thread (whose
 * command may be queued or running as the task is pushed). */
static void *one_at_a_time(void *arg) {
  racer *r = arg;
  unsigned seed = (unsigned)(uintptr_t)r;
  int k;
  for (k = 0; k < 300; k++) {
    pebble_future *f = NULL;
    int64_t out = 0;
    if (pebble_pool_schedule(r->pool, square, &(int64_t){k}, sizeof(int64_t),
                             NULL, &f) != PEBBLE_OK) {
      r->refused_rc = PEBBLE_ESYSTEM;
      break;
    }
    if (pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK ||
        out != (int64_t)k * k) {
      r->refused_rc = PEBBLE_ENOTREADY;
      pebble_future_release(f);
      break;
    }
    pebble_future_release(f);
    usleep(rand_r(&seed) % 3 == 0 ? rand_r(&seed) % 400 : 0);
  }
  return NULL;
}
static void no_lost_wakeup(pebble_kind kind) {
  static racer rs[3];
  pebble_pool *p = make(kind, 2, 0);
  pthread_t th[3];
  int j;
  for (j = 0; j < 3; j++) {
    rs[j].pool = p;
    rs[j].refused_rc = PEBBLE_OK;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, one_at_a_time, &rs[j]),
                          0);
  }
  for (j = 0; j < 3; j++) {
    pthread_join(th[j], NULL);
    CU_ASSERT_EQUAL(rs[j].refused_rc, PEBBLE_OK);
  }
  pebble_pool_destroy(p);
}
static void test_no_lost_wakeup(void) {
  no_lost_wakeup(PEBBLE_THREAD);
  if (!PROCESS_HALF_SKIPPED(PEBBLE_PROCESS))
    no_lost_wakeup(PEBBLE_PROCESS);
}

/* A task scheduled while one worker takes a long task runs on the other,
 * sleeping worker at once, not when the long one ends: whichever thread
 * pays for the wake-up (the scheduler, or a worker leaving tasks queued
 * as it starts one), none may assume that an awake worker will come back
 * soon.  Here the long task waits for the short one (30 s at most): a
 * short task stranded behind it shows as the long one failing.  Pauses
 * of random length between the two put the second scheduling before,
 * during and after the moment the first worker takes its task. */
static pthread_mutex_t partner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t partner_cond = PTHREAD_COND_INITIALIZER;
static int partner_done;
static int partner(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  pthread_mutex_lock(&partner_lock);
  partner_done = 1;
  pthread_cond_broadcast(&partner_cond);
  pthread_mutex_unlock(&partner_lock);
  return 0;
}
static int wait_for_partner(pebble_ctx *ctx, const void *arg, size_t size) {
  struct timespec until;
  int done;
  (void)ctx;
  (void)arg;
  (void)size;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&partner_lock);
  while (!partner_done &&
         pthread_cond_timedwait(&partner_cond, &partner_lock, &until) == 0)
    ;
  done = partner_done;
  pthread_mutex_unlock(&partner_lock);
  return done ? 0 : 1;
}
static void test_queued_behind_long_task(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  unsigned seed = 7;
  int k;
  pebble_pool_options_init(&o);
  o.workers = 2;
  o.start_eagerly = 1;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_THREAD, &o), PEBBLE_OK);
  for (k = 0; k < 200; k++) {
    pebble_future *longer, *shorter;
    unsigned pause = rand_r(&seed) % 4;
    partner_done = 0;
    if (k % 10 == 0)
      usleep(20000); /* both workers spin out and sleep */
    longer = sched(p, wait_for_partner, NULL, 0, PEBBLE_FOREVER);
    if (pause > 0)
      usleep(rand_r(&seed) % (pause * 100));
    shorter = sched(p, partner, NULL, 0, PEBBLE_FOREVER);
    CU_ASSERT_EQUAL(pebble_future_wait(longer, PEBBLE_SEC(60)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_wait(shorter, PEBBLE_SEC(60)), PEBBLE_OK);
    if (pebble_future_state(longer) != PEBBLE_DONE) {
      fprintf(stderr, "round %d: the short task waited behind the long one "
                      "(%s)\n",
              k, pebble_future_message(longer));
      CU_FAIL("a task queued behind a long one waited for it");
    }
    pebble_future_release(longer);
    pebble_future_release(shorter);
  }
  pebble_pool_destroy(p);
}

/* Thread workers sleep on a condition each, in a record that a new
 * thread takes over when its thread ends (here after every task, then
 * every third: max_tasks 1 and 3), so that a signal sent after the pool's lock is let go
 * never reaches freed memory.  Two callers schedule with pauses that let
 * the workers run dry and sleep, so that wake-ups, ends and new threads
 * overlap: every result must come, every task be counted once, and
 * every thread end after max_tasks tasks (a record taken over with its
 * old thread's state would end its new thread early).  A scheduler that
 * read the record after the lock was let go (to find the condition to
 * signal) raced the next thread's setting up of that record: the
 * ThreadSanitizer run of this test saw it in 3 of 6 runs. */
typedef struct recycle_arg {
  pebble_pool *pool;
  unsigned seed;
  int wrong;
} recycle_arg;
static void *recycle_caller(void *arg) {
  recycle_arg *a = arg;
  int k;
  for (k = 0; k < 300; k++) {
    int64_t v = k, out = -1;
    pebble_future *f = NULL;
    if (pebble_pool_schedule(a->pool, square, &v, sizeof v, NULL, &f) !=
        PEBBLE_OK) {
      a->wrong++;
      continue;
    }
    if (rand_r(&a->seed) % 3 == 0)
      usleep(rand_r(&a->seed) % 300); /* the workers may run dry */
    if (pebble_future_get_int(f, PEBBLE_SEC(60), &out) != PEBBLE_OK ||
        out != v * v)
      a->wrong++;
    pebble_future_release(f);
  }
  return NULL;
}
static void worker_records_reused(unsigned max_tasks) {
  pebble_pool *p = make(PEBBLE_THREAD, 2, max_tasks);
  pebble_pool_stats st;
  recycle_arg args[2];
  pthread_t th[2];
  uint64_t ends = 600 / max_tasks; /* threads that ran max_tasks tasks */
  int i;
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (i = 0; i < 2; i++) {
    args[i].pool = p;
    args[i].seed = 11u + (unsigned)i;
    args[i].wrong = 0;
    CU_ASSERT_EQUAL_FATAL(
        pthread_create(&th[i], NULL, recycle_caller, &args[i]), 0);
  }
  for (i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(args[i].wrong, 0);
  }
  CU_ASSERT_EQUAL(pebble_pool_close(p), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(p, PEBBLE_SEC(60)), PEBBLE_OK);
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
  /* Each thread ends after exactly max_tasks tasks (the last two may run
   * fewer): a record taken over with its old thread's task count would
   * end its new thread early, one with its counts would count twice. */
  if (st.worker_restarts > ends || st.worker_restarts + 2 < ends) {
    fprintf(stderr, "max_tasks %u: %llu threads ended, expected %llu or "
                    "up to 2 fewer\n", max_tasks,
            (unsigned long long)st.worker_restarts, (unsigned long long)ends);
    CU_FAIL("threads ended after the wrong number of tasks");
  }
  CU_ASSERT_EQUAL(st.done, 600);
  CU_ASSERT_EQUAL(st.failed, 0);
  pebble_pool_destroy(p);
}
static void test_worker_records_reused(void) {
  worker_records_reused(1);
  worker_records_reused(3);
}

static void test_bad_input(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future *f = NULL;
  if (!PROCESS_HALF_SKIPPED(PEBBLE_PROCESS)) {
    pebble_pool_options_init(&o);
    o.workers = 0;
    CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_EINVAL);
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_EINVAL);
  }
  CU_ASSERT_EQUAL(pebble_pool_create(&p, (pebble_kind)7, NULL),
                  PEBBLE_EINVAL);
  p = make(PEBBLE_THREAD, 1, 0);
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, NULL, NULL, 0, NULL, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_pool_join(p, -3), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_pool_schedule(NULL, square, NULL, 0, NULL, &f),
                  PEBBLE_EINVAL);
  pebble_pool_destroy(p);
  CU_ASSERT_EQUAL(pebble_pool_destroy(NULL), PEBBLE_OK);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"results, both kinds", test_results},
      {"process task timeout: killed, replaced", test_timeout_process},
      {"thread task timeout: abandoned, queue moves",
       test_timeout_thread_abandoned},
      {"join waits for an abandoned thread", test_abandoned_join},
      {"cancelled queued task never starts", test_cancel_queued_never_starts},
      {"cancel a running process task", test_cancel_running_process},
      {"crash and exit(0) in a worker", test_crashes},
      {"waiting for a worker's end", test_wait_exit},
      {"waiting for a worker's end, cancels racing the hand-over",
       test_wait_exit_cancel_race},
      {"idle worker killed from outside", test_idle_worker_killed},
      {"workers stopped from outside: timeout, cancel, join, destroy",
       test_stopped_workers},
      {"a task whose worker died before beginning it runs again",
       test_unbegun_task_runs_again},
      {"an idle worker killed just before a task is scheduled",
       test_idle_kill_then_schedule},
      {"max_tasks recycling", test_max_tasks},
      {"max_tasks with no room beside the worker (max_abandoned 0)",
       test_max_tasks_without_room},
      {"initializer state", test_initializer},
      {"initializer failure breaks the pool", test_initializer_failure},
      {"close, stop, join", test_close_stop_join},
      {"close with only cancelled tasks queued: join returns",
       test_close_with_only_cancelled_queued},
      {"stop and join from a task", test_stop_from_task},
      {"stop and join from a callback", test_stop_from_callback},
      {"110 MB argument; stop with one in flight", test_big_argument},
      {"small results of every size beside arguments of every size",
       test_small_results_in_place},
      {"callbacks added while their futures resolve run once",
       test_callbacks_race_resolution},
      {"back-pressure", test_back_pressure},
      {"schedulers blocked on a full queue are woken",
       test_blocked_submitter_woken},
      {"future ids unique while schedulers race", test_ids_unique},
      {"nothing left after join", test_nothing_left},
      {"a task uses a process pool", test_nested},
      {"1,000 crashing tasks in a row (300 with spawn)", test_thousand_crashes},
      {"destroy while a replacement worker starts",
       test_destroy_while_replacing},
      {"fork refused: queued futures resolve", test_fork_refused},
      {"fork refused once: tried again, results come", test_fork_refused_once},
      {"wait_all: any order, NULL refused first, timeout",
       test_wait_all_order},
      {"scheduling races close and stop: nothing left behind",
       test_schedule_races_close},
      {"the queue's bound holds with callers racing", test_bound_races},
      {"sleeping workers are woken for every task, both kinds",
       test_no_lost_wakeup},
      {"a process pool starts one scheduler's tasks in order",
       test_process_order},
      {"statistics count tasks sent ahead as queued",
       test_stats_count_sent_ahead},
      {"a task queued behind a long one runs on a sleeping worker",
       test_queued_behind_long_task},
      {"worker threads' records are reused while wake-ups race their ends",
       test_worker_records_reused},
      {"bad input", test_bad_input},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(square);
  REGISTER_TASK(worker_id);
  REGISTER_TASK(crash);
  REGISTER_TASK(exit0);
  REGISTER_TASK(cooperative);
  REGISTER_TASK(marks);
  REGISTER_TASK(stubborn);
  REGISTER_TASK(my_pid);
  REGISTER_TASK(nap_us);
  REGISTER_TASK(init_sets);
  REGISTER_TASK(read_init);
  REGISTER_TASK(init_fails);
  REGISTER_TASK(stops_own_pool);
  REGISTER_TASK(echo);
  REGISTER_TASK(sized_result);
  REGISTER_TASK(nested_pool);
  REGISTER_TASK(start_time);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  return run_suite("pools", tests);
}
