# The core's test programs (public API only).
core_tests = tests/core_process tests/core_thread tests/core_future \
	tests/core_backend tests/core_api
check_PROGRAMS += $(core_tests) tests/core_header_cxx tests/core_header_c99
TESTS += $(core_tests) tests/core_header_cxx tests/core_header_c99
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

core_pool_tests = tests/core_pool tests/core_map
check_PROGRAMS += $(core_pool_tests)
TESTS += $(core_pool_tests)
tests_core_pool_SOURCES = tests/core_pool.c tests/core_util.h
tests_core_pool_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_pool_LDADD = $(core_test_ldadd)
tests_core_map_SOURCES = tests/core_map.c tests/core_util.h
tests_core_map_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
tests_core_map_LDADD = $(core_test_ldadd)

check_PROGRAMS += tests/core_spawn
TESTS += tests/core_spawn
tests_core_spawn_SOURCES = tests/core_spawn.c tests/core_util.h
tests_core_spawn_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_spawn_LDADD = $(core_test_ldadd)
