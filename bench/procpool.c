/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procpool.c -- workload 3: process pools.
 *
 * Throughput: N tasks (an 8-byte argument, returned as the result)
 * submitted one by one, then every result read; N = 1,000, 100,000 and
 * 1,000,000, with 1, 2 and 4 workers.  Pebble's process pool against the
 * plain pre-forked pool with a pipe per child (the reference, procs.h),
 * the plain pool over one shared pipe, and Python Pebble's ProcessPool
 * (at 1,000 tasks only: it is about 100 times slower).  Every contender
 * gets the same warm-up (WARM tasks through each pool before anything is
 * timed; Python's pool is new in every run, so it gets its warm-up there),
 * and the same end point: every result in the parent's hands.  Inside
 * each repetition all systems run in turn, for every worker count.
 *
 * Round trip, 2 workers: one task, its result, repeat; against the same
 * plain pools and a bare pipe ping-pong.
 *
 * For a shorter run while developing: BENCH_PROCPOOL_SIZES=1000,100000
 * and BENCH_PROCPOOL_WORKERS=2 restrict the throughput grid.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pebble.h>

#include "bench.h"
#include "echo.h"
#include "procs.h"
#include "python.h"

#define MAX_SIZES 3
#define MAX_WORKERS 3
#define RT_WORKERS 2

enum { T_PEBBLE, T_PIPES, T_SHARED, T_PY, T_N }; /* throughput lines */
enum { R_PEBBLE, R_PIPES, R_SHARED, R_PING, R_PY, R_N }; /* round trip */
static const char *const t_names[T_N] = {
    "pebble process pool", "pre-forked, pipe per child",
    "pre-forked, shared pipe", "python pebble ProcessPool"};
static const char *const r_names[R_N] = {
    "pebble process pool", "pre-forked, pipe per child",
    "pre-forked, shared pipe", "bare pipe ping-pong",
    "python pebble ProcessPool"};

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

/* A comma-separated list of numbers from the environment, else `def`. */
static size_t list_from_env(const char *var, const size_t *def, size_t ndef,
                            size_t *out, size_t max) {
  const char *s = getenv(var);
  size_t n = 0;
  char *end;
  if (s == NULL || *s == '\0') {
    memcpy(out, def, ndef * sizeof *def);
    return ndef;
  }
  while (*s != '\0' && n < max) {
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0)
      bench_die("%s: expected numbers separated by commas", var);
    out[n++] = (size_t)v;
    s = *end == ',' ? end + 1 : end;
  }
  return n;
}

/* One system's burst, timed: rate and CPU per task into s at rep r. */
typedef struct contenders {
  pebble_pool *pool;
  preforked *pipes, *shared;
} contenders;

static void timed_burst(contenders *c, int k, pebble_future **f, size_t n,
                        series *s, size_t r) {
  double c0 = bench_cpu(), t0 = bench_now(), t1, c1;
  if (k == T_PEBBLE)
    bench_echo_burst(c->pool, f, n, "process pool");
  else if (k == T_PIPES)
    preforked_burst(c->pipes, n);
  else
    preforked_burst(c->shared, n);
  t1 = bench_now();
  c1 = bench_cpu();
  s->value[r] = (double)n / (t1 - t0);
  s->cpu[r] = (c1 - c0) / (double)n * 1e6;
}

