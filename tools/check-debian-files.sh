#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# debian/ follows the library: its symbols file lists exactly the exports
# of api/pebble.sym, and its changelog's newest version is AC_INIT's.
top_srcdir=${top_srcdir:-.}
sym="$top_srcdir/api/pebble.sym"
debsym="$top_srcdir/debian/libpebble0.symbols"
fail=0
listed=$(mktemp)
trap 'rm -f "$listed"' EXIT
sed -n 's/^ \([a-z_0-9]*\)@Base .*/\1/p' "$debsym" | sort > "$listed"
if ! diff -u "$sym" "$listed"; then
  echo "debian/libpebble0.symbols differs from api/pebble.sym (- exported, + listed);"
  echo "add new functions with the version that brings them (docs/abi.md)"
  fail=1
fi
version=$(sed -n 's/^AC_INIT(\[pebble\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
changelog=$(sed -n '1s/^pebble (\([^)]*\)).*/\1/p' "$top_srcdir/debian/changelog")
if [ "$version" != "$changelog" ]; then
  echo "debian/changelog is at $changelog, AC_INIT at $version (docs/release.md, step 3)"
  fail=1
fi
[ $fail -eq 0 ] && echo "debian/: symbols and version match the library ($version)"
exit $fail
