#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every function the library exports (api/pebble.sym) has a reference
# entry: its prototype in the SYNOPSIS of a manual page under docs/man/.
# groff, where installed, reads every page without a warning.
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
pages="$top_srcdir/docs/man/*.in"
missing=0
for fn in $(cat "$top_srcdir/api/pebble.sym"); do
  if ! sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' $pages | grep -q "[ *]$fn("; then
    echo "no manual entry: $fn (add it to a SYNOPSIS in docs/man/)"
    missing=$((missing + 1))
  fi
done
if command -v groff > /dev/null; then
  for page in $top_builddir/docs/man/*.[137]; do
    out=$(LC_ALL=C groff -man -ww -z "$page" 2>&1)
    if [ -n "$out" ]; then
      echo "$page: groff says:"; echo "$out"; missing=$((missing + 1))
    fi
  done
else
  echo "groff not installed: the pages' syntax is not checked"
fi
[ $missing -eq 0 ] && echo "every exported function has a manual entry"
[ $missing -eq 0 ]
