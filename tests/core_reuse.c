/* SPDX-License-Identifier: Apache-2.0 */
/* core_reuse.c -- what the speed work must not break: reused task blocks
 * carry nothing over, arguments on both sides of the in-block limit travel
 * intact, a destroyed pool gives its spare memory back, and the spinning
 * setting is read and checked. */
#include "core_util.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <stdatomic.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* The tests about CPU time and heap figures have nothing to say under
 * valgrind (under_valgrind, core_util.h). */

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  return pebble_result_set(ctx, arg, size);
}
static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  return 0;
}
static int sleeper(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  while (pebble_should_stop(ctx) == PEBBLE_OK)
    usleep(1000);
  return 0;
}

static pebble_pool *make(pebble_kind kind, unsigned workers) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  CU_ASSERT_FATAL(pebble_pool_create(&p, kind, &o) == PEBBLE_OK);
  return p;
}

/* Sizes around the in-block limit (256 bytes) and well past it. */
static void test_argument_sizes(void) {
  static const size_t sizes[] = {0, 1, 8, 255, 256, 257, 4096, 1 << 20};
  pebble_kind kinds[] = {PEBBLE_THREAD, PEBBLE_PROCESS};
  unsigned char *buf = malloc((size_t)1 << 20);
  size_t i, k, j;
  CU_ASSERT_FATAL(buf != NULL);
  for (j = 0; j < (size_t)1 << 20; j++)
    buf[j] = (unsigned char)(j * 7 + 3);
  for (k = 0; k < 2; k++) {
    pebble_pool *p = make(kinds[k], 2);
    pebble_future *f[sizeof sizes / sizeof sizes[0]];
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
      CU_ASSERT_EQUAL(pebble_pool_schedule(p, echo, sizes[i] ? buf : NULL,
                                           sizes[i], NULL, &f[i]),
                      PEBBLE_OK);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      const void *data = NULL;
      size_t size = 99;
      CU_ASSERT_EQUAL(pebble_future_get(f[i], PEBBLE_SEC(60), &data, &size),
                      PEBBLE_OK);
      CU_ASSERT_EQUAL(size, sizes[i]);
      CU_ASSERT(size != sizes[i] || memcmp(data, buf, size) == 0);
      pebble_future_release(f[i]);
    }
    pebble_pool_destroy(p);
  }
  free(buf);
}

static atomic_int callbacks_run;
static void count_callback(pebble_future *f, void *user_data) {
  (void)f, (void)user_data;
  atomic_fetch_add(&callbacks_run, 1);
}

/* A first burst leaves names, callbacks, results and cancellations in its
 * blocks; a second burst reusing them must see none of it. */
static void test_reused_blocks_start_clean(void) {
  enum { N = 2000 };
  pebble_pool *p = make(PEBBLE_THREAD, 2);
  pebble_future **f = calloc(N, sizeof *f), *hold;
  pebble_task_options o;
  size_t i;
  int64_t v;
  CU_ASSERT_FATAL(f != NULL);
  /* One long task keeps a worker busy so that some of the first burst is
   * still queued when it is cancelled. */
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, sleeper, NULL, 0, NULL, &hold),
                  PEBBLE_OK);
  pebble_task_options_init(&o);
  o.name = "first-burst";
  o.callback = count_callback;
  for (i = 0; i < N; i++) {
    v = (int64_t)i;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, echo, &v, sizeof v, &o, &f[i]),
                    PEBBLE_OK);
  }
  for (i = 0; i < N; i += 2)
    pebble_future_cancel(f[i]);
  pebble_future_cancel(hold);
  CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 0; i < N; i++)
    pebble_future_release(f[i]);
  pebble_future_release(hold);
  /* Callbacks of the first burst may still be running on the callback
   * thread: wait until all N have (each future has exactly one). */
  for (i = 0; i < 6000 && atomic_load(&callbacks_run) < N; i++)
    usleep(10000);
  CU_ASSERT_EQUAL(atomic_load(&callbacks_run), N);

  for (i = 0; i < N; i++) {
    v = (int64_t)i * 3;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, echo, &v, sizeof v, NULL, &f[i]),
                    PEBBLE_OK);
  }
  for (i = 0; i < N; i++) {
    int64_t out = -1;
    const void *data = NULL;
    size_t size = 0;
    /* echo's result is raw bytes: the typed getter would refuse it. */
    CU_ASSERT_EQUAL(pebble_future_get(f[i], PEBBLE_SEC(60), &data, &size),
                    PEBBLE_OK);
    if (size == sizeof out)
      memcpy(&out, data, sizeof out);
    CU_ASSERT_EQUAL(out, (int64_t)i * 3);
    CU_ASSERT_PTR_NULL(pebble_future_name(f[i]));
    CU_ASSERT_EQUAL(pebble_future_state(f[i]), PEBBLE_DONE);
    CU_ASSERT_STRING_EQUAL(pebble_future_message(f[i]), "");
    pebble_future_release(f[i]);
  }
  CU_ASSERT_EQUAL(atomic_load(&callbacks_run), N); /* none added */
  pebble_pool_destroy(p);
  free(f);
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Whether heap_in_use() sees this process's allocations (a sanitizer's
 * allocator does not report to mallinfo2; valgrind's neither); if not,
 * the test is skipped, saying why. */
