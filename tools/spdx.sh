#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every source file of the project names its licence in an SPDX line:
#   tools/spdx.sh --check   lists the files without one; fails if any
#   tools/spdx.sh --apply   adds the line, as a comment in the file's own
#                           syntax, at the top of every file without one
#   tools/spdx.sh --list    lists the files that must carry one
# Sources are the files git tracks (or would track) in a checkout, and the
# same kinds of files in an unpacked release tarball; files made by
# autotools, configure or make are skipped.
set -eu

LINE='SPDX-License-Identifier: Apache-2.0'
root=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$root"

usage() { echo "usage: $0 --check | --apply | --list" >&2; exit 2; }
[ $# -eq 1 ] || usage
mode=$1
case $mode in --check|--apply|--list) ;; *) usage ;; esac

# The candidate files, one per line, relative to the root.
candidates() {
  if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$root" ]; then
    git ls-files --cached --others --exclude-standard
  else
    find . \( -name .git -o -name autom4te.cache -o -name .deps -o -name .libs \
             -o -name _build -o -name 'build-*' -o -name 'pebble-[0-9]*' \
             -o -path ./build-aux -o -path ./m4 -o -path ./debian/.debhelper \
             -o -path './debian/tmp' \) -prune -o -type f -print | sed 's|^\./||' | sort
  fi
}

# The comment syntax of a source file, or nothing for files that are not
# sources (documents, data, generated files).
syntax() {
  f=$1
  case $f in
    configure|aclocal.m4|config.h.in|config.h.in~|libtool|config.status|\
    pebble_module_dir.h|build-aux/*|m4/*|debian/*.debhelper*|debian/*.substvars|\
    debian/files|debian/*/*)
      return 0 ;;
  esac
  # Made by configure from F.in, or by automake from F.am.
  [ -f "$f.in" ] && return 0
  case $f in *.in) [ -f "${f%.in}.am" ] && return 0 ;; esac
  case $f in
    *.c|*.h|*.h.in) echo c ;;
    *.cc|*.cpp|*.hpp) echo cxx ;;
    *.ac) echo dnl ;;
    *.am|*.inc|*.mk|*.sh|*.py|*.pc.in|debian/rules) echo hash ;;
    *)
      case ${f##*/} in *.*) return 0 ;; esac
      # An extensionless script: a shebang, and not one that a tool wrote
      # (libtool's wrappers, config.status).
      if [ "$(head -c 2 "$f" 2>/dev/null)" = '#!' ] &&
         ! head -n 5 "$f" | grep -qi 'generated \(by\|automatically\)'; then
        echo hash
      fi ;;
  esac
}

has_line() { head -n 5 "$1" | grep -q "SPDX-License-Identifier:"; }

# Inserts the line in the file's syntax: first, or after a shebang line
# (and a Python coding line).
apply() {
  f=$1 kind=$2
  case $kind in
    c) comment="/* $LINE */" ;;
    cxx) comment="// $LINE" ;;
    dnl) comment="dnl $LINE" ;;
    hash) comment="# $LINE" ;;
  esac
  tmp="$f.spdx.tmp"
  awk -v c="$comment" '
    NR == 1 && /^#!/ { print; next }
    NR <= 2 && /^#.*coding[:=]/ { print; next }
    !done { print c; done = 1 }
    { print }
    END { if (!done) print c }' "$f" > "$tmp"
  # Keep the file's mode (scripts stay executable).
  cat "$tmp" > "$f"
  rm -f "$tmp"
}

missing=0
for f in $(candidates); do
  [ -f "$f" ] || continue
  kind=$(syntax "$f")
  [ -n "$kind" ] || continue
  case $mode in
    --list) echo "$f" ;;
    --check) has_line "$f" || { echo "no SPDX line: $f"; missing=$((missing + 1)); } ;;
    --apply) has_line "$f" || { apply "$f" "$kind"; echo "added: $f"; } ;;
  esac
done

if [ "$mode" = --check ] && [ $missing -gt 0 ]; then
  echo "$missing file(s) without '$LINE'; run tools/spdx.sh --apply" >&2
  exit 1
fi
exit 0
