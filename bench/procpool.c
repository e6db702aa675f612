/*
 * procpool.c -- workload 3: process pools, 2 workers.
 *
 * Throughput: N tasks (an 8-byte argument, returned as the result)
 * submitted one by one, then every result read.  Round trip: one task,
 * its result, repeat.  Pebble's process pool against the plain
 * pre-forked pipe pool and a bare pipe ping-pong (procs.h), and against
 * Python Pebble's ProcessPool as a reference line.  All systems run in
 * turn inside every repetition; the Python one runs fewer tasks (it is
 * about 100 times slower) and its rates are per task like the others.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <pebble.h>

#include "bench.h"
#include "procs.h"
#include "python.h"

#define WORKERS 2

enum { T_PEBBLE, T_PLAIN, T_PY, T_N };             /* throughput lines */
enum { R_PEBBLE, R_PLAIN, R_PING, R_PY, R_N };     /* round-trip lines */
static const char *const t_names[T_N] = {
    "pebble process pool", "plain pre-forked pipe pool",
    "python pebble ProcessPool"};
static const char *const r_names[R_N] = {
    "pebble process pool", "plain pre-forked pipe pool",
    "bare pipe ping-pong", "python pebble ProcessPool"};

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

static void pebble_burst(pebble_pool *pool, pebble_future **f, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int64_t v = (int64_t)i;
    if (pebble_pool_schedule(pool, echo, &v, sizeof v, NULL, &f[i]) !=
        PEBBLE_OK)
      bench_die("pebble_pool_schedule: %s", pebble_last_error());
  }
  for (i = 0; i < n; i++) {
    int64_t v;
    if (pebble_future_get_int(f[i], PEBBLE_FOREVER, &v) != PEBBLE_OK ||
        v != (int64_t)i)
      bench_die("process task %zu: %s", i, pebble_future_message(f[i]));
    pebble_future_release(f[i]);
  }
}

static void pebble_round_trip(pebble_pool *pool) {
  pebble_future *f;
  int64_t v = 42;
  if (pebble_pool_schedule(pool, echo, &v, sizeof v, NULL, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_FOREVER, &v) != PEBBLE_OK || v != 42)
    bench_die("process round trip: %s", pebble_last_error());
  pebble_future_release(f);
}

/* Both measures for one system: what it does per call and per task. */
typedef struct series {
  double *value, *cpu, *p99;
} series;

