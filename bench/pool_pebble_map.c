/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_pebble_map.c -- Pebble's batch submission: pebble_pool_map hands
 * the whole burst to the pool in one call.  Items are packed into chunks
 * of CHUNK items (one pool task each), so this line shows what batching
 * saves over one future per task, not a different amount of work: the
 * no-op still runs once per item and every item's outcome is read.
 */
#include "pools.h"

#include <stdlib.h>

#include <pebble.h>

#include "bench.h"

#define CHUNK 64

typedef struct map_sys {
  pebble_pool *pool;
  pebble_item *items;
} map_sys;

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

static void *create(unsigned workers, size_t max_burst) {
  map_sys *s = calloc(1, sizeof *s);
  pebble_pool_options o;
  if (s == NULL ||
      (s->items = calloc(max_burst, sizeof *s->items)) == NULL)
    bench_die("out of memory");
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_eagerly = 1;
  if (pebble_pool_create(&s->pool, PEBBLE_THREAD, &o) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  return s;
}

static void burst(void *p, size_t n) {
  map_sys *s = p;
  pebble_map_options mo;
  pebble_map *map;
  size_t i;
  pebble_map_options_init(&mo);
  mo.chunk_size = CHUNK;
  if (pebble_pool_map(s->pool, noop, s->items, n, &mo, &map) != PEBBLE_OK)
    bench_die("pebble_pool_map: %s", pebble_last_error());
  for (i = 0; i < n; i++)
    if (pebble_map_get(map, i, PEBBLE_FOREVER, NULL, NULL) != PEBBLE_OK)
      bench_die("a mapped no-op failed: %s", pebble_map_message(map, i));
  pebble_map_release(map);
}

static void destroy(void *p) {
  map_sys *s = p;
  pebble_pool_destroy(s->pool);
  free(s->items);
  free(s);
}

const bench_pool_sys bench_pool_pebble_map = {
    "pebble pool_map, chunks of 64", NULL, create, burst, NULL, destroy};
