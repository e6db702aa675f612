#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A network cut: the pool's workers are started through ssh to a network
# namespace joined to this host by a veth pair (a host of its own name
# behind a link), and the link is set down while their tasks run.  Every
# future of theirs must resolve, as a lost launcher on that host, within
# BOUND seconds (three 1-second heartbeats and a generous slack for a
# loaded machine); the pool goes on, its new workers started here (the
# cut also points the launcher at this host); and after the bound no
# process of the cut workers is left in the namespace (the far side ends
# itself when the application's heartbeats stop coming).  Run as root;
# skipped (77, with the reason) otherwise, or where a namespace or a veth
# pair cannot be made (Debian: iproute2), or sshd is missing
# (openssh-server).  tests/launch_pool.c (mode netcut) says what the
# application checks.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/launch_pool"
bound=20
. "$top_srcdir/tests/launcher-common.sh"
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: not root (a network namespace and a veth pair need root)"
  exit 77
fi
for tool in ip unshare; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (iproute2, util-linux)"
    exit 77
  fi
done
need_sshd

# Names of this run: an interface name has at most 15 characters.
ns=pebble-netcut-$$
veth=pbnc$$
n=$(( $$ % 250 + 1 ))
# A private /30 that no interface of this host has (another run's).
while ip -4 -o addr show | grep -q " 10\.213\.$n\."; do
  n=$(( n % 250 + 1 ))
done
near=10.213.$n.1 far=10.213.$n.2
remote_host=pebble-netcut
dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-netcut.XXXXXX") || exit 1
made_ns=
cleanup() {
  stop_sshd
  if [ -n "$made_ns" ]; then
    # What is left in the namespace (sshd's sessions of the cut link)
    # goes before the namespace.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -9 "$pid" 2>/dev/null
    done
    ip netns del "$ns" 2>/dev/null
  fi
  ip link del "${veth}h" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! out=$(ip netns add "$ns" 2>&1); then
  echo "SKIP: cannot make a network namespace: $out"
  exit 77
fi
made_ns=1
if ! out=$(ip link add "${veth}h" type veth peer name "${veth}n" 2>&1); then
  echo "SKIP: cannot make a veth pair: $out"
  exit 77
fi
ip link set "${veth}n" netns "$ns" &&
  ip addr add "$near/30" dev "${veth}h" &&
  ip link set "${veth}h" up &&
  ip netns exec "$ns" ip addr add "$far/30" dev "${veth}n" &&
  ip netns exec "$ns" ip link set "${veth}n" up &&
  ip netns exec "$ns" ip link set lo up || {
  echo "FAIL: cannot set up the link to the namespace"
  exit 1
}
# sshd in the namespace, under a host name of its own (a UTS namespace),
# so that the host a message names is the far one.
start_sshd "$far" ip netns exec "$ns" unshare --uts \
  sh -c 'hostname "$0" && exec "$@"' "$remote_host"

# The launcher is a script the cut replaces: before, ssh to the far side
# (its processes marked by PEBBLE_TEST_NETCUT in their environment);
# after, env on this host.
printf 'exec %s env PEBBLE_TEST_NETCUT=%s %s "$@"\n' \
  "$ssh_cmd" "$dir" "$(launcher_env)" > "$dir/launch"
printf 'exec "$@"\n' > "$dir/launch-here"
echo "launcher: $(cat "$dir/launch")"

# The processes of the cut workers still in the namespace, by their mark,
# through /proc seen from inside (procps may not be installed).
census() {
  ip netns exec "$ns" sh -c '
    here=$(readlink /proc/self/ns/net)
    for e in /proc/[0-9]*/environ; do
      p=${e%/environ}
      [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$here" ] || continue
      if tr "\0" "\n" < "$e" 2>/dev/null | grep -qx "PEBBLE_TEST_NETCUT=$1"; then
        echo "${p#/proc/}"
      fi
    done' sh "$dir"
}

status=0
PEBBLE_START_METHOD=spawn PEBBLE_LAUNCHER_HEARTBEAT=1 \
  PEBBLE_LAUNCHER="sh $dir/launch" PEBBLE_TEST_REMOTE_HOST=$remote_host \
  PEBBLE_TEST_CUT_BOUND=$bound \
  PEBBLE_TEST_CUT="ip link set ${veth}h down && date +%s > $dir/cut-at && mv $dir/launch-here $dir/launch" \
  "$prog" "$dir" netcut || status=1

if [ ! -s "$dir/cut-at" ]; then
  echo "FAIL: the link was never cut"
  exit 1
fi
# Once the bound has passed since the cut, nothing of the cut workers
# runs behind the link.
left=$(( $(cat "$dir/cut-at") + bound + 1 - $(date +%s) ))
[ $left -gt 0 ] && sleep $left
pids=$(census)
if [ -n "$pids" ]; then
  echo "FAIL: $bound s after the cut, processes of the cut workers still run in the namespace:"
  for pid in $pids; do tr '\0' ' ' < "/proc/$pid/cmdline"; echo; done
  echo "part census: FAIL (the cut workers' processes outlived the bound)"
  status=1
else
  echo "netcut: $bound s after the cut, no process of the cut workers is left in the namespace"
  echo "part census: pass (nothing left behind the link after $bound s)"
fi
exit $status
