/*
 * timeout.c -- workload 5: how precisely a process pool enforces a
 * timeout.  A 1-worker process pool gets a task that sleeps far past its
 * 100 ms timeout, with a no-op task queued behind it.  Per trial:
 *   lateness = when the sleeper's future resolves (as seen by a waiting
 *              thread) - (when the task started in the worker + 100 ms);
 *   next     = when the queued task's future resolves - that resolution
 *              (the worker is killed and a new one forked meanwhile).
 * The task's start time comes from the worker itself, through a shared
 * anonymous page, since the timeout counts from the task's start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"

#define TIMEOUT_MS 100

static volatile double *started; /* shared with the workers */

static int sleeper(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  *started = bench_now();
  sleep(30); /* killed long before */
  return 0;
}

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  return 0;
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_pool_options po;
  pebble_task_options to;
  pebble_pool *pool;
  double *late, *next, cpu_per, c0;
  size_t i;
  int trials;

  bench_parse(argc, argv, &o, 50); /* --reps: the number of trials */
  trials = o.quick ? 3 : o.reps;
  started = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (started == MAP_FAILED)
    bench_die("mmap failed");
  late = calloc((size_t)trials, sizeof *late);
  next = calloc((size_t)trials, sizeof *next);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  pebble_task_options_init(&to);
  to.timeout = PEBBLE_MSEC(TIMEOUT_MS);

  c0 = bench_cpu();
  for (i = 0; i < (size_t)trials; i++) {
    pebble_future *slow, *after;
    double resolved, done;
    *started = 0;
    if (pebble_pool_schedule(pool, sleeper, NULL, 0, &to, &slow) !=
            PEBBLE_OK ||
        pebble_pool_schedule(pool, noop, NULL, 0, NULL, &after) != PEBBLE_OK)
      bench_die("pebble_pool_schedule: %s", pebble_last_error());
    pebble_future_wait(slow, PEBBLE_FOREVER);
    resolved = bench_now();
    pebble_future_wait(after, PEBBLE_FOREVER);
    done = bench_now();
    if (pebble_future_status(slow) != PEBBLE_ETIMEDOUT)
      bench_die("the sleeper did not time out: %s",
                pebble_strerror(pebble_future_status(slow)));
    if (pebble_future_status(after) != PEBBLE_OK)
      bench_die("the next task failed: %s", pebble_future_message(after));
    if (*started == 0)
      bench_die("the sleeper never started");
    late[i] = (resolved - (*started + TIMEOUT_MS / 1000.0)) * 1e6;
    next[i] = (done - resolved) * 1e6;
    pebble_future_release(slow);
    pebble_future_release(after);
  }
  cpu_per = (bench_cpu() - c0) / trials * 1e6;

  bench_section("5. timeout precision, 1-worker process pool, %d ms timeout, "
                "next task queued: %d trials",
                TIMEOUT_MS, trials);
  bench_row("pebble: future lateness", "p50",
            bench_percentile(late, (size_t)trials, 50), "us", cpu_per, NULL);
  bench_row("", "p99", bench_percentile(late, (size_t)trials, 99), "us", -1,
            NULL);
  bench_row("pebble: next task done after", "p50",
            bench_percentile(next, (size_t)trials, 50), "us", -1, NULL);
  bench_row("", "p99", bench_percentile(next, (size_t)trials, 99), "us", -1,
            NULL);
  bench_note("CPU/task here is per trial: the 100 ms wait, the kill and the "
             "replacement worker's fork");
  bench_target(bench_percentile(late, (size_t)trials, 99) <= 2000,
               "p99 lateness <= 2 ms: %.0f us",
               bench_percentile(late, (size_t)trials, 99));
  bench_target(bench_percentile(next, (size_t)trials, 99) <= 5000,
               "next task done <= 5 ms after (p99): %.0f us",
               bench_percentile(next, (size_t)trials, 99));
  pebble_pool_destroy(pool);
  free(late);
  free(next);
  return 0;
}
