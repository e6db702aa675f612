/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bigresult.c -- workload 6: a 1 GiB result from a process task, measured
 * two ways, each against its own reference.
 *
 * End to end: from pebble_task_launch() until the parent has read every
 * byte of the result (a sum over every 8-byte word, checked).  The task
 * takes its buffer from pebble_result_alloc() and fills it with memset.
 * Reference: a bare fork + shared memory written plainly, in a separate
 * small process (this program run again with --bare-shm, so its fork does
 * not copy the benchmark's page tables): the parent maps shared memory
 * (on Linux a memory file whose pages fallocate made, the fastest way we
 * measured; else MAP_SHARED anonymous memory), forks, the child fills it
 * with the same memset and says so through a pipe, the parent reads it
 * with the same sum.  Both end
 * at the sum, neither includes the reap or the unmapping (timed apart and
 * shown as "release").
 *
 * Hand-over: from the task's return (a time it writes to a shared page)
 * until pebble_future_get() hands the bytes to the parent, first and last
 * byte checked; a mapping is handed over, not the bytes.  Reference:
 * memcpy of the same size into a buffer faulted in beforehand.
 *
 * Floor: the same fill and the same sum in this one process, on memory
 * faulted in beforehand: no process, no hand-over, no page fault.  A
 * result handed over once its task has ended (as a future's is) is read
 * after it was written, so no such hand-over can be faster end to end;
 * where the floor itself is below the target against memcpy, the line
 * says that the target is out of reach here.  (Only a stream read while
 * it is written could overlap the two passes.)
 *
 * One launch gives both Pebble figures; in each repetition Pebble, the
 * bare process, memcpy and the floor run one after the other, and the
 * first system of a repetition turns round.  No warm-up beyond one
 * untimed run of each at the quick size.  --quick moves 4 MiB.
 *
 * Phases (medians, in the notes) say where the end-to-end time goes:
 * launch to the task's start, the result buffer (pebble_result_alloc, or
 * mmap in the bare child), the fill, the return to the future, the read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#if defined(__linux__)
#include <fcntl.h>
#endif
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pebble.h>

#include "bench.h"

#define FILL 0x5a
#define FILL_WORD UINT64_C(0x5a5a5a5a5a5a5a5a)

/* Times the task's process writes for the parent, on a shared page. */
typedef struct task_times {
  double started, allocated, returned;
} task_times;
static volatile task_times *shared_times;

/* The consumer both sides use: every 8-byte word, summed. */
static __attribute__((noinline)) uint64_t sum_words(const unsigned char *p,
                                                    size_t bytes) {
  const uint64_t *w = (const uint64_t *)(const void *)p;
  size_t i, n = bytes / sizeof *w;
  uint64_t s = 0;
  for (i = 0; i < n; i++)
    s += w[i];
  return s;
}

static uint64_t expected_sum(size_t bytes) {
  return FILL_WORD * (uint64_t)(bytes / sizeof(uint64_t));
}

static int big(pebble_ctx *ctx, const void *arg, size_t size) {
  uint64_t bytes;
  unsigned char *p;
  if (size != sizeof bytes)
    return pebble_fail(ctx, 1, "expected a size");
  memcpy(&bytes, arg, sizeof bytes);
  shared_times->started = bench_now();
  if ((p = pebble_result_alloc(ctx, (size_t)bytes)) == NULL)
    return 1;
  shared_times->allocated = bench_now();
  memset(p, FILL, (size_t)bytes);
  shared_times->returned = bench_now();
  return 0;
}

/* ---- the bare reference, run in a small process of its own ---- */

/*
 * Prints "total start alloc fill read release" in seconds: total is
 * launch -> every word summed; the phases as for Pebble.
 */
static int bare_shm(size_t bytes) {
  volatile task_times *t;
  double t0, t_read, t1, t2;
  unsigned char *p;
  int done[2], status;
  pid_t pid;
  char c;
  t = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
           -1, 0);
  if (t == MAP_FAILED || pipe(done) != 0)
    bench_die("bare: mmap or pipe failed");
  /* Plain C shares memory made before the fork: the buffer is mapped
   * first.  Its pages are made at once where that is possible (a memory
   * file given all its pages with fallocate: on Linux the fastest way we
   * measured, as in pebble_result_alloc), else as the child writes them
   * (shared anonymous memory). */
  t0 = bench_now();
  p = MAP_FAILED;
#if defined(__linux__) && defined(MFD_CLOEXEC)
  {
    int fd = memfd_create("bare", MFD_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, (off_t)bytes) == 0 &&
        fallocate(fd, 0, 0, (off_t)bytes) == 0)
      p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
      close(fd);
  }
