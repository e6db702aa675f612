#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs one Windows test program under Wine, under a time limit: make
# check's LOG_COMPILER in a mingw-w64 build (see tests/win.mk).
#
# The Wine prefix lives in the build tree (made once, under a lock, since
# make check -j2 starts two programs at once); WINEDEBUG=-all keeps Wine's
# own messages out of the logs.  The DLLs a program needs are found
# through WINEPATH: this tree's libpebble, APR's, and the compiler's
# runtime (PEBBLE_WINE_DLL_PATH, from configure).  libtool's wrapper is
# skipped: the program in .libs/ is run directly.
: "${PEBBLE_TEST_BUILDDIR:=$(pwd)}"
WINEPREFIX=${PEBBLE_WINEPREFIX:-$PEBBLE_TEST_BUILDDIR/tests/wineprefix}
WINEDEBUG=${WINEDEBUG:--all}
export WINEPREFIX WINEDEBUG
wine=${WINE:-wine}

prog=$1
shift
case $prog in *.exe) ;; *) prog=$prog.exe ;; esac
real="$(dirname "$prog")/.libs/$(basename "$prog")"
[ -f "$real" ] && prog=$real
if [ ! -f "$prog" ]; then
  echo "wine-run.sh: no program $prog" >&2
  exit 99
fi

# A Unix directory as Wine sees it: drive Z: is the root.
winpath() { printf 'Z:%s' "$1" | tr / '\\'; }
dirs="$PEBBLE_TEST_BUILDDIR/.libs:$PEBBLE_TEST_BUILDDIR/backends/apr/.libs${PEBBLE_WINE_DLL_PATH:+:$PEBBLE_WINE_DLL_PATH}"
WINEPATH=
old_ifs=$IFS
IFS=:
for d in $dirs; do
  WINEPATH="$WINEPATH${WINEPATH:+;}$(winpath "$d")"
done
IFS=$old_ifs
export WINEPATH

# The prefix: made by the first program, the others wait for it.
if [ ! -f "$WINEPREFIX/.pebble-ready" ]; then
  mkdir -p "$(dirname "$WINEPREFIX")"
  (
    flock 8
    if [ ! -f "$WINEPREFIX/.pebble-ready" ]; then
      "${wine}boot" --init >/dev/null 2>&1 || wineboot --init >/dev/null 2>&1
      touch "$WINEPREFIX/.pebble-ready"
    fi
  ) 8>"$WINEPREFIX.lock"
fi

exec timeout "${PEBBLE_TEST_TIMEOUT:-900}" "$wine" "$prog" "$@"