static int heap_reports(void) {
  size_t probe_before = heap_in_use();
  char *volatile probe = malloc(1 << 20); /* volatile: kept as written */
  int reported = probe != NULL && heap_in_use() >= probe_before + (1 << 20);
  free(probe);
  return reported && !under_valgrind();
}

static int heap_readable(const char *test) {
  if (heap_reports())
    return 1;
  skip_test(test, "this malloc does not report to mallinfo2, or runs "
                  "under valgrind");
  return 0;
}

/* Spare blocks are kept while a pool lives, and destroying it gives them
 * back. */
static void test_destroy_gives_memory_back(void) {
  enum { N = 20000 };
  pebble_future **f = calloc(N, sizeof *f);
  pebble_pool *p;
  size_t before, kept, after, i;
  CU_ASSERT_FATAL(f != NULL);
  if (!heap_readable(__func__)) {
    free(f);
    return;
  }
  p = make(PEBBLE_THREAD, 2); /* the library's own state exists now */
  pebble_pool_destroy(p);
  before = heap_in_use();
  p = make(PEBBLE_THREAD, 2);
  for (i = 0; i < N; i++)
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                    PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 0; i < N; i++)
    pebble_future_release(f[i]);
  kept = heap_in_use();
  pebble_pool_destroy(p);
  after = heap_in_use();
  /* Most of the N blocks were kept for reuse... */
  CU_ASSERT(kept > before + (size_t)N * 128);
  /* ...and all of them went back with the pool (threads' stacks are not
   * on the heap; allow a little for the allocator's own bookkeeping). */
  CU_ASSERT(after < before + 64 * 1024);
  if (after >= before + 64 * 1024)
    printf("(heap in use: %zu before, %zu with spares, %zu after) ", before,
           kept, after);
  free(f);
}

/* Blocks come from chunks (the first 16 of 64 KiB, the next of 8 MiB in
 * 10 MiB of heap): a future the application keeps pins its own chunk,
 * not the others; once it is released, the next pool destroyed gives
 * that chunk back too.  60,000 tasks fill the 16 small chunks and two
 * big ones (21 MiB of heap); the first and the last future pin a small
 * one and a big one. */
#define PINNED_MAX (3 * 64 * 1024 + 10 * 1024 * 1024)
static void test_kept_future_pins_only_its_chunk(void) {
  enum { N = 60000 };
  pebble_future **f = calloc(N, sizeof *f);
  pebble_pool *p;
  size_t before, pinned, after, i;
  CU_ASSERT_FATAL(f != NULL);
  if (!heap_readable(__func__)) {
    free(f);
    return;
  }
  p = make(PEBBLE_THREAD, 2);
  pebble_pool_destroy(p);
  before = heap_in_use();
  p = make(PEBBLE_THREAD, 2);
  for (i = 0; i < N; i++)
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                    PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(60)), PEBBLE_OK);
  for (i = 1; i + 1 < N; i++) /* the first and the last are kept */
    pebble_future_release(f[i]);
  pebble_pool_destroy(p);
  pinned = heap_in_use();
  CU_ASSERT(pinned < before + PINNED_MAX);
  CU_ASSERT_EQUAL(pebble_future_status(f[0]), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_status(f[N - 1]), PEBBLE_OK);
  pebble_future_release(f[0]);
  pebble_future_release(f[N - 1]);
  p = make(PEBBLE_THREAD, 2);
  pebble_pool_destroy(p);
  after = heap_in_use();
  CU_ASSERT(after < before + 64 * 1024);
  if (pinned >= before + PINNED_MAX || after >= before + 64 * 1024)
    printf("(heap in use: %zu before, %zu with two kept, %zu after) ",
           before, pinned, after);
  free(f);
}

