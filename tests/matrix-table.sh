#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prints the conformance matrix: every row's programs and results, from the
# rows' tables (tests/matrix/*/table.txt), then the launcher tests' parts
# and results, from their logs, to the log and, when make check opened it,
# to the terminal through descriptor 9.  Fails if a row failed or did not
# run (a test that skipped is shown skipped, with its reason).
: "${top_builddir:=.}"
out=$(
  echo "Conformance matrix (backend-start method or launcher test, program or part, result):"
  status=0
  for row in posix-fork posix-spawn posix-forkserver apr-fork apr-spawn \
             example-threads; do
    t="$top_builddir/tests/matrix/$row/table.txt"
    if [ -f "$t" ]; then
      tail -n +2 "$t"
    elif [ "${row%%-*}" = apr ] && [ "${PEBBLE_HAVE_APR:-no}" != yes ]; then
      printf '%-17s %-20s %s\n' "$row" "(all)" "skipped: APR backend not built (configure found no APR)"
    else
      printf '%-17s %-20s %s\n' "$row" "(all)" "FAIL: row did not run"
    fi
  done
  # The launcher tests (tests/launcher*.sh, docs/cluster.md): each part
  # from its "part NAME: RESULT" line in the test's log, the test's own
  # result from the harness (its .trs); one that skipped says why.
  for test in launcher:launcher-local launcher-ssh launcher-mpi \
              launcher-slurm launcher-netcut; do
    row=${test#*:} test=${test%%:*}
    log="$top_builddir/tests/$test.log"
    result=$(sed -n 's/^:test-result: //p' "$top_builddir/tests/$test.trs" 2>/dev/null | head -1)
    case $result in
      '')
        printf '%-17s %-20s %s\n' "$row" "(all)" "FAIL: tests/$test.sh did not run" ;;
      SKIP)
        printf '%-17s %-20s %s\n' "$row" "(all)" "skipped: $(sed -n 's/^SKIP: //p' "$log" | head -1)" ;;
      *)
        grep '^part [^:]*: ' "$log" | while IFS= read -r line; do
          line=${line#part }
          printf '%-17s %-20s %s\n' "$row" "${line%%: *}" "${line#*: }"
        done
        # A failure outside the parts (the script's own checks).
        if [ "$result" != PASS ] && ! grep -q '^part [^:]*: FAIL' "$log"; then
          how="FAIL ($result; see tests/$test.log)"
          [ "$result" = FAIL ] && how="FAIL (see tests/$test.log)"
          printf '%-17s %-20s %s\n' "$row" "(script)" "$how"
        elif [ "$result" = PASS ] && ! grep -q '^part ' "$log"; then
          printf '%-17s %-20s %s\n' "$row" "(all)" "pass"
        fi ;;
    esac
  done
)
echo "$out"
if { true >&9; } 2>/dev/null; then
  echo "$out" >&9
fi
if echo "$out" | grep -q "FAIL"; then
  exit 1
fi
exit 0
