/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procburst.c -- one process-pool workload alone in its process, for
 * profiles, system-call counts and A/B runs of the process pool's path:
 * a pool of W forked workers (started at creation), a warm-up of 2,000
 * tasks, then either
 *
 *   bench/procburst burst [N [W]]   N tasks (an 8-byte argument returned
 *                                   as the result) scheduled one by one,
 *                                   then every result read and released
 *                                   (default 100000 tasks, 2 workers)
 *   bench/procburst rt [N [W]]      N round trips: one task, its result,
 *                                   the next (default 3000, 2 workers)
 *
 * It prints one line: the wall time of the timed part, tasks per second
 * (burst) or p50 / p99 microseconds (rt), and CPU microseconds per task
 * counting every thread and every worker process.  The workload is the
 * one of bench/procpool's Pebble rows; this program runs it without the
 * references, so that `perf record`, `strace -c -f` or callgrind see
 * nothing else:
 *
 *   perf record -g -F 2000 -- bench/procburst burst 200000 2
 *   valgrind --tool=callgrind --trace-children=yes bench/procburst burst
 *
 * Not part of `make bench`'s table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pebble.h>

#include "bench.h"
#include "echo.h"

int main(int argc, char **argv) {
  size_t n, workers = 2, warm = BENCH_WARMUP_TASKS, i;
  int rt;
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future **f;
  double *lat = NULL, t0, c0, wall, cpu;

  if (argc < 2 || argc > 4 ||
      (strcmp(argv[1], "burst") != 0 && strcmp(argv[1], "rt") != 0))
    bench_die("usage: procburst burst|rt [TASKS [WORKERS]]");
  rt = strcmp(argv[1], "rt") == 0;
  n = rt ? 3000 : 100000;
  if (argc > 2)
    n = bench_count_arg("procburst", argv[2], "TASKS", (size_t)1 << 30);
  if (argc > 3)
    workers = bench_count_arg("procburst", argv[3], "WORKERS", 1024);
  f = malloc((n > warm ? n : warm) * sizeof *f);
  if (rt)
    lat = malloc(n * sizeof *lat);
  if (f == NULL || (rt && lat == NULL))
    bench_die("procburst: out of memory");
  pebble_pool_options_init(&po);
  po.workers = (unsigned)workers;
  po.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK)
    bench_die("procburst: %s", pebble_last_error());
  bench_echo_burst(pool, f, warm, "procburst");

  t0 = bench_now();
  c0 = bench_cpu();
  if (rt) {
    for (i = 0; i < n; i++) {
      double s = bench_now();
      bench_echo_burst(pool, f, 1, "procburst");
      lat[i] = (bench_now() - s) * 1e6;
    }
  } else {
    bench_echo_burst(pool, f, n, "procburst");
  }
  wall = bench_now() - t0;
  cpu = bench_cpu() - c0;

  if (pebble_pool_destroy(pool) != PEBBLE_OK)
    bench_die("procburst: %s", pebble_last_error());
  if (rt)
    printf("procburst rt: %zu round trips, %zu workers: %.3f ms, p50 %.1f "
           "us, p99 %.1f us, %.2f us CPU/task\n",
           n, workers, wall * 1e3, bench_percentile(lat, n, 50),
           bench_percentile(lat, n, 99), cpu * 1e6 / (double)n);
  else
    printf("procburst burst: %zu tasks, %zu workers: %.3f ms, %.1f k "
           "tasks/s, %.2f us CPU/task\n",
           n, workers, wall * 1e3, (double)n / wall / 1e3,
           cpu * 1e6 / (double)n);
  free(f);
  free(lat);
  return 0;
}