/* While the pool lives, spare blocks beyond half the peak go back once
 * the peak is a second old (looked at as futures are released), chunk by
 * chunk as their last block comes back. */
static void test_spares_decay_while_the_pool_lives(void) {
  enum { N = 20000, BATCH = 64, BATCHES = 40 };
  pebble_future **f = calloc(N, sizeof *f);
  pebble_pool *p;
  size_t before, kept, after, i;
  int k;
  CU_ASSERT_FATAL(f != NULL);
  if (!heap_readable(__func__)) {
    free(f);
    return;
  }
  p = make(PEBBLE_THREAD, 2);
  for (i = 0; i < N; i++)
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                    PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(60)), PEBBLE_OK);
  before = heap_in_use();
  for (i = 0; i < N; i++)
    pebble_future_release(f[i]);
  kept = heap_in_use(); /* the spares: nothing went back yet */
  CU_ASSERT(kept + (size_t)N * 64 > before);
  usleep(1200 * 1000);
  /* 2,560 releases: at least one look at the clock, a second on. */
  for (k = 0; k < BATCHES; k++) {
    for (i = 0; i < BATCH; i++)
      CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                      PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_wait_all(f, BATCH, PEBBLE_SEC(60)), PEBBLE_OK);
    for (i = 0; i < BATCH; i++)
      pebble_future_release(f[i]);
  }
  after = heap_in_use();
  /* About half the blocks went (a whole chunk is about 64 KiB). */
  CU_ASSERT(after + (size_t)N / 4 * 128 < kept);
  if (after + (size_t)N / 4 * 128 >= kept)
    printf("(heap in use: %zu with spares, %zu a second later) ", kept,
           after);
  pebble_pool_destroy(p);
  free(f);
}

typedef struct release_share {
  pebble_future **f;
  size_t from, to;
} release_share;

static void *release_some(void *arg) {
  release_share *r = arg;
  size_t i;
  for (i = r->from; i < r->to; i++)
    pebble_future_release(r->f[i]);
  return NULL;
}

/* Futures released by several threads at once while the pool keeps
 * scheduling: every block still comes back (a block lost or counted
 * twice would keep its chunk when the pool is destroyed). */
static void test_releases_from_many_threads(void) {
  enum { N = 40000, RELEASERS = 4, ROUNDS = 3 };
  pebble_future **f = calloc(N, sizeof *f);
  pebble_pool *p;
  size_t before, after, i;
  int round, readable;
  CU_ASSERT_FATAL(f != NULL);
  /* Without a readable heap the releases still race (for the thread
   * sanitizer's eyes); only the count at the end is left out. */
  if (!(readable = heap_reports()))
    printf("(the heap is not readable here: the count at the end is left "
           "out) ");
  p = make(PEBBLE_THREAD, 2);
  pebble_pool_destroy(p);
  before = heap_in_use();
  p = make(PEBBLE_THREAD, 2);
  for (round = 0; round < ROUNDS; round++) {
    pthread_t t[RELEASERS];
    release_share share[RELEASERS];
    int k;
    for (i = 0; i < N / 2; i++)
      CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                      PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_wait_all(f, N / 2, PEBBLE_SEC(60)), PEBBLE_OK);
    for (k = 0; k < RELEASERS; k++) {
      share[k].f = f;
      share[k].from = (size_t)k * (N / 2 / RELEASERS);
      share[k].to = share[k].from + N / 2 / RELEASERS;
      CU_ASSERT_FATAL(pthread_create(&t[k], NULL, release_some, &share[k]) ==
                      0);
    }
    /* Scheduling takes blocks while the others give theirs back. */
    for (i = N / 2; i < N; i++)
      CU_ASSERT_EQUAL(pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]),
                      PEBBLE_OK);
    for (k = 0; k < RELEASERS; k++)
      pthread_join(t[k], NULL);
    CU_ASSERT_EQUAL(pebble_wait_all(f + N / 2, N / 2, PEBBLE_SEC(60)),
                    PEBBLE_OK);
    for (i = N / 2; i < N; i++) {
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_OK);
      pebble_future_release(f[i]);
    }
  }
  pebble_pool_destroy(p);
  after = heap_in_use();
  if (readable) {
    CU_ASSERT(after < before + 64 * 1024);
    if (after >= before + 64 * 1024)
      printf("(heap in use: %zu before, %zu after) ", before, after);
  }
  free(f);
}
#else
static void test_destroy_gives_memory_back(void) {
  skip_test(__func__, "needs glibc's mallinfo2 to read the heap in use");
}
static void test_kept_future_pins_only_its_chunk(void) {
  skip_test(__func__, "needs glibc's mallinfo2 to read the heap in use");
}
static void test_releases_from_many_threads(void) {
  skip_test(__func__, "needs glibc's mallinfo2 to read the heap in use");
}
static void test_spares_decay_while_the_pool_lives(void) {
  skip_test(__func__, "needs glibc's mallinfo2 to read the heap in use");
}
#endif

