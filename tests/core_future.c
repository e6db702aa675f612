/* SPDX-License-Identifier: Apache-2.0 */
/* core_future.c -- the future store, done-callbacks, task definitions and
 * the named registry. */
#include "core_util.h"

#ifndef _WIN32
#include <poll.h>
#endif

#include <pthread.h>
#include <stdatomic.h>

static int add_one(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v + 1);
}
static int sleepy(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  while (pebble_should_stop(ctx) == PEBBLE_OK)
    usleep(2000);
  return 0;
}
static int never_ends(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  for (;;)
    pause();
  return 0;
}

static void test_ids_and_states(void) {
  pebble_future *a, *b;
  int64_t v = 1;
  pebble_task_options o;
  SKIP_IF_NO_PROCESSES();
  pebble_task_options_init(&o);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, sleepy, NULL, 0, &o, &a), 0);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, add_one, &v, sizeof v, &o, &b),
                  0);
  CU_ASSERT(pebble_future_id(a) != 0 && pebble_future_id(b) != 0);
  CU_ASSERT(pebble_future_id(a) != pebble_future_id(b));
  CU_ASSERT(pebble_future_state(a) == PEBBLE_PENDING ||
            pebble_future_state(a) == PEBBLE_RUNNING);
  CU_ASSERT_EQUAL(pebble_future_wait(a, 0), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_wait(a, PEBBLE_MSEC(50)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_status(a), PEBBLE_ENOTREADY);
  CU_ASSERT_STRING_EQUAL(pebble_future_message(a), "");
  CU_ASSERT_EQUAL(pebble_future_wait(b, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(b), PEBBLE_DONE);
  CU_ASSERT_EQUAL(pebble_future_cancel(a), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(a), PEBBLE_CANCELLED);
  pebble_future_release(a);
  pebble_future_release(b);
}

static atomic_int calls[4];
static pthread_t caller;
static atomic_int ran_in_caller;
static void count_cb(pebble_future *f, void *user) {
  int64_t v;
  atomic_fetch_add(&calls[(intptr_t)user], 1);
  /* The result is there in the callback, at once. */
  if (pebble_future_get_int(f, 0, &v) != PEBBLE_OK || v != 8)
    atomic_fetch_add(&calls[3], 100);
  if (pthread_equal(pthread_self(), caller))
    atomic_store(&ran_in_caller, 1);
}

static void test_callbacks_once(void) {
  int kind;
  for (kind = PEBBLE_THREAD; kind <= PEBBLE_PROCESS; kind++) {
    pebble_future *f;
    int64_t v = 7;
    int i;
    if (PROCESS_HALF_SKIPPED(kind))
      continue;
    for (i = 0; i < 4; i++)
      atomic_store(&calls[i], 0);
    atomic_store(&ran_in_caller, 0);
    caller = pthread_self();
    CU_ASSERT_EQUAL_FATAL(pebble_run(kind, add_one, &v, sizeof v, NULL, &f),
                          0);
    pebble_future_add_callback(f, count_cb, (void *)0);
    pebble_future_add_callback(f, count_cb, (void *)1);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(30)), PEBBLE_OK);
    for (i = 0; i < 500 && (atomic_load(&calls[0]) == 0 ||
                            atomic_load(&calls[1]) == 0);
         i++)
      usleep(10000);
    /* Added after resolution: runs at once, in this thread. */
    atomic_store(&ran_in_caller, 0);
    CU_ASSERT_EQUAL(pebble_future_add_callback(f, count_cb, (void *)2), 0);
    CU_ASSERT_EQUAL(atomic_load(&calls[2]), 1);
    CU_ASSERT_EQUAL(atomic_load(&ran_in_caller), 1);
    usleep(50000);
    CU_ASSERT_EQUAL(atomic_load(&calls[0]), 1);
    CU_ASSERT_EQUAL(atomic_load(&calls[1]), 1);
    CU_ASSERT_EQUAL(atomic_load(&calls[3]), 0);
    pebble_future_release(f);
  }
}

static atomic_int chained;
static void launch_more(pebble_future *f, void *user) {
  pebble_future *g;
  int64_t v = 100;
  (void)f, (void)user;
  if (pebble_run(PEBBLE_PROCESS, add_one, &v, sizeof v, NULL, &g) == 0) {
    int64_t out = 0;
    if (pebble_future_get_int(g, PEBBLE_SEC(30), &out) == 0 && out == 101)
      atomic_store(&chained, 1);
    pebble_future_release(g);
  }
}
static void test_callback_launches(void) {
  pebble_task_options o;
  pebble_future *f;
  int64_t v = 1;
  int i;
  SKIP_IF_NO_PROCESSES();
  atomic_store(&chained, 0);
  pebble_task_options_init(&o);
  o.callback = launch_more;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, add_one, &v, sizeof v, &o, &f),
                  0);
  for (i = 0; i < 1000 && !atomic_load(&chained); i++)
    usleep(10000);
  CU_ASSERT(atomic_load(&chained));
  pebble_future_release(f);
}

