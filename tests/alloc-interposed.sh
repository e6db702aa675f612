#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/core_alloc fails the library's allocations one by one by replacing
# the allocator's entry points.  An entry point the library calls that the
# test does not replace is never failed, and the walk still passes: it
# just covers less (posix_memalign went unreplaced that way once).  So
# every entry point of the malloc family (and mmap, munmap) that the
# library or a backend module imports must be one core_alloc defines.
# The rest of the C library's allocating calls (strdup, asprintf, ...) go
# through malloc.
: "${top_builddir:=.}"
family='malloc calloc realloc reallocarray free posix_memalign aligned_alloc
memalign valloc pvalloc mmap mmap64 munmap'

if ! command -v nm >/dev/null 2>&1; then
  echo "SKIP: no nm to read the libraries' imports"
  exit 77
fi
test_prog="$top_builddir/tests/.libs/core_alloc"
[ -f "$test_prog" ] || test_prog="$top_builddir/tests/core_alloc"
set --
for f in "$top_builddir"/.libs/libpebble.so \
  "$top_builddir"/backends/*/.libs/pebble_*.so; do
  [ -f "$f" ] && set -- "$@" "$f"
done
if [ $# -eq 0 ] || ! nm -D --defined-only "$test_prog" >/dev/null 2>&1; then
  echo "SKIP: no ELF shared library and test program to read (nm -D)"
  exit 77
fi

# Under ThreadSanitizer core_alloc leaves the allocator alone (its runtime
# cannot start with malloc replaced) and says it skips; so does this.
if nm -D --undefined-only "$test_prog" | grep -q '__tsan_'; then
  echo "SKIP: a ThreadSanitizer build: core_alloc replaces nothing here"
  exit 77
fi
defined=$(nm -D --defined-only "$test_prog" | awk '{print $NF}')
bad=0
checked=0
for lib in "$@"; do
  imports=$(nm -D --undefined-only "$lib" | awk '{print $NF}' | sed 's/@.*//')
  for name in $family; do
    echo "$imports" | grep -qx "$name" || continue
    checked=$((checked + 1))
    if echo "$defined" | grep -qx "$name"; then
      echo "ok: $(basename "$lib") imports $name; core_alloc replaces it"
    else
      echo "FAILED: $(basename "$lib") imports $name, which core_alloc does" \
        "not replace: the walk never fails or tracks what goes through it"
      bad=1
    fi
  done
done
# libpebble allocates with malloc at least: reading nothing means the
# imports were not read, not that all is well.
if [ "$checked" -eq 0 ]; then
  echo "FAILED: no allocator import found in: $*"
  bad=1
fi
exit "$bad"