/* Schedulers on several pools at once run out of spare blocks together
 * as a chunk is used up: each makes a new chunk without the lock, the
 * first placed is used and the others are given back.  Past the first
 * 16 chunks these are big ones, whose address is not malloc's: giving
 * one back must free what malloc returned (glibc aborts otherwise).
 * 6 schedulers x 25,000 tasks cross three big chunks. */
#define CHUNK_RACERS 6
#define CHUNK_RACE_TASKS 25000
static void *schedule_many(void *arg) {
  pebble_future **f = arg;
  pebble_pool *p = make(PEBBLE_THREAD, 1);
  size_t i, bad = 0;
  for (i = 0; i < CHUNK_RACE_TASKS; i++)
    if (pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]) != PEBBLE_OK)
      f[i] = NULL, bad++;
  if (bad == 0 &&
      pebble_wait_all(f, CHUNK_RACE_TASKS, PEBBLE_SEC(120)) != PEBBLE_OK)
    bad++;
  for (i = 0; i < CHUNK_RACE_TASKS; i++)
    pebble_future_release(f[i]);
  pebble_pool_destroy(p);
  return (void *)(uintptr_t)bad;
}
static void test_racing_schedulers_new_chunks(void) {
  pthread_t th[CHUNK_RACERS];
  pebble_future **f[CHUNK_RACERS];
  void *bad;
  int j, round;
  for (round = 0; round < 3; round++) {
    for (j = 0; j < CHUNK_RACERS; j++) {
      f[j] = calloc(CHUNK_RACE_TASKS, sizeof *f[j]);
      CU_ASSERT_FATAL(f[j] != NULL);
      CU_ASSERT_EQUAL_FATAL(pthread_create(&th[j], NULL, schedule_many, f[j]),
                            0);
    }
    for (j = 0; j < CHUNK_RACERS; j++) {
      pthread_join(th[j], &bad);
      CU_ASSERT_EQUAL((uintptr_t)bad, 0);
      free(f[j]);
    }
  }
}

/* PEBBLE_SPIN is read once per process image (a forked child inherits
 * what its parent read): this test runs first, each setting in a child. */
static char logged[512];
static void keep_log(int level, const char *message, void *user) {
  (void)user;
  if (level == PEBBLE_LOG_WARN)
    snprintf(logged, sizeof logged, "%s", message);
}
static int nap(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  usleep(30000);
  return 0;
}
static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
/* CPU time this thread spends waiting for 20 tasks of 30 ms each: a spin
 * that gives up long before its task ends leaves the budget as it is. */
