#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A process pool whose workers are started through Slurm's srun: a
# one-node Slurm on this host (munge, slurmctld and one slurmd, with a
# key, a configuration and state written here, in a temporary directory
# that goes at the end with every daemon started from it), then the
# launcher program (tests/launch_pool.c says what is checked) with
#   srun -N1 -n1 --quiet --unbuffered
# inside an allocation (as from sbatch or salloc), and a census: no job
# step of it left.  Skipped (77, with the reason)
# where Slurm or munge is not installed (Debian: apt-get install slurm-wlm
# munge), without root (slurmd needs it), or where the daemons do not
# start here.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/launch_pool"
for tool in munged slurmctld slurmd srun sinfo squeue scancel; do
  if ! command -v $tool >/dev/null 2>&1 && [ ! -x /usr/sbin/$tool ]; then
    echo "SKIP: $tool is not installed (slurm-wlm, munge)"
    exit 77
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: slurmd runs as root only"
  exit 77
fi
PATH=$PATH:/usr/sbin
dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-slurm.XXXXXX") || exit 1
chmod 700 "$dir"
pids=
cleanup() {
  [ -f "$dir/slurm.conf" ] && SLURM_CONF="$dir/slurm.conf" scancel --quiet --full --user=root 2>/dev/null
  for pid in $pids; do kill "$pid" 2>/dev/null; done
  for pid in $pids; do
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 20 ]; do
      sleep 0.5; waited=$((waited + 1))
    done
    kill -9 "$pid" 2>/dev/null
  done
  # slurmd's step daemons of this run, if any outlived it
  pkill -9 -f "slurmstepd: \[" -s 0 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$dir/munge.key"
munged -F --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
  --seed-file="$dir/munged.seed" >"$dir/munged.out" 2>&1 &
pids="$pids $!"
host=$(hostname -s)
mkdir -p "$dir/state" "$dir/spool"
port=$(( 21000 + $$ % 20000 ))
tries=0
while :; do
  cat > "$dir/slurm.conf" <<CONF
ClusterName=pebbletest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmdParameters=config_overrides
KillWait=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN
PartitionName=pebble Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  SLURM_CONF="$dir/slurm.conf"
  export SLURM_CONF
  slurmctld -D -i -f "$dir/slurm.conf" >"$dir/ctld.out" 2>&1 &
  ctld=$!
  slurmd -D -f "$dir/slurm.conf" -N "$host" >"$dir/slurmd.out" 2>&1 &
  sd=$!
  waited=0
  while [ $waited -lt 60 ]; do
    state=$(sinfo -h -o %t 2>/dev/null)
    [ "$state" = idle ] && break 2
    kill -0 "$ctld" 2>/dev/null && kill -0 "$sd" 2>/dev/null || break
    sleep 0.5
    waited=$((waited + 1))
  done
  kill "$ctld" "$sd" 2>/dev/null
  wait "$ctld" "$sd" 2>/dev/null
  tries=$((tries + 1))
  if [ $tries -ge 3 ]; then
    echo "SKIP: the one-node Slurm did not come up here:"
    tail -n 5 "$dir/munged.log" "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/ctld.out" "$dir/slurmd.out" 2>/dev/null | sed 's/^/  /'
    exit 77
  fi
  port=$((port + 2))
done
pids="$ctld $sd $pids"

# The workers run as job steps of one allocation, as inside an sbatch
# script.  (An srun outside an allocation makes an allocation of its own,
# which a killed srun leaves behind, without processes, until the
# InactiveLimit of the site's configuration.)
job=$(salloc --no-shell -N1 -n16 2>&1 | sed -n 's/.*Granted job allocation \([0-9][0-9]*\).*/\1/p')
if [ -z "$job" ]; then
  echo "FAIL: salloc did not grant an allocation"
  exit 1
