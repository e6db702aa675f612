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
 * counting every thread and every worker process.  On Linux two
 * variables look closer at where that time goes (docs/performance.md,
 * section 3, "Two speeds"):
 *
 *   PROCBURST_THREADS=1  (any value but 0) then one line per thread of
 *                        this process and per worker: the milliseconds
 *                        it ran, and those it waited for a CPU, during
 *                        the timed part
 *   PROCBURST_PIN=SLW    (implies the above) after the warm-up, pins the
 *                        scheduling thread to CPU S, the library's
 *                        threads (the manager) to CPU L and the workers
 *                        to CPU W: digits, as in PROCBURST_PIN=001
 *
 * The workload is the one of bench/procpool's Pebble rows; this program
 * runs it without the references, so that `perf record`, `strace -c -f`
 * or callgrind see nothing else:
 *
 *   perf record -g -F 2000 -- bench/procburst burst 200000 2
 *   valgrind --tool=callgrind --trace-children=yes bench/procburst burst
 *
 * Not part of `make bench`'s table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_setaffinity */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <dirent.h>
#include <sched.h>
#include <unistd.h>
#endif

#include <pebble.h>

#include "bench.h"
#include "echo.h"

#define MAX_SEEN 64 /* threads and workers looked at */

typedef struct seen {
  long id;    /* thread id, or worker pid */
  int kind;   /* 0 the scheduling thread, 1 a library thread, 2 a worker */
  double run, wait; /* seconds, from schedstat */
} seen;

#if defined(__linux__)
static void schedstat(long pid, long tid, double *run, double *wait) {
  char path[96];
  unsigned long long r = 0, w = 0;
  FILE *f;
  if (tid != 0)
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/schedstat", pid, tid);
  else
    snprintf(path, sizeof path, "/proc/%ld/schedstat", pid);
  if ((f = fopen(path, "r")) != NULL) {
    if (fscanf(f, "%llu %llu", &r, &w) != 2)
      r = w = 0;
    fclose(f);
  }
  *run = (double)r / 1e9;
  *wait = (double)w / 1e9;
}

/* This process's threads and the pool's workers, with their times. */
static size_t look(pebble_pool *pool, seen *out) {
  long self = (long)getpid(), pids[MAX_SEEN];
  size_t n = 0, count = 0, i;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL && n < MAX_SEEN) {
    if (e->d_name[0] == '.')
      continue;
    out[n].id = atol(e->d_name);
    out[n].kind = out[n].id == self ? 0 : 1;
    schedstat(self, out[n].id, &out[n].run, &out[n].wait);
    n++;
  }
  if (d != NULL)
    closedir(d);
  if (pebble_pool_worker_pids(pool, pids, MAX_SEEN, &count) != PEBBLE_OK)
    count = 0;
  for (i = 0; i < count && i < MAX_SEEN && n < MAX_SEEN; i++, n++) {
    out[n].id = pids[i];
    out[n].kind = 2;
    schedstat(pids[i], 0, &out[n].run, &out[n].wait);
  }
  return n;
}

static void pin(pebble_pool *pool, const char *cpus) {
  seen all[MAX_SEEN];
  size_t n, i;
  if (strlen(cpus) != 3 || strspn(cpus, "0123456789") != 3)
    bench_die("procburst: PROCBURST_PIN=%s: three CPU digits, as in 001",
              cpus);
  n = look(pool, all);
  for (i = 0; i < n; i++) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[all[i].kind] - '0', &set);
    if (sched_setaffinity((pid_t)all[i].id, sizeof set, &set) != 0)
      bench_die("procburst: cannot pin %ld to CPU %c", all[i].id,
                cpus[all[i].kind]);
  }
}
#else
static size_t look(pebble_pool *pool, seen *out) {
  (void)pool, (void)out;
  return 0;
}
static void pin(pebble_pool *pool, const char *cpus) {
  (void)pool, (void)cpus;
  bench_die("procburst: PROCBURST_PIN works on Linux only");
}
#endif

/* Each thread's and worker's share of the timed part. */
static void report_seen(const seen *before, size_t nb, const seen *after,
                        size_t na) {
  static const char *const kinds[] = {"scheduling thread", "library thread",
                                      "worker process"};
  size_t i, j;
  for (i = 0; i < na; i++)
    for (j = 0; j < nb; j++)
      if (before[j].id == after[i].id && before[j].kind == after[i].kind) {
        printf("  %-17s %-8ld ran %8.3f ms, waited for a CPU %8.3f ms\n",
               kinds[after[i].kind], after[i].id,
               (after[i].run - before[j].run) * 1e3,
               (after[i].wait - before[j].wait) * 1e3);
        break;
      }
}

int main(int argc, char **argv) {
  size_t n, workers = 2, warm = BENCH_WARMUP_TASKS, i, n_before = 0,
         n_after = 0;
  int rt, pinning, threads;
  const char *pin_to, *env;
  seen before[MAX_SEEN], after[MAX_SEEN];
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
  pin_to = getenv("PROCBURST_PIN");
  env = getenv("PROCBURST_THREADS");
  pinning = pin_to != NULL && *pin_to != '\0';
  threads =
      pinning || (env != NULL && *env != '\0' && strcmp(env, "0") != 0);
  if (pinning)
    pin(pool, pin_to);
  if (threads)
    n_before = look(pool, before);

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
  if (threads)
    n_after = look(pool, after);

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
  if (threads)
    report_seen(before, n_before, after, n_after);
  free(f);
  free(lat);
  return 0;
}
