/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_glib.c -- GLib's GThreadPool with dedicated ("exclusive") threads,
 * so its workers are as much its own as Pebble's are.  Completion goes
 * through the shared latch (pools.h).
 */
#include "pools.h"

#ifdef BENCH_HAVE_GLIB
#include <stdlib.h>

#include <glib.h>

#include "bench.h"

typedef struct glib_sys {
  GThreadPool *pool;
  bench_latch *done;
} glib_sys;

static void noop(gpointer data, gpointer user_data) {
  (void)user_data;
  bench_latch_count(data);
}

static void *create(unsigned workers, size_t max_burst) {
  glib_sys *s = calloc(1, sizeof *s);
  GError *err = NULL;
  (void)max_burst;
  if (s == NULL)
    bench_die("out of memory");
  s->done = bench_latch_new();
  s->pool = g_thread_pool_new(noop, NULL, (gint)workers, TRUE, &err);
  if (s->pool == NULL)
    bench_die("g_thread_pool_new: %s", err ? err->message : "failed");
  return s;
}

static void burst(void *p, size_t n) {
  glib_sys *s = p;
  size_t i;
  bench_latch_arm(s->done, n);
  for (i = 0; i < n; i++)
    if (!g_thread_pool_push(s->pool, s->done, NULL))
      bench_die("g_thread_pool_push failed");
  bench_latch_wait(s->done);
}

static void round_trip(void *p) { burst(p, 1); }

static void destroy(void *p) {
  glib_sys *s = p;
  g_thread_pool_free(s->pool, FALSE, TRUE);
  bench_latch_free(s->done);
  free(s);
}

const bench_pool_sys bench_pool_glib = {"glib GThreadPool", NULL, create,
                                        burst, round_trip, destroy};
#else
const bench_pool_sys bench_pool_glib = {
    "glib GThreadPool",
    "GLib was not found at configure time (Debian: libglib2.0-dev)", NULL,
    NULL, NULL, NULL};
#endif
