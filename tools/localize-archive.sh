#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# localize-archive.sh LD OBJCOPY NM AR RANLIB LINK-COMMAND...
#
# Runs libtool's link command for libpebble.la, then makes the static
# archive it built export only pebble_*, as the shared library does.  In an
# archive every object's internal functions are global (one object calls
# another's), so the objects are first linked into one (ld -r), where those
# calls are resolved; the internal symbols, hidden by -fvisibility=hidden,
# are then made local (objcopy --localize-hidden), and so is any other
# global that the shared library's export list would not show.  An
# application may then define pb_error or anything else of its own.
set -e
ld=$1 objcopy=$2 nm=$3 ar=$4 ranlib=$5
shift 5
"$@"

# The archive libtool made: DIR/.libs/NAME.a for -o DIR/NAME.la.
out=
prev=
for arg in "$@"; do
  [ "x$prev" = x-o ] && out=$arg
  prev=$arg
done
case $out in
  *.la) ;;
  *) echo "localize-archive.sh: no -o NAME.la in the link command" >&2; exit 1 ;;
esac
dir=$(dirname "$out")
archive=$dir/.libs/$(basename "$out" .la).a
[ -f "$archive" ] || exit 0 # a shared-only build

work=$dir/.libs/localize.tmp
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work"' EXIT
members=$($ar t "$archive")
(cd "$work" && $ar x ../"$(basename "$archive")")
count=$(echo "$members" | wc -l)
have=$(ls "$work" | wc -l)
if [ "$count" -ne "$have" ]; then
  # Two members of one name would overwrite each other on extraction.
  echo "localize-archive.sh: $archive has members of the same name" >&2
  exit 1
fi
objects=$(echo "$members" | sed "s|^|$work/|")
# shellcheck disable=SC2086 # LD may carry options ("ld -m elf_x86_64")
$ld -r -o "$work/all.o" $objects
$objcopy --localize-hidden "$work/all.o"
$nm -g --defined-only "$work/all.o" |
  awk 'NF == 3 && $3 !~ /^pebble_[a-z]/ {print $3}' > "$work/internal.txt"
if [ -s "$work/internal.txt" ]; then
  $objcopy --localize-symbols="$work/internal.txt" "$work/all.o"
fi
base=$(basename "$out" .la)
mv "$work/all.o" "$work/$base.o"
rm -f "$archive"
$ar cr "$archive" "$work/$base.o"
$ranlib "$archive"
