/* SPDX-License-Identifier: Apache-2.0 */
/* core_direct.c -- a thread that waits for a process pool's running task
 * reads the worker's outcomes itself and sleeps on the worker's page
 * (pool_processes.c, pb_processes_wait_direct).  Whatever happens to the
 * task or the worker while it sleeps, the wait ends with the right
 * outcome, and what the worker sent while the waiter was leaving still
 * reaches its future. */
#include "core_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

/* Sleeps 50 ms, then returns as many bytes as its argument says, too
 * many for the ring: they come on the channel, read by the manager
 * thread, whose settle must wake the thread asleep on the page. */
static int nap_then_big(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  unsigned char *r;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK || n < 1)
    return pebble_fail(ctx, 1, "expected a size");
  usleep(50000);
  if ((r = pebble_result_alloc(ctx, (size_t)n)) == NULL)
    return pebble_fail(ctx, 2, "no memory for the result");
  memset(r, 'b', (size_t)n);
  return 0;
}

/* Sleeps the microseconds its argument says, then kills its worker. */
static int nap_then_die(pebble_ctx *ctx, const void *arg, size_t size) {
  nap_us(ctx, arg, size);
  kill(getpid(), SIGKILL);
  return 0;
}

static pebble_pool *make(unsigned workers) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_eagerly = 1;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_OK);
  return p;
}

/* Until f runs (its worker has it); a task that never runs fails the
 * test where it is waited for. */
static void until_running(pebble_future *f) {
  double t0 = now_s();
  while (pebble_future_state(f) == PEBBLE_PENDING && now_s() - t0 < 30)
    usleep(1000);
}

/* One task at a time, from two threads at once on one pool: every result
 * is the waiter's own, whoever of the two read it. */
typedef struct trips {
  pebble_pool *p;
  int64_t base;
  atomic_int wrong;
} trips;

static void *round_trips(void *arg) {
  trips *t = arg;
  int64_t i, out;
  for (i = 0; i < 1500; i++) {
    pebble_future *f = schedule_int(t->p, echo, t->base + i, PEBBLE_DEFAULT);
    out = -1;
    if (f == NULL ||
        pebble_future_get_int(f, PEBBLE_SEC(60), &out) != PEBBLE_OK ||
        out != t->base + i)
      atomic_fetch_add(&t->wrong, 1);
    pebble_future_release(f);
  }
  return NULL;
}

