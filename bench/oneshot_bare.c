/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oneshot_bare.c -- the reference of workload 4, in a small process of
 * its own: fork() + a result pipe + read() + waitpid(), written out by
 * hand, the least a one-shot process task can cost.  bench/oneshot starts
 * it once and drives it through stdin/stdout, so it runs interleaved with
 * Pebble's repetitions but forks a small process (no library, no threads),
 * as a program written without Pebble would.
 *
 * Protocol, one line each way:
 *   in:  "<n>\n"        run n launches (0: exit)
 *   out: "<p50 read us> <p50 reap us> <CPU us per launch>\n"
 * Each launch returns its 8-byte argument through the pipe; "read" is the
 * time from before fork() to the result in hand, "reap" to waitpid()
 * returned, both of the same launch.  CPU counts this process and its
 * reaped children.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu(void) {
  struct rusage s, c;
  getrusage(RUSAGE_SELF, &s);
  getrusage(RUSAGE_CHILDREN, &c);
  return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec +
                  c.ru_stime.tv_sec) +
         (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec +
                  c.ru_utime.tv_usec + c.ru_stime.tv_usec) *
             1e-6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what) {
  fprintf(stderr, "oneshot_bare: %s\n", what);
  exit(1);
}

static void once(int64_t v, double *to_read, double *to_reap) {
  int fds[2], status;
  int64_t got = -1;
  pid_t pid;
  double t0 = now();
  if (pipe(fds) != 0)
    die("pipe failed");
  pid = fork();
  if (pid < 0)
    die("fork failed");
  if (pid == 0) {
    close(fds[0]);
    _exit(write(fds[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
  }
  close(fds[1]);
  if (read(fds[0], &got, sizeof got) != (ssize_t)sizeof got || got != v)
    die("no result");
  *to_read = (now() - t0) * 1e6;
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    die("the child failed");
  *to_reap = (now() - t0) * 1e6;
}

int main(void) {
  long n;
  while (scanf("%ld", &n) == 1 && n > 0) {
    double *rd = calloc((size_t)n, sizeof *rd);
    double *rp = calloc((size_t)n, sizeof *rp);
    double c0 = cpu(), c1;
    long i;
    if (rd == NULL || rp == NULL)
      die("out of memory");
    for (i = 0; i < n; i++)
      once((int64_t)i, &rd[i], &rp[i]);
    c1 = cpu();
    printf("%.3f %.3f %.3f\n", median(rd, (size_t)n), median(rp, (size_t)n),
           (c1 - c0) / (double)n * 1e6);
    fflush(stdout);
    free(rd);
    free(rp);
  }
  return 0;
}
