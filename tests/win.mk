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

# The Windows-only checks (ExitThread, the queue's Event handle, idle CPU),
# in plain C: they run with or without CUnit.
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

# The core CUnit suites, with a mingw-w64 build of CUnit
# (tools/build-cunit-mingw.sh): run in the row win-apr-spawn.  Tests that
# need what Windows lacks (fork, FIFOs) or what the backend does not do
# there yet (process tasks) are skipped inside, by name and with a reason.
if HAVE_CUNIT
win_cunit_tests = \
	tests/core_thread \
	tests/core_future \
	tests/core_pool \
	tests/core_map \
	tests/core_observe \
	tests/core_resolve \
	tests/core_process \
	tests/core_ahead \
	tests/core_shared_result \
	tests/core_spawn \
	tests/core_traps \
	tests/core_faults \
	tests/cap_kill_group
check_PROGRAMS += $(win_cunit_tests)
win_cunit_headers = tests/core_util.h tests/win_posix.h
win_cunit_ldadd = libpebble.la $(CUNIT_LIBS) $(APP_PTHREAD_LIBS)
tests_core_thread_SOURCES = tests/core_thread.c $(win_cunit_headers)
tests_core_thread_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_thread_LDADD = $(win_cunit_ldadd)
tests_core_future_SOURCES = tests/core_future.c $(win_cunit_headers)
tests_core_future_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_future_LDADD = $(win_cunit_ldadd)
tests_core_pool_SOURCES = tests/core_pool.c $(win_cunit_headers)
tests_core_pool_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_pool_LDADD = $(win_cunit_ldadd)
tests_core_map_SOURCES = tests/core_map.c $(win_cunit_headers)
tests_core_map_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_map_LDADD = $(win_cunit_ldadd)
tests_core_observe_SOURCES = tests/core_observe.c $(win_cunit_headers)
tests_core_observe_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_observe_LDADD = $(win_cunit_ldadd)
tests_core_resolve_SOURCES = tests/core_resolve.c $(win_cunit_headers)
tests_core_resolve_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_resolve_LDADD = $(win_cunit_ldadd)
tests_core_process_SOURCES = tests/core_process.c $(win_cunit_headers)
tests_core_process_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_process_LDADD = $(win_cunit_ldadd)
tests_core_ahead_SOURCES = tests/core_ahead.c $(win_cunit_headers)
tests_core_ahead_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_ahead_LDADD = $(win_cunit_ldadd)
tests_core_shared_result_SOURCES = tests/core_shared_result.c $(win_cunit_headers)
tests_core_shared_result_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_shared_result_LDADD = $(win_cunit_ldadd)
tests_core_spawn_SOURCES = tests/core_spawn.c $(win_cunit_headers)
tests_core_spawn_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_spawn_LDADD = $(win_cunit_ldadd)
tests_core_traps_SOURCES = tests/core_traps.c $(win_cunit_headers)
tests_core_traps_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_traps_LDADD = $(win_cunit_ldadd)
tests_core_faults_SOURCES = tests/core_faults.c $(win_cunit_headers)
tests_core_faults_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_faults_LDADD = $(win_cunit_ldadd)
tests_cap_kill_group_SOURCES = tests/cap_kill_group.c $(win_cunit_headers)
tests_cap_kill_group_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_cap_kill_group_LDADD = $(win_cunit_ldadd)
endif
