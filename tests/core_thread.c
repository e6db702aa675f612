/* SPDX-License-Identifier: Apache-2.0 */
/* core_thread.c -- one-shot thread tasks: results, failures, cooperative
 * timeout and cancellation, pthread_exit, deadlock refusal, copies. */
#include "core_util.h"

#include <pthread.h>
#include <stdatomic.h>

static int add_one(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 9, "not an int");
  return pebble_result_int(ctx, v + 1);
}
static int helpers(pebble_ctx *ctx, const void *arg, size_t size) {
  const char *s;
  if (pebble_arg_string(arg, size, &s) != PEBBLE_OK)
    return 1;
  if (strcmp(s, "double") == 0)
    return pebble_result_double(ctx, 2.5);
  if (strcmp(s, "string") == 0)
    return pebble_result_string(ctx, "hello");
  return 0; /* empty result */
}
static int fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, -5, "bad %s", "input");
}

static atomic_int saw_stop;
static atomic_int finished;
static int cooperative(pebble_ctx *ctx, const void *arg, size_t size) {
  int i;
  (void)arg, (void)size;
  for (i = 0; i < 3000; i++) {
    int why = pebble_should_stop(ctx);
    if (why != PEBBLE_OK) {
      atomic_store(&saw_stop, why);
      pebble_result_int(ctx, 99); /* late: must be discarded */
      atomic_store(&finished, 1);
      return 0;
    }
    usleep(1000);
  }
  atomic_store(&finished, 1);
  return 0;
}

static pebble_future *run(pebble_task_fn fn, const void *arg, size_t size,
                          const pebble_task_options *o) {
  pebble_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_THREAD, fn, arg, size, o, &f),
                        PEBBLE_OK);
  return f;
}

static void test_result(void) {
  int64_t v = 41, out = 0;
  pebble_future *f = run(add_one, &v, sizeof v, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 42);
  pebble_future_release(f);
}

static void test_helpers(void) {
  double d = 0;
  const char *s = NULL;
  const void *data = NULL;
  size_t size = 99;
  pebble_future *f = run(helpers, "double", 7, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_double(f, PEBBLE_SEC(30), &d), PEBBLE_OK);
  CU_ASSERT_DOUBLE_EQUAL(d, 2.5, 1e-12);
  CU_ASSERT_EQUAL(pebble_future_get_string(f, 0, &s), PEBBLE_EINVAL);
  pebble_future_release(f);
  f = run(helpers, "string", 7, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_string(f, PEBBLE_SEC(30), &s), PEBBLE_OK);
  CU_ASSERT_STRING_EQUAL(s, "hello");
  pebble_future_release(f);
  f = run(helpers, "", 1, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), &data, &size),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(size, 0);
  CU_ASSERT_PTR_NOT_NULL(data);
  pebble_future_release(f);
}

static void test_failure(void) {
  pebble_future *f = run(fails, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETASK);
  CU_ASSERT_EQUAL(pebble_future_task_code(f), -5);
  CU_ASSERT_STRING_EQUAL(pebble_future_message(f), "bad input");
  pebble_future_release(f);
}

static void test_timeout_cooperative(void) {
  pebble_task_options o;
  pebble_future *f;
  double t0 = now_s();
  int i;
  atomic_store(&saw_stop, 0);
  atomic_store(&finished, 0);
  pebble_task_options_init(&o);
  o.timeout = PEBBLE_MSEC(200);
  f = run(cooperative, NULL, 0, &o);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT(now_s() - t0 >= 0.19);
  CU_ASSERT(now_s() - t0 < 10);
  for (i = 0; i < 1000 && !atomic_load(&finished); i++)
    usleep(5000);
  CU_ASSERT_EQUAL(atomic_load(&saw_stop), PEBBLE_ETIMEDOUT);
  /* The late result was discarded. */
  CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_ETIMEDOUT);
  pebble_future_release(f);
}

static void test_cancel_running(void) {
  pebble_future *f;
  int i;
  atomic_store(&saw_stop, 0);
  atomic_store(&finished, 0);
  f = run(cooperative, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_MSEC(100)), PEBBLE_ENOTREADY);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_CANCELLED);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  for (i = 0; i < 1000 && !atomic_load(&finished); i++)
    usleep(5000);
  CU_ASSERT_EQUAL(atomic_load(&saw_stop), PEBBLE_ECANCELED);
  CU_ASSERT_EQUAL(pebble_future_get(f, 0, NULL, NULL), PEBBLE_ECANCELED);
  pebble_future_release(f);
}

static void test_cancel_after_done(void) {
  int64_t v = 1, out = 0;
  pebble_future *f = run(add_one, &v, sizeof v, NULL);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_EALREADY);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, 0, &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 2);
  pebble_future_release(f);
}

static int exits_thread(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  pthread_exit(NULL);
  return 0;
}
static void test_pthread_exit(void) {
  pebble_future *f = run(exits_thread, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETASK);
  CU_ASSERT_EQUAL(pebble_future_state(f), PEBBLE_FAILED);
  pebble_future_release(f);
}

static pebble_future *_Atomic self_future;
static atomic_int self_wait_rc;
static int waits_for_itself(pebble_ctx *ctx, const void *arg, size_t size) {
  pebble_future *me;
  (void)ctx, (void)arg, (void)size;
  while ((me = atomic_load(&self_future)) == NULL)
    usleep(1000);
  atomic_store(&self_wait_rc, pebble_future_wait(me, PEBBLE_FOREVER));
  return 0;
}
static void test_wait_self(void) {
  pebble_future *f = run(waits_for_itself, NULL, 0, NULL);
  atomic_store(&self_future, f);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(atomic_load(&self_wait_rc), PEBBLE_EDEADLK);
  pebble_future_release(f);
}

static atomic_int copy_seen;
static int reads_later(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  usleep(100000);
  atomic_store(&copy_seen, size == 4 && memcmp(arg, "abc", 4) == 0);
  return 0;
}
static void test_argument_copied(void) {
  char buf[4] = "abc";
  pebble_future *f = run(reads_later, buf, sizeof buf, NULL);
  memcpy(buf, "xyz", 4);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_OK);
  CU_ASSERT(atomic_load(&copy_seen));
  pebble_future_release(f);
}

static int too_big_result(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  if (pebble_result_alloc(ctx, 4096) != NULL)
    return 0;
  return 0; /* the future still resolves with ETOOBIG */
}
static void test_sizes(void) {
  static char buf[8192];
  pebble_future *f = NULL;
  size_t old = pebble_max_message_size();
  CU_ASSERT_EQUAL(pebble_set_max_message_size(1024), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, add_one, buf, sizeof buf, NULL,
                             &f),
                  PEBBLE_ETOOBIG);
  CU_ASSERT_PTR_NULL(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "8192"));
  f = run(too_big_result, NULL, 0, NULL);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETOOBIG);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_set_max_message_size(old), PEBBLE_OK);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"result", test_result},
      {"value helpers", test_helpers},
      {"failure with code and message", test_failure},
      {"timeout is cooperative and resolves at the deadline",
       test_timeout_cooperative},
      {"cancel while running", test_cancel_running},
      {"cancel after done loses", test_cancel_after_done},
      {"pthread_exit resolves as failed", test_pthread_exit},
      {"waiting on its own future", test_wait_self},
      {"the argument is copied", test_argument_copied},
      {"maximum message size", test_sizes},
      CU_TEST_INFO_NULL};
  return run_suite("thread tasks", tests);
}