static series series_new(int reps) {
  series s;
  s.value = calloc((size_t)reps, sizeof *s.value);
  s.cpu = calloc((size_t)reps, sizeof *s.cpu);
  s.p99 = calloc((size_t)reps, sizeof *s.p99);
  if (s.value == NULL || s.cpu == NULL || s.p99 == NULL)
    bench_die("out of memory");
  return s;
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future **futures;
  preforked *plain;
  pingpong *ping;
  const char *py_missing;
  size_t n, npy, m, mpy, r, i, k;
  series t[T_N], rt[R_N];
  double *lat;

  bench_parse(argc, argv, &o, 10);
  n = o.quick ? 100 : 20000;
  npy = o.quick ? 20 : 1000;
  m = o.quick ? 20 : 2000;
  mpy = o.quick ? 5 : 300;
  futures = calloc(n, sizeof *futures);
  lat = calloc(m > mpy ? m : mpy, sizeof *lat);
  for (k = 0; k < T_N; k++)
    t[k] = series_new(o.reps);
  for (k = 0; k < R_N; k++)
    rt[k] = series_new(o.reps);

  /* The hand-written children first, while this process is small. */
  plain = preforked_start(WORKERS);
  ping = pingpong_start();
  pebble_pool_options_init(&po);
  po.workers = WORKERS;
  po.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  py_missing = bench_python_missing();
  if (!o.quick) { /* warm-up */
    pebble_burst(pool, futures, 200);
    preforked_burst(plain, 200);
  }

  for (r = 0; r < (size_t)o.reps; r++) {
    double c0, t0, t1, c1, py[3];
    /* throughput */
    c0 = bench_cpu();
    t0 = bench_now();
    pebble_burst(pool, futures, n);
    t1 = bench_now();
    c1 = bench_cpu();
    t[T_PEBBLE].value[r] = (double)n / (t1 - t0);
    t[T_PEBBLE].cpu[r] = (c1 - c0) / (double)n * 1e6;
    c0 = bench_cpu();
    t0 = bench_now();
    preforked_burst(plain, n);
    t1 = bench_now();
    c1 = bench_cpu();
    t[T_PLAIN].value[r] = (double)n / (t1 - t0);
    t[T_PLAIN].cpu[r] = (c1 - c0) / (double)n * 1e6;
    if (py_missing == NULL) {
      if (bench_python("throughput", npy, py, 2) != 2)
        bench_die("py_pebble.py throughput failed");
      t[T_PY].value[r] = (double)npy / py[0];
      t[T_PY].cpu[r] = py[1] / (double)npy * 1e6;
    }
    /* round trips */
    for (k = 0; k < R_PY; k++) {
      c0 = bench_cpu();
      for (i = 0; i < m; i++) {
        t0 = bench_now();
        if (k == R_PEBBLE)
          pebble_round_trip(pool);
        else if (k == R_PLAIN)
          preforked_round_trip(plain);
        else
          pingpong_round_trip(ping);
        lat[i] = (bench_now() - t0) * 1e6;
      }
      c1 = bench_cpu();
      rt[k].value[r] = bench_percentile(lat, m, 50);
      rt[k].p99[r] = bench_percentile(lat, m, 99);
      rt[k].cpu[r] = (c1 - c0) / (double)m * 1e6;
    }
    if (py_missing == NULL) {
      if (bench_python("roundtrip", mpy, py, 3) != 3)
        bench_die("py_pebble.py roundtrip failed");
      rt[R_PY].value[r] = py[0];
      rt[R_PY].p99[r] = py[1];
      rt[R_PY].cpu[r] = py[2] / (double)mpy * 1e6;
    }
  }

  bench_section("3. process pool throughput, %d workers: %zu tasks (python: "
                "%zu) one by one, then all results; %d repetitions",
                WORKERS, n, npy, o.reps);
  for (k = 0; k < T_N; k++) {
    bench_ratio q = bench_ratio_of(t[T_PEBBLE].value, t[k].value,
                                   (size_t)o.reps, BENCH_HIGHER);
    if (k == T_PY && py_missing != NULL) {
      bench_skip(t_names[k], py_missing);
      continue;
    }
    bench_row(t_names[k], "throughput",
              bench_median(t[k].value, (size_t)o.reps), "tasks/s",
              bench_median(t[k].cpu, (size_t)o.reps),
              k == T_PEBBLE ? NULL : &q);
  }
  {
    bench_ratio q = bench_ratio_of(t[T_PEBBLE].value, t[T_PLAIN].value,
                                   (size_t)o.reps, BENCH_HIGHER);
    bench_target(q.median >= 0.5,
                 ">= 0.5x the plain pre-forked pool: %.2fx (worst rep %.2fx)",
                 q.median, q.worst);
    if (py_missing == NULL) {
      q = bench_ratio_of(t[T_PEBBLE].value, t[T_PY].value, (size_t)o.reps,
                         BENCH_HIGHER);
      bench_target(q.median >= 50,
                   ">= 50x Python Pebble: %.1fx (worst rep %.1fx)", q.median,
                   q.worst);
    }
  }

  bench_section("3. process round trip, %d workers: %zu round trips "
                "(python: %zu) per repetition; %d repetitions",
                WORKERS, m, mpy, o.reps);
  for (k = 0; k < R_N; k++) {
    bench_ratio q50 = bench_ratio_of(rt[R_PEBBLE].value, rt[k].value,
                                     (size_t)o.reps, BENCH_LOWER);
    bench_ratio q99 = bench_ratio_of(rt[R_PEBBLE].p99, rt[k].p99,
                                     (size_t)o.reps, BENCH_LOWER);
    if (k == R_PY && py_missing != NULL) {
      bench_skip(r_names[k], py_missing);
      continue;
    }
    bench_row(r_names[k], "p50", bench_median(rt[k].value, (size_t)o.reps),
              "us", bench_median(rt[k].cpu, (size_t)o.reps),
              k == R_PEBBLE ? NULL : &q50);
    bench_row("", "p99", bench_median(rt[k].p99, (size_t)o.reps), "us", -1,
              k == R_PEBBLE ? NULL : &q99);
  }
  {
    bench_ratio q = bench_ratio_of(rt[R_PEBBLE].value, rt[R_PING].value,
                                   (size_t)o.reps, BENCH_LOWER);
    bench_target(q.median <= 3.0,
                 "p50 <= 3x the bare pipe ping-pong: %.2fx (worst rep %.2fx)",
                 q.median, q.worst);
  }

  pebble_pool_destroy(pool);
  preforked_stop(plain);
  pingpong_stop(ping);
  free(futures);
  free(lat);
  return 0;
}
