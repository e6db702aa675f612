# SPDX-License-Identifier: Apache-2.0
"""Python Pebble's ProcessPool as the reference line of workload 3.

Run by the C benchmark once per repetition:
  py_pebble.py check 0        prints the pebble version's major number
  py_pebble.py throughput N [W [WARM]]
                              N tasks scheduled one by one, then all
                              results read; prints wall and CPU seconds
  py_pebble.py roundtrip M [W [WARM]]
                              M times: schedule one task, read its
                              result; prints p50 and p99 in us and CPU s
W is the number of worker processes (default 2); WARM the tasks run
through the new pool before the timed part (default 20), the same
warm-up the C contenders get.
CPU seconds count this interpreter and every descendant (the workers),
read from /proc like the C side does.  Pool start-up and a short warm-up
are not measured.
"""
import os
import sys
import time

from pebble import ProcessPool, __version__


def task(x):
    return x


def _threads_cpu(pid):
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total * 1e-9


def _descendants(pid):
    found = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                found.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    for child in list(found):
        found.extend(_descendants(child))
    return found


def tree_cpu():
    me = os.getpid()
    return _threads_cpu(me) + sum(_threads_cpu(c) for c in _descendants(me))


def percentile(values, p):
    values = sorted(values)
    k = max(1, min(len(values), int(p / 100.0 * len(values) + 0.999999)))
    return values[k - 1]


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    warm = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    if mode == "check":
        print(__version__.split(".")[0])
        return
    with ProcessPool(max_workers=workers) as pool:
        for f in [pool.schedule(task, args=(i,)) for i in range(warm)]:
            f.result()
        if mode == "throughput":
            c0, t0 = tree_cpu(), time.monotonic()
            futures = [pool.schedule(task, args=(i,)) for i in range(n)]
            for i, f in enumerate(futures):
                if f.result() != i:
                    sys.exit("wrong result")
            t1, c1 = time.monotonic(), tree_cpu()
            print("%.9f %.9f" % (t1 - t0, c1 - c0))
        elif mode == "roundtrip":
            lat = []
            c0 = tree_cpu()
            for i in range(n):
                t0 = time.monotonic()
                if pool.schedule(task, args=(i,)).result() != i:
                    sys.exit("wrong result")
                lat.append((time.monotonic() - t0) * 1e6)
            c1 = tree_cpu()
            print("%.3f %.3f %.9f" % (percentile(lat, 50), percentile(lat, 99),
                                      c1 - c0))
        else:
            sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
