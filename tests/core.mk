# SPDX-License-Identifier: Apache-2.0
# The core's test programs (public API only).
# The conformance programs (core_thread, core_future, core_process,
# core_pool, core_ahead, core_resolve, core_map, core_shared_result,
# core_spawn, core_traps, core_observe, core_faults, core_direct,
# core_alloc, cap_kill_group) run
# through the matrix at the end of this file, once per backend and start
# method; the others
# once, as they are about choosing backends, not about one backend.
core_tests = tests/core_process tests/core_thread tests/core_future \
	tests/core_backend tests/core_api tests/core_reuse
check_PROGRAMS += $(core_tests) tests/core_header_c99
TESTS += tests/core_backend tests/core_api tests/core_reuse \
	tests/core_header_c99
if HAVE_CXX
# Only where configure found a working C++ compiler (its summary says).
check_PROGRAMS += tests/core_header_cxx
TESTS += tests/core_header_cxx
endif
core_test_ldadd = libpebble.la $(CUNIT_LIBS) $(PTHREAD_LIBS)
tests_core_process_SOURCES = tests/core_process.c tests/core_util.h
tests_core_process_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_process_LDADD = $(core_test_ldadd)
tests_core_thread_SOURCES = tests/core_thread.c tests/core_util.h
tests_core_thread_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_thread_LDADD = $(core_test_ldadd)
tests_core_future_SOURCES = tests/core_future.c tests/core_util.h
tests_core_future_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_future_LDADD = $(core_test_ldadd)
tests_core_backend_SOURCES = tests/core_backend.c tests/core_util.h
tests_core_backend_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_backend_LDADD = $(core_test_ldadd)
tests_core_reuse_SOURCES = tests/core_reuse.c tests/core_util.h
tests_core_reuse_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_reuse_LDADD = $(core_test_ldadd)
tests_core_api_SOURCES = tests/core_api.c tests/core_util.h
tests_core_api_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_api_LDADD = $(core_test_ldadd)
# The header compiles cleanly as C++ (and the C programs above as C99+).
tests_core_header_cxx_SOURCES = tests/core_header_cxx.cc
tests_core_header_cxx_CXXFLAGS = -Wall -Wextra -Wpedantic -Werror
tests_core_header_cxx_LDADD = libpebble.la
tests_core_header_c99_SOURCES = tests/core_header_c99.c
tests_core_header_c99_CFLAGS = -std=c99 -Wall -Wextra -Wpedantic -Werror
tests_core_header_c99_LDADD = libpebble.la

# A module built for another ABI: the loader must refuse it.
check_LTLIBRARIES += tests/modules/pebble_badabi.la
tests_modules_pebble_badabi_la_SOURCES = tests/modules/badabi.c
tests_modules_pebble_badabi_la_LDFLAGS = -module -avoid-version \
	-no-undefined -rpath /nowhere

# Tests of one capability each: 77 (skipped) under a backend without it.
cap_tests = tests/cap_kill_group
check_PROGRAMS += $(cap_tests)
tests_cap_kill_group_SOURCES = tests/cap_kill_group.c tests/core_util.h
tests_cap_kill_group_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_cap_kill_group_LDADD = $(core_test_ldadd)

core_pool_tests = tests/core_pool tests/core_map
check_PROGRAMS += $(core_pool_tests)
tests_core_pool_SOURCES = tests/core_pool.c tests/core_util.h
tests_core_pool_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_pool_LDADD = $(core_test_ldadd)
tests_core_map_SOURCES = tests/core_map.c tests/core_util.h
tests_core_map_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_map_LDADD = $(core_test_ldadd)

check_PROGRAMS += tests/test_shared_result
TESTS += tests/test_shared_result
tests_test_shared_result_SOURCES = tests/test_shared_result.c
tests_test_shared_result_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_test_shared_result_LDADD = $(core_test_ldadd)
check_PROGRAMS += tests/core_shared_result
tests_core_shared_result_SOURCES = tests/core_shared_result.c tests/core_util.h
tests_core_shared_result_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_shared_result_LDADD = $(core_test_ldadd)
check_PROGRAMS += tests/core_ahead
tests_core_ahead_SOURCES = tests/core_ahead.c tests/core_util.h
tests_core_ahead_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_ahead_LDADD = $(core_test_ldadd)
check_PROGRAMS += tests/core_traps
tests_core_traps_SOURCES = tests/core_traps.c tests/core_util.h
tests_core_traps_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_traps_LDADD = $(core_test_ldadd)
check_PROGRAMS += tests/core_resolve
tests_core_resolve_SOURCES = tests/core_resolve.c tests/core_util.h
tests_core_resolve_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_resolve_LDADD = $(core_test_ldadd)
check_PROGRAMS += tests/core_spawn
tests_core_spawn_SOURCES = tests/core_spawn.c tests/core_util.h
tests_core_spawn_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_spawn_LDADD = $(core_test_ldadd)
# Watching tasks and pools: pids, cancel's answer, state, statistics, and
# timeouts counted from the task's start.
check_PROGRAMS += tests/core_observe
tests_core_observe_SOURCES = tests/core_observe.c tests/core_util.h
tests_core_observe_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_observe_LDADD = $(core_test_ldadd)
# Faults a worker or the system can cause (forged and cut-short messages,
# sizes and times too large to hold or count).
check_PROGRAMS += tests/core_faults
tests_core_faults_SOURCES = tests/core_faults.c tests/core_util.h
tests_core_faults_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_faults_LDADD = $(core_test_ldadd)
# A thread that waits for a running process task reads its worker itself:
# kills, cancels, timeouts and waits that run out while it does.
check_PROGRAMS += tests/core_direct
tests_core_direct_SOURCES = tests/core_direct.c tests/core_util.h
tests_core_direct_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_direct_LDADD = $(core_test_ldadd)

