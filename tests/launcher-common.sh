# SPDX-License-Identifier: Apache-2.0
# Sourced by the launcher tests (tests/launcher*.sh), which set prog (the
# launch_pool program) and dir (their scratch directory) before they call
# these functions.
#
# orphan_check LAUNCHER [VARIANT]: the application dies by SIGKILL while a
# remote task runs; the remote worker and the process its task started
# must go too (within 30 s, which covers three 2-second heartbeats).
# Says so in a "part orphan[/VARIANT]: RESULT" line for the conformance
# table (tests/matrix-table.sh).
orphan_check() {
  orphan_part="part orphan${2:+/$2}"
  PEBBLE_LAUNCHER=$1 "$prog" "$dir" orphan
  if [ ! -s "$dir/orphan" ]; then
    echo "FAIL: orphan: the task never wrote its process ids"
    echo "$orphan_part: FAIL (the task never started)"
    return 1
  fi
  for pid in $(cat "$dir/orphan"); do
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 60 ]; do
      sleep 0.5
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "FAIL: orphan: process $pid outlived the application"
      ps -o pid,stat,args -p "$pid"
      echo "$orphan_part: FAIL (a remote process outlived the application)"
      return 1
    fi
  done
  echo "orphan: the remote worker and its child went with the application"
  echo "$orphan_part: pass"
}

# need_sshd: ssh, ssh-keygen and sshd are here (Debian: openssh-client and
# openssh-server), or the test is skipped (77) with the reason.  Sets sshd
# to sshd's absolute path.
need_sshd() {
  for tool in ssh ssh-keygen; do
    if ! command -v $tool >/dev/null 2>&1; then
      echo "SKIP: $tool is not installed (openssh-client)"
      exit 77
    fi
  done
  sshd=$(command -v sshd 2>/dev/null || ls /usr/sbin/sshd 2>/dev/null)
  if [ -z "$sshd" ]; then
    echo "SKIP: sshd is not installed (openssh-server)"
    exit 77
  fi
  case $sshd in
    /*) ;;
    *) sshd=$(cd "$(dirname "$sshd")" && pwd)/$(basename "$sshd") ;;
  esac
  # sshd run as root wants its privilege separation directory.
  if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd 2>/dev/null || { echo "SKIP: cannot make /run/sshd"; exit 77; }
  fi
}

# start_sshd ADDRESS [WRAPPER...]: a throw-away sshd for this user on a
# free port of ADDRESS, with a host key and a user key made in $dir; the
# WRAPPER words, if any, run it (ip netns exec NS ..., which must exec
# sshd, so that $! is sshd).  Sets sshd_pid and ssh_cmd (ssh with its
# options and USER@ADDRESS).  Skips (77) when sshd does not start or does
# not accept the key.  stop_sshd ends it (the caller's trap).
sshd_pid=
start_sshd() {
  sshd_addr=$1
  shift
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || exit 1
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key" || exit 1
  cp "$dir/user_key.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  sshd_user=$(id -un)
  # A free port: sshd is started on one port after another until one
  # binds and answers.
  sshd_port=$(( 20000 + $$ % 20000 ))
  sshd_tries=0
  while :; do
    cat > "$dir/sshd_config" <<SSHD_EOF
Port $sshd_port
ListenAddress $sshd_addr
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers $sshd_user
PrintMotd no
Subsystem sftp internal-sftp
SSHD_EOF
    "$@" "$sshd" -D -e -f "$dir/sshd_config" 2> "$dir/sshd.log" &
    sshd_pid=$!
    ssh_cmd="ssh -F /dev/null -p $sshd_port -i $dir/user_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 $sshd_user@$sshd_addr"
    sshd_waited=0
    while [ $sshd_waited -lt 20 ]; do
      if $ssh_cmd true 2>/dev/null; then
        return 0
      fi
      kill -0 "$sshd_pid" 2>/dev/null || break
      sleep 0.5
      sshd_waited=$((sshd_waited + 1))
    done
    stop_sshd
    sshd_tries=$((sshd_tries + 1))
    if [ $sshd_tries -ge 5 ]; then
      echo "SKIP: sshd did not start or accept the test key here:"
      sed 's/^/  sshd: /' "$dir/sshd.log" | tail -5
      exit 77
    fi
    sshd_port=$((sshd_port + 1))
  done
}

stop_sshd() {
  if [ -n "$sshd_pid" ]; then
    kill "$sshd_pid" 2>/dev/null
    wait "$sshd_pid" 2>/dev/null
    sshd_pid=
  fi
}

# launcher_env: what a worker started through ssh needs (ssh passes no
# environment): the library of this build tree and the sanitizers'
# settings, as words for env (they hold no character a shell would change).
launcher_env() {
  env_words="LD_LIBRARY_PATH=$(cd "$top_builddir" && pwd)/.libs"
  for var in LD_LIBRARY_PATH ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
    eval "val=\${$var:-}"
    case $val in
      '') ;;
      *[!A-Za-z0-9_./:=,+@%-]*) echo "note: $var not passed (unusual characters)" >&2 ;;
      *) env_words="$env_words $var=$val" ;;
    esac
  done
  echo "$env_words"
}
