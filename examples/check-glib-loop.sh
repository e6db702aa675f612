#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs examples/glib_loop (a completion queue watched by g_unix_fd_add in
# a GLib main loop) and checks what it computed.  Skipped (77) where
# configure did not find GLib.
b="${top_builddir:-.}/examples"
unset PEBBLE_START_METHOD # tasks go by address (see check-examples.sh)
if [ ! -x "$b/glib_loop" ]; then
  echo "SKIP: examples/glib_loop is not built: configure did not find GLib (Debian: libglib2.0-dev)"
  exit 77
fi
out=$("$b/glib_loop") || { echo "FAIL: glib_loop exited with $?: $out"; exit 1; }
echo "$out"
expected="sum of cubes 1..10 = 3025 (10 results through g_unix_fd_add)"
[ "$out" = "$expected" ] || { echo "FAIL: expected: $expected"; exit 1; }
echo "ok: glib_loop"