# The forkserver start method itself (POSIX backend), run once: the
# shared suites run under it in the matrix row posix-forkserver.
check_PROGRAMS += tests/core_forkserver
TESTS += tests/core_forkserver
tests_core_forkserver_SOURCES = tests/core_forkserver.c tests/core_util.h
tests_core_forkserver_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_forkserver_LDADD = $(core_test_ldadd)

# ---- the conformance matrix ----
# Every row runs the conformance programs under one backend and start
# method (tests/matrix-row.sh); the table test then prints all rows, on
# the terminal too (descriptor 9, see AM_TESTS_FD_REDIRECT).
matrix_rows = tests/matrix/posix-fork.sh tests/matrix/posix-spawn.sh \
	tests/matrix/posix-forkserver.sh
if HAVE_APR
matrix_rows += tests/matrix/apr-fork.sh tests/matrix/apr-spawn.sh
endif
# The out-of-tree example backend (examples/backend), built here against
# the tree's header: the thread programs under a backend that runs no
# processes.  .ci/run builds it again against an installed Pebble only.
check_LTLIBRARIES += examples/backend/pebble_example.la
examples_backend_pebble_example_la_SOURCES = examples/backend/example_backend.c
examples_backend_pebble_example_la_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS)
examples_backend_pebble_example_la_LDFLAGS = -module -avoid-version \
	-no-undefined -rpath /nowhere $(PEBBLE_DEFS_LDFLAGS)
examples_backend_pebble_example_la_LIBADD = $(PTHREAD_LIBS)
matrix_rows += tests/matrix/example-threads.sh
TESTS += $(matrix_rows) tests/matrix-table.sh
EXTRA_DIST += tests/matrix-row.sh tests/matrix-table.sh \
	tests/matrix/posix-fork.sh tests/matrix/posix-spawn.sh \
	tests/matrix/posix-forkserver.sh \
	tests/matrix/apr-fork.sh tests/matrix/apr-spawn.sh \
	tests/matrix/example-threads.sh
tests/matrix-table.log: $(matrix_rows:.sh=.log)
clean-local: clean-matrix
clean-matrix:
	-rm -rf tests/matrix/posix-fork tests/matrix/posix-spawn \
	  tests/matrix/posix-forkserver tests/matrix/apr-fork \
	  tests/matrix/apr-spawn tests/matrix/example-threads

# What is particular to the APR backend (links APR itself, to hand Pebble
# an application pool).
if HAVE_APR
check_PROGRAMS += tests/core_apr
TESTS += tests/core_apr
tests_core_apr_SOURCES = tests/core_apr.c tests/core_util.h
tests_core_apr_CPPFLAGS = $(AM_CPPFLAGS) $(APR_CFLAGS)
tests_core_apr_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_apr_LDADD = $(core_test_ldadd) $(APR_LIBS)
endif

# Workers started through a launcher (docs/cluster.md): a local one that
# needs nothing installed (tests/launcher.sh), ssh to this host
# through a throw-away sshd (tests/launcher-ssh.sh), Open MPI's mpirun
# (tests/launcher-mpi.sh), Slurm's srun on a one-node Slurm the test
# starts (tests/launcher-slurm.sh), and a network cut: ssh to a network
# namespace whose veth link is set down (tests/launcher-netcut.sh, as
# root); each skipped, with the reason, where its engine is not installed
# or cannot run.
check_PROGRAMS += tests/launch_pool
tests_launch_pool_SOURCES = tests/launch_pool.c
tests_launch_pool_LDADD = libpebble.la
# What failed reaches the terminal, not only the .log files.
check_PROGRAMS += tests/report_failures
tests_report_failures_SOURCES = tests/report_failures.c tests/core_util.h
tests_report_failures_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_report_failures_LDADD = $(core_test_ldadd)
TESTS += tests/report-failures.sh
EXTRA_DIST += tests/report-failures.sh
launcher_tests = tests/launcher.sh tests/launcher-ssh.sh \
	tests/launcher-mpi.sh tests/launcher-slurm.sh tests/launcher-netcut.sh
TESTS += $(launcher_tests)
EXTRA_DIST += $(launcher_tests) tests/sticky-launcher.sh \
	tests/launcher-common.sh
# The conformance table shows their parts and results too.
tests/matrix-table.log: $(launcher_tests:.sh=.log)
