#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs examples/uv_loop (a completion queue watched by a libuv uv_poll_t)
# and checks what it computed.  Skipped (77) where configure did not find
# libuv.
b="${top_builddir:-.}/examples"
unset PEBBLE_START_METHOD # tasks go by address (see check-examples.sh)
if [ ! -x "$b/uv_loop" ]; then
  echo "SKIP: examples/uv_loop is not built: configure did not find libuv (Debian: libuv1-dev)"
  exit 77
fi
out=$("$b/uv_loop") || { echo "FAIL: uv_loop exited with $?: $out"; exit 1; }
echo "$out"
expected="sum of squares 1..10 = 385 (10 results through a uv_poll_t)"
[ "$out" = "$expected" ] || { echo "FAIL: expected: $expected"; exit 1; }
echo "ok: uv_loop"
