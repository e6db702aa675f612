/* SPDX-License-Identifier: Apache-2.0 */
/* echo.c -- the process benchmarks' task and its bursts (echo.h). */
#include "echo.h"

#include "bench.h"

int bench_echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

void bench_echo_once(pebble_pool *pool, int64_t v, const char *what) {
  pebble_future *f = NULL;
  int64_t got = 0;
  int rc = pebble_pool_schedule(pool, bench_echo, &v, sizeof v, NULL, &f);
  if (rc != PEBBLE_OK)
    bench_die("%s: %s", what, pebble_last_error());
  rc = pebble_future_get_int(f, PEBBLE_FOREVER, &got);
  if (rc != PEBBLE_OK || got != v)
    bench_die("%s: %s", what, pebble_future_message(f));
  pebble_future_release(f);
}

void bench_echo_burst(pebble_pool *pool, pebble_future **f, size_t n,
                      const char *what) {
  size_t i;
  for (i = 0; i < n; i++) {
    int64_t v = (int64_t)i;
    if (pebble_pool_schedule(pool, bench_echo, &v, sizeof v, NULL, &f[i]) !=
        PEBBLE_OK)
      bench_die("%s: task %zu: %s", what, i, pebble_last_error());
  }
  for (i = 0; i < n; i++) {
    int64_t v;
    if (pebble_future_get_int(f[i], PEBBLE_FOREVER, &v) != PEBBLE_OK ||
        v != (int64_t)i)
      bench_die("%s: task %zu: %s", what, i, pebble_future_message(f[i]));
    pebble_future_release(f[i]);
  }
}
