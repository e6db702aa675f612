# SPDX-License-Identifier: Apache-2.0
# Sourced by the launcher tests (tests/launcher*.sh), which set prog (the
# launch_pool program) and dir (their scratch directory) first.
#
# orphan_check LAUNCHER: the application dies by SIGKILL while a remote
# task runs; the remote worker and the process its task started must go
# too (within 30 s, which covers three 2-second heartbeats).
orphan_check() {
  PEBBLE_LAUNCHER=$1 "$prog" "$dir" orphan
  if [ ! -s "$dir/orphan" ]; then
    echo "FAIL: orphan: the task never wrote its process ids"
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
      return 1
    fi
  done
  echo "orphan: the remote worker and its child went with the application"
}
