#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A process pool whose workers are started through a launcher, with a
# local launcher that needs nothing installed: `env VAR=... ` (a command
# that runs the worker's words, as ssh, srun and mpirun do, on this host).
# tests/launch_pool.c says what is checked.
: "${top_builddir:=.}" "${top_srcdir:=.}"
prog="$top_builddir/tests/launch_pool"
sticky="$(cd "$top_srcdir" && pwd)/tests/sticky-launcher.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/pebble-launch.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# orphan_check: the application killed while a remote task runs.
. "$top_srcdir/tests/launcher-common.sh"
status=0
PEBBLE_START_METHOD=spawn
export PEBBLE_START_METHOD
# The launcher is a shell command line; the worker's words follow it.
# Heartbeats every 2 s: a stopped launcher is found silent after 6 s.
PEBBLE_LAUNCHER_HEARTBEAT=2 PEBBLE_LAUNCHER="env PEBBLE_TEST_LAUNCHED=1" \
  "$prog" "$dir" work || status=1
# A failing initializer: its report comes back before the worker's end.
PEBBLE_LAUNCHER="env PEBBLE_TEST_LAUNCHED=1" "$prog" "$dir" broken || status=1
# A launcher that is not there, and one that ends at once: the futures
# fail with a message, no hang.
PEBBLE_TEST_PART=absent PEBBLE_LAUNCHER="/nonexistent/launcher -x" \
  "$prog" "$dir" refused || status=1
PEBBLE_TEST_PART=quits PEBBLE_LAUNCHER="true" "$prog" "$dir" refused || status=1
# A launcher that never starts the worker (a queue that never runs it):
# killed once its start's bound has passed.
PEBBLE_TEST_PART=never-starts PEBBLE_LAUNCHER_START_TIMEOUT=3 \
  PEBBLE_LAUNCHER="sleep 600; exit" \
  "$prog" "$dir" refused || status=1
orphan_check "env PEBBLE_TEST_LAUNCHED=1" || status=1
# The pool's launcher options: refused where wrong, ahead of the
# environment (whose launcher would fail, whose heartbeat differs, whose
# start method is fork), the string copied.
PEBBLE_LAUNCHER="/nonexistent/launcher" PEBBLE_LAUNCHER_HEARTBEAT=30 \
  PEBBLE_START_METHOD=fork "$prog" "$dir" options || status=1
# The whole work through the option rather than the variable, which
# names a launcher that would fail.
PEBBLE_TEST_PART=option PEBBLE_TEST_POOL_HEARTBEAT=2 \
  PEBBLE_TEST_POOL_LAUNCHER="env PEBBLE_TEST_LAUNCHED=1" \
  PEBBLE_LAUNCHER="/nonexistent/launcher" "$prog" "$dir" work || status=1
# Workers start in parallel: 4 launchers that each wait 3 s run at once.
"$prog" "$dir" parallel || status=1
# A launcher whose death leaves the remote side running with its stdin
# open, as a srun killed by SIGKILL leaves its step: timeouts, cancels, a
# killed or stopped launcher and the application's death still end the
# remote worker, once the application's heartbeats stop (3 of 2 s).
PEBBLE_TEST_PART=sticky PEBBLE_LAUNCHER_HEARTBEAT=2 \
  PEBBLE_LAUNCHER="sh $sticky $dir env PEBBLE_TEST_LAUNCHED=1" \
  "$prog" "$dir" work || status=1
PEBBLE_LAUNCHER_HEARTBEAT=2 \
  orphan_check "sh $sticky $dir env PEBBLE_TEST_LAUNCHED=1" sticky || status=1
exit $status
