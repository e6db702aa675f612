#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The library exports exactly the symbols listed in api/pebble.sym: a new
# or vanished export fails here, so ABI changes are always deliberate (see
# docs/abi.md for how to update the list and the version).
lib="${top_builddir:-.}/.libs/libpebble.so"
list="${top_srcdir:-.}/api/pebble.sym"
if [ ! -f "$lib" ]; then
  echo "no shared library at $lib (static-only build): skipped"
  exit 77
fi
actual=$(mktemp)
trap 'rm -f "$actual"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort > "$actual"
if diff -u "$list" "$actual"; then
  echo "exported symbols match api/pebble.sym ($(wc -l < "$actual") symbols)"
  exit 0
fi
echo "exported symbols differ from api/pebble.sym (- listed, + exported)" >&2
exit 1