static double waiting_cpu_ms(void) {
  pebble_pool *p;
  pebble_future *f;
  double cpu = 0, t0;
  int i, k;
  if (pebble_pool_create(&p, PEBBLE_THREAD, NULL) != PEBBLE_OK)
    _exit(10);
  for (i = 0; i < 20; i++) {
    if (pebble_pool_schedule(p, nap, NULL, 0, NULL, &f) != PEBBLE_OK)
      _exit(11);
    /* Spinning is for a task that runs: a queued one is not watched. */
    for (k = 0; k < 100000 && pebble_future_state(f) == PEBBLE_PENDING; k++)
      usleep(200);
    t0 = thread_cpu_ms();
    if (pebble_future_wait(f, PEBBLE_SEC(60)) != PEBBLE_OK ||
        pebble_future_status(f) != PEBBLE_OK)
      _exit(12);
    cpu += thread_cpu_ms() - t0;
    pebble_future_release(f);
  }
  pebble_pool_destroy(p);
  return cpu;
}
static void spin_off(void) {
  double cpu;
  setenv("PEBBLE_SPIN", "0", 1);
  cpu = waiting_cpu_ms();
  if (cpu >= 10) { /* sleeping waits cost microseconds each */
    printf("(%.1f ms of CPU waiting with spinning off) ", cpu);
    _exit(13);
  }
}
static void spin_long(void) {
  cpu_set_t set;
  double cpu;
  setenv("PEBBLE_SPIN", "1000", 1);
  cpu = waiting_cpu_ms();
  /* Each wait watches 1 ms of a 30 ms task before sleeping: about 20 ms
   * of CPU, less when the machine is busy; the default 50 us would make
   * 1 ms.  A process allowed one CPU never spins. */
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < 2)
    return;
  if (cpu < 3) {
    printf("(%.1f ms of CPU waiting with 1 ms spins) ", cpu);
    _exit(14);
  }
}
/* A bad value is refused as a bad PEBBLE_START_METHOD is: every call
 * that starts the library fails, naming the variable.  Changed after the
 * library started, it is logged and the default used. */
static void spin_bad(void) {
  pebble_pool *p;
  setenv("PEBBLE_SPIN", "fast", 1);
  if (pebble_pool_create(&p, PEBBLE_THREAD, NULL) != PEBBLE_EINVAL)
    _exit(15);
  if (strstr(pebble_last_error(), "PEBBLE_SPIN='fast'") == NULL)
    _exit(16);
  setenv("PEBBLE_SPIN", "50", 1);
  if (pebble_init() != PEBBLE_OK)
    _exit(17);
  setenv("PEBBLE_SPIN", "fast", 1);
  pebble_set_log_handler(keep_log, NULL, PEBBLE_LOG_WARN);
  if (waiting_cpu_ms() < 0)
    _exit(18);
  if (strstr(logged, "PEBBLE_SPIN='fast'") == NULL)
    _exit(19);
}
static void test_spin_setting(void) {
  int tries, spun = 0;
  CU_ASSERT(in_child(spin_bad));
  if (under_valgrind()) {
    skip_test(__func__, "CPU times mean nothing under valgrind");
    return;
  }
  CU_ASSERT(in_child(spin_off));
  /* A spin is seen as CPU time, which a machine loaded well past its CPU
   * count hands out sparingly (and a spin cut short by preemption shrinks
   * the next ones): up to three tries, each in a fresh child.  A setting
   * that is not applied fails all three (about 1 ms each). */
  for (tries = 0; tries < 3 && !spun; tries++)
    spun = in_child(spin_long);
  CU_ASSERT(spun);
}

/* An idle worker faults pages in with the pool lock let go: a close or a
 * stop that comes meanwhile must still reach it.  Each round queues a
 * few more tasks than the first 16 chunks hold (5,680 blocks) on a new
 * pool, so that a big chunk is cut last and the workers fault its pages
 * in, waits for them and at once closes or stops the pool: join must
 * return.  Big chunks are mappings of their own here (M_MMAP_THRESHOLD),
 * so that each round's pages are fresh and take a while to fault in.
 * (The closes land around the faulting, not in the few instructions
 * between a look that finds nothing to fault in and the worker's next
 * look at the pool, where a lost wake-up once was: the race test in
 * core_pool is the one that caught that.) */
static void close_while_faulting_in(void) {
  enum { ROUNDS = 40, FROM = 5640, STEP = 4, N = FROM + ROUNDS * STEP };
  pebble_future **f = malloc(N * sizeof *f);
  int round;
  size_t i, n;
  if (f == NULL)
    _exit(30);
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
  for (round = 0; round < ROUNDS; round++) {
    pebble_pool *p = make(PEBBLE_THREAD, 2);
    n = FROM + (size_t)round * STEP;
    for (i = 0; i < n; i++)
      if (pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]) != PEBBLE_OK)
        _exit(31);
    if (pebble_wait_all(f, n, PEBBLE_SEC(60)) != PEBBLE_OK)
      _exit(32);
    if ((round % 2 ? pebble_pool_stop(p) : pebble_pool_close(p)) != PEBBLE_OK)
      _exit(33);
    if (pebble_pool_join(p, PEBBLE_SEC(20)) != PEBBLE_OK) {
      printf("(round %d: join after %s did not return: %s) ", round,
             round % 2 ? "stop" : "close", pebble_last_error());
      _exit(34);
    }
    for (i = 0; i < n; i++)
      pebble_future_release(f[i]);
    pebble_pool_destroy(p);
  }
  free(f);
}
static void test_close_while_faulting_in(void) {
  CU_ASSERT(in_child(close_while_faulting_in));
}

