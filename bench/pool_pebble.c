/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_pebble.c -- Pebble's thread pool as an application uses it: every
 * task scheduled on its own with its own future, then waited for and
 * released.
 */
#include "pools.h"

#include <stdlib.h>

#include <pebble.h>

#include "bench.h"

typedef struct pebble_sys {
  pebble_pool *pool;
  pebble_future **futures;
} pebble_sys;

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

static void *create(unsigned workers, size_t max_burst) {
  pebble_sys *s = calloc(1, sizeof *s);
  pebble_pool_options o;
  if (s == NULL || (s->futures = calloc(max_burst, sizeof *s->futures)) ==
                       NULL)
    bench_die("out of memory");
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_eagerly = 1;
  if (pebble_pool_create(&s->pool, PEBBLE_THREAD, &o) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  return s;
}

static void burst(void *p, size_t n) {
  pebble_sys *s = p;
  size_t i;
  for (i = 0; i < n; i++)
    if (pebble_pool_schedule(s->pool, noop, NULL, 0, NULL, &s->futures[i]) !=
        PEBBLE_OK)
      bench_die("pebble_pool_schedule: %s", pebble_last_error());
  if (pebble_wait_all(s->futures, n, PEBBLE_FOREVER) != PEBBLE_OK)
    bench_die("pebble_wait_all: %s", pebble_last_error());
  for (i = 0; i < n; i++) {
    if (pebble_future_status(s->futures[i]) != PEBBLE_OK)
      bench_die("a no-op task failed: %s",
                pebble_future_message(s->futures[i]));
    pebble_future_release(s->futures[i]);
  }
}

static void round_trip(void *p) {
  pebble_sys *s = p;
  pebble_future *f;
  if (pebble_pool_schedule(s->pool, noop, NULL, 0, NULL, &f) != PEBBLE_OK)
    bench_die("pebble_pool_schedule: %s", pebble_last_error());
  if (pebble_future_get(f, PEBBLE_FOREVER, NULL, NULL) != PEBBLE_OK)
    bench_die("a no-op task failed: %s", pebble_last_error());
  pebble_future_release(f);
}

static void destroy(void *p) {
  pebble_sys *s = p;
  pebble_pool_destroy(s->pool);
  free(s->futures);
  free(s);
}

const bench_pool_sys bench_pool_pebble = {
    "pebble pool, future per task", NULL, create, burst, round_trip,
    destroy};
