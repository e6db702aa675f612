#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# pebble-info tells what it finds and why: checked against this build.
info="${top_builddir:-.}/tools/pebble-info"
# The checks below are about the default choice: a backend named for the
# whole run (PEBBLE_BACKEND=apr make check) is not theirs.
unset PEBBLE_BACKEND PEBBLE_BACKEND_PATH
out=$("$info") || { echo "pebble-info failed"; exit 1; }
echo "$out"
echo "$out" | grep -q "^Pebble [0-9]" || { echo "no version line"; exit 1; }
echo "$out" | grep -q "posix *(built in)" || { echo "built-in backend not listed"; exit 1; }
echo "$out" | grep -q "^selected: posix (built-in default)" || { echo "no default choice"; exit 1; }
out=$(PEBBLE_BACKEND=nosuch "$info") && { echo "an unknown backend must fail"; exit 1; }
echo "$out" | grep -q "PEBBLE_BACKEND environment variable" || { echo "reason not given"; exit 1; }
echo "$out" | grep -q "available: posix" || { echo "available backends not listed"; exit 1; }
# Where it looked: the install directory configured now (a stale one means
# the build did not follow a new --prefix), and PEBBLE_BACKEND_PATH's.
if [ -n "$PEBBLE_TEST_PKGLIBDIR" ]; then
  echo "$out" | grep -qF "no pebble_nosuch.so in $PEBBLE_TEST_PKGLIBDIR (install directory)" ||
    { echo "the error does not name the install directory $PEBBLE_TEST_PKGLIBDIR"; exit 1; }
  echo "$out" | grep -qxF "  $PEBBLE_TEST_PKGLIBDIR (install directory)" ||
    { echo "the install directory $PEBBLE_TEST_PKGLIBDIR is not listed as searched"; exit 1; }
fi
out=$(PEBBLE_BACKEND=nosuch PEBBLE_BACKEND_PATH=/nonexistent/a:/nonexistent/b "$info") &&
  { echo "an unknown backend must fail"; exit 1; }
echo "$out" | grep -qF "in /nonexistent/a (PEBBLE_BACKEND_PATH), /nonexistent/b (PEBBLE_BACKEND_PATH), " ||
  { echo "the error does not name the PEBBLE_BACKEND_PATH directories"; exit 1; }
echo "$out" | grep -qxF "  /nonexistent/b (PEBBLE_BACKEND_PATH)" ||
  { echo "PEBBLE_BACKEND_PATH directories not listed as searched"; exit 1; }
# (A static-only build has no module to list.)
if [ -n "$PEBBLE_TEST_MODULE_DIR" ] && [ -f "$PEBBLE_TEST_MODULE_DIR/pebble_posix.so" ]; then
  out=$(PEBBLE_BACKEND_PATH="$PEBBLE_TEST_MODULE_DIR" "$info") || exit 1
  echo "$out" | grep -q "pebble_posix" || { echo "module not listed"; exit 1; }
fi
echo "pebble-info: ok"
