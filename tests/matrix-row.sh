#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# One row of the conformance matrix: the core suites under one backend and
# one start method.  Usage: matrix-row.sh BACKEND START_METHOD
#
# Each program's output goes to tests/matrix/BACKEND-METHOD/PROGRAM.log;
# this script's own output is a table row per program and one CUnit-style
# "tests" line with the row's totals, which is what .ci/run counts.  A
# program that exits 77 lacks a capability of the backend: it is shown as
# skipped, with its reason.  Tests skipped inside a program (not possible
# under this start method) are counted and named, never passed.
# ROW (optional third argument) names a row other than BACKEND-METHOD:
# win-apr-spawn runs on Windows, under Wine (PEBBLE_TEST_WINE set).
# START_METHOD "threads" is for a backend that runs no processes (no
# PEBBLE_CAP_PROCESSES): no start method is named, and the programs skip
# what needs processes, saying so.  PEBBLE_MATRIX_MODULE_DIR names the
# directory of a module built elsewhere (an out-of-tree backend; .ci/run).
# PEBBLE_MATRIX_PROGRAMS replaces the row's list of programs (paths under
# the source or build tree; tests/report-failures.sh).
#
# Each program runs under half the row's time limit (PEBBLE_TEST_TIMEOUT,
# 900 s): one that hangs is stopped, named with the test it was in and its
# log's tail shown, and the row goes on to the others.  At the row's own
# limit the row would be stopped whole, naming nothing.
backend=$1 method=$2
row=${3:-$backend-$method}
: "${top_builddir:=.}" "${top_srcdir:=.}"
# make gives its recipes SHELL; a script started from elsewhere (.ci/run's
# out-of-tree row, a cron job, a bare environment) may have none.
: "${SHELL:=/bin/sh}"
dir="$top_builddir/tests/matrix/$row"
mkdir -p "$dir"

PEBBLE_BACKEND=$backend
PEBBLE_START_METHOD=$method
export PEBBLE_BACKEND PEBBLE_START_METHOD
[ "$method" = threads ] && unset PEBBLE_START_METHOD
runner="$top_srcdir/tests/run-test.sh"
if [ -n "${PEBBLE_TEST_WINE:-}" ]; then
  # Windows has spawn only (the row's method, and the default there).
  runner="$top_srcdir/tests/wine-run.sh"
fi
# The built-in POSIX backend needs no path; others are modules of this tree.
if [ "$backend" != posix ]; then
  PEBBLE_BACKEND_PATH=${PEBBLE_MATRIX_MODULE_DIR:-$top_builddir/backends/$backend/.libs}
  export PEBBLE_BACKEND_PATH
fi

programs="tests/core_thread tests/core_future tests/core_process tests/core_pool tests/core_ahead tests/core_resolve tests/core_map tests/core_shared_result tests/core_spawn tests/core_traps tests/core_observe tests/core_faults tests/core_direct tests/core_alloc tests/cap_kill_group"
# The examples run as written (fork, functions not registered); under the
# default backend they are tests of their own already.
if [ "$method" = fork ] && [ "$backend" != posix ]; then
  programs="$programs examples/check-examples.sh examples/check-pool-examples.sh"
fi
# On Windows: the suites built there (tests/win.mk), and each program of
# the rows above that is not, with why (shown as skipped, never as
# passed).  Inside a suite, what needs fork, a FIFO or POSIX signals is
# skipped by name with its reason (tests/core_util.h).
not_ported=
if [ -n "${PEBBLE_TEST_WINE:-}" ]; then
  programs="tests/win_threads tests/win_processes tests/core_thread tests/core_future tests/core_pool tests/core_map tests/core_observe tests/core_faults tests/core_traps tests/core_process tests/core_resolve tests/core_ahead tests/core_shared_result tests/core_spawn tests/cap_kill_group tests/win-examples.sh"
  not_ported="core_alloc:not ported: replaces malloc by symbol interposition (dlsym RTLD_NEXT) and runs each case in a forked child; a Windows DLL binds its C library's malloc at link time
