#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make bench-plots` on a small fixed run (bench/plots-fixture.csv, rows of
# a real run): both charts are drawn as SVG and name every contender, and
# without gnuplot the driver says so and exits 77.  Skipped (77) where
# gnuplot is not installed (Debian: gnuplot-nox).
src=${top_srcdir:-.}
out=$(mktemp -d "${TMPDIR:-/tmp}/bench-plots-test.XXXXXX") || exit 99
trap 'rm -rf "$out"' EXIT
fail=0

msg=$(GNUPLOT=/nonexistent/gnuplot sh "$src/bench/plots" "$src/bench/plots-fixture.csv" "$out/none")
rc=$?
if [ $rc -eq 77 ] && echo "$msg" | grep -q 'gnuplot not found (Debian: gnuplot-nox)'; then
  echo "ok: without gnuplot: $msg"
else
  echo "FAIL: without gnuplot, expected exit 77 and a message; got $rc: $msg"; fail=1
fi

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "SKIP: gnuplot is not installed (Debian: gnuplot-nox)"
  exit 77
fi

sh "$src/bench/plots" "$src/bench/plots-fixture.csv" "$out" || { echo "FAIL: bench/plots failed"; exit 1; }
# Every contender of the fixture, as the chart must name it.
check() { # chart, name...
  chart=$out/bench-$1.svg; shift
  if ! head -c 200 "$chart" | grep -q '<svg' || ! grep -q '</svg>' "$chart"; then
    echo "FAIL: $chart is not a whole SVG file"; fail=1; return
  fi
  for name in "$@"; do
    if grep -qF ">$name<" "$chart"; then echo "ok: $(basename "$chart") names $name"
    else echo "FAIL: $(basename "$chart") does not name $name"; fail=1; fi
  done
}
check ratios 'glib GThreadPool' 'apr-util apr_thread_pool' 'libuv uv_queue_work' \
  'plain queue + result per task' 'plain mutex+condvar queue' \
  'bare fork+pipe, own process, to read' target 'worst repetition'
check latency 'pebble pool, future per task' 'glib GThreadPool' \
  'apr-util apr_thread_pool' 'libuv uv_queue_work' 'plain mutex+condvar queue' \
  'pebble: thread pool, lateness' 'floor: one timed thread wake-up'
exit $fail
