#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Prints the conformance matrix: every row's programs and results, from the
# rows' tables (tests/matrix/*/table.txt), to the log and, when make check
# opened it, to the terminal through descriptor 9.  Fails if a row failed
# or did not run.
: "${top_builddir:=.}"
out=$(
  echo "Conformance matrix (backend-start method, program, result):"
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
)
echo "$out"
if { true >&9; } 2>/dev/null; then
  echo "$out" >&9
fi
if echo "$out" | grep -q "FAIL"; then
  exit 1
fi
exit 0
