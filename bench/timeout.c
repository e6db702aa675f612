/* SPDX-License-Identifier: Apache-2.0 */
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
 *
 * The same lateness, in the same trials, for a 1-worker thread pool (its
 * task told to stop, pebble_should_stop) and a one-shot process task
 * (pebble_run).
 *
 * Reference, interleaved trial by trial: the floor any timeout has on
 * this machine at this moment, one timed wake-up of a thread (this one
 * sleeping to 100 ms after a mark, clock_nanosleep with TIMER_ABSTIME);
 * Pebble's chain has two (the manager thread at the deadline, then the
 * waiting thread).  No warm-up beyond the pool's eager start: each trial
 * is one timeout.  The load average is printed with the figures, and the
 * rows say so when it is above the number of CPUs (the scheduler then
 * delays every wake-up, and p99 measures the machine more than Pebble).
 */
#include <errno.h>
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

/* A thread task cannot be killed: it stops when told to. */
static int sleeper_polite(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  *started = bench_now();
  while (pebble_should_stop(ctx) == PEBBLE_OK)
    usleep(500);
  return 0;
}

/* One timed task: how late its future resolves after start + timeout. */
static double timed_once(pebble_pool *pool, pebble_task_fn fn,
                         const pebble_task_options *to) {
  pebble_future *f;
  double resolved;
  int rc;
  *started = 0;
  rc = pool != NULL ? pebble_pool_schedule(pool, fn, NULL, 0, to, &f)
                    : pebble_run(PEBBLE_PROCESS, fn, NULL, 0, to, &f);
  if (rc != PEBBLE_OK)
    bench_die("schedule: %s", pebble_last_error());
  pebble_future_wait(f, PEBBLE_FOREVER);
  resolved = bench_now();
  if (pebble_future_status(f) != PEBBLE_ETIMEDOUT)
    bench_die("the sleeper did not time out: %s",
              pebble_strerror(pebble_future_status(f)));
  if (*started == 0)
    bench_die("the sleeper never started");
  pebble_future_release(f);
  return (resolved - (*started + TIMEOUT_MS / 1000.0)) * 1e6;
}

/* One timed wake-up of this thread, 100 ms after now: how late (us). */
static double floor_once(void) {
  struct timespec ts;
  double mark = bench_now() + TIMEOUT_MS / 1000.0;
  ts.tv_sec = (time_t)mark;
  ts.tv_nsec = (long)((mark - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
  return (bench_now() - mark) * 1e6;
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
  pebble_pool *pool, *threads;
  double *late, *next, *floor_late, *thread_late, *once_late, cpu_per = 0,
                                                              load[2][3];
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int loaded;
  char p99_label[32];
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
  floor_late = calloc((size_t)trials, sizeof *floor_late);
  thread_late = calloc((size_t)trials, sizeof *thread_late);
  once_late = calloc((size_t)trials, sizeof *once_late);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  po.start_eagerly = 0;
  if (pebble_pool_create(&threads, PEBBLE_THREAD, &po) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  pebble_task_options_init(&to);
  to.timeout = PEBBLE_MSEC(TIMEOUT_MS);

  if (getloadavg(load[0], 3) != 3)
    load[0][0] = load[0][1] = load[0][2] = -1;
  for (i = 0; i < (size_t)trials; i++) {
    pebble_future *slow, *after;
    double resolved, done, c0 = bench_cpu();
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
    cpu_per += (bench_cpu() - c0) / trials * 1e6;
    floor_late[i] = floor_once();
    thread_late[i] = timed_once(threads, sleeper_polite, &to);
    once_late[i] = timed_once(NULL, sleeper, &to);
  }
  if (getloadavg(load[1], 3) != 3)
    load[1][0] = load[1][1] = load[1][2] = -1;
  loaded = cpus > 0 && (load[0][0] > (double)cpus || load[1][0] > (double)cpus);
  snprintf(p99_label, sizeof p99_label, "%s", loaded ? "p99 LOADED" : "p99");

  bench_section("5. timeout precision, %d ms timeout, from the task's real "
                "start: 1-worker process pool (next task queued), thread "
                "pool, one-shot process task; %d trials",
                TIMEOUT_MS, trials);
  bench_note("load average %.2f before, %.2f after, on %ld CPUs%s",
             load[0][0], load[1][0], cpus,
             loaded ? ": ABOVE the CPU count, every wake-up waits for a CPU "
                      "(rows marked LOADED)"
                    : "");
  bench_row("pebble: process pool, lateness", "p50",
            bench_percentile(late, (size_t)trials, 50), "us", cpu_per, NULL);
  bench_row("", p99_label, bench_percentile(late, (size_t)trials, 99), "us",
            -1, NULL);
  bench_row("", "max", bench_max(late, (size_t)trials), "us", -1, NULL);
  bench_row("pebble: thread pool, lateness", "p50",
            bench_percentile(thread_late, (size_t)trials, 50), "us", -1,
            NULL);
  bench_row("", p99_label, bench_percentile(thread_late, (size_t)trials, 99),
            "us", -1, NULL);
  bench_row("pebble: one-shot process, late", "p50",
            bench_percentile(once_late, (size_t)trials, 50), "us", -1, NULL);
  bench_row("", p99_label, bench_percentile(once_late, (size_t)trials, 99),
            "us", -1, NULL);
  bench_row("floor: one timed thread wake-up", "p50",
            bench_percentile(floor_late, (size_t)trials, 50), "us", -1, NULL);
  bench_row("", p99_label, bench_percentile(floor_late, (size_t)trials, 99),
            "us", -1, NULL);
  bench_row("pebble: next task done after", "p50",
            bench_percentile(next, (size_t)trials, 50), "us", -1, NULL);
  bench_row("", p99_label, bench_percentile(next, (size_t)trials, 99), "us",
            -1, NULL);
  bench_note("CPU/task here is per process-pool trial: the 100 ms wait, the "
             "kill and the replacement worker's fork");
  bench_target(bench_percentile(late, (size_t)trials, 99) <= 2000,
               "p99 lateness <= 2 ms from the task's real start: %.0f us "
               "(load %.2f at start, %.2f at end, on %ld CPUs%s)",
               bench_percentile(late, (size_t)trials, 99), load[0][0],
               load[1][0], cpus, loaded ? ": above the CPU count" : "");
  bench_target(bench_percentile(next, (size_t)trials, 99) <= 5000,
               "next task done <= 5 ms after (p99): %.0f us",
               bench_percentile(next, (size_t)trials, 99));
  pebble_pool_destroy(pool);
  pebble_pool_destroy(threads);
  free(thread_late);
  free(once_late);
  free(late);
  free(next);
  free(floor_late);
  return 0;
}
