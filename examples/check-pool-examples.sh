#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the pool examples and checks what they print.
b="${top_builddir:-.}/examples"
fail=0
# These examples pass functions by address, as the fork start method
# allows: a start method chosen for a whole run (PEBBLE_START_METHOD=spawn
# or forkserver make check, where tasks go by registered name) is not theirs.
unset PEBBLE_START_METHOD
check() { # name, expected (sorted), actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else
    echo "FAIL: $1"; echo "--- expected"; echo "$2"; echo "--- got"; echo "$3"; fail=1; fi
}
out=$("$b/thread_pool") || fail=1
echo "$out"
got=$(echo "$out" | sed -n 's/^Task \([0-9]*\) returned \([0-9]*\) from thread [0-9a-f]*$/\1 \2/p' | sort -n)
check thread_pool "$(for i in 0 1 2 3 4 5 6 7 8 9; do echo "$i $i"; done)" "$got"
threads=$(echo "$out" | awk '{print $NF}' | sort -u | wc -l)
[ "$threads" -ge 1 ] && [ "$threads" -le 5 ] || { echo "FAIL: $threads threads used (1..5 expected)"; fail=1; }

out=$("$b/process_pool") || fail=1
echo "$out"
check process_pool "timeout: PEBBLE_ETIMEDOUT
crash: PEBBLE_EDIED
cancel: PEBBLE_ECANCELED
7 squared: 49
8 squared: 64
done 2, failed 1, timed out 1, cancelled 1" "$(echo "$out" | sed 's/ (.*//')"

out=$("$b/event_loop") || fail=1
echo "$out"
check event_loop "sum of cubes 1..5 = 225" "$out"
# The cluster example on this host (no launcher): 9,999 results in order
# and the crash; tests/launcher-slurm.sh and tests/launcher-mpi.sh run it
# through srun and mpirun.
out=$(PEBBLE_LAUNCHER= "$b/cluster_map" "" 2) || fail=1
echo "$out" | grep -v '^item [0-9]* = '
check cluster_map "9999 $(seq 0 9999 | grep -vx 4242 | awk '{s += $1 * $1} END {printf "%.0f", s}')" \
  "$(echo "$out" | awk '/^item [0-9]+ = / {n++; s += $4} END {printf "%d %.0f", n, s}')"
exit $fail
