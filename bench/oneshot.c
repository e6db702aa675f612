/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oneshot.c -- workload 4: a one-shot process task (the @process form: a
 * task definition launched again and again) against what it replaces,
 * fork() + a result pipe + read() + waitpid() written out by hand.  The
 * reference runs in a small process of its own (oneshot_bare.c, started
 * once and driven through a pipe), as a program written without Pebble
 * would; within a repetition each row runs once, in an order that turns
 * round by one each repetition.
 *
 * Each launch returns its 8-byte argument.  Two end points, each taken on
 * both sides from the same launch:
 *   to the read: from the launch to the result in hand (Pebble: its
 *                future resolved and read; bare: read() returned);
 *   to the reap: from the launch to the child reaped (Pebble: its exit
 *                information there, which the library sets when it has
 *                reaped the child; bare: waitpid() returned).
 * Pebble resolves a one-shot future when the result is read and reaps the
 * child when its exit is seen, which may be a little later; the bench
 * waits for the reap with pebble_future_wait_exit(), woken by the reap as
 * waitpid() is by the exit.  Until 2026-12-06 the library had no such
 * call and the bench looked every 20 us, so that figure could be late by
 * one turn of the loop.  Either way every launch waits for the reap
 * before the next, on both sides.  A third row forks the same bare child
 * from this process (Pebble's: its threads and its library mapped), which
 * shows how much of the gap is the size of the forking process; a fourth
 * launches the same task with the forkserver start method (forked by a
 * small single-threaded server), against the same reference.  Warm-up:
 * 20 launches on each side (2 with --quick).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"

extern char **environ;

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

static long reaped_late; /* launches whose future resolved before the reap */

static void pebble_once(pebble_task *task, int64_t v, double *to_read,
                        double *to_reap) {
  pebble_future *f;
  pebble_exit_info info;
  int64_t got;
  double t0 = bench_now();
  if (pebble_task_launch(task, &v, sizeof v, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_FOREVER, &got) != PEBBLE_OK ||
      got != v)
    bench_die("process task: %s", pebble_last_error());
  *to_read = (bench_now() - t0) * 1e6;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  if (pebble_future_exit_info(f, &info) != PEBBLE_OK) {
    reaped_late++;
    if (pebble_future_wait_exit(f, PEBBLE_FOREVER) != PEBBLE_OK ||
        pebble_future_exit_info(f, &info) != PEBBLE_OK)
      bench_die("process task: no reap: %s", pebble_last_error());
  }
  *to_reap = (bench_now() - t0) * 1e6;
  if (!info.exited || info.exit_code != 0)
    bench_die("process task: its process did not exit with 0");
  pebble_future_release(f);
}

/* The bare launch from this process, as the reference does it. */
static void inproc_once(int64_t v, double *to_read, double *to_reap) {
  int fds[2], status;
  int64_t got = -1;
  pid_t pid;
  double t0 = bench_now();
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
  *to_read = (bench_now() - t0) * 1e6;
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    bench_die("bare fork: the child failed");
  *to_reap = (bench_now() - t0) * 1e6;
}

/* The reference process, driven through two pipes. */
typedef struct bare {
  pid_t pid;
  FILE *in, *out;
} bare;

static void bare_start(bare *b) {
  char path[PATH_MAX], self[PATH_MAX];
  const char *dir = getenv("BENCH_BIN");
  char *argv[2];
  int to[2], from[2];
  posix_spawn_file_actions_t fa;
  ssize_t n;
  if (dir == NULL || *dir == '\0') {
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
      bench_die("cannot find this program's directory");
    self[n] = '\0';
    dir = dirname(self);
  }
  snprintf(path, sizeof path, "%s/oneshot_bare", dir);
  if (pipe(to) != 0 || pipe(from) != 0)
    bench_die("pipe failed");
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from[1], 1);
  posix_spawn_file_actions_addclose(&fa, to[1]);
  posix_spawn_file_actions_addclose(&fa, from[0]);
  argv[0] = path;
  argv[1] = NULL;
  if (posix_spawn(&b->pid, path, &fa, NULL, argv, environ) != 0)
    bench_die("cannot start %s (run: make bench)", path);
  posix_spawn_file_actions_destroy(&fa);
  close(to[0]);
  close(from[1]);
  b->in = fdopen(to[1], "w");
  b->out = fdopen(from[0], "r");
  if (b->in == NULL || b->out == NULL)
    bench_die("fdopen failed");
}

