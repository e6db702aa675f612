#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# For every exported function (api/pebble.sym), the manual page that
# documents it: the page under docs/man/ whose SYNOPSIS declares it.
# Prints "function page" (e.g. "pebble_future_get pebble_future.3"), one
# line each, for the functions that are not a page's own name; `make
# install` makes each a link page (.so) so that `man pebble_future_get`
# opens the page of its area.  Fails, naming them, for functions no page
# declares.
top_srcdir=${1:-${top_srcdir:-$(dirname "$0")/..}}
fail=0
for fn in $(cat "$top_srcdir/api/pebble.sym"); do
  page=
  for in in "$top_srcdir"/docs/man/*.3.in; do
    if sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$in" | grep -q "[ *]$fn("; then
      page=$(basename "$in" .in); break
    fi
  done
  if [ -z "$page" ]; then
    echo "no manual page declares $fn (add it to a SYNOPSIS in docs/man/)" >&2
    fail=1
  elif [ "$page" != "$fn.3" ]; then
    echo "$fn $page"
  fi
done
exit $fail
