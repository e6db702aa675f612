#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds APR for mingw-w64 (x86_64) from Debian's own source package and
# installs it under a cache directory keyed by the APR version, so that a
# later run finds it there and builds nothing.  Prints the install prefix
# (the last line of its output); PKG_CONFIG_LIBDIR=<prefix>/lib/pkgconfig
# then lets Pebble's configure find it.
#
#   tools/build-apr-mingw.sh            # prefix under $PEBBLE_CI_CACHE
#   PEBBLE_CI_CACHE=/somewhere tools/build-apr-mingw.sh
#
# Needs: mingw-w64, cmake, dpkg-dev (apt-get source) and a deb-src line,
# which it adds (as root) when missing.  Only the shared library target is
# built (libapr-1: no static library, no test programs, no install rules),
# two jobs at a time; see docs/backends.md for where the time went.
set -euo pipefail

. "$(dirname "$0")/mingw-deb-source.sh"
deb_source_cache apr libapr1
if [[ -f $prefix/.complete ]]; then
  echo "build-apr-mingw: APR $version for $host already built (cached)" >&2
  echo "$prefix"
  exit 0
fi
deb_source_need_tools apr "mingw-w64 cmake dpkg-dev" $host-gcc $host-windres cmake dpkg-source
deb_source_enable apr

work=$(mktemp -d "${TMPDIR:-/tmp}/apr-mingw.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# The exact version apt would install, not whatever is newest in deb-src.
apt-get source -qq "apr=$version" >/dev/null 2>&1 || apt-get source -qq apr >/dev/null
src=$(find . -maxdepth 1 -type d -name 'apr-*' | head -1)
[[ -n $src ]] || { echo "build-apr-mingw: apt-get source apr gave no directory" >&2; exit 1; }

# The small fixes mingw needs (APR's CMake build is written for MSVC):
# - Windows header names as MSVC spells them (ShellAPI.h, Iphlpapi.h);
#   mingw's are lower case and Linux file names are case-sensitive.
mkdir -p "$work/hdr"
ln -s "/usr/$host/include/shellapi.h" "$work/hdr/ShellAPI.h"
ln -s "/usr/$host/include/iphlpapi.h" "$work/hdr/Iphlpapi.h"
# - IF_NAMESIZE, which MSVC's headers define and mingw's do not, and
#   COM_NO_WINDOWS_H, without which mingw's wtypes.h pulls in all of OLE
#   (given on the command line below).
# - The 64-bit atomics: the Windows build shares the Unix atomics header,
#   which with GCC on x86 asks for a generic 64-bit fallback that the
#   Windows source list lacks; GCC's builtins are there (command line).
# - if_nametoindex/if_indextoname are late-bound through MSVC-only types:
#   with mingw they are plain imports from iphlpapi (linked below).
sed -i 's/^#if HAVE_IF_NAMETOINDEX$/#if HAVE_IF_NAMETOINDEX \&\& defined(_MSC_VER)/; s/^#if HAVE_IF_INDEXTONAME$/#if HAVE_IF_INDEXTONAME \&\& defined(_MSC_VER)/' \
  "$src/include/arch/win32/apr_arch_misc.h"
# - The DLL's version resource does not preprocess with windres: left out.
sed -i 's/^\(ADD_LIBRARY(libapr-1 SHARED .*\) libapr.rc)$/\1)/' "$src/CMakeLists.txt"
# - apr_escape_test_char.h is written at build time by a program built
#   for the target, which cannot run here: built for this machine instead
#   (with WIN32 defined, for Windows' escape tables).
cc -DWIN32 -o "$work/gen_test_char" "$src/tools/gen_test_char.c"
sed -i "s|COMMAND \$<TARGET_FILE:gen_test_char>|COMMAND $work/gen_test_char|" "$src/CMakeLists.txt"
for check in "COMMAND $work/gen_test_char" "ADD_LIBRARY(libapr-1 SHARED \${APR_SOURCES} \${APR_PUBLIC_HEADERS_GENERATED})"; do
  grep -qF "$check" "$src/CMakeLists.txt" ||
    { echo "build-apr-mingw: a fix no longer applies to this APR ($check)" >&2; exit 1; }
done

mkdir -p "$work/build"
start=$(date +%s)
cmake -Wno-deprecated -S "$src" -B "$work/build" -G "Unix Makefiles" \
  -DCMAKE_SYSTEM_NAME=Windows \
  -DCMAKE_C_COMPILER=$host-gcc -DCMAKE_RC_COMPILER=$host-windres \
  -DCMAKE_FIND_ROOT_PATH=/usr/$host \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="-I$work/hdr -DIF_NAMESIZE=256 -DCOM_NO_WINDOWS_H -DHAVE_ATOMIC_BUILTINS=1 -DHAVE_ATOMIC_BUILTINS64=1 -w" \
  -DCMAKE_C_STANDARD_LIBRARIES="-lkernel32 -ladvapi32 -lshell32 -lole32 -luuid -liphlpapi" \
  -DAPR_BUILD_TESTAPR=OFF -DINSTALL_PDB=OFF >/dev/null
configured=$(date +%s)
# Only the DLL: the static library and the test programs would double
# the compile (every source twice) for nothing Pebble uses.
make -C "$work/build" -j2 libapr-1 >/dev/null
built=$(date +%s)

rm -rf "$prefix.tmp"
mkdir -p "$prefix.tmp/bin" "$prefix.tmp/lib/pkgconfig" "$prefix.tmp/include/apr-1"
cp "$work/build"/*.dll "$prefix.tmp/bin/"
cp "$work/build"/*.dll.a "$prefix.tmp/lib/"
cp "$src"/include/*.h "$prefix.tmp/include/apr-1/"
cp "$work/build"/apr.h "$prefix.tmp/include/apr-1/"
implib=$(basename "$(ls "$prefix.tmp/lib/"*.dll.a | head -1)" .dll.a)
cat > "$prefix.tmp/lib/pkgconfig/apr-1.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include/apr-1

Name: APR
Description: The Apache Portable Runtime library (mingw-w64 build of Debian's apr $version)
Version: ${version%%-*}
Libs: -L\${libdir} -l${implib#lib}
Cflags: -I\${includedir}
EOF
# Made by CMake from apr.hw for Windows; the generic apr.h is not it.
[[ -f $prefix.tmp/include/apr-1/apr.h ]] || { echo "build-apr-mingw: no apr.h was generated" >&2; exit 1; }
printf 'APR %s for %s: cmake %ss, compile %ss\n' "$version" "$host" \
  $((configured - start)) $((built - configured)) > "$prefix.tmp/.complete"
rm -rf "$prefix"
mv "$prefix.tmp" "$prefix"
sed -i "s|^prefix=.*|prefix=$prefix|" "$prefix/lib/pkgconfig/apr-1.pc"
cat "$prefix/.complete" >&2
echo "$prefix"
