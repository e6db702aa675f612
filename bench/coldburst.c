/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coldburst.c -- one cold burst of trivial tasks, alone in its process: a
 * thread pool of W workers (started at creation), N tasks scheduled one by
 * one each with its future and an 8-byte argument, all waited for, all
 * released, the pool destroyed.  Nothing runs before the burst, so every
 * task record lands on memory the process has not touched yet.
 *
 *   bench/coldburst [N [W]]          (default 100000 tasks, 1 worker)
 *
 * It prints one line: tasks, workers, the burst's wall time (schedule to
 * the last release), tasks per second and CPU microseconds per task (every
 * thread).  It is the program the cold path is measured with
 * (docs/performance.md): under callgrind, with PEBBLE_SPIN=0 so that no
 * worker's spin for work adds instructions that depend on timing,
 *
 *   PEBBLE_SPIN=0 valgrind --tool=callgrind bench/coldburst 100000 1
 *
 * gives a count of instructions that does not depend on the machine's
 * load; divided by N it is the cost of one task, pool creation and
 * destruction included (a few tens of thousands of instructions in all).
 * Not part of `make bench`'s table.
 */
#include <stdio.h>
#include <stdlib.h>

#include <pebble.h>

#include "bench.h"

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

int main(int argc, char **argv) {
  size_t n = 100000, workers = 1, i;
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future **f;
  double t0, c0, wall, cpu;

  if (argc > 3)
    bench_die("usage: coldburst [TASKS [WORKERS]]");
  if (argc > 1)
    n = bench_count_arg("coldburst", argv[1], "TASKS", (size_t)1 << 30);
  if (argc > 2)
    workers = bench_count_arg("coldburst", argv[2], "WORKERS", 1024);
  f = malloc(n * sizeof *f);
  if (f == NULL)
    bench_die("coldburst: no memory for %zu future handles", n);
  pebble_pool_options_init(&po);
  po.workers = (unsigned)workers;
  po.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_THREAD, &po) != PEBBLE_OK)
    bench_die("coldburst: %s", pebble_last_error());

  t0 = bench_now();
  c0 = bench_cpu();
  for (i = 0; i < n; i++)
    if (pebble_pool_schedule(pool, noop, &i, sizeof i, NULL, &f[i]) !=
        PEBBLE_OK)
      bench_die("coldburst: task %zu: %s", i, pebble_last_error());
  if (pebble_wait_all(f, n, PEBBLE_FOREVER) != PEBBLE_OK)
    bench_die("coldburst: %s", pebble_last_error());
  for (i = 0; i < n; i++)
    pebble_future_release(f[i]);
  wall = bench_now() - t0;
  cpu = bench_cpu() - c0;

  if (pebble_pool_destroy(pool) != PEBBLE_OK)
    bench_die("coldburst: %s", pebble_last_error());
  free(f);
  printf("coldburst: %zu tasks, %zu workers: %.3f ms, %.3f M tasks/s, "
         "%.3f us CPU/task\n",
         n, workers, wall * 1e3, (double)n / wall / 1e6, cpu * 1e6 / (double)n);
  return 0;
}
