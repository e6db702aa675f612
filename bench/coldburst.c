/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coldburst.c -- cold bursts of trivial tasks, alone in their process:
 * for each repetition a thread pool of W workers (started at creation),
 * an optional untimed warm-up of WARMUP tasks, then N tasks scheduled one
 * by one each with its future and an 8-byte argument, all waited for, all
 * released, the pool destroyed.  Without a warm-up nothing runs before
 * the first burst, so every task record lands on memory the process has
 * not touched yet.
 *
 *   bench/coldburst [N [W [REPEATS [WARMUP]]]]
 *       (defaults: 100000 tasks, 1 worker, 1 repetition, WARMUP 0: none)
 *
 * It prints one line per burst: tasks, workers, the burst's wall time
 * (first schedule to the last release), tasks per second, CPU
 * microseconds per task (every thread) and the context switches the
 * process made during the burst (voluntary + involuntary, every thread),
 * then, with more than one repetition, the minimum, median and maximum
 * rate.  Two uses (docs/performance.md):
 *
 *   PEBBLE_SPIN=0 valgrind --tool=callgrind bench/coldburst 100000 1
 *
 * counts instructions independently of the machine's load (PEBBLE_SPIN=0:
 * no worker's spin for work, whose length depends on timing); divided by
 * N it is the cost of one task, pool creation and destruction included
 * (a few tens of thousands of instructions in all).  And
 *
 *   bench/coldburst 200000 2 6 2000
 *
 * repeats the throughput table's cold 200 k-task line (the same warm-up
 * of BENCH_WARMUP_TASKS) six times in one process, which shows how far
 * bursts spread between repetitions.  Not part of `make bench`'s table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <pebble.h>

#include "bench.h"

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

static long context_switches(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* Schedules n no-op tasks into f[], waits for every one, checks and
 * releases them. */
static void run_tasks(pebble_pool *pool, pebble_future **f, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (pebble_pool_schedule(pool, noop, &i, sizeof i, NULL, &f[i]) !=
        PEBBLE_OK)
      bench_die("coldburst: task %zu: %s", i, pebble_last_error());
  if (pebble_wait_all(f, n, PEBBLE_FOREVER) != PEBBLE_OK)
    bench_die("coldburst: %s", pebble_last_error());
  for (i = 0; i < n; i++) {
    if (pebble_future_status(f[i]) != PEBBLE_OK)
      bench_die("coldburst: a no-op task failed: %s",
                pebble_future_message(f[i]));
    pebble_future_release(f[i]);
  }
}

int main(int argc, char **argv) {
  size_t n = 100000, workers = 1, repeats = 1, warmup = 0, r;
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future **f;
  double *rate;

  if (argc > 5)
    bench_die("usage: coldburst [TASKS [WORKERS [REPEATS [WARMUP]]]]");
  if (argc > 1)
    n = bench_count_arg("coldburst", argv[1], "TASKS", (size_t)1 << 30);
  if (argc > 2)
    workers = bench_count_arg("coldburst", argv[2], "WORKERS", 1024);
  if (argc > 3)
    repeats = bench_count_arg("coldburst", argv[3], "REPEATS", 1000);
  if (argc > 4)
    warmup = bench_count_arg_from("coldburst", argv[4], "WARMUP", 0,
                                  (size_t)1 << 30);
  f = malloc((n > warmup ? n : warmup) * sizeof *f);
  rate = malloc(repeats * sizeof *rate);
  if (f == NULL || rate == NULL)
    bench_die("coldburst: no memory for %zu future handles",
              n > warmup ? n : warmup);

  for (r = 0; r < repeats; r++) {
    double t0, c0, wall, cpu;
    long s0, switches;
    pebble_pool_options_init(&po);
    po.workers = (unsigned)workers;
    po.start_eagerly = 1;
    if (pebble_pool_create(&pool, PEBBLE_THREAD, &po) != PEBBLE_OK)
      bench_die("coldburst: %s", pebble_last_error());
    if (warmup > 0)
      run_tasks(pool, f, warmup);

    s0 = context_switches();
    t0 = bench_now();
    c0 = bench_cpu();
    run_tasks(pool, f, n);
    wall = bench_now() - t0;
    cpu = bench_cpu() - c0;
    switches = context_switches() - s0;

    if (pebble_pool_destroy(pool) != PEBBLE_OK)
      bench_die("coldburst: %s", pebble_last_error());
    rate[r] = (double)n / wall;
    printf("coldburst: %zu tasks, %zu workers: %.3f ms, %.3f M tasks/s, "
           "%.3f us CPU/task, %ld context switches\n",
           n, workers, wall * 1e3, rate[r] / 1e6, cpu * 1e6 / (double)n,
           switches);
  }
  if (repeats > 1)
    printf("coldburst: %zu bursts: min %.3f, median %.3f, max %.3f M "
           "tasks/s\n",
           repeats, bench_min(rate, repeats) / 1e6,
           bench_median(rate, repeats) / 1e6, bench_max(rate, repeats) / 1e6);
  free(rate);
  free(f);
  return 0;
}
