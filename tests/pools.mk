# SPDX-License-Identifier: Apache-2.0
# Pool test programs

# Allocation failure walked through whole cycles (conformance matrix): the
# program replaces malloc, calloc, realloc, posix_memalign and free, and
# mmap and munmap for the library's own mappings.
check_PROGRAMS += tests/core_alloc
tests_core_alloc_SOURCES = tests/core_alloc.c tests/core_util.h
tests_core_alloc_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_alloc_LDADD = $(core_test_ldadd) $(DL_LIBS)
# Every allocator entry point the library imports is one core_alloc
# replaces (else its allocations would never be failed).
TESTS += tests/alloc-interposed.sh
EXTRA_DIST += tests/alloc-interposed.sh
tests/alloc-interposed.log: tests/core_alloc$(EXEEXT)