static atomic_int slow_done;
static void slow_cb(pebble_future *f, void *user) {
  (void)f, (void)user;
  sleep(2);
  atomic_store(&slow_done, 1);
}
static void test_slow_callback_no_delay(void) {
  pebble_task_options o, t;
  pebble_future *a, *b;
  int64_t v = 1;
  double t0;
  int k;
  SKIP_IF_NO_PROCESSES();
  atomic_store(&slow_done, 0);
  pebble_task_options_init(&o);
  o.callback = slow_cb;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, add_one, &v, sizeof v, &o, &a),
                  0);
  /* Not pebble_future_wait: from this thread it returns only once the
   * slow callback has run. */
  for (k = 0; k < 3000 && pebble_future_status(a) == PEBBLE_ENOTREADY; k++)
    usleep(10000);
  CU_ASSERT_EQUAL(pebble_future_status(a), PEBBLE_OK);
  pebble_task_options_init(&t);
  t.timeout = PEBBLE_MSEC(200);
  t0 = now_s();
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, never_ends, NULL, 0, &t, &b), 0);
  CU_ASSERT_EQUAL(pebble_future_get(b, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  /* B timed out while A's slow callback was still running. */
  CU_ASSERT_EQUAL(atomic_load(&slow_done), 0);
  CU_ASSERT(now_s() - t0 < 1.8);
  pebble_future_release(a);
  pebble_future_release(b);
  while (!atomic_load(&slow_done))
    usleep(10000);
}

static void test_refcount(void) {
  pebble_future *f, *g;
  const void *data;
  size_t size;
  int64_t v = 4;
  pebble_task *t;
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT_EQUAL(pebble_task_create(&t, PEBBLE_PROCESS, add_one, NULL), 0);
  CU_ASSERT_EQUAL(pebble_task_launch(t, &v, sizeof v, &f), 0);
  g = pebble_future_ref(f);
  CU_ASSERT_PTR_EQUAL(g, f);
  pebble_task_destroy(t); /* the future outlives its definition */
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), &data, &size), 0);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(size, 8);
  CU_ASSERT_EQUAL(*(const int64_t *)data, 5); /* still valid */
  pebble_future_release(g);
}

static int writes_marker(pebble_ctx *ctx, const void *arg, size_t size) {
  int fd = test_fifo_writer(arg, size);
  (void)ctx;
  usleep(200000);
  (void)!write(fd, "m", 1);
  close(fd);
  return 0;
}
static void test_release_does_not_cancel(void) {
  test_fifo p;
  char c = 0;
  pebble_future *f;
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT_EQUAL_FATAL(test_fifo_open(&p), 0);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, writes_marker, p.path,
                             strlen(p.path) + 1, NULL, &f),
                  0);
  pebble_future_release(f);
  {
    /* Bounded: a worker that never writes must fail the test, not hang. */
    struct pollfd pfd = {p.rd, POLLIN, 0};
    CU_ASSERT_EQUAL_FATAL(poll(&pfd, 1, 30000), 1);
  }
  CU_ASSERT_EQUAL(read(p.rd, &c, 1), 1);
  CU_ASSERT_EQUAL(c, 'm');
  test_fifo_close(&p);
}

/* ---- task definitions ---- */

struct counter {
  atomic_int a, b;
  atomic_int destroyed;
};
static void cb_a(pebble_future *f, void *user) {
  (void)f;
  atomic_fetch_add(&((struct counter *)user)->a, 1);
}
static void cb_b(pebble_future *f, void *user) {
  (void)f;
  atomic_fetch_add(&((struct counter *)user)->b, 1);
}
static void destroy_counter(void *user) {
  atomic_fetch_add(&((struct counter *)user)->destroyed, 1);
}

