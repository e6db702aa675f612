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
sshd=$(command -v sshd 2>/dev/null || ls /usr/sbin/sshd 2>/dev/null)
for tool in ssh ssh-keygen; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (openssh-client)"
    exit 77
  fi
done
if [ -z "$sshd" ]; then
  echo "SKIP: sshd is not installed (openssh-server)"
  exit 77
fi
case $sshd in /*) ;; *) sshd=$(cd "$(dirname "$sshd")" && pwd)/$(basename "$sshd") ;; esac
# sshd run as root wants its privilege separation directory.
if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
  mkdir -p /run/sshd 2>/dev/null || { echo "SKIP: cannot make /run/sshd"; exit 77; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-ssh.XXXXXX") || exit 1
sshd_pid=
cleanup() {
  if [ -n "$sshd_pid" ]; then
    kill "$sshd_pid" 2>/dev/null
    wait "$sshd_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || exit 1
ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key" || exit 1
cp "$dir/user_key.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
user=$(id -un)

# A free port: sshd is started on one port after another until one binds
# and answers.
port=$(( 20000 + $$ % 20000 ))
tries=0
while :; do
  cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $user
PrintMotd no
Subsystem sftp internal-sftp
EOF
  "$sshd" -D -e -f "$dir/sshd_config" 2> "$dir/sshd.log" &
  sshd_pid=$!
  ssh_cmd="ssh -F /dev/null -p $port -i $dir/user_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 $user@127.0.0.1"
  waited=0
  while [ $waited -lt 20 ]; do
    if $ssh_cmd true 2>/dev/null; then
      break 2
    fi
    kill -0 "$sshd_pid" 2>/dev/null || break
    sleep 0.5
    waited=$((waited + 1))
  done
  kill "$sshd_pid" 2>/dev/null
  wait "$sshd_pid" 2>/dev/null
  sshd_pid=
  tries=$((tries + 1))
  if [ $tries -ge 5 ]; then
    echo "SKIP: sshd did not start or accept the test key here:"
    sed 's/^/  sshd: /' "$dir/sshd.log" | tail -5
    exit 77
  fi
  port=$((port + 1))
done

# ssh passes no environment: what the worker program needs to find the
# library of this build tree, and the sanitizers' settings, go in the
# command line (they hold no character a shell would change).
env_words=
for var in LD_LIBRARY_PATH ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
  eval "val=\${$var:-}"
  case $val in
    '') ;;
    *[!A-Za-z0-9_./:=,+@%-]*) echo "note: $var not passed (unusual characters)" ;;
    *) env_words="$env_words $var=$val" ;;
  esac
done
libs=$(cd "$top_builddir" && pwd)/.libs
launcher="$ssh_cmd env LD_LIBRARY_PATH=$libs$env_words"

# orphan_check: the application killed while a remote task runs.
. "$top_srcdir/tests/launcher-common.sh"
status=0
PEBBLE_START_METHOD=spawn
export PEBBLE_START_METHOD
echo "launcher: $launcher"
PEBBLE_LAUNCHER_HEARTBEAT=2 PEBBLE_LAUNCHER=$launcher "$prog" "$dir" work || status=1
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
  status=1
fi
exit $status
