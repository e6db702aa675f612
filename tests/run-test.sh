#!/bin/sh
# Runs one test under a time limit, with the sanitizer options that keep the
# crash tests meaningful: a child's SIGSEGV must stay a SIGSEGV under
# AddressSanitizer, and ThreadSanitizer must let forked children run.
ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:handle_abort=0:allow_user_segv_handler=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
TSAN_OPTIONS="die_after_fork=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS TSAN_OPTIONS UBSAN_OPTIONS
# `PEBBLE_BACKEND=apr make check`: a backend named for the whole run is
# found among this tree's modules (nothing is installed yet).  Not the
# built-in one: the rows that name posix test the built-in copy.
if [ -n "${PEBBLE_BACKEND:-}" ] && [ "$PEBBLE_BACKEND" != posix ] &&
   [ -z "${PEBBLE_BACKEND_PATH:-}" ] &&
   [ -n "${PEBBLE_TEST_BUILDDIR:-}" ] &&
   [ -d "$PEBBLE_TEST_BUILDDIR/backends/$PEBBLE_BACKEND/.libs" ]; then
  PEBBLE_BACKEND_PATH="$PEBBLE_TEST_BUILDDIR/backends/$PEBBLE_BACKEND/.libs"
  export PEBBLE_BACKEND_PATH
fi
case "$1" in
  *.sh) exec timeout "${PEBBLE_TEST_TIMEOUT:-900}" "${SHELL:-/bin/sh}" "$@" ;;
  *) exec timeout "${PEBBLE_TEST_TIMEOUT:-900}" "$@" ;;
esac