#endif
  if (p == MAP_FAILED)
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
  if (p == MAP_FAILED)
    bench_die("bare: cannot map %zu bytes", bytes);
  t->allocated = bench_now();
  if ((pid = fork()) < 0)
    bench_die("bare: fork failed");
  if (pid == 0) {
    close(done[0]);
    t->started = bench_now();
    memset(p, FILL, bytes);
    t->returned = bench_now();
    if (write(done[1], "x", 1) != 1)
      _exit(1);
    _exit(0);
  }
  close(done[1]);
  if (read(done[0], &c, 1) != 1)
    bench_die("bare: the child did not finish");
  t_read = bench_now();
  if (sum_words(p, bytes) != expected_sum(bytes))
    bench_die("bare: wrong bytes");
  t1 = bench_now();
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    bench_die("bare: the child failed");
  munmap(p, bytes);
  t2 = bench_now();
  printf("%.9f %.9f %.9f %.9f %.9f %.9f\n", t1 - t0, t->started - t0,
         t->allocated - t0, t->returned - t->started, t1 - t_read, t2 - t1);
  return 0;
}

/* Runs this program again as the bare reference; fills the six figures. */
static void run_bare(const char *self, size_t bytes, double out[6]) {
  char arg[32], line[256];
  char *argv[] = {(char *)self, "--bare-shm", arg, NULL};
  snprintf(arg, sizeof arg, "%zu", bytes);
  bench_run_line(argv, line, sizeof line, "the bare reference");
  if (sscanf(line, "%lf %lf %lf %lf %lf %lf", &out[0], &out[1], &out[2],
             &out[3], &out[4], &out[5]) != 6)
    bench_die("the bare reference gave no figures");
}

/* ---- Pebble's side and memcpy ---- */

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

/* One launch: end to end, the hand-over, and the phases. */
static void run_pebble(pebble_task *task, size_t bytes, double *e2e,
                       double *handover, double phase[6]) {
  pebble_future *f;
  const unsigned char *data;
  uint64_t arg = bytes;
  size_t size;
  double t0, t_got, t1, t2;
  memset((void *)shared_times, 0, sizeof *shared_times);
  t0 = bench_now();
  if (pebble_task_launch(task, &arg, sizeof arg, &f) != PEBBLE_OK ||
      pebble_future_get(f, PEBBLE_FOREVER, (const void **)&data, &size) !=
          PEBBLE_OK)
    bench_die("big result: %s", pebble_last_error());
  t_got = bench_now();
  if (size != bytes || data[0] != FILL || data[size - 1] != FILL ||
      shared_times->returned == 0)
    bench_die("big result: wrong bytes");
  if (sum_words(data, size) != expected_sum(size))
    bench_die("big result: wrong sum");
  t1 = bench_now();
  pebble_future_release(f);
  t2 = bench_now();
  *e2e = t1 - t0;
  *handover = t_got - shared_times->returned;
  phase[0] = t1 - t0;
  phase[1] = shared_times->started - t0;
  phase[2] = shared_times->allocated - shared_times->started;
  phase[3] = shared_times->returned - shared_times->allocated;
  phase[4] = t1 - t_got;
  phase[5] = t2 - t1;
}

