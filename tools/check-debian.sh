#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The Debian packages, as a packager and then a user meet them:
#   1. a fresh clone of the committed checkout is built with
#      dpkg-buildpackage -us -uc -b (the package build's quick tests);
#   2. lintian checks the packages (errors fail, warnings are listed);
#   3. the four packages are installed into a brand-new Debian root, where
#      a user program is built with `pkg-config --cflags --libs pebble`
#      and run on both backends, pebble-info lists both modules, and
#      `man pebble_run` and `man pebble_future_get` (a link page) work, and
#      the HTML reference is there, when the packages carry them.
# Step 3 uses /work/shared/tools/fresh-machine (or $FRESH_MACHINE) when it
# exists; otherwise the packages are unpacked with dpkg -x into a scratch
# root and the program is built against that root only.
# Needs: dpkg-dev, debhelper, the build dependencies of debian/control,
# lintian (optional), root for the fresh machine.  Keep: KEEP=1 leaves the
# scratch directory (and says where).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd -P)
fresh=${FRESH_MACHINE:-/work/shared/tools/fresh-machine}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/pebble-debian.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept: $scratch"; else rm -rf "$scratch"; fi; }
trap cleanup EXIT
step() { echo "== check-debian: $* ($(date -u +%H:%M:%S))"; }

step "build the packages from a fresh clone"
git clone -q "$root" "$scratch/pebble"
(cd "$scratch/pebble" &&
 DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
   dpkg-buildpackage -us -uc -b > "$scratch/build.log" 2>&1) ||
  { tail -60 "$scratch/build.log"; echo "check-debian: dpkg-buildpackage failed"; exit 1; }
ls "$scratch"/*.deb
for pkg in libpebble0 libpebble-dev libpebble-apr pebble-tools; do
  ls "$scratch/${pkg}_"*.deb > /dev/null || { echo "check-debian: no $pkg package"; exit 1; }
done

if command -v lintian > /dev/null; then
  step "lintian"
  lintian --fail-on error --tag-display-limit 0 "$scratch"/*.changes | tee "$scratch/lintian.txt" ||
    { echo "check-debian: lintian found errors"; exit 1; }
  echo "lintian: $(grep -c '^E:' "$scratch/lintian.txt" || true) errors," \
       "$(grep -c '^W:' "$scratch/lintian.txt" || true) warnings"
else
  echo "check-debian: lintian not installed, not run"
fi

# What the user has: the packages and two example programs.
mkdir "$scratch/user"
cp "$scratch"/libpebble0_*.deb "$scratch"/libpebble-dev_*.deb \
   "$scratch"/libpebble-apr_*.deb "$scratch"/pebble-tools_*.deb "$scratch/user/"
cp "$root/examples/thread_task.c" "$root/examples/process_callback.c" "$scratch/user/"
cat > "$scratch/user/use-installed.sh" <<'EOF'
#!/bin/sh
# Runs on the machine where the packages are installed, as a user would.
set -eux
cc -o thread_task thread_task.c $(pkg-config --cflags --libs pebble)
cc -o process_callback process_callback.c $(pkg-config --cflags --libs pebble)
test "$(./thread_task)" = 3
test "$(PEBBLE_BACKEND=apr ./thread_task)" = 3
test "$(PEBBLE_BACKEND=apr ./process_callback | sort)" = \
     "$(printf 'Task %s returned %s\n' 0 0 1 1 2 2 3 3 4 4)"
pebble-info | tee info.txt
grep -q 'pebble/pebble_posix.so' info.txt
grep -q 'pebble/pebble_apr.so' info.txt
test "$(pkg-config --modversion pebble)" = "$(dpkg-query -W -f='${Version}' libpebble-dev)"
if dpkg -L libpebble-dev | grep -q '/man3/pebble_run\.3'; then
  man -P cat pebble_run | head -5
  # every exported function has a link to the page of its area
  man -P cat pebble_future_get | grep -q 'pebble_future_get('
fi
if dpkg -L libpebble-dev | grep -q '/reference/index\.html$'; then
  grep -q pebble_run /usr/share/doc/libpebble-dev/reference/group__pebble__runs.html
fi
echo "installed packages: user program built with pkg-config and run: ok"
EOF

if [ -x "$fresh" ] && [ "$(id -u)" = 0 ]; then
  step "install into a fresh Debian root and use them"
  # fresh-machine clones the git checkout it is called from: the user's
  # files travel in a throwaway repository of their own.
  (cd "$scratch/user" && git init -q && git add . &&
   git -c user.name=check -c user.email=check@localhost commit -qm user)
  (cd "$scratch/user" && "$fresh" '
     export DEBIAN_FRONTEND=noninteractive
     apt-get update -qq > /dev/null &&
     apt-get install -y -qq --no-install-recommends gcc libc6-dev pkgconf man-db \
       ./libpebble0_*.deb ./libpebble-dev_*.deb ./libpebble-apr_*.deb \
       ./pebble-tools_*.deb > /dev/null &&
     cd /tmp && cp /root/project/*.c /root/project/use-installed.sh . &&
     sh use-installed.sh')
else
  step "unpack into a scratch root (no fresh machine here) and use them"
  sysroot="$scratch/root"
  for deb in "$scratch/user"/*.deb; do dpkg -x "$deb" "$sysroot"; done
  libdir=$(dirname "$(find "$sysroot/usr/lib" -name pebble.pc)")/..
  libdir=$(cd "$libdir" && pwd)
  cd "$scratch/user"
  PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$sysroot" \
    PKG_CONFIG_LIBDIR=/nonexistent sh -c '
      cc -o thread_task thread_task.c $(pkg-config --cflags --libs pebble)'
  export LD_LIBRARY_PATH="$libdir" PEBBLE_BACKEND_PATH="$libdir/pebble"
  test "$(./thread_task)" = 3
  test "$(PEBBLE_BACKEND=apr ./thread_task)" = 3
  "$sysroot/usr/bin/pebble-info"
  echo "unpacked packages: user program built with pkg-config and run: ok"
fi
step "done"
