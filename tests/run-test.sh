#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs one test under a time limit, with the sanitizer options that keep the
# crash tests meaningful: a child's SIGSEGV must stay a SIGSEGV under
# AddressSanitizer and ThreadSanitizer, and ThreadSanitizer must let forked
# children run.
# intercept_tls_get_addr=0: up to GCC 13 the sanitizer runtime can mistake a
# loaded module's thread-local block for an old-glibc one and read a bogus
# range from it, and LeakSanitizer's tracer then crashes at exit ("Tracer
# caught signal 11") after every test passed.  Backends loaded as modules
# have thread-local variables; the leak check still covers the heap.
ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:handle_abort=0:allow_user_segv_handler=1:intercept_tls_get_addr=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
TSAN_OPTIONS="die_after_fork=0:handle_segv=0:handle_sigbus=0:handle_abort=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
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
limit=${PEBBLE_TEST_TIMEOUT:-900}
case "$1" in
  *.sh) timeout "$limit" "${SHELL:-/bin/sh}" "$@" ;;
  *) timeout "$limit" "$@" ;;
esac
status=$?
# The harness keeps the output in the test's .log file: a program that did
# not finish says so on the terminal too (descriptor 9, see Makefile.am),
# as run_suite does for each failed assertion.
if { true >&9; } 2>/dev/null; then
  where=
  if [ -n "${PEBBLE_BACKEND:-}${PEBBLE_START_METHOD:-}" ]; then
    where=" (${PEBBLE_BACKEND:-posix}, ${PEBBLE_START_METHOD:-default start})"
  fi
  if [ "$status" -eq 124 ]; then
    echo "$1$where: stopped at its time limit of $limit s" >&9
  elif [ "$status" -gt 128 ] && [ "$status" -ne 255 ]; then
    echo "$1$where: killed by signal $((status - 128))" >&9
  fi
fi
exit "$status"
