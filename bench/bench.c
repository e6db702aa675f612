/* SPDX-License-Identifier: Apache-2.0 */
/* bench.c -- see bench.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "bench.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- CPU time of the process tree ---- */

static double tv(struct timeval t) {
  return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

/* Nanoseconds on CPU of every thread of pid (first field of schedstat). */
static double threads_cpu(long pid) {
  char path[96];
  DIR *d;
  struct dirent *e;
  double sum = 0;
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  if ((d = opendir(path)) == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    char file[320];
    FILE *f;
    unsigned long long ns;
    if (e->d_name[0] == '.')
      continue;
    snprintf(file, sizeof file, "/proc/%ld/task/%s/schedstat", pid,
             e->d_name);
    if ((f = fopen(file, "r")) == NULL)
      continue;
    if (fscanf(f, "%llu", &ns) == 1)
      sum += (double)ns * 1e-9;
    fclose(f);
  }
  closedir(d);
  return sum;
}

/* CPU of every live descendant of pid (not pid itself). */
static double descendants_cpu(long pid, int depth) {
  char path[96];
  DIR *d;
  struct dirent *e;
  double sum = 0;
  if (depth > 8)
    return 0;
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  if ((d = opendir(path)) == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    char file[320];
    FILE *f;
    long child;
    if (e->d_name[0] == '.')
      continue;
    snprintf(file, sizeof file, "/proc/%ld/task/%s/children", pid, e->d_name);
    if ((f = fopen(file, "r")) == NULL)
      continue;
    while (fscanf(f, "%ld", &child) == 1)
      sum += threads_cpu(child) + descendants_cpu(child, depth + 1);
    fclose(f);
  }
  closedir(d);
  return sum;
}

double bench_cpu(void) {
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  return tv(self.ru_utime) + tv(self.ru_stime) + tv(kids.ru_utime) +
         tv(kids.ru_stime) + descendants_cpu((long)getpid(), 0);
}

/* ---- command line ---- */

static int quick_mode; /* figures of a quick run are not judged */

void bench_parse(int argc, char **argv, bench_opts *o, int full_reps) {
  int i;
  o->quick = 0;
  o->reps = full_reps;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      o->quick = 1;
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      o->reps = atoi(argv[++i]);
    else
      bench_die("usage: %s [--quick] [--reps N]", argv[0]);
  }
  if (o->quick)
    o->reps = 1;
  quick_mode = o->quick;
  if (o->reps < 1)
    bench_die("--reps must be at least 1");
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double *sorted_copy(const double *v, size_t n) {
  double *c = malloc((n ? n : 1) * sizeof *c);
  if (c == NULL)
    bench_die("out of memory");
  memcpy(c, v, n * sizeof *c);
  qsort(c, n, sizeof *c, cmp_double);
  return c;
}

double bench_median(const double *v, size_t n) {
  double *c, m;
  if (n == 0)
    return 0;
  c = sorted_copy(v, n);
  m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
  free(c);
  return m;
}

/* Nearest rank: the smallest value with at least p% of values at or
 * below it. */
double bench_percentile(const double *v, size_t n, double p) {
  double *c, r;
  size_t k;
  if (n == 0)
    return 0;
  c = sorted_copy(v, n);
  k = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  r = c[k - 1];
  free(c);
  return r;
}

double bench_max(const double *v, size_t n) {
  double m = n ? v[0] : 0;
  size_t i;
  for (i = 1; i < n; i++)
    if (v[i] > m)
      m = v[i];
  return m;
}

double bench_min(const double *v, size_t n) {
  double m = n ? v[0] : 0;
  size_t i;
  for (i = 1; i < n; i++)
    if (v[i] < m)
      m = v[i];
  return m;
}

bench_ratio bench_ratio_of(const double *mine, const double *theirs,
                           size_t reps, enum bench_better better) {
  bench_ratio r = {0, 0, 0};
  double *q = malloc((reps ? reps : 1) * sizeof *q);
  size_t i, n = 0;
  if (q == NULL)
    bench_die("out of memory");
  for (i = 0; i < reps; i++)
    if (theirs[i] > 0)
      q[n++] = mine[i] / theirs[i];
  if (n > 0) {
    r.valid = 1;
    r.median = bench_median(q, n);
    r.worst = better == BENCH_HIGHER ? bench_min(q, n) : bench_max(q, n);
  }
  free(q);
  return r;
}

/* ---- the table ---- */

static void header_once(void) {
  static int done;
  const char *no = getenv("BENCH_NO_HEADER");
  if (done || (no != NULL && *no != '\0'))
    return;
  done = 1;
  printf("%-34s %-12s %14s %12s  %s\n", "system", "metric", "value",
         "CPU/task", "Pebble / this: median (worst rep)");
}

void bench_section(const char *fmt, ...) {
  va_list ap;
  header_once();
  printf("== ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

static void format_value(char *out, size_t len, double v, const char *unit) {
  if (strcmp(unit, "tasks/s") == 0) {
    if (v >= 1e6)
      snprintf(out, len, "%.2fM/s", v / 1e6);
    else if (v >= 1e3)
      snprintf(out, len, "%.1fk/s", v / 1e3);
    else
      snprintf(out, len, "%.0f/s", v);
  } else if (strcmp(unit, "us") == 0) {
    if (v >= 10000)
      snprintf(out, len, "%.1f ms", v / 1000);
    else
      snprintf(out, len, "%.1f us", v);
  } else {
    snprintf(out, len, "%.2f %s", v, unit);
  }
}

void bench_row(const char *system, const char *metric, double value,
               const char *unit, double cpu_us, const bench_ratio *ratio) {
  char val[32], cpu[32], rat[64];
  format_value(val, sizeof val, value, unit);
  if (cpu_us < 0)
    snprintf(cpu, sizeof cpu, "-");
  else
    format_value(cpu, sizeof cpu, cpu_us, "us");
  if (ratio == NULL)
    snprintf(rat, sizeof rat, "-");
  else if (!ratio->valid)
    snprintf(rat, sizeof rat, "n/a");
  else
    snprintf(rat, sizeof rat, "%.2fx (%.2fx)", ratio->median, ratio->worst);
  printf("   %-31s %-12s %14s %12s  %s\n", system, metric, val, cpu, rat);
  fflush(stdout);
}

void bench_skip(const char *system, const char *why) {
  printf("   %-31s skipped: %s\n", system, why);
  fflush(stdout);
}

void bench_target(int met, const char *fmt, ...) {
  va_list ap;
  printf("   target: ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf(" -> %s\n", quick_mode ? "not judged (quick run)"
                                 : met ? "met" : "NOT met");
  fflush(stdout);
}

void bench_note(const char *fmt, ...) {
  va_list ap;
  printf("   note: ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

void bench_die(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "bench: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  exit(1);
}