static void test_round_trips(void) {
  SKIP_IF_NO_PROCESSES();
  trips a = {NULL, 0, 0}, b = {NULL, 1000000, 0};
  pthread_t ta, tb;
  a.p = b.p = make(2);
  CU_ASSERT_EQUAL(pthread_create(&ta, NULL, round_trips, &a), 0);
  CU_ASSERT_EQUAL(pthread_create(&tb, NULL, round_trips, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CU_ASSERT_EQUAL(atomic_load(&a.wrong), 0);
  CU_ASSERT_EQUAL(atomic_load(&b.wrong), 0);
  CU_ASSERT_EQUAL(pebble_pool_destroy(a.p), PEBBLE_OK);
}

/* A wait that runs out while the task runs leaves its outcome to the
 * pool: the worker, no longer asked to wake the waiter, nudges the pool
 * again.  pebble_wait_all() never reads a worker itself, so it sees what
 * the pool delivers.  The short waits end at every point of the task,
 * some as the worker answers. */
static void test_short_waits_lose_nothing(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(2);
  int i, late = 0, lost = 0;
  for (i = 0; i < 300; i++) {
    pebble_future *f =
        schedule_int(p, nap_us, 200 + (i % 7) * 50, PEBBLE_DEFAULT);
    int64_t out = -1;
    until_running(f);
    if (pebble_future_wait(f, PEBBLE_USEC(50 + (i % 13) * 25)) ==
        PEBBLE_ENOTREADY)
      late++;
    if (pebble_wait_all(&f, 1, PEBBLE_SEC(30)) != PEBBLE_OK ||
        pebble_future_get_int(f, 0, &out) != PEBBLE_OK ||
        out != 200 + (i % 7) * 50)
      lost++;
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(lost, 0);
  CU_ASSERT(late > 0); /* the waits did run out, some of them */
  /* And a long task whose waiter gave up long before it ended. */
  {
    pebble_future *f = schedule_int(p, nap_us, 300000, PEBBLE_DEFAULT);
    until_running(f);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_MSEC(20)), PEBBLE_ENOTREADY);
    CU_ASSERT_EQUAL(pebble_wait_all(&f, 1, PEBBLE_SEC(30)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_OK);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* The worker dies while the waiter sleeps on its page (the page and the
 * worker's record outlive it until the waiter leaves: ASan and valgrind
 * see any use after they went). */
static void test_worker_dies_under_waiter(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(1);
  int i;
  for (i = 0; i < 5; i++) {
    pebble_future *f = schedule_int(p, nap_then_die, 50000, PEBBLE_DEFAULT);
    until_running(f);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(30)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_FAILED);
    CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_EDIED);
    pebble_future_release(f);
  }
  /* The pool goes on with a new worker. */
  {
    pebble_future *f = schedule_int(p, echo, 41, PEBBLE_DEFAULT);
    int64_t out = 0;
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
    CU_ASSERT_EQUAL(out, 41);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* Another thread cancels, or the pool is destroyed, while the waiter
 * sleeps on the worker's page: the settle wakes it there. */
typedef struct later {
  pebble_future *f;
  pebble_pool *p;
} later;

static void *cancel_later(void *arg) {
  later *l = arg;
  usleep(50000);
  pebble_future_cancel(l->f);
  return NULL;
}

static void *destroy_later(void *arg) {
  later *l = arg;
  usleep(50000);
  CU_ASSERT_EQUAL(pebble_pool_destroy(l->p), PEBBLE_OK);
  return NULL;
}

static void test_cancel_and_destroy_wake_the_waiter(void) {
  SKIP_IF_NO_PROCESSES();
  later l;
  pthread_t t;
  double t0;
  l.p = make(1);
  l.f = schedule_int(l.p, nap_us, 20000000, PEBBLE_DEFAULT);
  until_running(l.f);
  t0 = now_s();
  CU_ASSERT_EQUAL(pthread_create(&t, NULL, cancel_later, &l), 0);
  CU_ASSERT_EQUAL(pebble_future_wait(l.f, PEBBLE_SEC(60)), PEBBLE_OK);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(pebble_future_state(l.f), PEBBLE_CANCELLED);
  CU_ASSERT(now_s() - t0 < 15); /* not the task's 20 s */
  pebble_future_release(l.f);

  l.f = schedule_int(l.p, nap_us, 20000000, PEBBLE_DEFAULT);
  until_running(l.f);
  t0 = now_s();
  CU_ASSERT_EQUAL(pthread_create(&t, NULL, destroy_later, &l), 0);
  CU_ASSERT_EQUAL(pebble_future_wait(l.f, PEBBLE_SEC(60)), PEBBLE_OK);
  pthread_join(t, NULL);
  CU_ASSERT(pebble_future_state(l.f) == PEBBLE_CANCELLED ||
            pebble_future_state(l.f) == PEBBLE_FAILED);
  CU_ASSERT(now_s() - t0 < 15);
  pebble_future_release(l.f);
}

/* A task with a timeout is waited for the usual way (its start notice
 * starts its clock, the manager's; read by a waiting thread, the manager,
 * asleep until the allowance for a start runs out, 10 s, would have to
 * learn of it): the task ends well before that allowance. */
static void test_timeout_while_waiter_reads(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(1);
  int i;
  for (i = 0; i < 3; i++) {
    pebble_future *f = schedule_int(p, nap_us, 20000000, PEBBLE_MSEC(100));
    double t0 = now_s();
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ETIMEDOUT);
    CU_ASSERT(now_s() - t0 < 5);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_channel_result_wakes_the_waiter(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(1);
  static const int64_t sizes[] = {70000, 300000, 2 << 20};
  int i;
  for (i = 0; i < 6; i++) {
    pebble_future *f =
        schedule_int(p, nap_then_big, sizes[i % 3], PEBBLE_DEFAULT);
    const void *data = NULL;
    size_t size = 0;
    until_running(f);
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(size, (size_t)sizes[i % 3]);
    CU_ASSERT(data != NULL && ((const unsigned char *)data)[size - 1] == 'b');
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* Two threads wait for one future; a third for another task on the same
 * worker's pool.  All wake with their own outcome. */
typedef struct waiter {
  pebble_future *f;
  int64_t want;
  int ok;
} waiter;

static void *wait_for(void *arg) {
  waiter *w = arg;
  int64_t out = -1;
  w->ok = pebble_future_get_int(w->f, PEBBLE_SEC(60), &out) == PEBBLE_OK &&
          out == w->want;
  return NULL;
}

static void test_several_waiters(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(2);
  int round;
  for (round = 0; round < 20; round++) {
    waiter w[3];
    pthread_t t[3];
    int i;
    w[0].f = w[1].f = schedule_int(p, nap_us, 20000, PEBBLE_DEFAULT);
    w[2].f = schedule_int(p, nap_us, 30000, PEBBLE_DEFAULT);
    w[0].want = w[1].want = 20000;
    w[2].want = 30000;
    for (i = 0; i < 3; i++)
      CU_ASSERT_EQUAL(pthread_create(&t[i], NULL, wait_for, &w[i]), 0);
    for (i = 0; i < 3; i++) {
      pthread_join(t[i], NULL);
      CU_ASSERT(w[i].ok);
    }
    pebble_future_release(w[0].f);
    pebble_future_release(w[2].f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* Another thread kills workers from outside, at random moments, while
 * round trips wait on their pages: every future resolves, with its own
 * result or, when the kill caught its task, PEBBLE_EDIED; never another
 * status, never a hang, and the pool goes on. */
#define KILLS_MAX 4096
typedef struct killer {
  pebble_pool *p;
  atomic_int stop;
  int kills;
  pid_t last;
  atomic_long killed[KILLS_MAX]; /* each pid before it is killed */
  atomic_int n_killed;
  atomic_int trips; /* round trips over so far */
} killer;

/* Did the killer kill pid (before the future saying so resolved)? */
static int was_killed(killer *k, long pid) {
  int i, n = atomic_load(&k->n_killed);
  for (i = 0; i < n; i++)
    if (atomic_load(&k->killed[i]) == pid)
      return 1;
  return 0;
}

static void *kill_workers(void *arg) {
  killer *k = arg;
  unsigned seed = 7;
  int seen = -1;
  while (!atomic_load(&k->stop)) {
    long pids[4];
    size_t n = 0;
    pid_t pid;
    usleep(300 + rand_r(&seed) % 2700);
    /* At most one kill per round trip: on a slow machine kills must not
     * outpace worker starts (workers that die before any task slow the
     * pool's restarts down, docs/pools.md). */
    if (atomic_load(&k->stop) || atomic_load(&k->trips) == seen ||
        pebble_pool_worker_pids(k->p, pids, 4, &n) != PEBBLE_OK || n == 0)
      continue;
    seen = atomic_load(&k->trips);
    if (n > 4)
      n = 4;
    pid = (pid_t)pids[rand_r(&seed) % n];
    if (atomic_load(&k->n_killed) == KILLS_MAX)
      continue;
    atomic_store(&k->killed[atomic_load(&k->n_killed)], pid);
    atomic_fetch_add(&k->n_killed, 1);
    if (kill(pid, SIGKILL) == 0) {
      k->kills++;
      k->last = pid;
    }
  }
  return NULL;
}

static void test_outside_kills_during_waits(void) {
  SKIP_IF_NO_PROCESSES();
  killer *k = calloc(1, sizeof *k);
  pthread_t t;
  int i, done = 0, died = 0, wrong = 0;
  CU_ASSERT_FATAL(k != NULL);
  k->p = make(2);
  atomic_init(&k->stop, 0);
  atomic_init(&k->n_killed, 0);
  atomic_init(&k->trips, 0);
  CU_ASSERT_EQUAL(pthread_create(&t, NULL, kill_workers, k), 0);
  for (i = 0; i < 400; i++) {
    int64_t arg = (i % 4) * 100, out = -1;
    pebble_future *f = schedule_int(k->p, i % 2 ? nap_us : echo, arg,
                                    PEBBLE_DEFAULT);
    CU_ASSERT_FATAL(f != NULL);
    if (pebble_future_wait(f, PEBBLE_SEC(60)) != PEBBLE_OK)
      wrong++; /* a hang */
    else if (pebble_future_state(f) == PEBBLE_DONE &&
             pebble_future_get_int(f, 0, &out) == PEBBLE_OK && out == arg)
      done++;
    else if (pebble_future_state(f) == PEBBLE_FAILED &&
             pebble_future_status(f) == PEBBLE_EDIED) {
      /* Its worker is one the killer killed, and a signal ended it. */
      pebble_exit_info info;
      memset(&info, 0, sizeof info);
      info.struct_size = sizeof info;
      if (pebble_future_exit_info(f, &info) == PEBBLE_OK &&
          info.signal == SIGKILL && was_killed(k, info.pid))
        died++;
      else
        wrong++;
    } else
      wrong++;
    pebble_future_release(f);
    atomic_fetch_add(&k->trips, 1);
  }
  atomic_store(&k->stop, 1);
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(wrong, 0);
  CU_ASSERT_EQUAL(done + died, 400);
  CU_ASSERT(k->kills > 0);
  /* A kill ends at most the one task its worker had: no death is
   * reported that did not happen. */
  CU_ASSERT(died <= k->kills);
  /* Scheduled in the instant after the last kill, perhaps: a worker
   * that dies before it begins a small task is not charged with it
   * (docs/pools.md).  One without a page is, so there the last killed
   * worker is reaped first. */
  if (k->kills > 0 && workers_without_page())
    CU_ASSERT(gone_within(k->last, 30));
  {
    pebble_future *f = schedule_int(k->p, echo, 43, PEBBLE_DEFAULT);
    int64_t out = 0;
    CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(out, 43);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(k->p), PEBBLE_OK);
  free(k);
}

/* The worker is stopped (SIGSTOP) under its waiter: a bounded wait runs
 * out, a stop is not a death, and once continued the task's own result
 * reaches the waiter, who slept through the stop on the page. */
typedef struct stopper {
  long pid;
} stopper;

static void *stop_then_continue(void *arg) {
  stopper *s = arg;
  usleep(20000);
  kill((pid_t)s->pid, SIGSTOP);
  usleep(200000);
  kill((pid_t)s->pid, SIGCONT);
  return NULL;
}

static void test_stopped_worker_under_waiter(void) {
  SKIP_IF_NO_PROCESSES();
  pebble_pool *p = make(1);
  pebble_future *f = schedule_int(p, nap_us, 100000, PEBBLE_DEFAULT);
  long pid = 0;
  int64_t out = -1;
  stopper s;
  pthread_t t;
  double t0;
  until_running(f);
  CU_ASSERT_EQUAL_FATAL(pebble_future_pid(f, &pid), PEBBLE_OK);
  /* Stopped now: its 100 ms cannot end within 300 ms. */
  CU_ASSERT_EQUAL(kill((pid_t)pid, SIGSTOP), 0);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_MSEC(300)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_RUNNING);
  CU_ASSERT_EQUAL(kill((pid_t)pid, SIGCONT), 0);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 100000);
  pebble_future_release(f);

  /* Stopped and continued by another thread while this one sleeps. */
  f = schedule_int(p, nap_us, 100000, PEBBLE_DEFAULT);
  until_running(f);
  CU_ASSERT_EQUAL_FATAL(pebble_future_pid(f, &s.pid), PEBBLE_OK);
  t0 = now_s();
  CU_ASSERT_EQUAL(pthread_create(&t, NULL, stop_then_continue, &s), 0);
  out = -1;
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(60), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 100000);
  CU_ASSERT(now_s() - t0 >= 0.15); /* it did wait through the stop */
  pthread_join(t, NULL);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

/* Workers that end after every task (max_tasks 1) or every third: the
 * outcome of a worker's last task, read by the thread waiting on its page
 * or by the pool as the worker exits, reaches its future; no task is
 * charged with the planned exit. */
static void test_recycled_workers(void) {
  SKIP_IF_NO_PROCESSES();
  unsigned max;
  for (max = 1; max <= 3; max += 2) {
    pebble_pool_options o;
    pebble_pool *p = NULL;
    int i, wrong = 0;
    pebble_pool_options_init(&o);
    o.workers = 2;
    o.max_tasks = max;
    o.start_eagerly = 1;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    for (i = 0; i < 150; i++) {
      int64_t arg = i % 3 ? i : 200 + i, out = -1;
      pebble_future *f =
          schedule_int(p, i % 3 ? echo : nap_us, arg, PEBBLE_DEFAULT);
      if (f == NULL ||
          pebble_future_get_int(f, PEBBLE_SEC(60), &out) != PEBBLE_OK ||
          out != arg)
        wrong++;
      pebble_future_release(f);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
}

/* The pool is closed and joined from another thread while a thread waits
 * on a worker's page: the running and queued tasks all finish with their
 * own results, the waiter's among them. */
typedef struct closer {
  pebble_pool *p;
  int closed, joined;
} closer;

static void *close_and_join(void *arg) {
  closer *c = arg;
  usleep(10000);
  c->closed = pebble_pool_close(c->p);
  c->joined = pebble_pool_join(c->p, PEBBLE_SEC(60));
  return NULL;
}

static void test_close_while_waiting(void) {
  SKIP_IF_NO_PROCESSES();
  closer c;
  pthread_t t;
  pebble_future *f[5];
  int i;
  c.p = make(2);
  for (i = 0; i < 5; i++)
    f[i] = schedule_int(c.p, nap_us, 40000 + i, PEBBLE_DEFAULT);
  until_running(f[0]);
  CU_ASSERT_EQUAL(pthread_create(&t, NULL, close_and_join, &c), 0);
  for (i = 0; i < 5; i++) {
    int64_t out = -1;
    CU_ASSERT_EQUAL(pebble_future_get_int(f[i], PEBBLE_SEC(60), &out),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(out, 40000 + i);
  }
  pthread_join(t, NULL);
  CU_ASSERT_EQUAL(c.closed, PEBBLE_OK);
  CU_ASSERT_EQUAL(c.joined, PEBBLE_OK);
  for (i = 0; i < 5; i++)
    pebble_future_release(f[i]);
  CU_ASSERT_EQUAL(pebble_pool_destroy(c.p), PEBBLE_OK);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"round trips from two threads: every result is its waiter's own",
       test_round_trips},
      {"waits that run out lose no outcome", test_short_waits_lose_nothing},
      {"a worker that dies under its waiter", test_worker_dies_under_waiter},
      {"a cancel and a destroy wake the waiter",
       test_cancel_and_destroy_wake_the_waiter},
      {"a task's timeout fires while a thread waits for it",
       test_timeout_while_waiter_reads},
      {"a result that comes on the channel wakes the waiter",
       test_channel_result_wakes_the_waiter},
      {"several waiters, one future or two", test_several_waiters},
      {"workers killed from outside during waits: every future resolves "
       "rightly",
       test_outside_kills_during_waits},
      {"a worker stopped and continued under its waiter",
       test_stopped_worker_under_waiter},
      {"the pool closed and joined while a thread waits",
       test_close_while_waiting},
      {"workers that end after one task or three: every outcome arrives",
       test_recycled_workers},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(echo);
  REGISTER_TASK(nap_us);
  REGISTER_TASK(nap_then_die);
  REGISTER_TASK(nap_then_big);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  if (skip_without_processes())
    return 77;
  return run_suite("direct", tests);
}
