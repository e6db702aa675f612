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
# A whole run may name a backend (PEBBLE_BACKEND=apr make check): the lines
# expected below name none unless a case sets one.
unset PEBBLE_BACKEND PEBBLE_START_METHOD PEBBLE_BACKEND_PATH

# Assertions: one line each, with the suite, test, file:line and condition.
"$prog" >"$tmp/out" 9>"$tmp/fd9"
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

# The runner: a program stopped at its time limit, or killed by a signal,
# is named on descriptor 9 (the expected line, or nothing); its exit
# status goes through unchanged.
runner_case() { # what, expected status, expected line ("" for none), command...
  what=$1 want_rc=$2 want_line=$3
  shift 3
  "${SHELL:-/bin/sh}" "$runner" "$@" 9>"$tmp/fd9"
  rc=$?
  cat "$tmp/fd9"
  [ "$rc" -eq "$want_rc" ] || fail "$what gave $rc, not $want_rc"
  if [ -z "$want_line" ]; then
    [ -s "$tmp/fd9" ] && fail "$what was reported"
  elif [ "$(cat "$tmp/fd9")" != "$want_line" ]; then
    fail "$what is not named"
  fi
}
PEBBLE_TEST_TIMEOUT=1
export PEBBLE_TEST_TIMEOUT
runner_case "a program over its time limit" 124 \
  "sleep: stopped at its time limit of 1 s" sleep 30
unset PEBBLE_TEST_TIMEOUT
runner_case "a program killed by SIGKILL" 137 \
  "/bin/sh: killed by signal 9" /bin/sh -c 'kill -KILL $$'
runner_case "a skipped program" 77 "" /bin/sh -c 'exit 77'
runner_case "a passing program" 0 "" /bin/sh -c 'exit 0'

# A matrix row: a program that hangs is stopped at half the row's limit,
# named with the test it was in, and the row goes on to the next program.
# The row's output is shown prefixed: its CUnit-style totals line, with a
# failure in it, must not read as this program's own (.ci/run counts the
# first such line of each log).
show_row() { sed 's/^/row | /' "$1"; }
mkdir -p "$tmp/src/tests" "$tmp/build"
cp "$runner" "$tmp/src/tests/run-test.sh"
printf '%s\n' 'echo "  Test: a quick one ...passed"' \
  'printf "  Test: sleeps past the limit ..."' 'sleep 30' > "$tmp/src/tests/hangs.sh"
printf '%s\n' 'exit 0' > "$tmp/src/tests/passes.sh"
top_srcdir="$tmp/src" top_builddir="$tmp/build" PEBBLE_TEST_TIMEOUT=4 \
  PEBBLE_MATRIX_PROGRAMS="tests/hangs.sh tests/passes.sh" \
  "${SHELL:-/bin/sh}" "$top_srcdir/tests/matrix-row.sh" example threads \
  >"$tmp/row" 2>&1 9>"$tmp/fd9"
rc=$?
show_row "$tmp/row"; cat "$tmp/fd9"
[ "$rc" -eq 1 ] || fail "the row with a hanging program exited $rc, not 1"
grep -q '^example-threads  *hangs  *FAIL (stopped at its time limit of 2 s in the test "sleeps past the limit"; see ' "$tmp/row" ||
  fail "the hanging program and its test are not named"
grep -q '^example-threads  *passes  *pass (1 tests)$' "$tmp/row" ||
  fail "the row did not go on after the hanging program"
grep -q 'hangs.sh (example, default start): stopped at its time limit of 2 s$' "$tmp/fd9" ||
  fail "the hanging program is not named on descriptor 9"
# One that hangs after its last test (at its end, say) says so.
printf '%s\n' 'echo "  Test: a quick one ...passed"' 'sleep 30' > "$tmp/src/tests/hangs.sh"
top_srcdir="$tmp/src" top_builddir="$tmp/build" PEBBLE_TEST_TIMEOUT=2 \
  PEBBLE_MATRIX_PROGRAMS="tests/hangs.sh" \
  "${SHELL:-/bin/sh}" "$top_srcdir/tests/matrix-row.sh" example threads \
  >"$tmp/row" 2>&1 9>/dev/null
show_row "$tmp/row"
grep -q '^example-threads  *hangs  *FAIL (stopped at its time limit of 1 s after the test "a quick one"; see ' "$tmp/row" ||
  fail "a program that hangs after its last test is not told apart"
exit "$bad"
