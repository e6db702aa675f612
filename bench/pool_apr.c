/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_apr.c -- APR-util's apr_thread_pool with exactly `workers` threads
 * (initial and maximum).  Completion goes through the shared latch.
 */
#include "pools.h"

#ifdef BENCH_HAVE_APRUTIL
#include <stdlib.h>

#include <apr_general.h>
#include <apr_thread_pool.h>

#include "bench.h"

typedef struct apr_sys {
  apr_pool_t *mem;
  apr_thread_pool_t *pool;
  bench_latch *done;
} apr_sys;

static void *APR_THREAD_FUNC noop(apr_thread_t *thread, void *data) {
  (void)thread;
  bench_latch_count(data);
  return NULL;
}

static void *create(unsigned workers, size_t max_burst) {
  apr_sys *s = calloc(1, sizeof *s);
  (void)max_burst;
  if (s == NULL)
    bench_die("out of memory");
  if (apr_initialize() != APR_SUCCESS ||
      apr_pool_create(&s->mem, NULL) != APR_SUCCESS ||
      apr_thread_pool_create(&s->pool, workers, workers, s->mem) !=
          APR_SUCCESS)
    bench_die("cannot create an apr_thread_pool");
  s->done = bench_latch_new();
  return s;
}

static void burst(void *p, size_t n) {
  apr_sys *s = p;
  size_t i;
  bench_latch_arm(s->done, n);
  for (i = 0; i < n; i++)
    if (apr_thread_pool_push(s->pool, noop, s->done,
                             APR_THREAD_TASK_PRIORITY_NORMAL,
                             NULL) != APR_SUCCESS)
      bench_die("apr_thread_pool_push failed");
  bench_latch_wait(s->done);
}

static void round_trip(void *p) { burst(p, 1); }

static void destroy(void *p) {
  apr_sys *s = p;
  apr_thread_pool_destroy(s->pool);
  apr_pool_destroy(s->mem);
  bench_latch_free(s->done);
  free(s);
}

const bench_pool_sys bench_pool_apr = {"apr-util apr_thread_pool", NULL,
                                       create, burst, round_trip, destroy};
#else
const bench_pool_sys bench_pool_apr = {
    "apr-util apr_thread_pool",
    "APR-util was not found at configure time (Debian: libaprutil1-dev)",
    NULL, NULL, NULL, NULL};
#endif
