# SPDX-License-Identifier: Apache-2.0
# Windows (mingw-w64): what is built and checked there today.  make check
# runs the programs under Wine (tests/wine-run.sh is LOG_COMPILER); the
# conformance row win-apr-spawn lists what runs and, for every program of
# the Linux rows that does not run yet, why (tests/matrix-row.sh).
bin_PROGRAMS += tools/pebble-info
tools_pebble_info_SOURCES = tools/pebble-info.c
tools_pebble_info_LDADD = libpebble.la

noinst_PROGRAMS += examples/thread_task examples/thread_pool \
	examples/process_callback examples/object_callbacks examples/process_pool
examples_thread_task_LDADD = libpebble.la
examples_process_callback_LDADD = libpebble.la
examples_object_callbacks_LDADD = libpebble.la
examples_process_pool_LDADD = libpebble.la
examples_thread_pool_LDADD = libpebble.la $(APP_PTHREAD_LIBS)

# The thread side of the contract, without CUnit (no mingw build of it).
check_PROGRAMS += tests/win_threads tests/core_header_c99
tests_win_threads_SOURCES = tests/win_threads.c
tests_win_threads_LDADD = libpebble.la
# The process side (spawn, Job objects, crashes by exception name).
check_PROGRAMS += tests/win_processes
tests_win_processes_SOURCES = tests/win_processes.c
tests_win_processes_LDADD = libpebble.la
tests_core_header_c99_SOURCES = tests/core_header_c99.c
tests_core_header_c99_CFLAGS = -std=c99 -Wall -Wextra -Wpedantic -Werror
tests_core_header_c99_LDADD = libpebble.la

# win_threads on its own: the default backend, built in; in the row: the
# module named by PEBBLE_BACKEND.
TESTS += tests/win_threads tests/win_processes tests/core_header_c99 tests/matrix/win-apr-spawn.sh
clean-local: clean-wine
clean-wine:
	-rm -rf tests/matrix/win-apr-spawn tests/wineprefix tests/wineprefix.lock
