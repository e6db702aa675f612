/* SPDX-License-Identifier: Apache-2.0 */
/* bench.c -- see bench.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
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
  if (o->reps < 1 || o->reps > BENCH_MAX_REPS)
    bench_die("--reps must be from 1 to %d", BENCH_MAX_REPS);
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
  bench_ratio r;
  size_t i;
  if (reps > BENCH_RATIO_KEEP)
    bench_die("%zu repetitions: a ratio keeps at most %d", reps,
              BENCH_RATIO_KEEP);
  memset(&r, 0, sizeof r);
  r.better = better;
  for (i = 0; i < reps; i++)
    if (theirs[i] > 0)
      r.each[r.n++] = mine[i] / theirs[i];
  if (r.n > 0) {
    r.median = bench_median(r.each, r.n); /* sorts a copy */
    r.worst = better == BENCH_HIGHER ? bench_min(r.each, r.n)
                                     : bench_max(r.each, r.n);
  }
  return r;
}

size_t bench_ratio_meeting(const bench_ratio *r, double limit) {
  size_t i, k = 0;
  for (i = 0; i < r->n; i++)
    if (r->better == BENCH_HIGHER ? r->each[i] >= limit
                                  : r->each[i] <= limit)
      k++;
  return k;
}

/* ---- the machine's load ---- */

double bench_load_now(void) {
  double one;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f == NULL)
    return getloadavg(&one, 1) == 1 ? one : -1;
  if (fscanf(f, "%lf", &one) != 1)
    one = -1;
  fclose(f);
  return one;
}

static double load_at_start = -1;

/* Before main(): the load as the program starts, before its own work. */
__attribute__((constructor)) static void take_load_at_start(void) {
  load_at_start = bench_load_now();
}

double bench_load_at_start(void) { return load_at_start; }

