#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A release tarball builds and passes its tests with no autotools at all:
#   tools/check-tarball.sh pebble-X.Y.Z.tar.gz [TESTS...]
# unpacks it in a scratch directory and runs ./configure && make && make
# check there with autoconf, automake, aclocal, autoheader, autoreconf,
# autom4te and libtoolize replaced by commands that fail (so a tarball
# whose make would re-run one of them fails here). Naming TESTS runs only
# those (e.g. tests/core_api tools/check-symbols.sh) instead of them all.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 pebble-X.Y.Z.tar.gz [TESTS...]" >&2; exit 2; }
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
scratch=$(mktemp -d "${TMPDIR:-/tmp}/pebble-tarball.XXXXXX")
trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT

mkdir "$scratch/no-autotools"
for tool in autoconf automake aclocal autoheader autoreconf autom4te libtoolize \
            automake-1.16 aclocal-1.16; do
  printf '#!/bin/sh\necho "%s: not installed (release tarball check)" >&2\nexit 127\n' \
    "$tool" > "$scratch/no-autotools/$tool"
  chmod +x "$scratch/no-autotools/$tool"
done
PATH="$scratch/no-autotools:$PATH"
export PATH

cd "$scratch"
tar -xzf "$tarball"
cd "$(basename "$tarball" .tar.gz)"
./configure > configure.out
make -j2 > make.out 2>&1 || { tail -30 make.out; exit 1; }
if [ $# -gt 0 ]; then
  make check -j2 TESTS="$*"
else
  make check -j2
fi
echo "$(basename "$tarball"): ./configure && make && make check: ok, without autotools"
