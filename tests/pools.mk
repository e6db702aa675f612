# SPDX-License-Identifier: Apache-2.0
# Pool test programs

# Allocation failure walked through whole cycles (conformance matrix): the
# program replaces malloc, calloc, realloc and free.
check_PROGRAMS += tests/core_alloc
tests_core_alloc_SOURCES = tests/core_alloc.c tests/core_util.h
tests_core_alloc_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(CUNIT_CFLAGS)
tests_core_alloc_LDADD = $(core_test_ldadd) $(DL_LIBS)
