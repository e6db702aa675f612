/* SPDX-License-Identifier: Apache-2.0 */
/* core_map.c -- map over pools, completion queues, waiting on many. */
#include "core_util.h"

#ifndef _WIN32
#include <poll.h>
#endif

static int square_or_fail(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  if (v == 3)
    return pebble_fail(ctx, 33, "three is bad");
  if (v == 100)
    raise(SIGSEGV);
  if (v == 200)
    for (;;)
      pause();
  return pebble_result_int(ctx, v * v);
}

static void items_of(int64_t *vals, pebble_item *items, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    items[i].data = &vals[i];
    items[i].size = sizeof vals[i];
  }
}

static void test_in_order_with_errors(void) {
  int kind;
  for (kind = PEBBLE_THREAD; kind <= PEBBLE_PROCESS; kind++) {
    pebble_pool *p;
    pebble_map *m;
    pebble_map_options mo;
    int64_t vals[10];
    pebble_item items[10];
    size_t i;
    if (PROCESS_HALF_SKIPPED(kind))
      continue;
    for (i = 0; i < 10; i++)
      vals[i] = (int64_t)i;
    items_of(vals, items, 10);
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, kind, NULL), 0);
    pebble_map_options_init(&mo);
    mo.chunk_size = 3;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_map(p, square_or_fail, items, 10, &mo,
                                          &m),
                          0);
    CU_ASSERT_EQUAL(pebble_map_count(m), 10);
    for (i = 0; i < 10; i++) {
      const void *d;
      size_t s;
      int rc = pebble_map_get(m, i, PEBBLE_SEC(30), &d, &s);
      if (i == 3) {
        CU_ASSERT_EQUAL(rc, PEBBLE_ETASK);
        CU_ASSERT_STRING_EQUAL(pebble_map_message(m, i), "three is bad");
        CU_ASSERT_EQUAL(pebble_map_task_code(m, i), 33);
      } else {
        CU_ASSERT_EQUAL(rc, PEBBLE_OK);
        CU_ASSERT(s == 8 && *(const int64_t *)d == (int64_t)(i * i));
      }
    }
    CU_ASSERT_EQUAL(pebble_map_get(m, 10, 0, NULL, NULL), PEBBLE_EINVAL);
    pebble_map_release(m);
    pebble_pool_destroy(p);
  }
}

static void test_bad_chunk_size(void) {
  pebble_pool *p;
  pebble_map *m = NULL;
  pebble_map_options mo;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_THREAD, NULL), 0);
  pebble_map_options_init(&mo);
  mo.chunk_size = 0;
  CU_ASSERT_EQUAL(pebble_pool_map(p, square_or_fail, NULL, 0, &mo, &m),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NULL(m);
  pebble_pool_destroy(p);
}

