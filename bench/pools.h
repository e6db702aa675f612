/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pools.h -- the thread pools compared by workloads 1 and 2, behind one
 * small interface so that both workloads drive every system the same way.
 * Each system lives in its own file (pool_<name>.c).  A system whose
 * library was not found at configure time still has an entry: `missing`
 * then says why its lines are skipped.
 */
#ifndef BENCH_POOLS_H
#define BENCH_POOLS_H

#include <stddef.h>

typedef struct bench_pool_sys {
  const char *name;    /* as shown in the table */
  const char *missing; /* NULL when built; else why it is skipped */
  /* Start a pool of `workers` threads able to hold max_burst tasks. */
  void *(*create)(unsigned workers, size_t max_burst);
  /* Submit n no-op tasks one by one, then wait until all are done. */
  void (*burst)(void *pool, size_t n);
  /* Submit one no-op task and wait for it; NULL: not a round-trip API. */
  void (*round_trip)(void *pool);
  void (*destroy)(void *pool);
} bench_pool_sys;

extern const bench_pool_sys bench_pool_pebble;     /* one future per task */
extern const bench_pool_sys bench_pool_pebble_map; /* batch: pebble_pool_map */
extern const bench_pool_sys bench_pool_glib;       /* GThreadPool */
extern const bench_pool_sys bench_pool_apr;        /* apr_thread_pool */
extern const bench_pool_sys bench_pool_uv;         /* uv_queue_work */
extern const bench_pool_sys bench_pool_plain;      /* mutex + condvar queue */
extern const bench_pool_sys bench_pool_futures;    /* the same, a result
                                                      object per task */

/*
 * The completion signal the peers share: one countdown for a whole burst
 * (or a single task), opened by the task that brings it to zero.
 */
typedef struct bench_latch bench_latch;
bench_latch *bench_latch_new(void);
void bench_latch_arm(bench_latch *l, size_t n); /* before submitting */
void bench_latch_count(bench_latch *l);         /* from a task */
void bench_latch_wait(bench_latch *l);
void bench_latch_free(bench_latch *l);

#endif /* BENCH_POOLS_H */
