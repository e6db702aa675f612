/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.h -- what every benchmark program shares: clocks, the CPU time of
 * this process and all its descendants, statistics over repetitions, the
 * command line, and the rows of the one table that bench/run prints.
 *
 * Ratios are always "Pebble's figure / the other system's figure", taken
 * per repetition (the systems run one after the other inside each
 * repetition), then summarised as the median and the worst repetition.
 * "Worst" means least favourable to Pebble: the smallest ratio for a rate,
 * the largest for a time.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The warm-up every contender gets before its timed part: the same small
 * number of tasks for every system, never as large as a timed burst, so
 * no contender runs its timed tasks on memory the warm-up left behind.
 */
#define BENCH_WARMUP_TASKS 2000

/* Monotonic clock. */
double bench_now(void); /* seconds */

/*
 * CPU seconds used so far by this process (every thread) and by every
 * descendant, alive or reaped: spinning or a busy helper process is never
 * free.  Live descendants are read from /proc (ns precision); reaped ones
 * come from getrusage(RUSAGE_CHILDREN).
 */
double bench_cpu(void);

/* Command line: --quick (each workload once, tiny sizes), --reps N. */
typedef struct bench_opts {
  int quick;
  int reps;
} bench_opts;
void bench_parse(int argc, char **argv, bench_opts *o, int full_reps);

/* Statistics; the arrays are not modified. */
double bench_median(const double *v, size_t n);
double bench_percentile(const double *v, size_t n, double p); /* 0..100 */
double bench_max(const double *v, size_t n);
double bench_min(const double *v, size_t n);

/* Which way is better for a metric. */
enum bench_better { BENCH_HIGHER = 1, BENCH_LOWER = -1 };

/* Median and worst of the per-repetition ratios mine[r] / theirs[r],
 * and the ratios themselves, so that a target can say in how many
 * repetitions it was met on its own.  A line runs at most
 * BENCH_MAX_REPS repetitions (--reps), five times as many for its
 * shortest bursts; more than BENCH_RATIO_KEEP ratios stop the program. */
#define BENCH_MAX_REPS 50
#define BENCH_RATIO_KEEP 256
typedef struct bench_ratio {
  double median, worst; /* of each[]; 0 when n is 0 */
  int better;           /* enum bench_better */
  size_t n;             /* the repetitions with a ratio, all in each[] */
  double each[BENCH_RATIO_KEEP];
} bench_ratio;
bench_ratio bench_ratio_of(const double *mine, const double *theirs,
                           size_t reps, enum bench_better better);
/* How many of r's repetitions meet limit on their own: a ratio >= limit
 * where higher is better, <= limit where lower is. */
size_t bench_ratio_meeting(const bench_ratio *r, double limit);

/* ---- the machine's load ---- */
/*
 * The 1-minute load average now (-1 when it cannot be read), and the
 * number of CPUs this process may run on.  The load at the program's
 * start is taken before main() runs.
 */
double bench_load_now(void);
double bench_load_at_start(void);
int bench_cpus(void);

/* ---- the table ---- */
/*
 * A workload's title line (with its parameters).  The line ends with the
 * load average at the program's start and now, and a note follows it when
 * either is above the CPU count: such figures come from a loaded machine.
 *
 * Every row, skip, target and note is also written as a record to
 * $BENCH_CSV (CSV with a header line) and $BENCH_JSON (one JSON object a
 * line) when they are set, or to results.csv and results.jsonl in the
 * directory $BENCH_OUT; files are appended to, so one run's programs
 * share them.  A record carries the program, the section, the system
 * (a continuation row repeats the system above it), the metric, the value
 * and unit, CPU per task, the ratio's median and worst, the target's
 * verdict, the loads and whether the run was --quick.
 */
void bench_section(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/*
 * One row: a system's figure for one metric.  `unit` is "tasks/s", "us",
 * "GB/s", "B/task" or "MB"; cpu_us is CPU microseconds per task or per
 * round trip (< 0: not measured).  ratio may be NULL (Pebble's own row).
 */
void bench_row(const char *system, const char *metric, double value,
               const char *unit, double cpu_us, const bench_ratio *ratio);
/* A row for a system that could not be measured, and why. */
void bench_skip(const char *system, const char *why);
/* A target of the issue and whether this run meets it. */
void bench_target(int met, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A free note under a workload. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs argv (argv[0] a path) with stdout on a pipe, reads its first line
 * into line (size bytes) and waits for it; dies naming who when it cannot
 * start, prints nothing or does not exit 0.  Each measured system then runs
 * in a fresh process of its own. */
void bench_run_line(char *const argv[], char *line, size_t size,
                    const char *who);

/* Exit with a message when something that must work did not. */
/* A count from the command line: a whole number from 1 to max, or the
 * program ends naming `prog`, `what` and the text given. */
size_t bench_count_arg(const char *prog, const char *s, const char *what,
                       size_t max);
/* The same from min (0 or 1) to max. */
size_t bench_count_arg_from(const char *prog, const char *s,
                            const char *what, size_t min, size_t max);

void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif /* BENCH_H */
