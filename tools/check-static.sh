#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A static libpebble exports only pebble_* (as the shared one does), an
# application linked with it may use the library's internal names for its
# own, runs thread and process tasks, and loads backend modules; each
# module exports exactly its entry point and needs nothing from libpebble.
b="${top_builddir:-.}"
archive="$b/.libs/libpebble.a"
app="$b/tests/static_app"
unset PEBBLE_BACKEND PEBBLE_BACKEND_PATH PEBBLE_START_METHOD
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# Every module: one exported symbol, and no pebble_* left for the
# application to supply (a static application exports none).
for mod in "$b"/backends/*/.libs/pebble_*.so; do
  [ -f "$mod" ] || continue
  name=$(basename "$mod" .so)
  entry="pebble_backend_${name#pebble_}_get"
  exported=$(nm -D --defined-only "$mod" | awk 'NF == 3 {print $3}')
  [ "$exported" = "$entry" ] ||
    fail "$mod exports $(echo $exported) instead of $entry alone"
  needs=$(nm -D --undefined-only "$mod" | awk '$NF ~ /^pebble_/ {print $NF}')
  [ -z "$needs" ] || fail "$mod needs libpebble's $(echo $needs)"
  echo "$mod: exports $entry only"
done

if [ ! -f "$archive" ]; then
  echo "no static library at $archive (--disable-static): the rest skipped"
  [ $failed -eq 0 ] && exit 77
  exit 1
fi
internal=$(nm -g --defined-only "$archive" | awk 'NF == 3 && $3 !~ /^pebble_[a-z]/ {print $3}')
if [ -n "$internal" ]; then
  fail "libpebble.a exports $(echo "$internal" | wc -l) symbols that are not pebble_*:"
  echo "$internal" | head -20
else
  echo "libpebble.a: $(nm -g --defined-only "$archive" | awk 'NF == 3' | wc -l) symbols, all pebble_*"
fi

if readelf -d "$app" 2>/dev/null | grep NEEDED | grep -q libpebble; then
  fail "$app is linked with the shared libpebble, not the archive"
fi
# The application's own pb_error and pbp_fd_lock linked: now it runs.
run() { # expected backend, environment...
  want=$1
  shift
  out=$(env "$@" "$app" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/  /'
  [ $rc -eq 0 ] && echo "$out" | grep -qx "backend: $want" &&
    echo "$out" | grep -qx "thread task: 2" &&
    echo "$out" | grep -qx "process task: 3" ||
    fail "the static application on $want ($*)"
}
run posix PEBBLE_BACKEND=posix
# Modules, as loaded into it (the posix module wins over the built-in when
# PEBBLE_BACKEND_PATH names its directory).  A static-only build has none:
# libtool builds no shared object then.
for backend in posix apr; do
  if [ -f "$b/backends/$backend/.libs/pebble_$backend.so" ]; then
    run $backend PEBBLE_BACKEND=$backend PEBBLE_BACKEND_PATH="$b/backends/$backend/.libs"
  elif [ "$backend" = posix ] || [ "$PEBBLE_HAVE_APR" = yes ]; then
    echo "no pebble_$backend.so (a static-only build builds no modules)"
  fi
done
[ $failed -eq 0 ] && echo "static library and modules: ok"
exit $failed
