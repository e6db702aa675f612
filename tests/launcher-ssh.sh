#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A process pool whose workers are started through ssh to this host: a
# throw-away sshd on a free port of 127.0.0.1, with a host key and a user
# key made here, in a temporary directory that goes at the end with
# everything started from it.  tests/launch_pool.c says what is checked.
# Skipped (77, with the reason) where ssh, ssh-keygen or sshd is missing
# (Debian: apt-get install openssh-server openssh-client) or sshd cannot
# run here.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/launch_pool"
. "$top_srcdir/tests/launcher-common.sh"
need_sshd
dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-ssh.XXXXXX") || exit 1
cleanup() {
  stop_sshd
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
start_sshd 127.0.0.1
launcher="$ssh_cmd env $(launcher_env)"

status=0
PEBBLE_START_METHOD=spawn
export PEBBLE_START_METHOD
echo "launcher: $launcher"
PEBBLE_LAUNCHER_HEARTBEAT=2 PEBBLE_LAUNCHER=$launcher "$prog" "$dir" work || status=1
# A failing initializer: its report comes back before the worker's end.
PEBBLE_LAUNCHER=$launcher "$prog" "$dir" broken || status=1
# The same through the pool's options (launcher, launcher_heartbeat),
# which take precedence over PEBBLE_LAUNCHER, here a launcher that fails.
PEBBLE_TEST_PART=option PEBBLE_TEST_POOL_HEARTBEAT=2 \
  PEBBLE_TEST_POOL_LAUNCHER=$launcher PEBBLE_LAUNCHER=/nonexistent/launcher \
  "$prog" "$dir" work || status=1
# ssh to a port where nothing listens: ssh exits 255, the future says so.
PEBBLE_LAUNCHER="ssh -F /dev/null -p 1 -o BatchMode=yes -o ConnectTimeout=10 127.0.0.1" \
  "$prog" "$dir" refused || status=1
orphan_check "$launcher" || status=1
# Every ssh session has ended: sshd has no child left (each worker and
# what it started was checked by its process id in the program).
waited=0
# Its children, through /proc (procps may not be installed).
sshd_children() {
  for f in /proc/[0-9]*/stat; do
    read -r pid rest < "$f" 2>/dev/null || continue
    # The field after the command's ")" is the state, then the parent.
    set -- ${rest##*) }
    [ "${2:-}" = "$sshd_pid" ] && echo "$pid"
  done
}
while [ -n "$(sshd_children)" ] && [ $waited -lt 30 ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ -n "$(sshd_children)" ]; then
  echo "FAIL: ssh sessions still open:"
  for pid in $(sshd_children); do tr '\0' ' ' < /proc/$pid/cmdline; echo; done
  echo "part sessions: FAIL (ssh sessions still open)"
  status=1
else
  echo "part sessions: pass (every ssh session ended)"
fi
exit $status