static void test_definitions(void) {
  struct counter c1, c2;
  pebble_task_options o;
  pebble_task *t;
  pebble_future *f[6];
  int64_t v = 1;
  int i;
  SKIP_IF_NO_PROCESSES();
  memset(&c1, 0, sizeof c1);
  memset(&c2, 0, sizeof c2);
  pebble_task_options_init(&o);
  o.name = "core-future.add-one";
  CU_ASSERT_EQUAL_FATAL(pebble_task_create(&t, PEBBLE_PROCESS, add_one, &o),
                        0);
  CU_ASSERT_EQUAL(pebble_task_set_callback(t, cb_a, &c1, destroy_counter), 0);
  for (i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(pebble_task_launch(t, &v, sizeof v, &f[i]), 0);
  CU_ASSERT_EQUAL(pebble_task_set_callback(t, cb_b, &c2, destroy_counter), 0);
  for (i = 3; i < 6; i++)
    CU_ASSERT_EQUAL(pebble_task_launch(t, &v, sizeof v, &f[i]), 0);
  for (i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL(pebble_future_seq(f[i]), (uint64_t)i);
    CU_ASSERT_STRING_EQUAL(pebble_future_name(f[i]), "core-future.add-one");
  }
  CU_ASSERT_EQUAL(pebble_wait_all(f, 6, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 0; i < 500 && (atomic_load(&c1.destroyed) == 0 ||
                          atomic_load(&c2.b) < 3);
       i++)
    usleep(10000);
  /* Earlier launches kept the old pair; it was destroyed once, after. */
  CU_ASSERT_EQUAL(atomic_load(&c1.a), 3);
  CU_ASSERT_EQUAL(atomic_load(&c2.b), 3);
  CU_ASSERT_EQUAL(atomic_load(&c1.destroyed), 1);
  CU_ASSERT_EQUAL(atomic_load(&c2.destroyed), 0); /* still in force */
  for (i = 0; i < 6; i++)
    pebble_future_release(f[i]);
  pebble_task_destroy(t);
  CU_ASSERT_EQUAL(atomic_load(&c2.destroyed), 1);
}

static pebble_task *shared_task;
static atomic_int stop_flipping;
static struct counter flip_a, flip_b;
static void *flipper(void *arg) {
  int i = 0;
  (void)arg;
  while (!atomic_load(&stop_flipping)) {
    int odd = i++ & 1;
    pebble_task_set_callback(shared_task, odd ? cb_a : cb_b,
                             odd ? &flip_a : &flip_b, NULL);
  }
  return NULL;
}
static void test_concurrent_set_callback(void) {
  pthread_t th;
  pebble_future *f[40];
  int64_t v = 1;
  int i;
  memset(&flip_a, 0, sizeof flip_a);
  memset(&flip_b, 0, sizeof flip_b);
  CU_ASSERT_EQUAL_FATAL(
      pebble_task_create(&shared_task, PEBBLE_THREAD, add_one, NULL), 0);
  atomic_store(&stop_flipping, 0);
  pthread_create(&th, NULL, flipper, NULL);
  for (i = 0; i < 40; i++)
    CU_ASSERT_EQUAL(pebble_task_launch(shared_task, &v, sizeof v, &f[i]), 0);
  CU_ASSERT_EQUAL(pebble_wait_all(f, 40, PEBBLE_SEC(60)), PEBBLE_OK);
  atomic_store(&stop_flipping, 1);
  pthread_join(th, NULL);
  for (i = 0; i < 40; i++)
    pebble_future_release(f[i]);
  usleep(100000);
  /* Every launch ran one consistent callback (a pair is swapped whole). */
  CU_ASSERT(atomic_load(&flip_a.a) + atomic_load(&flip_b.b) +
                atomic_load(&flip_a.b) + atomic_load(&flip_b.a) <=
            40);
  CU_ASSERT_EQUAL(atomic_load(&flip_a.b) + atomic_load(&flip_b.a), 0);
  pebble_task_destroy(shared_task);
}

/* ---- registry ---- */

static int other(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  return 0;
}
static void test_registry(void) {
  pebble_task_fn fn = NULL;
  pebble_future *f;
  int64_t v = 10, out = 0;
  char long_name[80];
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT_EQUAL(pebble_register("core.add_one", add_one), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_register("core.add_one", add_one), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_register("core.add_one", other), PEBBLE_EEXIST);
  CU_ASSERT_EQUAL(pebble_lookup("core.add_one", &fn), PEBBLE_OK);
  CU_ASSERT_PTR_EQUAL(fn, add_one);
  CU_ASSERT_EQUAL(pebble_lookup("core.nope", &fn), PEBBLE_ENOTFOUND);
  CU_ASSERT_EQUAL(pebble_register("", add_one), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_register("a/b", add_one), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_register("a b", add_one), PEBBLE_EINVAL);
  memset(long_name, 'x', 64);
  long_name[64] = '\0';
  CU_ASSERT_EQUAL(pebble_register(long_name, add_one), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_register("ok", NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_run_named(PEBBLE_PROCESS, "core.add_one", &v,
                                   sizeof v, NULL, &f),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 11);
  CU_ASSERT_STRING_EQUAL(pebble_future_name(f), "core.add_one");
  pebble_future_release(f);
  f = (pebble_future *)1;
  CU_ASSERT_EQUAL(pebble_run_named(PEBBLE_PROCESS, "core.nope", NULL, 0,
                                   NULL, &f),
                  PEBBLE_ENOTFOUND);
  CU_ASSERT_PTR_NULL(f);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"ids and states", test_ids_and_states},
      {"callbacks run exactly once", test_callbacks_once},
      {"a callback launches more work", test_callback_launches},
      {"a slow callback does not delay a timeout",
       test_slow_callback_no_delay},
      {"reference counting", test_refcount},
      {"release does not cancel", NEEDS_FIFOS(test_release_does_not_cancel)},
      {"task definitions: seq, callback re-assignment, destroy-notify",
       test_definitions},
      {"set_callback while launching", test_concurrent_set_callback},
      {"named registry", test_registry},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(add_one);
  REGISTER_TASK(sleepy);
  REGISTER_TASK(never_ends);
  REGISTER_TASK(writes_marker);
  REGISTER_TASK(other);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  return run_suite("futures", tests);
}
