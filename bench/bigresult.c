/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bigresult.c -- workload 6: a 1 GiB result from a process task.
 *
 * The task fills a result buffer from pebble_result_alloc() (not timed),
 * writes the time of its return to a shared anonymous page, and returns.
 * The measured span runs from that return to pebble_future_get() handing
 * the bytes to the parent; GB/s = size / span.  Against it, in the same
 * repetition: memcpy of the same size into a buffer that was faulted in
 * beforehand.  The one-shot @process form is used (a pool moves results
 * the same way).  --quick moves 4 MiB.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <pebble.h>

#include "bench.h"

static volatile double *returned; /* shared with the task's process */

static int big(pebble_ctx *ctx, const void *arg, size_t size) {
  uint64_t bytes;
  unsigned char *p;
  if (size != sizeof bytes)
    return pebble_fail(ctx, 1, "expected a size");
  memcpy(&bytes, arg, sizeof bytes);
  if ((p = pebble_result_alloc(ctx, (size_t)bytes)) == NULL)
    return 1;
  memset(p, 0x5a, (size_t)bytes);
  *returned = bench_now();
  return 0;
}

static unsigned char *faulted(size_t bytes, int value) {
  unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    bench_die("cannot map %zu bytes", bytes);
  /* Not inherited by the task's process: a fork would leave these pages
   * copy-on-write, and the first write to each would fault again. */
  madvise(p, bytes, MADV_DONTFORK);
  memset(p, value, bytes); /* fault every page in */
  return p;
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_task *task;
  unsigned char *src, *dst;
  double *gbs[2];
  uint64_t bytes;
  size_t r, k;
  static const char *const names[2] = {"pebble process task result",
                                       "memcpy, pre-faulted buffer"};

  bench_parse(argc, argv, &o, 10);
  bytes = o.quick ? (uint64_t)4 << 20 : (uint64_t)1 << 30;
  returned = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (returned == MAP_FAILED)
    bench_die("mmap failed");
  for (k = 0; k < 2; k++)
    gbs[k] = calloc((size_t)o.reps, sizeof *gbs[k]);
  src = faulted((size_t)bytes, 0x5a);
  dst = faulted((size_t)bytes, 0);
  if (pebble_task_create(&task, PEBBLE_PROCESS, big, NULL) != PEBBLE_OK)
    bench_die("pebble_task_create: %s", pebble_last_error());

  for (r = 0; r < (size_t)o.reps; r++) {
    pebble_future *f;
    const unsigned char *data;
    size_t size;
    double t0, t1;
    *returned = 0;
    if (pebble_task_launch(task, &bytes, sizeof bytes, &f) != PEBBLE_OK ||
        pebble_future_get(f, PEBBLE_FOREVER, (const void **)&data, &size) !=
            PEBBLE_OK)
      bench_die("big result: %s", pebble_last_error());
    t1 = bench_now();
    if (size != bytes || data[0] != 0x5a || data[size - 1] != 0x5a ||
        *returned == 0)
      bench_die("big result: wrong bytes");
    gbs[0][r] = (double)bytes / (t1 - *returned) / 1e9;
    pebble_future_release(f);

    memset(dst, 0, (size_t)bytes); /* surely faulted in */
    t0 = bench_now();
    memcpy(dst, src, (size_t)bytes);
    t1 = bench_now();
    if (dst[bytes - 1] != 0x5a)
      bench_die("memcpy?");
    gbs[1][r] = (double)bytes / (t1 - t0) / 1e9;
  }

  bench_section("6. big result: %llu MiB from a process task, from its "
                "return to the bytes in the parent; %d repetitions",
                (unsigned long long)(bytes >> 20), o.reps);
  for (k = 0; k < 2; k++) {
    bench_ratio q =
        bench_ratio_of(gbs[0], gbs[k], (size_t)o.reps, BENCH_HIGHER);
    bench_row(names[k], "bandwidth", bench_median(gbs[k], (size_t)o.reps),
              "GB/s", -1, k == 0 ? NULL : &q);
  }
  {
    bench_ratio q =
        bench_ratio_of(gbs[0], gbs[1], (size_t)o.reps, BENCH_HIGHER);
    bench_target(q.median >= 0.5,
                 ">= 0.5x memcpy bandwidth: %.2fx (worst rep %.2fx)",
                 q.median, q.worst);
  }
  pebble_task_destroy(task);
  munmap(src, (size_t)bytes);
  munmap(dst, (size_t)bytes);
  return 0;
}
