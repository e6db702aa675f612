#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs examples/cxx_wrappers (RAII wrappers; an exception thrown in a task
# becomes a failed future with its what() text, in a thread pool and in a
# process pool) and checks what it printed.  Skipped (77) where configure
# found no C++ compiler.
b="${top_builddir:-.}/examples"
unset PEBBLE_START_METHOD # tasks go by address (see check-examples.sh)
if [ ! -x "$b/cxx_wrappers" ]; then
  echo "SKIP: examples/cxx_wrappers is not built: configure found no C++ compiler (Debian: g++)"
  exit 77
fi
out=$("$b/cxx_wrappers") || { echo "FAIL: cxx_wrappers exited with $?: $out"; exit 1; }
echo "$out"
expected='sum of squares 1..10 = 385
thread pool: sqrt(49) = 7; sqrt(-4) threw in the task -> status -100 (the task reported a failure), task code 70, message "no square root of a negative number: -4"
process pool: sqrt(49) = 7; sqrt(-4) threw in the task -> status -100 (the task reported a failure), task code 70, message "no square root of a negative number: -4"
all checks passed'
[ "$out" = "$expected" ] || { echo "FAIL: expected:"; echo "$expected"; exit 1; }
echo "ok: cxx_wrappers"
