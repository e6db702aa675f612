/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_failures.c -- a suite that fails on purpose, for
 * tests/report-failures.sh: run_suite must name each failed assertion on
 * descriptor 9 (the terminal under make check), with the matrix's backend
 * and start method when they are set.
 */
#include "core_util.h"

static void passes(void) { CU_ASSERT_EQUAL(2 + 2, 4); }

static void fails_twice(void) {
  volatile int two = 2;
  CU_ASSERT_EQUAL(two, 3);
  CU_ASSERT(two < 0);
}

int main(void) {
  CU_TestInfo tests[] = {{"a test that passes", passes},
                         {"a test that fails twice", fails_twice},
                         CU_TEST_INFO_NULL};
  return run_suite("report", tests);
}