static double run_memcpy(unsigned char *dst, const unsigned char *src,
                         size_t bytes) {
  double t0, t1;
  memset(dst, 0, bytes); /* surely faulted in */
  t0 = bench_now();
  memcpy(dst, src, bytes);
  t1 = bench_now();
  if (dst[bytes - 1] != FILL)
    bench_die("memcpy?");
  return t1 - t0;
}

/* The floor: fill and sum dst in place (its pages are in); seconds. */
static double run_floor(unsigned char *dst, size_t bytes) {
  double t0, t1;
  t0 = bench_now();
  memset(dst, FILL, bytes);
  if (sum_words(dst, bytes) != expected_sum(bytes))
    bench_die("floor: wrong sum");
  t1 = bench_now();
  return t1 - t0;
}

static double median_of(double *const *v, size_t k, size_t reps) {
  return bench_median(v[k], reps);
}

int main(int argc, char **argv) {
  bench_opts o;
  pebble_task *task;
  unsigned char *src, *dst;
  double *pe_e2e, *pe_hand, *bare_e2e, *mc, *floor_bw, *pph[6], *bph[6];
  size_t bytes, r, k, reps;
  char self[4096];
  ssize_t len;

  if (argc == 3 && strcmp(argv[1], "--bare-shm") == 0)
    return bare_shm((size_t)strtoull(argv[2], NULL, 10));
  bench_parse(argc, argv, &o, 5);
  reps = (size_t)o.reps;
  bytes = o.quick ? (size_t)4 << 20 : (size_t)1 << 30;
  if ((len = readlink("/proc/self/exe", self, sizeof self - 1)) <= 0)
    bench_die("cannot find this program (/proc/self/exe)");
  self[len] = '\0';
  shared_times = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared_times == MAP_FAILED)
    bench_die("mmap failed");
  pe_e2e = calloc(reps, sizeof(double));
  pe_hand = calloc(reps, sizeof(double));
  bare_e2e = calloc(reps, sizeof(double));
  mc = calloc(reps, sizeof(double));
  floor_bw = calloc(reps, sizeof(double));
  for (k = 0; k < 6; k++) {
    pph[k] = calloc(reps, sizeof(double));
    bph[k] = calloc(reps, sizeof(double));
  }
  src = faulted(bytes, FILL);
  dst = faulted(bytes, 0);
  if (pebble_task_create(&task, PEBBLE_PROCESS, big, NULL) != PEBBLE_OK)
    bench_die("pebble_task_create: %s", pebble_last_error());

  { /* the same small untimed run for each: the library's threads start,
       the program's pages are in */
    double e, h, ph[6];
    run_pebble(task, (size_t)4 << 20, &e, &h, ph);
    run_bare(self, (size_t)4 << 20, ph);
  }

  for (r = 0; r < reps; r++) {
    double ph[6], bp[6], e, h;
    size_t turn;
    for (turn = 0; turn < 4; turn++) {
      switch ((turn + r) % 4) {
      case 0:
        run_pebble(task, bytes, &e, &h, ph);
        pe_e2e[r] = (double)bytes / e / 1e9;
        pe_hand[r] = (double)bytes / h / 1e9;
        for (k = 0; k < 6; k++)
          pph[k][r] = ph[k];
        break;
      case 1:
        run_bare(self, bytes, bp);
        bare_e2e[r] = (double)bytes / bp[0] / 1e9;
        for (k = 0; k < 6; k++)
          bph[k][r] = bp[k];
        break;
      case 2:
        mc[r] = (double)bytes / run_memcpy(dst, src, bytes) / 1e9;
        break;
      default:
        floor_bw[r] = (double)bytes / run_floor(dst, bytes) / 1e9;
      }
    }
  }

  bench_section("6. big result, end to end: %zu MiB from a process task, "
                "launch -> every byte read (summed) in the parent; "
                "%zu repetitions",
                bytes >> 20, reps);
  {
    bench_ratio vs_bare =
        bench_ratio_of(pe_e2e, bare_e2e, reps, BENCH_HIGHER);
    bench_ratio vs_memcpy = bench_ratio_of(pe_e2e, mc, reps, BENCH_HIGHER);
    bench_ratio vs_floor =
        bench_ratio_of(pe_e2e, floor_bw, reps, BENCH_HIGHER);
    bench_ratio floor_memcpy =
        bench_ratio_of(floor_bw, mc, reps, BENCH_HIGHER);
    bench_row("pebble task, end to end", "bandwidth",
              bench_median(pe_e2e, reps), "GB/s", -1, NULL);
    bench_row("bare fork+MAP_SHARED, own proc", "bandwidth",
              bench_median(bare_e2e, reps), "GB/s", -1, &vs_bare);
    bench_row("memcpy, pre-faulted buffer", "bandwidth",
              bench_median(mc, reps), "GB/s", -1, &vs_memcpy);
    bench_row("floor: fill + sum, one process", "bandwidth",
              bench_median(floor_bw, reps), "GB/s", -1, &vs_floor);
    bench_note("floor: the task's fill and the parent's sum in this one "
               "process on memory faulted in beforehand (no process, no "
               "hand-over, no page fault): %.2fx memcpy (worst rep %.2fx)",
               floor_memcpy.median, floor_memcpy.worst);
    bench_note("pebble phases (ms, medians): launch->task start %.1f, "
               "result_alloc %.1f, fill %.1f, return->read all %.1f; "
               "release %.1f (not in the figure)",
               median_of(pph, 1, reps) * 1e3, median_of(pph, 2, reps) * 1e3,
               median_of(pph, 3, reps) * 1e3, median_of(pph, 4, reps) * 1e3,
               median_of(pph, 5, reps) * 1e3);
    bench_note("bare phases (ms, medians): memory made and mapped %.1f, "
               "fork->child start %.1f, fill %.1f, read all %.1f; munmap "
               "%.1f (not in the figure)",
               median_of(bph, 2, reps) * 1e3,
               (median_of(bph, 1, reps) - median_of(bph, 2, reps)) * 1e3,
               median_of(bph, 3, reps) * 1e3, median_of(bph, 4, reps) * 1e3,
               median_of(bph, 5, reps) * 1e3);
    bench_target(vs_memcpy.median >= 0.5,
                 "end to end >= 0.5x memcpy bandwidth: %.2fx (worst rep "
                 "%.2fx; %zu of %zu repetitions meet it); against the bare "
                 "fork + shared memory %.2fx (worst rep %.2fx); the floor "
                 "%.2fx memcpy%s",
                 vs_memcpy.median, vs_memcpy.worst,
                 bench_ratio_meeting(&vs_memcpy, 0.5), vs_memcpy.n,
                 vs_bare.median, vs_bare.worst, floor_memcpy.median,
                 floor_memcpy.median < 0.5
                     ? ", below the target: out of reach here for a result "
                       "read once its task has ended"
                     : "");
  }
  bench_section("6. big result, hand-over: %zu MiB, from the task's return "
                "to pebble_future_get() giving the bytes (first and last "
                "checked); %zu repetitions",
                bytes >> 20, reps);
  {
    bench_ratio q = bench_ratio_of(pe_hand, mc, reps, BENCH_HIGHER);
    bench_row("pebble task, hand-over", "bandwidth",
              bench_median(pe_hand, reps), "GB/s", -1, NULL);
    bench_row("memcpy, pre-faulted buffer", "bandwidth",
              bench_median(mc, reps), "GB/s", -1, &q);
    bench_note("the hand-over is a mapping of the task's memory file, not "
               "a copy: its figure is size / the time of one message");
  }
  pebble_task_destroy(task);
  munmap(src, bytes);
  munmap(dst, bytes);
  for (k = 0; k < 6; k++) {
    free(pph[k]);
    free(bph[k]);
  }
  free(pe_e2e);
  free(pe_hand);
  free(bare_e2e);
  free(mc);
  free(floor_bw);
  return 0;
}