event_loop:not yet ported: the example waits with poll() (the queue's Event handle is checked in win_threads and core_map)"
fi
[ -n "${PEBBLE_MATRIX_PROGRAMS:-}" ] && programs=$PEBBLE_MATRIX_PROGRAMS
PEBBLE_TEST_TIMEOUT=$(( ${PEBBLE_TEST_TIMEOUT:-900} / 2 ))
export PEBBLE_TEST_TIMEOUT
total=0 passed=0 failed=0 skipped=0 status=0
printf '%-17s %-20s %s\n' "row" "program" "result" > "$dir/table.txt"
for path in $programs; do
  prog=$(basename "$path" .sh)
  log="$dir/$prog.log"
  if [ -n "${PEBBLE_TEST_WINE:-}" ] && [ "$prog" = "$(basename "$path")" ] &&
     [ ! -f "$top_builddir/$path.exe" ]; then
    # Built only when configure found CUnit for mingw.
    not_ported="$not_ported
$prog:not built: configure found no CUnit for mingw (tools/build-cunit-mingw.sh)"
    continue
  fi
  case $path in
    *.sh) "$SHELL" "$top_srcdir/tests/run-test.sh" "$top_srcdir/$path" > "$log" 2>&1 ;;
    *) "$SHELL" "$runner" "$top_builddir/$path" > "$log" 2>&1 ;;
  esac
  rc=$?
  line=$(awk '/^ *tests +[0-9]/ {print $2, $4, $5; exit}' "$log")
  inside=$(sed -n 's/^Skipped tests: \([0-9]*\).*/\1/p' "$log" | head -1)
  inside=${inside:-0}
  case $rc in
    0)
      [ -z "$line" ] && line="1 1 0" # a script: one test
      set -- $line
      t=${1:-0} p=${2:-0} f=${3:-0}
      total=$((total + t)); passed=$((passed + p - inside))
      failed=$((failed + f)); skipped=$((skipped + inside))
      result="pass ($((p - inside)) tests)"
      [ "$inside" -gt 0 ] && result="$result, $inside skipped: $(sed -n 's/^Skipped tests: [0-9]*: //p' "$log")"
      halved=$(sed -n 's/^Process halves left out: //p' "$log" | head -1)
      [ -n "$halved" ] && result="$result; process half left out of ${halved%%:*}:${halved#*:}"
      ;;
    77)
      skipped=$((skipped + 1))
      result="skipped: $(sed -n 's/^SKIP: //p' "$log" | head -1)"
      ;;
    *)
      status=1
      if [ -n "$line" ]; then
        set -- $line
        total=$((total + $1)); passed=$((passed + $2 - inside))
        failed=$((failed + $3)); skipped=$((skipped + inside))
        [ "$3" -eq 0 ] && failed=$((failed + 1)) total=$((total + 1))
      else
        failed=$((failed + 1)) total=$((total + 1))
      fi
      result="FAIL (exit $rc; see $log)"
      if [ "$rc" -eq 124 ]; then
        # The last test CUnit announced: the one that did not end, unless
        # its line has its verdict (the program hung after it).
        last=$(grep '^  Test: ' "$log" | tail -n 1)
        running=$(printf '%s\n' "$last" | sed -n 's/^  Test: \(.*\) \.\.\..*/\1/p')
        case $last in
          *passed | *FAILED*) running=${running:+after the test \"$running\"} ;;
          *) running=${running:+in the test \"$running\"} ;;
        esac
        result="FAIL (stopped at its time limit of $PEBBLE_TEST_TIMEOUT s${running:+ $running}; see $log)"
      fi
      ;;
  esac
  printf '%-17s %-20s %s\n' "$row" "$prog" "$result" | tee -a "$dir/table.txt"
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
    tail -n 30 "$log"
    echo # a log cut off mid-line (a test that did not end) ends here
  fi
done
while IFS= read -r entry; do
  [ -n "$entry" ] || continue
  skipped=$((skipped + 1))
  printf '%-17s %-20s %s\n' "$row" "${entry%%:*}" "skipped: ${entry#*:}" | tee -a "$dir/table.txt"
done <<EOF
$not_ported
EOF
echo "Run Summary:    Type  Total    Ran Passed Failed Inactive"
echo "               tests  $total  $total  $passed  $failed  0"
echo "Skipped tests: $skipped"
exit $status
