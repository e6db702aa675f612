#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every function the library exports (api/pebble.sym) has a reference
# entry: its prototype in the SYNOPSIS of a manual page under docs/man/,
# and a link page (made at install) so that `man FUNCTION` opens it.
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
# Every exported function but a page's own name gets a link page at
# install (docs/reference.mk): each names a page that is built, and, read
# from a man tree as man reads it, opens that page.
links=$(sh "$top_srcdir/tools/man-links.sh" "$top_srcdir") || missing=$((missing + 1))
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/man3"
cp $top_builddir/docs/man/*.3 "$tree/man3/" 2>/dev/null
nlinks=0
for fn in $(cat "$top_srcdir/api/pebble.sym"); do
  page=$(echo "$links" | sed -n "s/^$fn //p")
  if [ -z "$page" ]; then
    [ -f "$top_srcdir/docs/man/$fn.3.in" ] && continue # the page itself
    echo "no man link: $fn (tools/man-links.sh finds no page for it)"
    missing=$((missing + 1)); continue
  fi
  if [ ! -f "$top_srcdir/docs/man/$page.in" ]; then
    echo "man link $fn -> $page: no such page"; missing=$((missing + 1)); continue
  fi
  echo ".so man3/$page" > "$tree/man3/$fn.3"
  nlinks=$((nlinks + 1))
done
if command -v groff > /dev/null && [ -f "$tree/man3/pebble.3" ]; then
  for link in $(echo "$links" | cut -d' ' -f1); do
    if ! (cd "$tree" && LC_ALL=C groff -man -Tascii -P-cbou "man3/$link.3" 2>/dev/null) | grep -q "$link"; then
      echo "man $link: the link page does not open a page naming it"
      missing=$((missing + 1))
    fi
  done
fi
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
[ $missing -eq 0 ] && echo "every exported function has a manual entry ($nlinks by a link page)"
[ $missing -eq 0 ]
