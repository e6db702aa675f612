/*
 * throughput.c -- workload 1: trivial-task throughput with 2 workers.
 *
 * Each repetition submits N no-op tasks one by one to every system in
 * turn (A B C ... A B C ...) and waits for all of them.  Pebble gives
 * each task its own future; the peers share one completion signal per
 * burst, which is the cheapest thing they can do.  CPU per task counts
 * every thread, so a pool that spins pays for it here.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "pools.h"

#define WORKERS 2

static const bench_pool_sys *const systems[] = {
    &bench_pool_pebble, &bench_pool_pebble_map, &bench_pool_glib,
    &bench_pool_apr,    &bench_pool_uv,         &bench_pool_plain};
#define NSYS (sizeof systems / sizeof systems[0])
enum { PEBBLE = 0, PEBBLE_MAP = 1, FIRST_PEER = 2, PLAIN = 5 };

int main(int argc, char **argv) {
  bench_opts o;
  size_t n, s, r;
  void *pool[NSYS];
  double *rate[NSYS], *cpu[NSYS], *best;
  int have_peer = 0;

  setenv("UV_THREADPOOL_SIZE", "2", 1); /* before libuv's first use */
  bench_parse(argc, argv, &o, 10);
  n = o.quick ? 200 : 50000;
  best = calloc((size_t)o.reps, sizeof *best);
  for (s = 0; s < NSYS; s++) {
    rate[s] = calloc((size_t)o.reps, sizeof *rate[s]);
    cpu[s] = calloc((size_t)o.reps, sizeof *cpu[s]);
    pool[s] = systems[s]->missing ? NULL : systems[s]->create(WORKERS, n);
    if (pool[s] != NULL && !o.quick)
      systems[s]->burst(pool[s], n); /* warm-up: threads, caches, heap */
  }
  for (r = 0; r < (size_t)o.reps; r++)
    for (s = 0; s < NSYS; s++) {
      double c0, t0, t1, c1;
      if (pool[s] == NULL)
        continue;
      c0 = bench_cpu();
      t0 = bench_now();
      systems[s]->burst(pool[s], n);
      t1 = bench_now();
      c1 = bench_cpu();
      rate[s][r] = (double)n / (t1 - t0);
      cpu[s][r] = (c1 - c0) / (double)n * 1e6;
    }

  bench_section("1. trivial tasks, %d workers: %zu no-op tasks submitted one "
                "by one, then wait for all; %d repetitions",
                WORKERS, n, o.reps);
  for (s = 0; s < NSYS; s++) {
    bench_ratio q;
    if (pool[s] == NULL) {
      bench_skip(systems[s]->name, systems[s]->missing);
      continue;
    }
    q = bench_ratio_of(rate[PEBBLE], rate[s], (size_t)o.reps, BENCH_HIGHER);
    bench_row(systems[s]->name, "throughput",
              bench_median(rate[s], (size_t)o.reps), "tasks/s",
              bench_median(cpu[s], (size_t)o.reps),
              s == PEBBLE ? NULL : &q);
  }
  /* The target compares with the best library peer of each repetition. */
  for (r = 0; r < (size_t)o.reps; r++)
    for (s = FIRST_PEER; s < PLAIN; s++)
      if (pool[s] != NULL && rate[s][r] > best[r]) {
        best[r] = rate[s][r];
        have_peer = 1;
      }
  if (have_peer) {
    bench_ratio q =
        bench_ratio_of(rate[PEBBLE], best, (size_t)o.reps, BENCH_HIGHER);
    bench_ratio m =
        bench_ratio_of(rate[PEBBLE_MAP], best, (size_t)o.reps, BENCH_HIGHER);
    bench_target(q.median >= 1.5,
                 "one future per task >= 1.5x the best of glib/apr/libuv: "
                 "%.2fx (worst rep %.2fx)",
                 q.median, q.worst);
    bench_note("batch (pool_map) vs the best of glib/apr/libuv: %.2fx "
               "(worst rep %.2fx)",
               m.median, m.worst);
  } else {
    bench_note("no library peer was built: the target cannot be judged");
  }

  for (s = 0; s < NSYS; s++) {
    if (pool[s] != NULL)
      systems[s]->destroy(pool[s]);
    free(rate[s]);
    free(cpu[s]);
  }
  free(best);
  return 0;
}
