#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The examples that run on Windows today, under Wine, checked as
# examples/check-examples.sh and check-pool-examples.sh check them on
# Linux.  The process examples register their tasks, so their workers are
# spawned (the only way on Windows).  event_loop is not ported yet (it
# waits with poll(); issue 14, items 5 and 7): README "Windows".
b="${top_builddir:-.}/examples"
run="${SHELL:-/bin/sh} ${top_srcdir:-.}/tests/wine-run.sh"
fail=0
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else
    echo "FAIL: $1"; echo "--- expected"; echo "$2"; echo "--- got"; echo "$3"; fail=1; fi
}
out=$($run "$b/thread_task" | tr -d '\r') || fail=1
echo "$out"
check thread_task "3" "$out"
out=$($run "$b/thread_pool" | tr -d '\r') || fail=1
echo "$out"
# "Task N returned N*N from thread X": the numbers, not the threads.
check thread_pool "$(i=0; while [ $i -lt 10 ]; do echo "Task $i returned $i"; i=$((i + 1)); done)" \
  "$(echo "$out" | sed 's/ from thread .*//' | sort -t' ' -k2n)"
out=$($run "$b/process_callback" | tr -d '\r') || fail=1
echo "$out"
check process_callback "$(i=0; while [ $i -lt 5 ]; do echo "Task $i returned $i"; i=$((i + 1)); done)" \
  "$(echo "$out" | sort)"
out=$($run "$b/object_callbacks" | tr -d '\r') || fail=1
echo "$out"
check object_callbacks "5
5" "$out"
out=$($run "$b/process_pool" | tr -d '\r') || fail=1
echo "$out"
check process_pool "timeout: PEBBLE_ETIMEDOUT
crash: PEBBLE_EDIED
cancel: PEBBLE_ECANCELED
7 squared: 49
8 squared: 64
done 2, failed 1, timed out 1, cancelled 1" "$(echo "$out" | sed 's/ (.*//')"
exit $fail