static void bare_run(bare *b, size_t n, double *read50, double *reap50,
                     double *cpu) {
  fprintf(b->in, "%zu\n", n);
  fflush(b->in);
  if (fscanf(b->out, "%lf %lf %lf", read50, reap50, cpu) != 3)
    bench_die("the reference process (oneshot_bare) failed");
}

static void bare_stop(bare *b) {
  int status;
  fprintf(b->in, "0\n");
  fclose(b->in);
  fclose(b->out);
  waitpid(b->pid, &status, 0);
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_task *task;
  bare ref;
  size_t m, r, i, warm, reps;
  double *rd, *rp, junk, load[2] = {-1, -1};
  double *p_read, *p_reap, *p_cpu, *b_read, *b_reap, *b_cpu;
  double *i_read, *i_reap, *s_read, *s_reap, *s_cpu;
  pebble_task *served = NULL; /* the same task, forkserver start method */
  pebble_task_options to;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN), launches = 0;

  bench_parse(argc, argv, &o, 10);
  reps = (size_t)o.reps;
  m = o.quick ? 5 : 300;
  warm = o.quick ? 2 : 20;
  rd = calloc(m, sizeof *rd);
  rp = calloc(m, sizeof *rp);
  p_read = calloc(reps, sizeof *p_read);
  p_reap = calloc(reps, sizeof *p_reap);
  p_cpu = calloc(reps, sizeof *p_cpu);
  b_read = calloc(reps, sizeof *b_read);
  b_reap = calloc(reps, sizeof *b_reap);
  b_cpu = calloc(reps, sizeof *b_cpu);
  i_read = calloc(reps, sizeof *i_read);
  i_reap = calloc(reps, sizeof *i_reap);
  s_read = calloc(reps, sizeof *s_read);
  s_reap = calloc(reps, sizeof *s_reap);
  s_cpu = calloc(reps, sizeof *s_cpu);
  bare_start(&ref);
  if (pebble_task_create(&task, PEBBLE_PROCESS, echo, NULL) != PEBBLE_OK)
    bench_die("pebble_task_create: %s", pebble_last_error());
  pebble_task_options_init(&to);
  to.start_method = PEBBLE_START_FORKSERVER;
  if (pebble_register("oneshot_echo", echo) != PEBBLE_OK ||
      pebble_task_create(&served, PEBBLE_PROCESS, echo, &to) != PEBBLE_OK)
    served = NULL; /* a backend without a forkserver: row skipped */
  /* The same warm-up on both sides (the library's threads start here). */
  for (i = 0; i < warm; i++)
    pebble_once(task, (int64_t)i, &junk, &junk);
  bare_run(&ref, warm, &junk, &junk, &junk);
  for (i = 0; i < warm; i++) {
    inproc_once((int64_t)i, &junk, &junk);
    if (served != NULL)
      pebble_once(served, (int64_t)i, &junk, &junk);
  }
  reaped_late = 0;

  getloadavg(load, 1);
  for (r = 0; r < reps; r++) {
    size_t turn;
    /* The order turns round by one each repetition (protocol rule 4). */
    for (turn = 0; turn < 4; turn++) {
      switch ((turn + r) % 4) {
      case 0: {
        double c0 = bench_cpu();
        for (i = 0; i < m; i++)
          pebble_once(task, (int64_t)i, &rd[i], &rp[i]);
        p_cpu[r] = (bench_cpu() - c0) / (double)m * 1e6;
        p_read[r] = bench_median(rd, m);
        p_reap[r] = bench_median(rp, m);
        launches += (long)m;
        break;
      }
      case 1:
        bare_run(&ref, m, &b_read[r], &b_reap[r], &b_cpu[r]);
        break;
      case 2:
        for (i = 0; i < m; i++)
          inproc_once((int64_t)i, &rd[i], &rp[i]);
        i_read[r] = bench_median(rd, m);
        i_reap[r] = bench_median(rp, m);
        break;
      default:
        if (served != NULL) {
          double s0 = bench_cpu();
          long late = reaped_late;
          for (i = 0; i < m; i++)
            pebble_once(served, (int64_t)i, &rd[i], &rp[i]);
          s_cpu[r] = (bench_cpu() - s0) / (double)m * 1e6;
          s_read[r] = bench_median(rd, m);
          s_reap[r] = bench_median(rp, m);
          reaped_late = late; /* the note counts the default method's */
        }
        break;
      }
    }
  }
  getloadavg(load + 1, 1);
  bare_stop(&ref);

  bench_section("4. one-shot process task: %zu launches per repetition, "
                "each waited for to the reap; %zu repetitions",
                m, reps);
  bench_note("load average %.2f before, %.2f after, on %ld CPUs%s", load[0],
             load[1], cpus,
             cpus > 0 && (load[0] > cpus || load[1] > cpus)
                 ? ": ABOVE the CPU count"
                 : "");
  {
    bench_ratio qr = bench_ratio_of(p_read, b_read, reps, BENCH_LOWER);
    bench_ratio qp = bench_ratio_of(p_reap, b_reap, reps, BENCH_LOWER);
    bench_row("pebble process task (launch)", "p50 to read",
              bench_median(p_read, reps), "us", bench_median(p_cpu, reps),
              NULL);
    bench_row("bare fork+pipe, own process", "p50 to read",
              bench_median(b_read, reps), "us", bench_median(b_cpu, reps),
              &qr);
    bench_row("pebble process task (launch)", "p50 to reap",
              bench_median(p_reap, reps), "us", -1, NULL);
    bench_row("bare fork+pipe+waitpid", "p50 to reap",
              bench_median(b_reap, reps), "us", -1, &qp);
    qr = bench_ratio_of(p_read, i_read, reps, BENCH_LOWER);
    qp = bench_ratio_of(p_reap, i_reap, reps, BENCH_LOWER);
    bench_row("bare, forked from this process", "p50 to read",
              bench_median(i_read, reps), "us", -1, &qr);
    bench_row("", "p50 to reap", bench_median(i_reap, reps), "us", -1, &qp);
    if (served != NULL) {
      qr = bench_ratio_of(s_read, b_read, reps, BENCH_LOWER);
      qp = bench_ratio_of(s_reap, b_reap, reps, BENCH_LOWER);
      bench_row("pebble, forkserver start method", "p50 to read",
                bench_median(s_read, reps), "us", bench_median(s_cpu, reps),
                NULL);
      bench_row("  / bare fork+pipe, own process", "p50 to read",
                bench_median(b_read, reps), "us", -1, &qr);
      bench_row("pebble, forkserver start method", "p50 to reap",
                bench_median(s_reap, reps), "us", -1, NULL);
      bench_row("  / bare fork+pipe+waitpid", "p50 to reap",
                bench_median(b_reap, reps), "us", -1, &qp);
    } else {
      bench_skip("pebble, forkserver start method",
                 "this backend has no forkserver");
    }
    qr = bench_ratio_of(p_read, b_read, reps, BENCH_LOWER);
    qp = bench_ratio_of(p_reap, b_reap, reps, BENCH_LOWER);
    bench_note("%ld of %ld Pebble launches resolved before their child was "
               "reaped (the reap follows: pebble_future_wait_exit)",
               reaped_late, launches);
    bench_target(qr.median <= 1.3,
                 "<= 1.3x the bare fork+pipe, to the read: %.2fx (worst rep "
                 "%.2fx; %zu of %zu repetitions meet it)",
                 qr.median, qr.worst, bench_ratio_meeting(&qr, 1.3), qr.n);
    bench_target(qp.median <= 1.3,
                 "<= 1.3x the bare fork+pipe+waitpid, to the reap: %.2fx "
                 "(worst rep %.2fx; %zu of %zu repetitions meet it)",
                 qp.median, qp.worst, bench_ratio_meeting(&qp, 1.3), qp.n);
  }
  pebble_task_destroy(task);
  if (served != NULL)
    pebble_task_destroy(served);
  free(s_read);
  free(s_reap);
  free(s_cpu);
  free(rd);
  free(rp);
  free(p_read);
  free(p_reap);
  free(p_cpu);
  free(b_read);
  free(b_reap);
  free(b_cpu);
  free(i_read);
  free(i_reap);
  return 0;
}