/* Idle workers fault in the pages of the chunk blocks are being cut from,
 * ahead of the thread that cuts them, and make the next chunk
 * (pb_blocks_prefault): a thread that schedules one task at a time, each
 * waited for, takes no page fault of its own for 100,000 blocks past the
 * first 16 chunks (18 MiB: 8 huge pages, or 4,500 small ones without
 * them).  In a child, before this process uses the library: its memory
 * is fresh.  Linux (MADV_POPULATE_WRITE, per-thread fault counts). */
#if defined(__linux__) && defined(RUSAGE_THREAD) && defined(MADV_POPULATE_WRITE)
static long thread_faults(void) {
  struct rusage ru;
  return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt : -1;
}
static void cut_one_at_a_time(void) {
  enum { FIRST = 8000, N = 100000 };
  pebble_future **f = malloc((FIRST + N) * sizeof *f);
  pebble_pool *p;
  long before = 0, faults;
  size_t i;
  if (f == NULL)
    _exit(20);
  /* Its pages faulted in now (a memset of zeros may become a calloc). */
  memset(f, 0xff, (FIRST + N) * sizeof *f);
  if (pebble_pool_create(&p, PEBBLE_THREAD, NULL) != PEBBLE_OK)
    _exit(21);
  for (i = 0; i < FIRST + N; i++) {
    if (i == FIRST)
      before = thread_faults();
    /* Kept, not released: each block is a new one. */
    if (pebble_pool_schedule(p, noop, NULL, 0, NULL, &f[i]) != PEBBLE_OK ||
        pebble_future_wait(f[i], PEBBLE_SEC(60)) != PEBBLE_OK)
      _exit(22);
  }
  faults = thread_faults() - before;
  for (i = 0; i < FIRST + N; i++)
    pebble_future_release(f[i]);
  pebble_pool_destroy(p);
  free(f);
  /* None here; without the workers' help 10 (8 huge pages), without the
   * chunks made ahead 4, without huge pages thousands. */
  if (faults > 2) {
    printf("(the scheduling thread took %ld page faults) ", faults);
    _exit(23);
  }
}
static void test_idle_workers_fault_pages_in(void) {
  if (under_valgrind() || UNDER_ASAN || UNDER_TSAN) {
    /* Their shadow memory faults in with every block written. */
    skip_test(__func__, "page faults are the tool's own under it");
    return;
  }
  CU_ASSERT(in_child(cut_one_at_a_time));
}
#else
static void test_idle_workers_fault_pages_in(void) {
  skip_test(__func__, "needs Linux's MADV_POPULATE_WRITE and RUSAGE_THREAD");
}
#endif

int main(void) {
  CU_TestInfo tests[] = {
      {"PEBBLE_SPIN: off, long, invalid", test_spin_setting},
      {"idle workers fault in the pages blocks are cut from",
       test_idle_workers_fault_pages_in},
      {"a close or a stop reaches workers faulting pages in",
       test_close_while_faulting_in},
      {"arguments around the in-block limit, both kinds",
       test_argument_sizes},
      {"reused blocks start clean", test_reused_blocks_start_clean},
      {"a destroyed pool gives its spare memory back",
       test_destroy_gives_memory_back},
      {"a kept future pins only its own chunk",
       test_kept_future_pins_only_its_chunk},
      {"racing schedulers making new chunks at once",
       test_racing_schedulers_new_chunks},
      {"futures released by several threads at once all come back",
       test_releases_from_many_threads},
      {"spare blocks decay while the pool lives",
       test_spares_decay_while_the_pool_lives},
      CU_TEST_INFO_NULL};
  return run_suite("reuse", tests);
}
