/*
 * oneshot.c -- workload 4: a one-shot process task (the @process form: a
 * task definition launched again and again) against what it replaces,
 * fork() + a result pipe + waitpid() written out by hand in this same
 * process, so both fork the same memory and the same threads.  Each
 * launch returns its 8-byte argument; the time runs from the launch to
 * the result being in hand (and, for the bare version, the child reaped).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

static void pebble_once(pebble_task *task, int64_t v) {
  pebble_future *f;
  int64_t got;
  if (pebble_task_launch(task, &v, sizeof v, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_FOREVER, &got) != PEBBLE_OK ||
      got != v)
    bench_die("process task: %s", pebble_last_error());
  pebble_future_release(f);
}

static void bare_once(int64_t v) {
  int fds[2], status;
  int64_t got = -1;
  pid_t pid;
  if (pipe(fds) != 0)
    bench_die("pipe failed");
  pid = fork();
  if (pid < 0)
    bench_die("fork failed");
  if (pid == 0) {
    close(fds[0]);
    _exit(write(fds[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
  }
  close(fds[1]);
  if (read(fds[0], &got, sizeof got) != (ssize_t)sizeof got || got != v)
    bench_die("bare fork: no result");
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    bench_die("bare fork: the child failed");
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_task *task;
  size_t m, r, i, k;
  double *p50[2], *cpu[2], *lat;
  static const char *const names[2] = {"pebble process task (launch)",
                                       "bare fork+pipe+waitpid"};

  bench_parse(argc, argv, &o, 10);
  m = o.quick ? 5 : 300;
  lat = calloc(m, sizeof *lat);
  for (k = 0; k < 2; k++) {
    p50[k] = calloc((size_t)o.reps, sizeof *p50[k]);
    cpu[k] = calloc((size_t)o.reps, sizeof *cpu[k]);
  }
  if (pebble_task_create(&task, PEBBLE_PROCESS, echo, NULL) != PEBBLE_OK)
    bench_die("pebble_task_create: %s", pebble_last_error());
  if (!o.quick) /* warm-up: the library's threads start on first use */
    for (i = 0; i < 20; i++) {
      pebble_once(task, (int64_t)i);
      bare_once((int64_t)i);
    }

  for (r = 0; r < (size_t)o.reps; r++)
    for (k = 0; k < 2; k++) {
      double c0 = bench_cpu(), c1;
      for (i = 0; i < m; i++) {
        double t0 = bench_now();
        if (k == 0)
          pebble_once(task, (int64_t)i);
        else
          bare_once((int64_t)i);
        lat[i] = (bench_now() - t0) * 1e6;
      }
      c1 = bench_cpu();
      p50[k][r] = bench_percentile(lat, m, 50);
      cpu[k][r] = (c1 - c0) / (double)m * 1e6;
    }

  bench_section("4. one-shot process task: %zu launches per repetition, "
                "each waited for; %d repetitions",
                m, o.reps);
  for (k = 0; k < 2; k++) {
    bench_ratio q =
        bench_ratio_of(p50[0], p50[k], (size_t)o.reps, BENCH_LOWER);
    bench_row(names[k], "p50", bench_median(p50[k], (size_t)o.reps), "us",
              bench_median(cpu[k], (size_t)o.reps), k == 0 ? NULL : &q);
  }
  {
    bench_ratio q = bench_ratio_of(p50[0], p50[1], (size_t)o.reps,
                                   BENCH_LOWER);
    bench_target(q.median <= 1.3,
                 "<= 1.3x the bare fork+pipe+waitpid: %.2fx (worst rep "
                 "%.2fx)",
                 q.median, q.worst);
  }
  pebble_task_destroy(task);
  for (k = 0; k < 2; k++) {
    free(p50[k]);
    free(cpu[k]);
  }
  free(lat);
  return 0;
}
