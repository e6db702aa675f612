#!/bin/sh
# Runs one test under a time limit, with the sanitizer options that keep the
# crash tests meaningful: a child's SIGSEGV must stay a SIGSEGV under
# AddressSanitizer, and ThreadSanitizer must let forked children run.
ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:handle_abort=0:allow_user_segv_handler=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
TSAN_OPTIONS="die_after_fork=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS TSAN_OPTIONS UBSAN_OPTIONS
case "$1" in
  *.sh) exec timeout "${PEBBLE_TEST_TIMEOUT:-900}" "${SHELL:-/bin/sh}" "$@" ;;
  *) exec timeout "${PEBBLE_TEST_TIMEOUT:-900}" "$@" ;;
esac
