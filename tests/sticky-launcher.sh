#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A launcher that, like a srun killed by SIGKILL, leaves the remote side
# running with its standard input open: the command runs in a session of
# its own, reading and writing two FIFOs that it also holds open itself
# (as slurmstepd holds a step's stdin), and this script only relays them.
# Killing this launcher, or its process group, tells the command nothing;
# only the application's heartbeats stopping can.  Used by
# tests/launcher.sh.  Usage: sticky-launcher.sh DIR COMMAND...
d=$(mktemp -d "$1/sticky.XXXXXX") || exit 1
shift
mkfifo "$d/in" "$d/out" || exit 1
# Opened read-write, a FIFO neither blocks the open nor ever ends.
setsid sh -c 'exec 3<>"$1" 4<>"$2"; shift 2; exec "$@" <&3 >&4' \
  sh "$d/in" "$d/out" "$@" &
# A command run with & would read /dev/null: stdin goes by another number.
exec 5<&0
cat <&5 >"$d/in" 5<&- &
exec 5<&- cat "$d/out"
