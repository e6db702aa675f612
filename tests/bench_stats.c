/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_stats.c -- the benchmark suite's own arithmetic (bench/bench.c):
 * per-repetition ratios, their median and worst, and how many repetitions
 * meet a target on their own, which every target line prints.  A verdict
 * is only as good as these few lines, so they are checked like the
 * library.
 */
#include "core_util.h"

#include "../bench/bench.h"

/* Ratios 2, 4, 3, 1 and 2.5; the fifth repetition has no figure for the
 * other system (0) and gives no ratio. */
static const double mine[6] = {2, 4, 6, 1, 3, 5};
static const double theirs[6] = {1, 1, 2, 1, 0, 2};

static void test_higher_is_better(void) {
  bench_ratio r = bench_ratio_of(mine, theirs, 6, BENCH_HIGHER);
  CU_ASSERT_TRUE(r.n > 0);
  CU_ASSERT_EQUAL(r.n, 5);
  CU_ASSERT_DOUBLE_EQUAL(r.median, 2.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(r.worst, 1.0, 1e-12);
  /* At or above the limit: 2.5, 3 and 4. */
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 2.5), 3);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 1.0), 5);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 4.5), 0);
}

static void test_lower_is_better(void) {
  bench_ratio r = bench_ratio_of(mine, theirs, 6, BENCH_LOWER);
  CU_ASSERT_EQUAL(r.n, 5);
  CU_ASSERT_DOUBLE_EQUAL(r.median, 2.5, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(r.worst, 4.0, 1e-12);
  /* At or below the limit: 1, 2 and 2.5. */
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 2.5), 3);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 0.5), 0);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 4.0), 5);
}

/* The inputs are left as they were (the median sorts a copy), and the
 * ratios are kept in repetition order. */
static void test_inputs_untouched(void) {
  double a[3] = {9, 1, 5}, b[3] = {1, 1, 1};
  bench_ratio r = bench_ratio_of(a, b, 3, BENCH_HIGHER);
  CU_ASSERT_DOUBLE_EQUAL(a[0], 9, 0);
  CU_ASSERT_DOUBLE_EQUAL(a[1], 1, 0);
  CU_ASSERT_DOUBLE_EQUAL(a[2], 5, 0);
  CU_ASSERT_DOUBLE_EQUAL(r.each[0], 9, 0);
  CU_ASSERT_DOUBLE_EQUAL(r.each[1], 1, 0);
  CU_ASSERT_DOUBLE_EQUAL(r.each[2], 5, 0);
  CU_ASSERT_DOUBLE_EQUAL(r.median, 5, 1e-12);
}

/* As many repetitions as a line can run (its 1 k bursts run five times
 * --reps): every one counted. */
static void test_most_repetitions(void) {
  static double x[5 * BENCH_MAX_REPS], one[5 * BENCH_MAX_REPS];
  size_t i, n = 5 * BENCH_MAX_REPS;
  bench_ratio r;
  for (i = 0; i < n; i++) {
    x[i] = (double)(i + 1);
    one[i] = 1;
  }
  r = bench_ratio_of(x, one, n, BENCH_HIGHER);
  CU_ASSERT_EQUAL(r.n, n);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, (double)n), 1);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 1), n);
  CU_ASSERT_DOUBLE_EQUAL(r.worst, 1, 0);
}

/* No figure at all for the other system: no ratio, nothing met. */
static void test_no_ratio(void) {
  double zero[2] = {0, 0};
  bench_ratio r = bench_ratio_of(mine, zero, 2, BENCH_HIGHER);
  CU_ASSERT_FALSE(r.n > 0);
  CU_ASSERT_EQUAL(r.n, 0);
  CU_ASSERT_EQUAL(bench_ratio_meeting(&r, 0), 0);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"ratios where higher is better: median, worst, repetitions met",
       test_higher_is_better},
      {"ratios where lower is better: median, worst, repetitions met",
       test_lower_is_better},
      {"the inputs are left alone, the ratios kept in order",
       test_inputs_untouched},
      {"the most repetitions a line runs are all counted",
       test_most_repetitions},
      {"no figure for the other system: no ratio", test_no_ratio},
      CU_TEST_INFO_NULL};
  return run_suite("bench_stats", tests);
}