static void test_chunk_failures(void) {
  pebble_pool *p;
  pebble_map *m;
  pebble_map_options mo;
  int64_t vals[6] = {1, 100, 2, 200, 4, 5};
  pebble_item items[6];
  size_t i;
  SKIP_IF_NO_PROCESSES();
  items_of(vals, items, 6);
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, NULL), 0);
  pebble_map_options_init(&mo);
  mo.chunk_size = 2;
  mo.chunk_timeout = PEBBLE_MSEC(500);
  CU_ASSERT_EQUAL_FATAL(pebble_pool_map(p, square_or_fail, items, 6, &mo,
                                        &m),
                        0);
  /* chunk 0 crashes: both its items died; chunk 1 times out: both. */
  CU_ASSERT_EQUAL(pebble_map_get(m, 0, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  CU_ASSERT_EQUAL(pebble_map_get(m, 1, 0, NULL, NULL), PEBBLE_EDIED);
  CU_ASSERT_EQUAL(pebble_map_get(m, 2, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT_EQUAL(pebble_map_get(m, 3, 0, NULL, NULL), PEBBLE_ETIMEDOUT);
  for (i = 4; i < 6; i++)
    CU_ASSERT_EQUAL(pebble_map_get(m, i, PEBBLE_SEC(30), NULL, NULL), 0);
  pebble_map_release(m);
  pebble_pool_destroy(p);
}

static void test_cancel_and_as_completed(void) {
  pebble_pool *p;
  pebble_map *m;
  pebble_pool_options po;
  int64_t vals[8];
  pebble_item items[8];
  int seen[8] = {0};
  size_t i, idx;
  SKIP_IF_NO_PROCESSES();
  for (i = 0; i < 8; i++)
    vals[i] = (int64_t)i + 10;
  items_of(vals, items, 8);
  pebble_pool_options_init(&po);
  po.workers = 2;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &po), 0);
  CU_ASSERT_EQUAL_FATAL(pebble_pool_map(p, square_or_fail, items, 8, NULL,
                                        &m),
                        0);
  while (pebble_map_next_completed(m, PEBBLE_SEC(30), &idx) == PEBBLE_OK) {
    CU_ASSERT(idx < 8);
    if (idx < 8)
      seen[idx]++;
  }
  for (i = 0; i < 8; i++)
    CU_ASSERT_EQUAL(seen[i], 1);
  pebble_map_release(m);

  vals[0] = 200; /* hangs: cancel must end it */
  CU_ASSERT_EQUAL_FATAL(pebble_pool_map(p, square_or_fail, items, 8, NULL,
                                        &m),
                        0);
  CU_ASSERT_EQUAL(pebble_map_cancel(m), PEBBLE_OK);
  for (i = 0; i < 8; i++) {
    int rc = pebble_map_get(m, i, PEBBLE_SEC(30), NULL, NULL);
    if (rc != PEBBLE_ECANCELED && rc != PEBBLE_OK)
      printf("(item %zu: %s: %s) ", i, pebble_status_name(rc),
             pebble_last_error());
    CU_ASSERT(rc == PEBBLE_ECANCELED || rc == PEBBLE_OK);
  }
  CU_ASSERT_EQUAL(pebble_map_get(m, 0, 0, NULL, NULL), PEBBLE_ECANCELED);
  pebble_map_release(m);
  pebble_pool_destroy(p);
}

static int from_source(void *user, size_t index, pebble_item *item) {
  static int64_t vals[5] = {1, 2, 4, 5, 6};
  (void)user;
  if (index >= 5)
    return 0;
  item->data = &vals[index];
  item->size = sizeof vals[index];
  return 1;
}
static void test_source(void) {
  pebble_pool *p;
  pebble_map *m;
  int64_t out;
  const void *d;
  size_t s;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_THREAD, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(
      pebble_pool_map_source(p, square_or_fail, from_source, NULL, NULL, &m),
      0);
  CU_ASSERT_EQUAL(pebble_map_count(m), 5);
  CU_ASSERT_EQUAL(pebble_map_get(m, 4, PEBBLE_SEC(30), &d, &s), 0);
  memcpy(&out, d, sizeof out);
  CU_ASSERT_EQUAL(out, 36);
  pebble_map_release(m);
  pebble_pool_destroy(p);
}

/* The queue's handle: a descriptor to poll, on Windows an Event HANDLE
 * to wait on (the public header, pebble_cqueue_handle). */
static int readable_within(intptr_t h, int ms) {
#ifdef _WIN32
  return WaitForSingleObject((HANDLE)h, (DWORD)ms) == WAIT_OBJECT_0;
#else
  struct pollfd pfd;
  pfd.fd = (int)h;
  pfd.events = POLLIN;
  return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
#endif
}
static int readable(intptr_t h) { return readable_within(h, 0); }

static void test_cqueue(void) {
  pebble_cqueue *q;
  pebble_pool *p;
  pebble_future *a, *b, *out[4];
  intptr_t h;
  size_t n = 0;
  int64_t v = 3;
  /* A process pool's future and a thread's; without processes, the
   * queue's handle is still tested, with two threads' futures. */
  pebble_kind pool_kind = PEBBLE_PROCESS;
  if (PROCESS_HALF_SKIPPED(pool_kind))
    pool_kind = PEBBLE_THREAD;
  CU_ASSERT_EQUAL_FATAL(pebble_cqueue_create(&q), 0);
  CU_ASSERT_EQUAL_FATAL(pebble_cqueue_handle(q, &h), 0);
  CU_ASSERT(!readable(h));
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, pool_kind, NULL), 0);
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, square_or_fail, &v, sizeof v, NULL,
                                       &a),
                  0);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, square_or_fail, &v, sizeof v,
                             NULL, &b),
                  0);
  pebble_cqueue_add(q, a);
  pebble_cqueue_add(q, b);
  CU_ASSERT(readable_within(h, 30000));
  pebble_future_wait(a, PEBBLE_SEC(30));
  pebble_future_wait(b, PEBBLE_SEC(30));
  usleep(100000);
  CU_ASSERT(readable(h)); /* level-triggered: still readable */
  CU_ASSERT(readable(h));
  CU_ASSERT_EQUAL(pebble_cqueue_drain(q, out, 1, &n), 0);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT(readable(h)); /* one still waits */
  pebble_future_release(out[0]);
  CU_ASSERT_EQUAL(pebble_cqueue_drain(q, out, 4, &n), 0);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT(!readable(h)); /* drained */
  pebble_future_release(out[0]);
  CU_ASSERT_EQUAL(pebble_cqueue_wait(q, PEBBLE_MSEC(50), &out[0]),
                  PEBBLE_ENOTREADY);
  pebble_future_release(a);
  pebble_future_release(b);
  pebble_cqueue_destroy(q);
  pebble_pool_destroy(p);
}

static void test_wait_many(void) {
  pebble_future *f[3];
  size_t idx = 99;
  int64_t vals[3] = {200, 2, 200};
  int i;
  SKIP_IF_NO_PROCESSES();
  for (i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, square_or_fail, &vals[i],
                               sizeof vals[i], NULL, &f[i]),
                    0);
  CU_ASSERT_EQUAL(pebble_wait_any(f, 3, PEBBLE_SEC(30), &idx), PEBBLE_OK);
  CU_ASSERT_EQUAL(idx, 1);
  CU_ASSERT_EQUAL(pebble_wait_all(f, 3, PEBBLE_MSEC(100)), PEBBLE_ENOTREADY);
  pebble_future_cancel(f[0]);
  pebble_future_cancel(f[2]);
  CU_ASSERT_EQUAL(pebble_wait_all(f, 3, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_wait_any(NULL, 0, 0, &idx), PEBBLE_EINVAL);
  for (i = 0; i < 3; i++)
    pebble_future_release(f[i]);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"map in input order, errors in place", test_in_order_with_errors},
      {"chunk size 0", test_bad_chunk_size},
      {"chunk crash and chunk timeout", test_chunk_failures},
      {"as-completed and cancel", test_cancel_and_as_completed},
      {"items from a source", test_source},
      {"completion queue handle", test_cqueue},
      {"wait any, wait all", test_wait_many},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(square_or_fail);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  return run_suite("map", tests);
}
