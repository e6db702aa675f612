#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the seed's examples and checks what they print, on the default
# backend and with PEBBLE_BACKEND=posix named explicitly.
b="${top_builddir:-.}/examples"
fail=0
# These examples pass functions by address, as the fork start method
# allows: a start method chosen for a whole run (PEBBLE_START_METHOD=spawn
# or forkserver make check, where tasks go by registered name) is not theirs.
unset PEBBLE_START_METHOD
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else
    echo "FAIL: $1"; echo "--- expected"; echo "$2"; echo "--- got"; echo "$3"; fail=1; fi
}
for backend in "" posix; do
  if [ -n "$backend" ]; then export PEBBLE_BACKEND=$backend; fi
  echo "== backend: ${backend:-${PEBBLE_BACKEND:-default}}"
  out=$("$b/thread_task") || fail=1
  echo "$out"
  check thread_task "3" "$out"
  out=$("$b/process_callback") || fail=1
  echo "$out"
  check process_callback "Task 0 returned 0
Task 1 returned 1
Task 2 returned 2
Task 3 returned 3
Task 4 returned 4" "$(echo "$out" | sort)"
  out=$("$b/object_callbacks") || fail=1
  echo "$out"
  check object_callbacks "5
5" "$out"
done
exit $fail