fi
# No job step left (a killed srun leaves its step running; the step ends
# when the application's heartbeats stop coming down).
steps() { squeue -h -s -j "$job" -o %i 2>/dev/null | grep -v '\.extern$'; }
census() {
  waited=0
  while [ -n "$(steps)" ] && [ $waited -lt 60 ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
  if [ -n "$(steps)" ]; then
    echo "FAIL: $1: job steps still there:"
    squeue -s -j "$job"
    return 1
  fi
  echo "$1: no job step left"
}
# orphan_check: the application killed while a remote task runs.
. "$top_srcdir/tests/launcher-common.sh"
status=0
PEBBLE_START_METHOD=spawn
PEBBLE_LAUNCHER_HEARTBEAT=2
export PEBBLE_START_METHOD PEBBLE_LAUNCHER_HEARTBEAT
launcher="srun --jobid=$job --overlap -N1 -n1 --quiet --unbuffered"
echo "launcher: $launcher (SLURM_CONF=$SLURM_CONF)"
PEBBLE_LAUNCHER=$launcher "$prog" "$dir" work || status=1
census work || status=1
# A failing initializer: its report comes back before the worker's end
# (a supervisor killed by a signal lost it: srun drops what it has not
# yet forwarded).
PEBBLE_LAUNCHER=$launcher "$prog" "$dir" broken || status=1
census broken || status=1
# A node that does not exist: srun exits with an error at once.
PEBBLE_LAUNCHER="srun --jobid=$job --overlap -N1 -n1 --quiet --nodelist=pebble-no-such-node" \
  "$prog" "$dir" refused || status=1
orphan_check "$launcher" || status=1
census orphan || status=1

# docs/cluster.md's walk-through, as a Slurm user runs it: the allocation
# above is given back, then examples/cluster_map.sbatch is submitted and
# waited for; its program maps 10,000 items over a pool of workers
# started by srun (the pool's launcher option), item 4242 crashing.
unset PEBBLE_LAUNCHER_HEARTBEAT PEBBLE_START_METHOD
scancel "$job" 2>/dev/null
example=$(cd "$top_builddir/examples" && pwd)/cluster_map
sbatch_script=$(cd "$top_srcdir/examples" && pwd)/cluster_map.sbatch
t0=$(date +%s)
CLUSTER_MAP=$example sbatch --wait --quiet --nodes=1 --ntasks=4 \
  --ntasks-per-node=4 --chdir="$dir" --output="$dir/cluster_map.out" \
  --error="$dir/cluster_map.err" \
  "$sbatch_script"
rc=$?
t1=$(date +%s)
out="$dir/cluster_map.out"
tail -n 1 "$out" 2>/dev/null
# Every item's line, in order: 9,999 results (item I = I*I) and the
# crash's, naming the host and the signal.
in_order=$(awk -v crash=4242 '
  /^item [0-9]+ / { i = $2 + 0
    if (i != n) { bad = 1 }
    if (i == crash) { if ($0 !~ / on host [^ ]+ was killed by signal 11 \(SIGSEGV\)/) bad = 1 }
    else if ($3 != "=" || $4 != i * i) bad = 1
    n++ }
  END { print (n == 10000 && !bad) ? "yes" : "no (" n " item lines)" }' "$out" 2>/dev/null)
# docs/cluster.md promises an empty .err file: srun has nothing to say
# about a worker whose supervisor ended by itself.
err_bytes=$(wc -c <"$dir/cluster_map.err" 2>/dev/null || echo missing)
if [ $rc -eq 0 ] && [ "$in_order" = yes ] && [ "$err_bytes" = 0 ] &&
   grep -q "^item 4242 crashed: worker process [0-9]* on host $host was killed by signal 11 (SIGSEGV)" "$out"; then
  echo "cluster_map: 10,000 results in order through srun, item 4242's crash with host and signal ($((t1 - t0)) s with sbatch)"
  grep '^item 4242 ' "$out"
  echo "part sbatch: pass (10,000 items in order, the crash with host $host and SIGSEGV, standard error empty)"
else
  echo "FAIL: cluster_map.sbatch: sbatch --wait exited $rc, items in order: $in_order, standard error bytes: $err_bytes"
  grep -v '^item [0-9]* = ' "$out" 2>/dev/null | tail -n 20
  sed 's/^/  stderr: /' "$dir/cluster_map.err" 2>/dev/null | tail -n 20
  echo "part sbatch: FAIL (sbatch exited $rc; items in order: $in_order; standard error bytes: $err_bytes)"
  status=1
fi
exit $status
