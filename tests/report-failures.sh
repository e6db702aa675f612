#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make check keeps each program's output in its .log file; what failed must
# also reach the terminal (descriptor 9), or a build tree thrown away after
# a failed run leaves nothing to go on.  Checks both reporters: run_suite
# (tests/core_util.h) for failed assertions, tests/run-test.sh for a
# program stopped at its time limit or killed by a signal.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/report_failures"
runner="$top_srcdir/tests/run-test.sh"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
bad=0
fail() { echo "FAILED: $*"; bad=1; }

# Assertions: one line each, with the suite, test, file:line and condition.
env -u PEBBLE_BACKEND -u PEBBLE_START_METHOD "$prog" >"$tmp/out" 9>"$tmp/fd9"
rc=$?
[ "$rc" -eq 1 ] || fail "the failing suite exited $rc, not 1"
cat "$tmp/fd9"
[ "$(wc -l <"$tmp/fd9")" -eq 2 ] || fail "expected 2 lines on descriptor 9"
grep -q '^report: failed: a test that fails twice: .*report_failures\.c:[0-9][0-9]*: CU_ASSERT_EQUAL(two,3)$' "$tmp/fd9" ||
  fail "the first failed assertion is not named"
grep -q '^report: failed: a test that fails twice: .*report_failures\.c:[0-9][0-9]*: two < 0$' "$tmp/fd9" ||
  fail "the second failed assertion is not named"
grep -q 'passes' "$tmp/fd9" && fail "a passing test was reported"

# In a matrix row: which backend and start method.
PEBBLE_BACKEND=example PEBBLE_START_METHOD=spawn "$prog" >/dev/null 9>"$tmp/fd9"
cat "$tmp/fd9"
grep -q '^report (example, spawn): failed: ' "$tmp/fd9" ||
  fail "the row's backend and start method are not named"

# Run by hand (no descriptor 9): the output says it, nothing else breaks.
"$prog" >"$tmp/out" 2>&1 9>&-
rc=$?
[ "$rc" -eq 1 ] || fail "without descriptor 9 the suite exited $rc, not 1"
grep -q 'two < 0' "$tmp/out" || fail "the output lost the failure"

# The runner: a program stopped at its time limit, or killed by a signal.
PEBBLE_TEST_TIMEOUT=1 "${SHELL:-/bin/sh}" "$runner" sleep 30 9>"$tmp/fd9"
rc=$?
cat "$tmp/fd9"
[ "$rc" -eq 124 ] || fail "a program over its time limit gave $rc, not 124"
grep -q '^sleep: stopped at its time limit of 1 s$' "$tmp/fd9" ||
  fail "a program over its time limit is not named"
"${SHELL:-/bin/sh}" "$runner" /bin/sh -c 'kill -KILL $$' 9>"$tmp/fd9"
rc=$?
cat "$tmp/fd9"
[ "$rc" -eq 137 ] || fail "a program killed by SIGKILL gave $rc, not 137"
grep -q '^/bin/sh: killed by signal 9$' "$tmp/fd9" ||
  fail "a program killed by a signal is not named"
"${SHELL:-/bin/sh}" "$runner" /bin/sh -c 'exit 77' 9>"$tmp/fd9"
rc=$?
[ "$rc" -eq 77 ] || fail "a skipped program gave $rc, not 77"
[ -s "$tmp/fd9" ] && fail "a skipped program was reported"
exit "$bad"
