/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory.c -- workload 7: what a queued task costs in memory.  A 1-worker
 * thread pool is held busy by a gate task while 1,000,000 tasks with an
 * 8-byte argument and no callback are scheduled behind it; the heap
 * growth (mallinfo2: every arena, small and mmapped blocks) divided by
 * the count is the cost per queued task, future included.  The caller's
 * array of future handles is allocated before the baseline, so it is not
 * counted.  Peak RSS is the whole process's.
 *
 * The heap does not see memory a library maps by itself, so the growth of
 * the resident set over the same span (/proc/self/statm) is given per task
 * too; when it is more than a quarter above the heap's figure, memory
 * outside the heap is in play and the target is judged on it.  Each pool gets
 * the suite's warm-up (BENCH_WARMUP_TASKS tasks run and released) before
 * the baseline, as every other line does.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"

static int gate_fd[2];
static atomic_int gate_entered;

static int gate(pebble_ctx *ctx, const void *arg, size_t size) {
  char c;
  (void)ctx;
  (void)arg;
  (void)size;
  atomic_store(&gate_entered, 1);
  return read(gate_fd[0], &c, 1) == 1 ? 0 : 1;
}

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

static double heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return (double)mi.uordblks + (double)mi.hblkhd;
}

/* Resident bytes of this process. */
static double resident_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = 0;
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* The suite's warm-up: a few tasks run and released, as every line has. */
static void warm_up(pebble_pool *pool, pebble_future **f, size_t count) {
  size_t i;
  for (i = 0; i < count; i++)
    if (pebble_pool_schedule(pool, noop, &i, sizeof i, NULL, &f[i]) !=
        PEBBLE_OK)
      bench_die("warm-up: %s", pebble_last_error());
  if (pebble_wait_all(f, count, PEBBLE_FOREVER) != PEBBLE_OK)
    bench_die("warm-up: %s", pebble_last_error());
  for (i = 0; i < count; i++)
    pebble_future_release(f[i]);
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_pool_options po;
  pebble_future **f;
  double *per_task, *rss_per_task, *sched_us, *sched_cpu, worst;
  size_t n, warm, i, r;
  struct rusage ru;

  bench_parse(argc, argv, &o, 3);
  n = o.quick ? 1000 : 1000000;
  warm = o.quick ? 20 : BENCH_WARMUP_TASKS; /* --quick: tiny, as elsewhere */
  if (pipe(gate_fd) != 0)
    bench_die("pipe failed");
  f = malloc(n * sizeof *f);
  per_task = calloc((size_t)o.reps, sizeof *per_task);
  rss_per_task = calloc((size_t)o.reps, sizeof *rss_per_task);
  sched_us = calloc((size_t)o.reps, sizeof *sched_us);
  sched_cpu = calloc((size_t)o.reps, sizeof *sched_cpu);
  if (f == NULL || per_task == NULL || rss_per_task == NULL || sched_us == NULL || sched_cpu == NULL)
    bench_die("out of memory");
  memset(f, 0, n * sizeof *f);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_eagerly = 1;

  for (r = 0; r < (size_t)o.reps; r++) {
    pebble_pool *pool;
    pebble_future *g;
    double before, rss_before, t0, c0;
    if (pebble_pool_create(&pool, PEBBLE_THREAD, &po) != PEBBLE_OK)
      bench_die("pebble_pool_create: %s", pebble_last_error());
    warm_up(pool, f, warm);
    atomic_store(&gate_entered, 0);
    if (pebble_pool_schedule(pool, gate, NULL, 0, NULL, &g) != PEBBLE_OK)
      bench_die("pebble_pool_schedule: %s", pebble_last_error());
    while (!atomic_load(&gate_entered))
      usleep(1000);
    c0 = bench_cpu(); /* before the baseline: it reads /proc */
    before = heap_bytes();
    rss_before = resident_bytes();
    t0 = bench_now();
    for (i = 0; i < n; i++) {
      uint64_t arg = i;
      if (pebble_pool_schedule(pool, noop, &arg, sizeof arg, NULL, &f[i]) !=
          PEBBLE_OK)
        bench_die("scheduling task %zu: %s", i, pebble_last_error());
    }
    sched_us[r] = (bench_now() - t0) / (double)n * 1e6;
    per_task[r] = (heap_bytes() - before) / (double)n;
    rss_per_task[r] = (resident_bytes() - rss_before) / (double)n;
    sched_cpu[r] = (bench_cpu() - c0) / (double)n * 1e6;
    if (write(gate_fd[1], "x", 1) != 1)
      bench_die("cannot open the gate");
    if (pebble_wait_all(f, n, PEBBLE_FOREVER) != PEBBLE_OK)
      bench_die("pebble_wait_all: %s", pebble_last_error());
    for (i = 0; i < n; i++)
      pebble_future_release(f[i]);
    pebble_future_release(g);
    pebble_pool_destroy(pool);
  }
  getrusage(RUSAGE_SELF, &ru);

  bench_section("7. memory: %zu tasks queued (8-byte argument, no callback) "
                "behind a busy worker; %d repetitions",
                n, o.reps);
  bench_row("pebble thread pool", "heap/task",
            bench_median(per_task, (size_t)o.reps), "B/task",
            -1, NULL);
  bench_row("", "RSS/task", bench_median(rss_per_task, (size_t)o.reps),
            "B/task", -1, NULL);
  bench_row("", "schedule", bench_median(sched_us, (size_t)o.reps), "us",
            bench_median(sched_cpu, (size_t)o.reps), NULL);
  bench_row("", "peak RSS", (double)ru.ru_maxrss / 1024.0, "MB", -1, NULL);
  bench_note("the caller's handle array (%zu bytes) is not counted",
             n * sizeof *f);
  {
    double heap = bench_median(per_task, (size_t)o.reps);
    double rss = bench_median(rss_per_task, (size_t)o.reps);
    int outside = rss > 1.25 * heap;
    worst = outside ? bench_max(rss_per_task, (size_t)o.reps)
                    : bench_max(per_task, (size_t)o.reps);
    bench_note("the warm-up's %d tasks ran and were released before the "
               "baseline (blocks they leave for reuse: %.1f%% of the count)",
               (int)warm, 100.0 * (double)warm / (double)n);
    bench_target((outside ? rss : heap) <= 256,
                 "<= 256 bytes per queued task (%s): %.0f bytes (max rep "
                 "%.0f)",
                 outside ? "resident set: memory outside the heap" : "heap",
                 outside ? rss : heap, worst);
  }
  free(f);
  free(per_task);
  free(rss_per_task);
  free(sched_us);
  free(sched_cpu);
  return 0;
}
