#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds CUnit for mingw-w64 (x86_64) from Debian's own source package and
# installs it under a cache directory keyed by the CUnit version, beside
# APR's (tools/build-apr-mingw.sh), so that a later run builds nothing.
# Prints the install prefix (the last line of its output); adding
# <prefix>/lib/pkgconfig to PKG_CONFIG_LIBDIR lets Pebble's configure find
# it for a --host=x86_64-w64-mingw32 build, whose make check then runs the
# CUnit suites under Wine.
#
#   tools/build-cunit-mingw.sh            # prefix under $PEBBLE_CI_CACHE
#   PEBBLE_CI_CACHE=/somewhere tools/build-cunit-mingw.sh
#
# Needs: mingw-w64, dpkg-dev (apt-get source) and a deb-src line, which it
# adds (as root) when missing.  Only what the tests link is built: the
# framework and the Basic, Automated and Console interfaces, as a static
# library (no DLL to find at run time).  CUnit's own autotools build is
# not used: it predates mingw-w64 and would need autoreconf, which takes
# longer than compiling the eight sources (a few seconds).
set -euo pipefail

. "$(dirname "$0")/mingw-deb-source.sh"
deb_source_cache cunit libcunit1
if [[ -f $prefix/.complete ]]; then
  echo "build-cunit-mingw: CUnit $version for $host already built (cached)" >&2
  echo "$prefix"
  exit 0
fi
deb_source_need_tools cunit "mingw-w64 dpkg-dev" $host-gcc $host-ar dpkg-source
deb_source_enable cunit

work=$(mktemp -d "${TMPDIR:-/tmp}/cunit-mingw.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
start=$(date +%s)
# The exact version apt would install, not whatever is newest in deb-src.
apt-get source -qq "cunit=$version" >/dev/null 2>&1 || apt-get source -qq cunit >/dev/null
src=$(find . -maxdepth 1 -type d -name 'cunit-*' | head -1)
[[ -n $src ]] || { echo "build-cunit-mingw: apt-get source cunit gave no directory" >&2; exit 1; }
src=$work/${src#./}

# CUnit.h is made by configure from CUnit.h.in (the copy in the tarball
# is stale): the version numbers from configure.in, substituted here.
major=$(sed -n 's/^VERSION_MAJOR=//p' "$src/configure.in")
minor=$(sed -n 's/^VERSION_MINOR=//p' "$src/configure.in")
release=$(sed -n 's/^RELEASE=//p' "$src/configure.in")
[[ -n $major && -n $minor && -n $release ]] ||
  { echo "build-cunit-mingw: no version in CUnit's configure.in" >&2; exit 1; }
sed "s/@VERSION@/$major.$minor/g; s/@RELEASE@/$release/g" \
  "$src/CUnit/Headers/CUnit.h.in" > "$src/CUnit/Headers/CUnit.h"

mkdir -p "$work/obj"
objs=()
for c in "$src"/CUnit/Sources/Framework/*.c "$src"/CUnit/Sources/Basic/Basic.c \
         "$src"/CUnit/Sources/Automated/Automated.c "$src"/CUnit/Sources/Console/Console.c; do
  o="$work/obj/$(basename "$c" .c).o"
  # -w: CUnit's own warnings are not ours to fix.
  $host-gcc -O2 -w -DRELEASE="$release" -I"$src/CUnit/Headers" -c "$c" -o "$o"
  objs+=("$o")
done
built=$(date +%s)

rm -rf "$prefix.tmp"
mkdir -p "$prefix.tmp/lib/pkgconfig" "$prefix.tmp/include/CUnit"
$host-ar rcs "$prefix.tmp/lib/libcunit.a" "${objs[@]}"
for h in CUnit.h CUError.h TestDB.h TestRun.h Util.h MyMem.h Basic.h Automated.h Console.h CUnit_intl.h; do
  cp "$src/CUnit/Headers/$h" "$prefix.tmp/include/CUnit/"
done
cat > "$prefix.tmp/lib/pkgconfig/cunit.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: CUnit
Description: C Unit Testing Framework (static mingw-w64 build of Debian's cunit $version)
Version: $major.$minor-$release
Libs: -L\${libdir} -lcunit
Cflags: -isystem \${includedir}
EOF
# -isystem: CUnit's headers are not this project's to warn about (as
# /usr/include is not on Linux).
printf 'CUnit %s for %s: source and compile %ss\n' "$version" "$host" \
  $((built - start)) > "$prefix.tmp/.complete"
rm -rf "$prefix"
mv "$prefix.tmp" "$prefix"
sed -i "s|^prefix=.*|prefix=$prefix|" "$prefix/lib/pkgconfig/cunit.pc"
cat "$prefix/.complete" >&2
echo "$prefix"
