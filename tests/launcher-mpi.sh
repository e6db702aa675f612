#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A process pool whose workers are started through Open MPI's mpirun on
# this host: each worker is one `mpirun -n 1` (mpirun only launches and
# forwards stdio, signals and the exit; MPI's messaging is not used, see
# docs/cluster.md).  tests/launch_pool.c says what is checked.  Skipped
# (77, with the reason) where mpirun is not installed (Debian: apt-get
# install openmpi-bin) or cannot start a program here.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/launch_pool"
if ! command -v mpirun >/dev/null 2>&1; then
  echo "SKIP: mpirun is not installed (openmpi-bin)"
  exit 77
fi
# Open MPI refuses to run as root unless told twice.
if [ "$(id -u)" = 0 ]; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-mpi.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
if ! out=$(timeout 120 mpirun -n 1 --oversubscribe true 2>&1); then
  echo "SKIP: mpirun cannot start a program here:"
  printf '%s\n' "$out" | sed 's/^/  mpirun: /' | tail -5
  exit 77
fi
libs=$(cd "$top_builddir" && pwd)/.libs
# PEBBLE_TEST_MPI_RUN names this run's directory on mpirun's command line,
# so that the census below finds this test's launchers and no one else's.
launcher="mpirun -n 1 --quiet --oversubscribe -x LD_LIBRARY_PATH=$libs -x PEBBLE_TEST_MPI_RUN=$dir"

# orphan_check: the application killed while a remote task runs.
. "$top_srcdir/tests/launcher-common.sh"
# No mpirun of this test is left (a killed application's launchers end
# when their standard input closes).  Found through /proc, so that the
# census works where procps is not installed; the bracket keeps grep from
# finding its own command line.
launchers() {
  grep -l -a "PEBBLE_TEST_MPI_RU[N]=$dir" /proc/[0-9]*/cmdline 2>/dev/null
}
census() {
  waited=0
  while [ -n "$(launchers)" ] && [ $waited -lt 60 ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
  if [ -n "$(launchers)" ]; then
    echo "FAIL: $1: launchers still running:"
    for f in $(launchers); do tr '\0' ' ' < "$f"; echo; done
    echo "part census/$1: FAIL (mpirun left running)"
    return 1
  fi
  echo "$1: no mpirun left"
  echo "part census/$1: pass (no mpirun left)"
}
status=0
PEBBLE_START_METHOD=spawn
export PEBBLE_START_METHOD
echo "launcher: $launcher"
# The program's standard error (mpirun's own messages among it) is kept
# out of the log unless the program fails.
PEBBLE_LAUNCHER_HEARTBEAT=2 PEBBLE_LAUNCHER=$launcher "$prog" "$dir" work \
  2> "$dir/work.err" || { status=1; cat "$dir/work.err"; }
census work || status=1
# A failing initializer: its report comes back before the worker's end.
PEBBLE_LAUNCHER=$launcher "$prog" "$dir" broken \
  2> "$dir/broken.err" || { status=1; cat "$dir/broken.err"; }
census broken || status=1
# mpirun that cannot place its process (a host that does not exist): it
# exits with an error, the future says so.
PEBBLE_LAUNCHER="mpirun -n 1 --host pebble-no-such-host.invalid" \
  "$prog" "$dir" refused || status=1
orphan_check "$launcher" 2> "$dir/orphan.err" || { status=1; cat "$dir/orphan.err"; }
census orphan || status=1
# docs/cluster.md's walk-through, as an MPI user runs it: the application
# itself under `mpirun -n 1`, its pool's launcher (an option) an mpirun
# on a hostfile, through examples/mpirun-nested.sh (Open MPI refuses an
# mpirun inside an mpirun's job while the job's variables are set); a
# map of 10,000 items, item 4242 crashing.
example="$top_builddir/examples/cluster_map"
nested="$(cd "$top_srcdir/examples" && pwd)/mpirun-nested.sh"
echo "localhost slots=64" > "$dir/hosts"
t0=$(date +%s)
mpirun -n 1 --oversubscribe "$example" \
  "sh $nested -n 1 --quiet --hostfile $dir/hosts --oversubscribe -x PEBBLE_TEST_MPI_RUN=$dir" 4 \
  > "$dir/cluster_map.out" 2> "$dir/cluster_map.err"
rc=$?
t1=$(date +%s)
tail -n 1 "$dir/cluster_map.out"
if [ $rc -eq 0 ] &&
   [ "$(grep -c '^item [0-9]* = ' "$dir/cluster_map.out")" = 9999 ] &&
   grep -q "^item 4242 crashed: worker process [0-9]* on host $(hostname) was killed by signal 11 (SIGSEGV)" "$dir/cluster_map.out"; then
  grep '^item 4242 ' "$dir/cluster_map.out"
  echo "part cluster_map: pass (mpirun -n 1 ./app, 10,000 items, the crash with host and signal, $((t1 - t0)) s)"
else
  echo "FAIL: cluster_map under mpirun -n 1 exited $rc"
  grep -v '^item [0-9]* = ' "$dir/cluster_map.out" | tail -n 20
  tail -n 20 "$dir/cluster_map.err"
  echo "part cluster_map: FAIL (exit $rc)"
  status=1
fi
census cluster_map || status=1
exit $status
