# SPDX-License-Identifier: Apache-2.0
# Sourced by tools/build-apr-mingw.sh and tools/build-cunit-mingw.sh: what
# both do before they build a Debian source package for mingw-w64.
#
#   deb_source_cache NAME BINARY_PACKAGE   sets version and prefix
#   deb_source_need_tools NAME HINT TOOL... exits when a tool is missing
#   deb_source_enable SOURCE_PACKAGE        adds a deb-src line if needed
#
# The cache is ${PEBBLE_CI_CACHE:-~/.cache/pebble-ci}; the prefix's name
# carries the version, so a new Debian upload builds afresh.

host=x86_64-w64-mingw32
cache=${PEBBLE_CI_CACHE:-$HOME/.cache/pebble-ci}
sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo

# The version of the source package is the version of the binary one.
deb_source_cache() {
  local name=$1 binary=$2
  version=$(apt-cache policy "$binary" | awk '/Candidate:/ {print $2; exit}')
  [[ -n $version && $version != "(none)" ]] ||
    { echo "build-$name-mingw: apt knows no $binary" >&2; exit 1; }
  prefix="$cache/$name-mingw-${version//[^A-Za-z0-9.+-]/_}"
}

deb_source_need_tools() {
  local name=$1 hint=$2 tool
  shift 2
  for tool in "$@"; do
    command -v "$tool" >/dev/null ||
      { echo "build-$name-mingw: $tool not found (apt-get install $hint)" >&2; exit 1; }
  done
}

# apt-get source needs a deb-src line: the same archive as the deb one.
deb_source_enable() {
  [[ -n $(apt-cache showsrc "$1" 2>/dev/null) ]] && return 0
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      $sudo tee /etc/apt/sources.list.d/pebble-debian-src.sources >/dev/null
  else
    grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
      $sudo tee /etc/apt/sources.list.d/pebble-debian-src.list >/dev/null
  fi
  $sudo apt-get update -qq >/dev/null
}