int main(int argc, char **argv) {
  static const size_t full_sizes[] = {1000, 100000, 1000000};
  static const size_t quick_sizes[] = {100};
  static const size_t all_workers[] = {1, 2, 4};
  bench_opts o;
  pebble_pool_options po;
  contenders c[MAX_WORKERS];
  pebble_future **futures;
  preforked *rt_pipes, *rt_shared;
  pingpong *ping;
  const char *py_missing;
  size_t sizes[MAX_SIZES], workers[MAX_WORKERS], nsizes, nworkers;
  size_t reps[MAX_SIZES], warm, npy, m, mpy, r, i, k, s, w, maxn = 0;
  series t[MAX_SIZES][MAX_WORKERS][T_N], rt[R_N];
  double *lat;
  int rt_at = -1; /* which c[] has RT_WORKERS workers */

  bench_parse(argc, argv, &o, 10);
  nsizes = o.quick ? (sizes[0] = quick_sizes[0], 1)
                   : list_from_env("BENCH_PROCPOOL_SIZES", full_sizes, 3,
                                   sizes, MAX_SIZES);
  nworkers = list_from_env("BENCH_PROCPOOL_WORKERS", all_workers, 3, workers,
                           MAX_WORKERS);
  warm = o.quick ? 20 : 2000;
  npy = o.quick ? 20 : 1000;
  m = o.quick ? 20 : 2000;
  mpy = o.quick ? 5 : 300;
  for (s = 0; s < nsizes; s++) {
    /* Fewer repetitions for the long bursts. */
    reps[s] = (size_t)o.reps;
    if (sizes[s] >= 1000000 && reps[s] > 3)
      reps[s] = 3;
    else if (sizes[s] >= 100000 && reps[s] > 5)
      reps[s] = 5;
    if (sizes[s] > maxn)
      maxn = sizes[s];
    for (w = 0; w < nworkers; w++)
      for (k = 0; k < T_N; k++)
        t[s][w][k] = series_new((int)reps[s]);
  }
  futures = calloc(maxn > warm ? maxn : warm, sizeof *futures);
  lat = calloc(m > mpy ? m : mpy, sizeof *lat);
  if (futures == NULL || lat == NULL)
    bench_die("out of memory");
  for (k = 0; k < R_N; k++)
    rt[k] = series_new(o.reps);

  /* The hand-written children first, while this process is small. */
  for (w = 0; w < nworkers; w++) {
    c[w].pipes = preforked_start(PREFORKED_PIPES, (unsigned)workers[w]);
    c[w].shared = preforked_start(PREFORKED_SHARED, (unsigned)workers[w]);
  }
  rt_pipes = preforked_start(PREFORKED_PIPES, RT_WORKERS);
  rt_shared = preforked_start(PREFORKED_SHARED, RT_WORKERS);
  ping = pingpong_start();
  for (w = 0; w < nworkers; w++) {
    pebble_pool_options_init(&po);
    po.workers = (unsigned)workers[w];
    po.start_eagerly = 1;
    if (pebble_pool_create(&c[w].pool, PEBBLE_PROCESS, &po) != PEBBLE_OK)
      bench_die("pebble_pool_create: %s", pebble_last_error());
    if (workers[w] == RT_WORKERS)
      rt_at = (int)w;
  }
  if (rt_at < 0)
    bench_die("the round trip needs %d workers among the worker counts",
              RT_WORKERS);
  py_missing = bench_python_missing();
  /* The same warm-up for every contender. */
  for (w = 0; w < nworkers; w++) {
    bench_echo_burst(c[w].pool, futures, warm, "process pool");
    preforked_burst(c[w].pipes, warm);
    preforked_burst(c[w].shared, warm);
  }
  preforked_burst(rt_pipes, warm);
  preforked_burst(rt_shared, warm);

  /* Throughput: per size, each repetition runs every system at every
   * worker count in turn. */
  for (s = 0; s < nsizes; s++)
    for (r = 0; r < reps[s]; r++)
      for (w = 0; w < nworkers; w++) {
        for (k = 0; k < T_PY; k++)
          timed_burst(&c[w], (int)k, futures, sizes[s], &t[s][w][k], r);
        if (py_missing == NULL && sizes[s] == (o.quick ? sizes[0] : 1000)) {
          double py[2];
          if (bench_python_with("throughput", npy, (unsigned)workers[w], warm,
                                py, 2) != 2)
            bench_die("py_pebble.py throughput failed");
          t[s][w][T_PY].value[r] = (double)npy / py[0];
          t[s][w][T_PY].cpu[r] = py[1] / (double)npy * 1e6;
        }
      }

  /* Round trips, RT_WORKERS workers. */
  for (r = 0; r < (size_t)o.reps; r++) {
    double c0, c1, t0;
    for (k = 0; k < R_PY; k++) {
      c0 = bench_cpu();
      for (i = 0; i < m; i++) {
        t0 = bench_now();
        if (k == R_PEBBLE)
          bench_echo_once(c[rt_at].pool, 42, "process round trip");
        else if (k == R_PIPES)
          preforked_round_trip(rt_pipes);
        else if (k == R_SHARED)
          preforked_round_trip(rt_shared);
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
      double py[3];
      if (bench_python_with("roundtrip", mpy, RT_WORKERS, warm, py, 3) != 3)
        bench_die("py_pebble.py roundtrip failed");
      rt[R_PY].value[r] = py[0];
      rt[R_PY].p99[r] = py[1];
      rt[R_PY].cpu[r] = py[2] / (double)mpy * 1e6;
    }
  }

  for (s = 0; s < nsizes; s++) {
    int py_here = sizes[s] == (o.quick ? sizes[0] : 1000);
    char targets[256];
    size_t len = 0;
    int met = 1;
    bench_section("3. process pool throughput: %zu tasks one by one, then "
                  "all results; warm-up %zu tasks; %zu repetitions%s",
                  sizes[s], warm, reps[s],
                  py_here ? " (python: the same count)" : "");
    for (w = 0; w < nworkers; w++) {
      series *mine = &t[s][w][T_PEBBLE];
      bench_ratio q;
      for (k = 0; k < T_N; k++) {
        char name[64];
        q = bench_ratio_of(mine->value, t[s][w][k].value, reps[s],
                           BENCH_HIGHER);
        snprintf(name, sizeof name, "%s, %zu w", t_names[k], workers[w]);
        if (k == T_PY && !py_here)
          continue;
        if (k == T_PY && py_missing != NULL) {
          bench_skip(name, py_missing);
          continue;
        }
        bench_row(name, "throughput", bench_median(t[s][w][k].value, reps[s]),
                  "tasks/s", bench_median(t[s][w][k].cpu, reps[s]),
                  k == T_PEBBLE ? NULL : &q);
      }
      q = bench_ratio_of(mine->value, t[s][w][T_PIPES].value, reps[s],
                         BENCH_HIGHER);
      met &= q.median >= 0.5;
      len += (size_t)snprintf(targets + len, sizeof targets - len,
                              "%s%zu w %.2fx (worst %.2fx, %zu of %zu "
                              "reps)",
                              w > 0 ? ", " : "", workers[w], q.median,
                              q.worst, bench_ratio_meeting(&q, 0.5), q.n);
      if (len >= sizeof targets)
        len = sizeof targets - 1;
    }
    bench_target(met, ">= 0.5x the pre-forked pool with a pipe per child: %s",
                 targets);
    if (py_here && py_missing == NULL)
      for (w = 0; w < nworkers; w++) {
        bench_ratio q = bench_ratio_of(t[s][w][T_PEBBLE].value,
                                       t[s][w][T_PY].value, reps[s],
                                       BENCH_HIGHER);
        bench_target(q.median >= 50,
                     ">= 50x Python Pebble, %zu w: %.1fx (worst rep %.1fx; "
                     "%zu of %zu repetitions meet it)",
                     workers[w], q.median, q.worst,
                     bench_ratio_meeting(&q, 50), q.n);
      }
  }

  bench_section("3. process round trip, %d workers: %zu round trips "
                "(python: %zu) per repetition; %d repetitions",
                RT_WORKERS, m, mpy, o.reps);
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
                 "p50 <= 3x the bare pipe ping-pong: %.2fx (worst rep %.2fx; "
                 "%zu of %zu repetitions meet it)",
                 q.median, q.worst, bench_ratio_meeting(&q, 3.0), q.n);
  }

  /* Pebble's workers first: forked after the plain pools, they hold
   * copies of their task pipes' ends. */
  for (w = 0; w < nworkers; w++)
    pebble_pool_destroy(c[w].pool);
  for (w = 0; w < nworkers; w++) {
    preforked_stop(c[w].pipes);
    preforked_stop(c[w].shared);
  }
  preforked_stop(rt_pipes);
  preforked_stop(rt_shared);
  pingpong_stop(ping);
  free(futures);
  free(lat);
  return 0;
}
