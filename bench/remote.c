/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote.c -- workers started through a launcher (docs/cluster.md) against
 * the same pool with local workers: a process pool of 2 spawned workers,
 * round trips (p50, p99) and a burst of tasks (throughput), on this host
 * (loopback).  The systems:
 *
 *   local spawn pool    PEBBLE_LAUNCHER unset: the reference
 *   through env         PEBBLE_LAUNCHER=env: the remote supervisor, its
 *                       relay and the framed channel, no network
 *   through mpirun      one `mpirun -n 1` per worker (Open MPI), where
 *                       mpirun is installed
 *
 * ssh is not here: it needs an sshd of its own (tests/launcher-ssh.sh).
 *
 * Every system runs in a fresh process of this program (the launcher is
 * read from the environment at each worker's start, and changing the
 * environment under running threads is not safe), one repetition at a
 * time, the systems interleaved and their order turned round each
 * repetition; each gets the same warm-up.  The ratio is the local pool's
 * figure divided by the launched one's, per repetition.
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"
#include "echo.h"

#define WORKERS 2
enum { S_LOCAL, S_ENV, S_MPI, S_N };
static const char *const names[S_N] = {"local spawn pool", "through env",
                                       "through mpirun"};
static const char *const launchers[S_N] = {
    NULL, "env", "mpirun -n 1 --quiet --oversubscribe"};

/* One system, one repetition, in this process: prints
 * "p50_us p99_us tasks_per_s cpu_us_per_task". */
static int one(size_t warm, size_t trips, size_t burst) {
  pebble_pool_options o;
  pebble_pool *pool;
  pebble_future **f = calloc(burst, sizeof *f);
  double *t = calloc(trips, sizeof *t);
  double t0, c0, rate, cpu;
  size_t i;
  if (f == NULL || t == NULL)
    bench_die("out of memory");
  pebble_pool_options_init(&o);
  o.workers = WORKERS;
  o.start_method = PEBBLE_START_SPAWN;
  o.start_eagerly = 1;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &o) != PEBBLE_OK)
    bench_die("pebble_pool_create: %s", pebble_last_error());
  for (i = 0; i < warm; i++)
    bench_echo_once(pool, (int64_t)i, "round trip");
  for (i = 0; i < trips; i++) {
    double s = bench_now();
    bench_echo_once(pool, (int64_t)i, "round trip");
    t[i] = (bench_now() - s) * 1e6;
  }
  c0 = bench_cpu();
  t0 = bench_now();
  bench_echo_burst(pool, f, burst, "remote");
  rate = (double)burst / (bench_now() - t0);
  cpu = (bench_cpu() - c0) / (double)burst * 1e6;
  printf("%.3f %.3f %.1f %.3f\n", bench_percentile(t, trips, 50),
         bench_percentile(t, trips, 99), rate, cpu);
  fflush(stdout);
  pebble_pool_destroy(pool);
  free(f);
  free(t);
  return 0;
}

/* Runs this program again for one system; fills its four figures. */
static void run_one(const char *self, int k, const char *sizes,
                    double out[4]) {
  char *argv[] = {(char *)self, "--one", (char *)sizes, NULL};
  char line[256];
  if (launchers[k] != NULL)
    setenv("PEBBLE_LAUNCHER", launchers[k], 1);
  else
    unsetenv("PEBBLE_LAUNCHER");
  bench_run_line(argv, line, sizeof line, names[k]);
  if (sscanf(line, "%lf %lf %lf %lf", &out[0], &out[1], &out[2], &out[3]) !=
      4)
    bench_die("%s gave no figures", names[k]);
}

static int have_mpirun(void) {
  const char *path = getenv("PATH");
  char buf[4096];
  while (path != NULL && *path != '\0') {
    const char *end = strchr(path, ':');
    size_t n = end != NULL ? (size_t)(end - path) : strlen(path);
    if (n > 0 && n < sizeof buf - 8) {
      memcpy(buf, path, n);
      memcpy(buf + n, "/mpirun", 8);
      if (access(buf, X_OK) == 0)
        return 1;
    }
    path = end != NULL ? end + 1 : NULL;
  }
  return 0;
}

int main(int argc, char **argv) {
  bench_opts o;
  size_t warm, trips, burst;
  char sizes[64];
  double *v[S_N][4];
  int k, r, present[S_N] = {1, 1, 0};
  pebble_register("echo", bench_echo);
  if (pebble_worker_main() != PEBBLE_OK) /* a worker ends here */
    bench_die("pebble_worker_main: %s", pebble_last_error());
  if (argc == 3 && strcmp(argv[1], "--one") == 0) {
    if (sscanf(argv[2], "%zu,%zu,%zu", &warm, &trips, &burst) != 3)
      bench_die("--one WARM,TRIPS,BURST");
    return one(warm, trips, burst);
  }
  bench_parse(argc, argv, &o, 5);
  warm = o.quick ? 20 : BENCH_WARMUP_TASKS;
  trips = o.quick ? 20 : 2000;
  burst = o.quick ? 50 : 20000;
  snprintf(sizes, sizeof sizes, "%zu,%zu,%zu", warm, trips, burst);
  present[S_MPI] = have_mpirun();
  if (present[S_MPI] && getuid() == 0) {
    /* Open MPI refuses root unless told twice. */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  for (k = 0; k < S_N; k++) {
    int m;
    for (m = 0; m < 4; m++)
      if ((v[k][m] = calloc((size_t)o.reps, sizeof(double))) == NULL)
        bench_die("out of memory");
  }
  for (r = 0; r < o.reps; r++)
    for (k = 0; k < S_N; k++) {
      int s = (k + r) % S_N; /* the order turns round each repetition */
      double out[4];
      int m;
      if (!present[s])
        continue;
      run_one(argv[0], s, sizes, out);
      for (m = 0; m < 4; m++)
        v[s][m][r] = out[m];
    }

  bench_section("8. workers through a launcher, on this host: a process pool "
                "of %d spawned workers, %zu round trips, then %zu tasks one "
                "by one and all results; warm-up %zu round trips; %d "
                "repetitions, each system in a fresh process",
                WORKERS, trips, burst, warm, o.reps);
  for (k = 0; k < S_N; k++) {
    bench_ratio q50, q99, qt;
    if (!present[k]) {
      bench_skip(names[k], "mpirun is not installed (openmpi-bin)");
      continue;
    }
    q50 = bench_ratio_of(v[S_LOCAL][0], v[k][0], (size_t)o.reps, BENCH_LOWER);
    q99 = bench_ratio_of(v[S_LOCAL][1], v[k][1], (size_t)o.reps, BENCH_LOWER);
    qt = bench_ratio_of(v[S_LOCAL][2], v[k][2], (size_t)o.reps, BENCH_HIGHER);
    bench_row(names[k], "p50", bench_median(v[k][0], (size_t)o.reps), "us",
              -1, k == S_LOCAL ? NULL : &q50);
    bench_row("", "p99", bench_median(v[k][1], (size_t)o.reps), "us", -1,
              k == S_LOCAL ? NULL : &q99);
    bench_row("", "throughput", bench_median(v[k][2], (size_t)o.reps),
              "tasks/s", bench_median(v[k][3], (size_t)o.reps),
              k == S_LOCAL ? NULL : &qt);
  }
  bench_note("the ratio column is the local pool's figure over the launched "
             "one's (below 1 on a time, above 1 on a rate: the launcher "
             "costs that much); CPU/task counts the launchers, supervisors "
             "and workers");
  return 0;
}
