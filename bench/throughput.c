/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throughput.c -- workload 1: trivial-task throughput.
 *
 * Every contender gets the same protocol.  For each worker count (1, 2,
 * 4) and burst size (1 k, 100 k, 1 M tasks; 200 k with 2 workers for the
 * issue's target), each repetition runs every system in turn (the order
 * rotates by one each repetition), and each system then submits n no-op
 * tasks one by one and waits for all of them.  Two ways:
 *
 *   cold    a fresh pool for every repetition: created, warmed up with
 *           WARMUP tasks (threads started, first allocations made), then
 *           the timed burst, then destroyed (untimed).  All cold
 *           repetitions run first, with no other pool alive: a pool kept
 *           for the reused way would leave the memory of a burst of the
 *           timed size behind (Pebble's task blocks are the library's, not
 *           a pool's), and a cold burst must not start on it;
 *   reused  then one pool per system for all repetitions, warmed up once
 *           with the same WARMUP tasks; from the second repetition on it
 *           has run an equal burst before, so what it keeps is warm.
 *
 * The warm-up is small and the same for everyone: never as large as the
 * timed burst.  Pebble gives each task its own future and reads it; the
 * library peers (GLib, APR, libuv) share one completion signal per burst,
 * the cheapest thing they can do; "plain queue + result per task"
 * is a mutex/condvar queue that mallocs a result per task and waits on
 * each one (the futures-shaped reference, pool_futures.c), and the plain
 * queue creates no result at all.  CPU per task counts every thread.
 *
 * Each worker count runs in a child process of its own: libuv reads its
 * pool size once per process (UV_THREADPOOL_SIZE).  1 M-task bursts run
 * fewer repetitions (REPS_1M) to keep the run within a few minutes, and
 * 1 k-task bursts REPS_1K_TIMES as many (each lasts about a millisecond).
 * A library peer whose median burst at the size before, in the slower of
 * the two ways (cold or reused), scaled by the square of the size ratio,
 * would take over LONG_BURST_S sits the larger size out, saying so with
 * its figures: APR-util's push walks its queue, and its one-worker 1 M
 * bursts took 3 to 5 minutes each (a full run 30 minutes and more) while
 * it was never the best peer.  Once the walk holds APR's lock long enough
 * to starve its worker, the queue and the walk grow together: a run whose
 * 100 k cold median predicted 20 s (the reused one 26 s) spent over 20
 * minutes in one 1 M burst, hence the slower way and 20 s.  Predictions
 * start from 100 k-task bursts (PREDICT_FROM_N): a 1 k burst lasts about
 * a millisecond, and the square of the step to 100 k turned a few slow
 * ones into a minute's prediction and left APR out of a 100 k row.
 * BENCH_LONG_BURST_S=seconds sets that limit (CI checks the rule with 0,
 * from 100 k to 1 M tasks).
 * BENCH_THROUGHPUT=W:N[,W:N...] limits the run to those configurations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "pools.h"

#define WARMUP 2000
#define REPS_1M 2
#define REPS_1K_TIMES 5 /* a 1 k burst lasts about a millisecond: more
                           repetitions keep one preemption from deciding */
#define LONG_BURST_S 20.0 /* a peer's burst predicted longer sits out */
#define PREDICT_FROM_N 100000 /* predictions start from this size */

static const bench_pool_sys *const systems[] = {
    &bench_pool_pebble, &bench_pool_pebble_map, &bench_pool_glib,
    &bench_pool_apr,    &bench_pool_uv,         &bench_pool_futures,
    &bench_pool_plain};
#define NSYS (sizeof systems / sizeof systems[0])
enum { PEBBLE = 0, PEBBLE_MAP = 1, FIRST_PEER = 2, END_PEER = 5,
       FUTURES = 5, PLAIN = 6 };
enum { COLD = 0, REUSED = 1, NMODES = 2 };
static const char *const mode_name[NMODES] = {"cold", "reused"};

typedef struct config {
  unsigned workers;
  size_t n;
} config;

static const config full[] = {{1, 1000},    {1, 100000}, {1, 1000000},
                              {2, 1000},    {2, 100000}, {2, 200000},
                              {2, 1000000}, {4, 1000},   {4, 100000},
                              {4, 1000000}};
static const config quick[] = {{2, 200}};

/* Per configuration and way: rate[s][r], cpu[s][r]. */
typedef struct result {
  double *rate[NSYS], *cpu[NSYS];
  size_t reps;
} result;

static int wanted(const config *c) {
  const char *only = getenv("BENCH_THROUGHPUT");
  char want[64];
  if (only == NULL || *only == '\0')
    return 1;
  snprintf(want, sizeof want, "%u:%zu", c->workers, c->n);
  for (;;) {
    size_t len = strcspn(only, ",");
    if (len == strlen(want) && strncmp(only, want, len) == 0)
      return 1;
    if (only[len] == '\0')
      return 0;
    only += len + 1;
  }
}

static void timed(size_t s, void *pool, size_t n, result *res, size_t r) {
  double c0 = bench_cpu(), t0 = bench_now(), t1, c1;
  systems[s]->burst(pool, n);
  t1 = bench_now();
  c1 = bench_cpu();
  res->rate[s][r] = (double)n / (t1 - t0);
  res->cpu[s][r] = (c1 - c0) / (double)n * 1e6;
}

static void *fresh(size_t s, const config *c, size_t warmup) {
  void *pool = systems[s]->create(c->workers, c->n > warmup ? c->n : warmup);
  systems[s]->burst(pool, warmup);
  return pool;
}

/* skip[s]: why system s sits this configuration out, or NULL. */
static void run_config(const config *c, size_t reps, size_t warmup,
                       const char *const skip[NSYS], result res[NMODES]) {
  void *kept[NSYS];
  size_t s, r, k, m;
  for (m = 0; m < NMODES; m++) {
    res[m].reps = reps;
    for (s = 0; s < NSYS; s++) {
      res[m].rate[s] = calloc(reps, sizeof(double));
      res[m].cpu[s] = calloc(reps, sizeof(double));
    }
  }
  for (r = 0; r < reps; r++)
    for (k = 0; k < NSYS; k++) {
      void *pool;
      s = (k + r) % NSYS;
      if (systems[s]->missing || skip[s] != NULL)
        continue;
      pool = fresh(s, c, warmup);
      timed(s, pool, c->n, &res[COLD], r);
      systems[s]->destroy(pool);
    }
  for (s = 0; s < NSYS; s++)
    kept[s] = systems[s]->missing || skip[s] != NULL ? NULL
                                                     : fresh(s, c, warmup);
  for (r = 0; r < reps; r++)
    for (k = 0; k < NSYS; k++) {
      s = (k + r) % NSYS;
      if (kept[s] != NULL)
        timed(s, kept[s], c->n, &res[REUSED], r);
    }
  for (s = 0; s < NSYS; s++)
    if (kept[s] != NULL)
      systems[s]->destroy(kept[s]);
}

/* best[r]: the best library peer of repetition r; 0 if none ran. */
static int best_peer(const result *res, const char *const skip[NSYS],
                     double *best) {
  size_t s, r;
  int have = 0;
  for (r = 0; r < res->reps; r++) {
    best[r] = 0;
    for (s = FIRST_PEER; s < END_PEER; s++)
      if (!systems[s]->missing && skip[s] == NULL &&
          res->rate[s][r] > best[r]) {
        best[r] = res->rate[s][r];
        have = 1;
      }
  }
  return have;
}

static void report(const config *c, const result res[NMODES], size_t warmup,
                   const char *const skip[NSYS], bench_ratio *vs_best,
                   bench_ratio *vs_futures) {
  size_t s, m;
  bench_section("1. trivial tasks, %u worker%s, %zu tasks submitted one by "
                "one, then wait for all; warm-up %zu tasks; %zu "
                "repetitions",
                c->workers, c->workers == 1 ? "" : "s", c->n, warmup,
                res[0].reps);
  for (m = 0; m < NMODES; m++) {
    const result *q = &res[m];
    double *best = calloc(q->reps, sizeof *best);
    bench_ratio b = {0}, f, p, mb;
    for (s = 0; s < NSYS; s++) {
      bench_ratio x;
      char metric[32];
      if (systems[s]->missing || skip[s] != NULL) {
        if (m == COLD)
          bench_skip(systems[s]->name,
                     skip[s] != NULL ? skip[s] : systems[s]->missing);
        continue;
      }
      snprintf(metric, sizeof metric, "%s", mode_name[m]);
      x = bench_ratio_of(q->rate[PEBBLE], q->rate[s], q->reps, BENCH_HIGHER);
      bench_row(systems[s]->name, metric, bench_median(q->rate[s], q->reps),
                "tasks/s", bench_median(q->cpu[s], q->reps),
                s == PEBBLE ? NULL : &x);
    }
    f = bench_ratio_of(q->rate[PEBBLE], q->rate[FUTURES], q->reps,
                       BENCH_HIGHER);
    p = bench_ratio_of(q->rate[PEBBLE], q->rate[PLAIN], q->reps,
                       BENCH_HIGHER);
    if (best_peer(q, skip, best)) {
      b = bench_ratio_of(q->rate[PEBBLE], best, q->reps, BENCH_HIGHER);
      mb = bench_ratio_of(q->rate[PEBBLE_MAP], best, q->reps, BENCH_HIGHER);
      bench_note("%s: pebble / best of glib,apr,libuv %.2fx (worst %.2fx); "
                 "/ result-per-task queue %.2fx (%.2fx); / plain queue "
                 "%.2fx (%.2fx); pool_map / best peer %.2fx",
                 mode_name[m], b.median, b.worst, f.median, f.worst,
                 p.median, p.worst, mb.median);
    } else {
      bench_note("%s: pebble / result-per-task queue %.2fx (%.2fx); / plain "
                 "queue %.2fx (%.2fx); no library peer ran (none built, or "
                 "all left out)",
                 mode_name[m], f.median, f.worst, p.median, p.worst);
    }
    if (m == COLD) {
      *vs_best = b;
      *vs_futures = f;
    }
    free(best);
  }
}

static void free_result(result res[NMODES]) {
  size_t m, s;
  for (m = 0; m < NMODES; m++)
    for (s = 0; s < NSYS; s++) {
      free(res[m].rate[s]);
      free(res[m].cpu[s]);
    }
}

/* Every configuration with this many workers, in this process. */
static void run_workers(unsigned workers, const config *list, size_t count,
                        const bench_opts *o) {
  size_t i, s, warmup = o->quick ? 20 : WARMUP;
  double small = 0, large = 0;
  size_t small_n = 0, large_n = 0;
  /* Each peer's median burst in its slower way, in seconds, at the last
   * size run. */
  double burst_s[NSYS] = {0};
  size_t burst_n = 0;
  char why[NSYS][200]; /* skip[s] points here for one configuration */
  const char *limit_env = getenv("BENCH_LONG_BURST_S");
  double limit = limit_env != NULL && *limit_env != '\0'
                     ? strtod(limit_env, NULL)
                     : LONG_BURST_S;
  for (i = 0; i < count; i++) {
    const config *c = &list[i];
    result res[NMODES];
    bench_ratio vs_best = {0}, vs_futures = {0};
    size_t reps = (size_t)o->reps;
    const char *skip[NSYS] = {NULL};
    if (c->workers != workers || !wanted(c))
      continue;
    if (c->n >= 1000000 && reps > REPS_1M)
      reps = REPS_1M;
    if (c->n <= 1000 && !o->quick)
      reps *= REPS_1K_TIMES;
    for (s = FIRST_PEER; s < END_PEER; s++) {
      double scale = burst_n >= PREDICT_FROM_N
                         ? (double)c->n / (double)burst_n
                         : 0;
      if (burst_s[s] * scale * scale > limit) {
        snprintf(why[s], sizeof why[s],
                 "its %zu-task bursts took %.3g ms (median, the slower "
                 "way); at the square of the size, %zu tasks would take "
                 "%.3g s a burst (over %g s: left out at this size)",
                 burst_n, burst_s[s] * 1e3, c->n,
                 burst_s[s] * scale * scale, limit);
        skip[s] = why[s];
      }
    }
    run_config(c, reps, warmup, skip, res);
    report(c, res, warmup, skip, &vs_best, &vs_futures);
    for (s = FIRST_PEER; s < END_PEER; s++) {
      size_t m;
      burst_s[s] = 0;
      for (m = 0; m < NMODES && skip[s] == NULL; m++) {
        double rate = bench_median(res[m].rate[s], reps);
        if (rate > 0 && (double)c->n / rate > burst_s[s])
          burst_s[s] = (double)c->n / rate;
      }
    }
    burst_n = c->n;
    if (small_n == 0 || c->n < small_n) {
      small_n = c->n;
      small = bench_median(res[COLD].rate[PEBBLE], reps);
    }
    if (c->n > large_n) {
      large_n = c->n;
      large = bench_median(res[COLD].rate[PEBBLE], reps);
    }
    if (workers == 2 && c->n == 200000) {
      bench_target(vs_best.n > 0 && vs_best.median >= 1.0,
                   "one future per task, cold, 200 k tasks, 2 workers: >= "
                   "1.0x the best of glib/apr/libuv: %.2fx (worst rep "
                   "%.2fx; %zu of %zu repetitions meet it)",
                   vs_best.median, vs_best.worst,
                   bench_ratio_meeting(&vs_best, 1.0), vs_best.n);
      bench_target(vs_futures.median >= 2.0,
                   "the same >= 2x the result-per-task plain queue: %.2fx "
                   "(worst rep %.2fx; %zu of %zu repetitions meet it)",
                   vs_futures.median, vs_futures.worst,
                   bench_ratio_meeting(&vs_futures, 2.0), vs_futures.n);
    }
    free_result(res);
  }
  if (small_n > 0 && large_n >= 1000000 && small_n <= 1000) {
    bench_target(large >= 0.5 * small,
                 "%u worker%s, cold: pebble at %zu tasks >= 0.5x its rate "
                 "at %zu: %.2fx",
                 workers, workers == 1 ? "" : "s", large_n, small_n,
                 large / small);
  }
}

int main(int argc, char **argv) {
  static const unsigned counts[] = {1, 2, 4};
  bench_opts o;
  const config *list;
  size_t count, i;
  bench_parse(argc, argv, &o, 6);
  list = o.quick ? quick : full;
  count = o.quick ? sizeof quick / sizeof *quick : sizeof full / sizeof *full;
  for (i = 0; i < sizeof counts / sizeof *counts; i++) {
    char env[16];
    pid_t pid;
    int status;
    size_t k;
    for (k = 0; k < count; k++)
      if (list[k].workers == counts[i] && wanted(&list[k]))
        break;
    if (k == count)
      continue;
    fflush(stdout);
    if ((pid = fork()) < 0)
      bench_die("fork failed");
    if (pid == 0) {
      snprintf(env, sizeof env, "%u", counts[i]);
      setenv("UV_THREADPOOL_SIZE", env, 1); /* before libuv's first use */
      run_workers(counts[i], list, count, &o);
      fflush(stdout);
      _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      bench_die("the run with %u workers failed", counts[i]);
  }
  return 0;
}