int bench_cpus(void) {
  cpu_set_t set;
  long n;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* ---- records: every line of the table, machine-readable ---- */

static FILE *csv_out, *json_out;
static int records_opened;
static char section_title[512];
static char last_system[128];
static double section_load_now = -1;

static FILE *open_append(const char *path, int *was_empty) {
  struct stat st;
  FILE *f = fopen(path, "a");
  if (f == NULL) {
    fprintf(stderr, "bench: cannot open %s: %s (records not kept)\n", path,
            strerror(errno));
    return NULL;
  }
  *was_empty = fstat(fileno(f), &st) == 0 && st.st_size == 0;
  return f;
}

static void open_records(void) {
  const char *csv = getenv("BENCH_CSV"), *json = getenv("BENCH_JSON");
  const char *dir = getenv("BENCH_OUT");
  char path[4096];
  int empty = 0;
  if (records_opened)
    return;
  records_opened = 1;
  if (csv != NULL && *csv != '\0')
    csv_out = open_append(csv, &empty);
  else if (dir != NULL && *dir != '\0') {
    snprintf(path, sizeof path, "%s/results.csv", dir);
    csv_out = open_append(path, &empty);
  }
  if (csv_out != NULL && empty)
    fprintf(csv_out, "program,section,kind,system,metric,value,unit,"
                     "cpu_us,ratio_median,ratio_worst,target,text,quick,"
                     "load_start,load_end,cpus\n");
  if (json != NULL && *json != '\0')
    json_out = open_append(json, &empty);
  else if (dir != NULL && *dir != '\0') {
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    json_out = open_append(path, &empty);
  }
}

static void csv_text(FILE *f, const char *s) {
  if (strpbrk(s, ",\"\n") == NULL) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void json_text(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* A number, or empty (CSV) / null (JSON) when it is not there. */
static void csv_number(FILE *f, double v, int there) {
  if (there)
    fprintf(f, "%.6g", v);
}
static void json_number(FILE *f, double v, int there) {
  if (there)
    fprintf(f, "%.6g", v);
  else
    fputs("null", f);
}

typedef struct record {
  const char *kind, *system, *metric, *unit, *text;
  double value, cpu_us;
  const bench_ratio *ratio;
  int has_value, target; /* target: -1 none, 0 not met, 1 met */
} record;

static void write_record(const record *r) {
  const char *prog = program_invocation_short_name;
  const char *target = r->target < 0 ? "" : quick_mode ? "not judged"
                                       : r->target   ? "met"
                                                     : "not met";
  int has_ratio = r->ratio != NULL && r->ratio->n > 0;
  double load_end = section_load_now >= 0 ? section_load_now : bench_load_now();
  open_records();
  if (csv_out != NULL) {
    csv_text(csv_out, prog);
    fputc(',', csv_out);
    csv_text(csv_out, section_title);
    fprintf(csv_out, ",%s,", r->kind);
    csv_text(csv_out, r->system);
    fputc(',', csv_out);
    csv_text(csv_out, r->metric);
    fputc(',', csv_out);
    csv_number(csv_out, r->value, r->has_value);
    fputc(',', csv_out);
    csv_text(csv_out, r->unit);
    fputc(',', csv_out);
    csv_number(csv_out, r->cpu_us, r->cpu_us >= 0);
    fputc(',', csv_out);
    csv_number(csv_out, has_ratio ? r->ratio->median : 0, has_ratio);
    fputc(',', csv_out);
    csv_number(csv_out, has_ratio ? r->ratio->worst : 0, has_ratio);
    fprintf(csv_out, ",%s,", target);
    csv_text(csv_out, r->text);
    fprintf(csv_out, ",%d,", quick_mode);
    csv_number(csv_out, load_at_start, load_at_start >= 0);
    fputc(',', csv_out);
    csv_number(csv_out, load_end, load_end >= 0);
    fprintf(csv_out, ",%d\n", bench_cpus());
    fflush(csv_out);
  }
  if (json_out != NULL) {
    fputs("{\"program\":", json_out);
    json_text(json_out, prog);
    fputs(",\"section\":", json_out);
    json_text(json_out, section_title);
    fprintf(json_out, ",\"kind\":\"%s\",\"system\":", r->kind);
    json_text(json_out, r->system);
    fputs(",\"metric\":", json_out);
    json_text(json_out, r->metric);
    fputs(",\"value\":", json_out);
    json_number(json_out, r->value, r->has_value);
    fputs(",\"unit\":", json_out);
    json_text(json_out, r->unit);
    fputs(",\"cpu_us\":", json_out);
    json_number(json_out, r->cpu_us, r->cpu_us >= 0);
    fputs(",\"ratio_median\":", json_out);
    json_number(json_out, has_ratio ? r->ratio->median : 0, has_ratio);
    fputs(",\"ratio_worst\":", json_out);
    json_number(json_out, has_ratio ? r->ratio->worst : 0, has_ratio);
    fputs(",\"target\":", json_out);
    if (r->target < 0)
      fputs("null", json_out);
    else
      json_text(json_out, target);
    fputs(",\"text\":", json_out);
    json_text(json_out, r->text);
    fprintf(json_out, ",\"quick\":%s,\"load_start\":",
            quick_mode ? "true" : "false");
    json_number(json_out, load_at_start, load_at_start >= 0);
    fputs(",\"load_end\":", json_out);
    json_number(json_out, load_end, load_end >= 0);
    fprintf(json_out, ",\"cpus\":%d}\n", bench_cpus());
    fflush(json_out);
  }
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
  int cpus = bench_cpus();
  header_once();
  va_start(ap, fmt);
  vsnprintf(section_title, sizeof section_title, fmt, ap);
  va_end(ap);
  last_system[0] = '\0';
  section_load_now = bench_load_now();
  printf("== %s; load %.2f at start, %.2f at end (%d CPUs)\n", section_title,
         load_at_start, section_load_now, cpus);
  fflush(stdout);
  if (load_at_start > cpus || section_load_now > cpus)
    bench_note("load above the CPU count (%.2f / %.2f on %d CPUs): these "
               "figures come from a loaded machine",
               load_at_start, section_load_now, cpus);
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
  else if (ratio->n == 0)
    snprintf(rat, sizeof rat, "n/a");
  else
    snprintf(rat, sizeof rat, "%.2fx (%.2fx)", ratio->median, ratio->worst);
  printf("   %-31s %-12s %14s %12s  %s\n", system, metric, val, cpu, rat);
  fflush(stdout);
  {
    record r = {"row", system, metric, unit, "", value, cpu_us, ratio, 1, -1};
    if (*system != '\0')
      snprintf(last_system, sizeof last_system, "%s", system);
    r.system = last_system;
    write_record(&r);
  }
}

void bench_skip(const char *system, const char *why) {
  record r = {"skip", system, "", "", why, 0, -1, NULL, 0, -1};
  printf("   %-31s skipped: %s\n", system, why);
  fflush(stdout);
  write_record(&r);
}

void bench_target(int met, const char *fmt, ...) {
  va_list ap;
  char text[1024];
  record r = {"target", "", "", "", text, 0, -1, NULL, 0, met != 0};
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  printf("   target: %s -> %s\n", text,
         quick_mode ? "not judged (quick run)" : met ? "met" : "NOT met");
  fflush(stdout);
  write_record(&r);
}

void bench_note(const char *fmt, ...) {
  va_list ap;
  char text[1024];
  record r = {"note", "", "", "", text, 0, -1, NULL, 0, -1};
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  printf("   note: %s\n", text);
  fflush(stdout);
  write_record(&r);
}

void bench_run_line(char *const argv[], char *line, size_t size,
                    const char *who) {
  extern char **environ;
  posix_spawn_file_actions_t fa;
  int out_pipe[2], status, err;
  pid_t pid;
  FILE *f;
  if (pipe(out_pipe) != 0)
    bench_die("pipe failed");
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  if (err != 0)
    bench_die("cannot run %s (%s): %s", argv[0], who, strerror(err));
  f = fdopen(out_pipe[0], "r");
  if (f == NULL || fgets(line, (int)size, f) == NULL)
    bench_die("%s gave no figures", who);
  fclose(f);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    bench_die("%s failed", who);
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

size_t bench_count_arg_from(const char *prog, const char *s,
                            const char *what, size_t min, size_t max) {
  char *end;
  unsigned long long v;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min ||
      v > max)
    bench_die("%s: %s '%s' is not a number from %zu to %zu", prog, what, s,
              min, max);
  return (size_t)v;
}

size_t bench_count_arg(const char *prog, const char *s, const char *what,
                       size_t max) {
  return bench_count_arg_from(prog, s, what, 1, max);
}
