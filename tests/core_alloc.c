/* SPDX-License-Identifier: Apache-2.0 */
/* core_alloc.c -- allocation failure, walked through whole cycles.
 *
 * Each scenario runs one cycle: (pool create ->) schedule -> add a
 * callback -> get -> release -> (pool destroy ->) shutdown, with a thread
 * pool, a process pool, one-shot thread tasks and one-shot process tasks.
 * The pools replace their worker after each task (max_tasks 1) and are
 * destroyed with one more task still running, which the destroy cancels.
 * A clean cycle counts its allocations, N; then for k = 1..N the cycle
 * runs again in a forked child in which the k-th allocation fails (mode
 * "k-th only"), or the k-th and every one after it ("from k on").  The
 * count covers every thread of the child, so the library's own threads
 * (manager, callback thread, pool workers) see failures too.  Every run
 * must end: every call returns PEBBLE_OK or a documented error with a
 * message, every future handed out resolves (with a message when it
 * fails), every callback added runs once, shutdown succeeds (at once or
 * after a retry), and nothing the library allocated during the cycle is
 * still allocated after shutdown.  A child that does not end within the
 * time limit hangs: it is killed and counted.
 *
 * The allocator is replaced by this program's own malloc, calloc, realloc,
 * posix_memalign and free, which forward to the next definition (the C
 * library's, or a sanitizer's).  The library calls them through the PLT,
 * so these win (tests/alloc-interposed.sh checks that no entry point the
 * library imports is left out).  mmap and munmap are replaced too: the
 * library's own mappings (a worker's shared page, a result file, the
 * guardian's table) count, fail and must be gone after shutdown like its
 * allocations; nobody else's do.
 * Processes the library forks inherit the failures switched off: only the
 * process under test fails.
 */
#include "core_util.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <stdarg.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

/* ================= the interposed allocator ================= */

/* Helpers of the replaced allocator (unused where it is left out). */
#define MAYBE_UNUSED __attribute__((unused))

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

/* dlsym may allocate before the real functions are known. */
static _Alignas(16) unsigned char boot_arena[1 << 16];
static atomic_size_t boot_used;
static atomic_int resolving;

MAYBE_UNUSED static void *boot_alloc(size_t n) {
  size_t at = atomic_fetch_add(&boot_used, (n + 15) & ~(size_t)15);
  if (at + n > sizeof boot_arena)
    return NULL;
  return boot_arena + at; /* zeroed: static storage, never reused */
}

MAYBE_UNUSED static int in_boot_arena(const void *p) {
  return (const unsigned char *)p >= boot_arena &&
         (const unsigned char *)p < boot_arena + sizeof boot_arena;
}

/* A symbol into a function pointer (memcpy: ISO C has no cast). */
#define NEXT(fp, name)                                                       \
  do {                                                                       \
    void *sym_ = dlsym(RTLD_NEXT, name);                                     \
    memcpy(&(fp), &sym_, sizeof sym_);                                       \
  } while (0)

MAYBE_UNUSED static void resolve_real(void) {
  if (atomic_exchange(&resolving, 1))
    return;
  NEXT(real_free, "free");
  NEXT(real_realloc, "realloc");
  NEXT(real_calloc, "calloc");
  NEXT(real_malloc, "malloc");
  NEXT(real_posix_memalign, "posix_memalign");
  NEXT(real_mmap, "mmap");
  NEXT(real_munmap, "munmap");
}

/* What the current run injects. */
static atomic_int armed;            /* count and fail in this process */
static atomic_long seen;            /* allocations since armed */
static long fail_at;                /* the k-th fails (0: none) */
static int fail_on;                 /* ... and every one after it */
static atomic_long failed;          /* allocations made to fail */
/* Besides: the library's allocations larger than this fail (0: none). */
static atomic_size_t fail_above;

static void note_failure(const void *caller);

/* AddressSanitizer's runtime cannot survive a failed allocation of its
 * own (it allocates through the C library when a thread starts, and
 * aborts): under it (UNDER_ASAN) only the library's own allocations
 * count and fail. */
static int caller_is_library(const void *ret);

MAYBE_UNUSED static int should_fail(const void *caller) {
  long n;
  if (!atomic_load_explicit(&armed, memory_order_relaxed) ||
      (UNDER_ASAN && !caller_is_library(caller)))
    return 0;
  n = atomic_fetch_add(&seen, 1) + 1;
  if (fail_at > 0 && (n == fail_at || (fail_on && n > fail_at))) {
    if (atomic_fetch_add(&failed, 1) == 0)
      note_failure(caller);
    errno = ENOMEM; /* as the real one says (glibc checks) */
    return 1;
  }
  return 0;
}

/* The library's live allocations made while armed: a set of addresses,
 * open addressing without deletion marks (a removed slot takes the
 * tombstone value), under a spin lock (held for a few instructions). */
#define LIVE_SLOTS (1u << 15)
#define TOMBSTONE ((uintptr_t)1)
static uintptr_t live_ptr[LIVE_SLOTS];
static uintptr_t live_caller[LIVE_SLOTS];
static atomic_flag live_lock = ATOMIC_FLAG_INIT;
static atomic_int tracking; /* from arm on, in the process under test */
static long live_count;
static int live_overflow;
/* Code ranges of the library and its backend modules. */
static struct {
  uintptr_t lo, hi;
} lib_ranges[16];
static int n_lib_ranges;

static int caller_is_library(const void *ret) {
  uintptr_t a = (uintptr_t)ret;
  int i;
  for (i = 0; i < n_lib_ranges; i++)
    if (a >= lib_ranges[i].lo && a < lib_ranges[i].hi)
      return 1;
  return 0;
}

static size_t slot_of(uintptr_t p) {
  return (size_t)((p >> 4) * 2654435761u) & (LIVE_SLOTS - 1);
}

static void live_lock_take(void) {
  while (atomic_flag_test_and_set_explicit(&live_lock, memory_order_acquire))
    ;
}
static void live_lock_give(void) {
  atomic_flag_clear_explicit(&live_lock, memory_order_release);
}

MAYBE_UNUSED static void live_add(void *p, const void *caller) {
  size_t i, n;
  if (p == NULL || !atomic_load_explicit(&armed, memory_order_relaxed) ||
      !caller_is_library(caller))
    return;
  live_lock_take();
  for (i = slot_of((uintptr_t)p), n = 0; n < LIVE_SLOTS;
       i = (i + 1) & (LIVE_SLOTS - 1), n++)
    if (live_ptr[i] == 0 || live_ptr[i] == TOMBSTONE) {
      live_ptr[i] = (uintptr_t)p;
      live_caller[i] = (uintptr_t)caller;
      live_count++;
      break;
    }
  if (n == LIVE_SLOTS)
    live_overflow = 1;
  live_lock_give();
}

MAYBE_UNUSED static void live_remove(void *p) {
  size_t i, n;
  if (p == NULL || !atomic_load_explicit(&tracking, memory_order_relaxed))
    return;
  live_lock_take();
  if (live_count > 0)
    for (i = slot_of((uintptr_t)p), n = 0; n < LIVE_SLOTS && live_ptr[i] != 0;
         i = (i + 1) & (LIVE_SLOTS - 1), n++)
      if (live_ptr[i] == (uintptr_t)p) {
        live_ptr[i] = TOMBSTONE;
        live_count--;
        break;
      }
  live_lock_give();
}

/* Not under ThreadSanitizer: its runtime crashes at start when malloc is
 * replaced (the program then only says it skips). */
#if !UNDER_TSAN
/* Exported (the build hides symbols by default), so the library's calls
 * find these. */
#define EXPORTED __attribute__((visibility("default")))

EXPORTED void *malloc(size_t n) {
  void *p;
  if (real_malloc == NULL) {
    resolve_real();
    if (real_malloc == NULL)
      return boot_alloc(n);
  }
  if (should_fail(__builtin_return_address(0)))
    return NULL;
  if (atomic_load_explicit(&fail_above, memory_order_relaxed) != 0 &&
      n > atomic_load_explicit(&fail_above, memory_order_relaxed) &&
      caller_is_library(__builtin_return_address(0))) {
    atomic_fetch_add(&failed, 1);
    errno = ENOMEM;
    return NULL;
  }
  p = real_malloc(n);
  live_add(p, __builtin_return_address(0));
  return p;
}

EXPORTED void *calloc(size_t count, size_t size) {
  void *p;
  if (real_calloc == NULL) {
    resolve_real();
    if (real_calloc == NULL)
      return size != 0 && count > SIZE_MAX / size ? NULL
                                                  : boot_alloc(count * size);
  }
  if (should_fail(__builtin_return_address(0)))
    return NULL;
  p = real_calloc(count, size);
  live_add(p, __builtin_return_address(0));
  return p;
}

EXPORTED void *realloc(void *old, size_t n) {
  void *p;
  if (real_realloc == NULL)
    resolve_real();
  if (in_boot_arena(old) || real_realloc == NULL) {
    /* Only during start-up: copy out of the arena (size unknown: the
     * arena's rest bounds it). */
    p = real_malloc != NULL ? real_malloc(n) : boot_alloc(n);
    if (p != NULL && old != NULL) {
      size_t room = (size_t)(boot_arena + sizeof boot_arena -
                             (unsigned char *)old);
      memcpy(p, old, n < room ? n : room);
    }
    return p;
  }
  if (n == 0 || should_fail(__builtin_return_address(0)))
    return n == 0 ? real_realloc(old, n) : NULL;
  p = real_realloc(old, n);
  if (p != NULL) {
    live_remove(old);
    live_add(p, __builtin_return_address(0));
  }
  return p;
}

/* The POSIX backend's locks are allocated aligned (posix_thread.c). */
EXPORTED int posix_memalign(void **out, size_t align, size_t n) {
  int rc;
  if (real_posix_memalign == NULL)
    resolve_real();
  if (real_posix_memalign == NULL)
    return ENOMEM; /* not during start-up: nothing asks so early */
  if (should_fail(__builtin_return_address(0)))
    return ENOMEM;
  rc = real_posix_memalign(out, align, n);
  if (rc == 0)
    live_add(*out, __builtin_return_address(0));
  return rc;
}

/* Only the library's mappings count (the C library maps memory for its
 * own needs without coming here); each is live until it is unmapped, as
 * an allocation is until it is freed. */
EXPORTED void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off) {
  const void *caller = __builtin_return_address(0);
  void *p;
  if (real_mmap == NULL)
    resolve_real();
  if (real_mmap == NULL) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  if (caller_is_library(caller) && should_fail(caller)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  p = real_mmap(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED)
    live_add(p, caller);
  return p;
}

EXPORTED int munmap(void *addr, size_t len) {
  if (real_munmap == NULL)
    resolve_real();
  if (real_munmap == NULL) {
    errno = EINVAL;
    return -1;
  }
  live_remove(addr);
  return real_munmap(addr, len);
}

EXPORTED void free(void *p) {
  if (p == NULL || in_boot_arena(p))
    return;
  live_remove(p);
  if (real_free == NULL)
    resolve_real();
  real_free(p);
}
#endif /* !UNDER_TSAN */

/* ================= arming ================= */

static int note_range(struct dl_phdr_info *info, size_t size, void *data) {
  int i;
  (void)size;
  (void)data;
  if (info->dlpi_name == NULL ||
      (strstr(info->dlpi_name, "libpebble") == NULL &&
       strstr(info->dlpi_name, "pebble_apr") == NULL &&
       strstr(info->dlpi_name, "pebble_posix") == NULL))
    return 0;
  for (i = 0; i < info->dlpi_phnum && n_lib_ranges < 16; i++)
    if (info->dlpi_phdr[i].p_type == PT_LOAD &&
        (info->dlpi_phdr[i].p_flags & PF_X)) {
      lib_ranges[n_lib_ranges].lo =
          info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
      lib_ranges[n_lib_ranges].hi = lib_ranges[n_lib_ranges].lo +
                                    info->dlpi_phdr[i].p_memsz;
      n_lib_ranges++;
    }
  return 0;
}

/* A process the library forks does not fail (it is not under test), nor
 * track: another thread may have held the table's lock at the fork. */
static void disarm_in_child(void) {
  atomic_store(&armed, 0);
  atomic_store(&tracking, 0);
  atomic_flag_clear(&live_lock);
}

static void arm(long k, int from_k_on) {
  void *frames[2];
  backtrace(frames, 2);
  n_lib_ranges = 0;
  dl_iterate_phdr(note_range, NULL);
  fail_at = k;
  fail_on = from_k_on;
  atomic_store(&seen, 0);
  atomic_store(&failed, 0);
  atomic_store(&tracking, 1);
  atomic_store(&armed, 1);
}

static void disarm(void) { atomic_store(&armed, 0); }

/* ================= what a run reports ================= */

/* In memory shared with the parent: it survives the child. */
typedef struct report {
  char step[64];       /* the call the child is in (for a hang) */
  char problem[512];   /* the first thing that went wrong */
  int problems;
  int finished;        /* the cycle ended, checks done */
  long allocations;    /* seen while armed */
  long failures;       /* of them made to fail */
  long leaked;         /* library allocations live after shutdown */
  char leak_where[512];
  uintptr_t failed_at; /* the caller of the first failed allocation */
  void *stack[8];      /* and the stack there (a few frames) */
  int depth;
} report;
static report *rep;

/* backtrace() loads its unwinder on first use: done before arming. */
static void note_failure(const void *caller) {
  rep->failed_at = (uintptr_t)caller;
  rep->depth = backtrace(rep->stack, 8);
}

/* "libpebble.so.0+0x1234" (addr2line -e finds the line). */
static void where(uintptr_t at, char *buf, size_t len) {
  Dl_info info;
  if (dladdr((void *)at, &info) && info.dli_fbase != NULL)
    snprintf(buf, len, "%s+0x%lx",
             strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1
                                          : info.dli_fname,
             (unsigned long)(at - (uintptr_t)info.dli_fbase));
  else
    snprintf(buf, len, "%#lx", (unsigned long)at);
}

static void step(const char *what) {
  snprintf(rep->step, sizeof rep->step, "%s", what);
}

static void problem(const char *fmt, ...) PEBBLE_PRINTF(1, 2);
static void problem(const char *fmt, ...) {
  va_list ap;
  if (rep->problems++ > 0)
    return;
  va_start(ap, fmt);
  vsnprintf(rep->problem, sizeof rep->problem, fmt, ap);
  va_end(ap);
}

/* A failed call must say why: the message before the call is replaced. */
#define MARK_MESSAGE() pebble_future_cancel(NULL)
static const char *marker(void) {
  return "pebble_future_cancel: future is NULL";
}

static int allowed_error(int rc) {
  return rc == PEBBLE_ENOMEM || rc == PEBBLE_ESYSTEM;
}

/* A call's result: OK, or an allowed error with a fresh message. */
static int check_call(const char *what, int rc) {
  const char *msg;
  if (rc == PEBBLE_OK)
    return 1;
  msg = pebble_last_error();
  if (!allowed_error(rc))
    problem("%s returned %s (%s)", what, pebble_status_name(rc), msg);
  else if (msg[0] == '\0' || strcmp(msg, marker()) == 0)
    problem("%s returned %s without a message", what, pebble_status_name(rc));
  return 0;
}

/* ================= the cycles ================= */

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, n * n);
}

/* Runs until stopped: a thread task until it is told to stop, a process
 * task until it is killed (30 s at most). */
static int until_stopped(pebble_ctx *ctx, const void *arg, size_t size) {
  int i;
  (void)arg;
  (void)size;
  for (i = 0; i < 30000 && !pebble_should_stop(ctx); i++)
    usleep(1000);
  return pebble_result_int(ctx, 0);
}

static atomic_int callbacks_run;
static void on_done(pebble_future *f, void *data) {
  (void)f;
  (void)data;
  atomic_fetch_add(&callbacks_run, 1);
}

/* Two tasks a cycle: one plain, one with a (never reached) timeout, which
 * brings the manager's deadlines in. */
#define TASKS 2
typedef struct cycle {
  pebble_future *f[TASKS];
} cycle;
/* The callback was added: it runs once, by shutdown at the latest. */
static int callbacks_expected;

static void task_options(pebble_task_options *o, int i) {
  pebble_task_options_init(o);
  if (i == 1)
    o->timeout = PEBBLE_SEC(600);
}

/* Add the callback, get, check, release (every future handed out). */
static void finish_tasks(cycle *c) {
  int i;
  for (i = 0; i < TASKS; i++) {
    pebble_future *f = c->f[i];
    int64_t v = 0;
    int rc;
    if (f == NULL)
      continue;
    if (i == 0) {
      step("pebble_future_add_callback");
      MARK_MESSAGE();
      rc = pebble_future_add_callback(f, on_done, NULL);
      callbacks_expected = check_call("pebble_future_add_callback", rc);
    }
    step("pebble_future_get_int");
    rc = pebble_future_get_int(f, PEBBLE_FOREVER, &v);
    if (pebble_future_state(f) != PEBBLE_DONE &&
        pebble_future_state(f) != PEBBLE_FAILED)
      problem("task %d: get returned %s with the future %s", i,
              pebble_status_name(rc),
              pebble_future_state(f) == PEBBLE_CANCELLED ? "cancelled"
                                                         : "unresolved");
    else if (rc == PEBBLE_OK && v != (int64_t)(i + 3) * (i + 3))
      problem("task %d: result %lld", i, (long long)v);
    else if (rc != PEBBLE_OK && !allowed_error(rc))
      problem("task %d failed with %s: %s", i, pebble_status_name(rc),
              pebble_future_message(f));
    else if (rc != PEBBLE_OK && pebble_future_message(f)[0] == '\0')
      problem("task %d failed with %s and no message", i,
              pebble_status_name(rc));
    step("pebble_future_release");
    pebble_future_release(f);
    c->f[i] = NULL;
  }
}

static void pool_cycle(pebble_kind kind) {
  pebble_pool_options po;
  pebble_pool *pool = NULL;
  pebble_future *running = NULL;
  cycle c;
  int i, rc;
  memset(&c, 0, sizeof c);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.max_tasks = 1; /* a new worker for the second task: restarts too */
  step("pebble_pool_create");
  MARK_MESSAGE();
  rc = pebble_pool_create(&pool, kind, &po);
  if (!check_call("pebble_pool_create", rc))
    return;
  for (i = 0; i < TASKS; i++) {
    pebble_task_options o;
    int64_t n = i + 3;
    task_options(&o, i);
    step("pebble_pool_schedule");
    MARK_MESSAGE();
    rc = pebble_pool_schedule(pool, square, &n, sizeof n, &o, &c.f[i]);
    check_call("pebble_pool_schedule", rc);
    if (rc != PEBBLE_OK && c.f[i] != NULL)
      problem("pebble_pool_schedule failed and gave a future");
  }
  finish_tasks(&c);
  /* One more, still running (or queued) when the pool is destroyed. */
  step("pebble_pool_schedule");
  MARK_MESSAGE();
  rc = pebble_pool_schedule(pool, until_stopped, NULL, 0, NULL, &running);
  if (check_call("pebble_pool_schedule", rc)) {
    double end = now_s() + 2;
    while (pebble_future_state(running) == PEBBLE_PENDING && now_s() < end)
      usleep(1000);
  }
  step("pebble_pool_destroy");
  MARK_MESSAGE();
  rc = pebble_pool_destroy(pool);
  if (rc != PEBBLE_OK)
    problem("pebble_pool_destroy returned %s (%s)", pebble_status_name(rc),
            pebble_last_error());
  if (running != NULL) {
    rc = pebble_future_status(running);
    if (rc != PEBBLE_ECANCELED && !allowed_error(rc))
      problem("the task running at destroy: %s (%s)", pebble_status_name(rc),
              pebble_future_message(running));
    else if (pebble_future_message(running)[0] == '\0')
      problem("the task running at destroy: %s and no message",
              pebble_status_name(rc));
    pebble_future_release(running);
  }
}

static void run_cycle(pebble_kind kind) {
  cycle c;
  int i, rc;
  memset(&c, 0, sizeof c);
  for (i = 0; i < TASKS; i++) {
    pebble_task_options o;
    int64_t n = i + 3;
    task_options(&o, i);
    step("pebble_run");
    MARK_MESSAGE();
    rc = pebble_run(kind, square, &n, sizeof n, &o, &c.f[i]);
    check_call("pebble_run", rc);
    if (rc != PEBBLE_OK && c.f[i] != NULL)
      problem("pebble_run failed and gave a future");
  }
  finish_tasks(&c);
}

static void thread_pool_cycle(void) { pool_cycle(PEBBLE_THREAD); }
static void process_pool_cycle(void) { pool_cycle(PEBBLE_PROCESS); }
static void thread_task_cycle(void) { run_cycle(PEBBLE_THREAD); }
static void process_task_cycle(void) { run_cycle(PEBBLE_PROCESS); }

/* Shutdown succeeds, if not at once then on a retry (a documented
 * refusal); callbacks have all run by then. */
static void shut_down(void) {
  int rc, tries;
  step("pebble_shutdown");
  for (tries = 0; tries < 50; tries++) {
    MARK_MESSAGE();
    rc = pebble_shutdown();
    if (rc == PEBBLE_OK)
      break;
    if (rc != PEBBLE_EBUSY && !allowed_error(rc)) {
      problem("pebble_shutdown returned %s (%s)", pebble_status_name(rc),
              pebble_last_error());
      return;
    }
    usleep(100000);
  }
  if (rc != PEBBLE_OK) {
    problem("pebble_shutdown still returns %s after %d tries (%s)",
            pebble_status_name(rc), tries, pebble_last_error());
    return;
  }
  if (atomic_load(&callbacks_run) != callbacks_expected)
    problem("the callback ran %d times (expected %d)",
            atomic_load(&callbacks_run), callbacks_expected);
}

typedef struct scenario {
  const char *name;
  void (*cycle)(void);
  int processes;
} scenario;

/* In the child: a warm-up cycle (what the library keeps for the life of
 * the program is allocated then), then the cycle under test. */
static void child_run(const scenario *s, long k, int from_k_on) {
  size_t i;
  pthread_atfork(NULL, NULL, disarm_in_child);
  s->cycle();
  shut_down();
  if (rep->problems > 0) {
    char first[sizeof rep->problem];
    memcpy(first, rep->problem, sizeof first);
    snprintf(rep->problem, sizeof rep->problem, "in the warm-up cycle: %.480s",
             first);
    return;
  }
  atomic_store(&callbacks_run, 0);
  callbacks_expected = 0;
  arm(k, from_k_on);
  s->cycle();
  shut_down();
  disarm();
  rep->allocations = atomic_load(&seen);
  rep->failures = atomic_load(&failed);
  rep->leaked = live_count;
  if (live_overflow)
    problem("the leak table overflowed");
  /* Where the first few leaked blocks were allocated (addr2line -e). */
  for (i = 0; i < LIVE_SLOTS && live_count > 0; i++)
    if (live_ptr[i] > TOMBSTONE) {
      size_t used = strlen(rep->leak_where);
      if (used + 80 > sizeof rep->leak_where)
        break;
      rep->leak_where[used] = ' ';
      where(live_caller[i], rep->leak_where + used + 1,
            sizeof rep->leak_where - used - 1);
    }
  rep->finished = 1;
}

/* ================= the parent ================= */

static double hang_limit(void) {
  const char *env = getenv("PEBBLE_ALLOC_HANG_LIMIT");
  double s = env != NULL ? atof(env) : 0;
  return s > 0 ? s : 30.0;
}

typedef struct tally {
  long runs, hung, crashed, leaked, wrong, injected;
} tally;

enum { RUN_OK, RUN_HUNG, RUN_CRASHED, RUN_LEAKED, RUN_WRONG };

/* One forked run; prints what went wrong. */
static int run_one(const scenario *s, long k, int from_k_on, report *out) {
  double end = now_s() + hang_limit();
  int status = 0, result = RUN_OK;
  pid_t pid;
  memset(rep, 0, sizeof *rep);
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    child_run(s, k, from_k_on);
    _exit(0);
  }
  if (pid < 0)
    return RUN_CRASHED;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (now_s() > end) {
      if (getenv("PEBBLE_ALLOC_GDB") != NULL) { /* where it hangs */
        char cmd[128];
        snprintf(cmd, sizeof cmd,
                 "gdb -p %d -batch -ex 'thread apply all bt' 2>&1",
                 (int)pid);
        if (system(cmd) != 0)
          printf("(gdb failed)\n");
      }
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result = RUN_HUNG;
      break;
    }
    usleep(1000);
  }
  *out = *rep;
  if (result == RUN_OK &&
      (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !out->finished))
    result = RUN_CRASHED;
  else if (result == RUN_OK && out->problems > 0)
    result = RUN_WRONG;
  else if (result == RUN_OK && out->leaked > 0)
    result = RUN_LEAKED;
  if (result == RUN_OK)
    return result;
  /* Say what happened, and which allocation failed first. */
  printf("\n  %s, %s k=%ld", s->name, from_k_on ? "from" : "only", k);
  if (out->failed_at != 0) {
    char at[128];
    int i;
    where(out->failed_at, at, sizeof at);
    printf(" (failed first: %s; stack", at);
    for (i = 2; i < out->depth; i++) {
      where((uintptr_t)out->stack[i] - 1, at, sizeof at);
      printf(" %s", at);
    }
    printf(")");
  }
  if (result == RUN_HUNG)
    printf(": HANG in %s", out->step);
  else if (result == RUN_CRASHED)
    printf(": CRASH (%s %d) in %s", WIFSIGNALED(status) ? "signal" : "exit",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
           out->step);
  if (out->problems > 0)
    printf(": %s", out->problem);
  if (out->leaked > 0)
    printf(": %ld allocations leaked, made at%s", out->leaked,
           out->leak_where);
  return result;
}

static void walk(const scenario *s) {
  report clean;
  tally t[2];
  long n, k, first = 1;
  int mode, rc;
  const char *only = getenv("PEBBLE_ALLOC_ONLY"), *one = getenv("PEBBLE_ALLOC_K");
  /* For finding a failure again: PEBBLE_ALLOC_ONLY names a scenario,
   * PEBBLE_ALLOC_K one k (both modes). */
  if (only != NULL && *only && strstr(s->name, only) == NULL)
    return;
  if (s->processes && !(active_caps() & PEBBLE_CAP_PROCESSES)) {
    skip_test(s->name, "the backend cannot run processes");
    return;
  }
  /* The clean cycle: how many allocations, and no leak. */
  rc = run_one(s, 0, 0, &clean);
  CU_ASSERT_EQUAL(rc, RUN_OK);
  if (rc != RUN_OK)
    return;
  /* A cycle that counts nothing walks nothing: the allocator was not
   * replaced after all. */
  CU_ASSERT(clean.allocations > 0);
  /* Threads race: a later run may allocate a little more. */
  n = clean.allocations + clean.allocations / 8 + 4;
  if (one != NULL && atol(one) > 0)
    first = n = atol(one);
  memset(t, 0, sizeof t);
  for (mode = 0; mode < 2; mode++)
    for (k = first; k <= n; k++) {
      report r;
      t[mode].runs++;
      switch (run_one(s, k, mode, &r)) {
      case RUN_HUNG:
        t[mode].hung++;
        break;
      case RUN_CRASHED:
        t[mode].crashed++;
        break;
      case RUN_LEAKED:
        t[mode].leaked++;
        break;
      case RUN_WRONG:
        t[mode].wrong++;
        if (r.leaked > 0)
          t[mode].leaked++;
        break;
      }
      t[mode].injected += r.failures > 0;
    }
  for (mode = 0; mode < 2; mode++) {
    printf("\n  %s: %ld allocations a cycle; %s: %ld runs (%ld with a failure "
           "injected): %ld hung, %ld crashed, %ld leaked, %ld wrong",
           s->name, clean.allocations, mode ? "from k on" : "k-th only",
           t[mode].runs, t[mode].injected, t[mode].hung, t[mode].crashed,
           t[mode].leaked, t[mode].wrong);
    CU_ASSERT_EQUAL(t[mode].hung, 0);
    CU_ASSERT_EQUAL(t[mode].crashed, 0);
    CU_ASSERT_EQUAL(t[mode].leaked, 0);
    CU_ASSERT_EQUAL(t[mode].wrong, 0);
  }
  printf("\n  ");
}

static const scenario thread_pool = {"thread pool", thread_pool_cycle, 0};
static const scenario process_pool = {"process pool", process_pool_cycle, 1};
static const scenario thread_task = {"thread task", thread_task_cycle, 0};
static const scenario process_task = {"process task", process_task_cycle, 1};

static void test_thread_pool(void) { walk(&thread_pool); }
static void test_process_pool(void) { walk(&process_pool); }
static void test_thread_task(void) { walk(&thread_task); }
static void test_process_task(void) { walk(&process_task); }

/* Past its first chunks a pool takes blocks from big chunks (4 MiB and
 * more); when the system refuses one, a small one does: a burst needing
 * several big chunks is scheduled whole and every future resolves. */
static void test_big_chunk_refused(void) {
  enum { N = 30000 };
  pebble_future **f = calloc(N, sizeof *f);
  pebble_pool *p = NULL;
  pebble_pool_options po;
  size_t i, ok = 0;
  CU_ASSERT_FATAL(f != NULL);
  pebble_pool_options_init(&po);
  po.workers = 2;
  CU_ASSERT_FATAL(pebble_pool_create(&p, PEBBLE_THREAD, &po) == PEBBLE_OK);
  n_lib_ranges = 0;
  dl_iterate_phdr(note_range, NULL);
  atomic_store(&failed, 0);
  atomic_store(&fail_above, (size_t)1 << 20);
  for (i = 0; i < N; i++)
    ok += pebble_pool_schedule(p, square, &i, sizeof i, NULL, &f[i]) ==
          PEBBLE_OK;
  atomic_store(&fail_above, 0);
  CU_ASSERT_EQUAL(ok, N);
  CU_ASSERT(atomic_load(&failed) > 0); /* a big chunk was asked for */
  if (ok == N) {
    CU_ASSERT_EQUAL(pebble_wait_all(f, N, PEBBLE_SEC(120)), PEBBLE_OK);
    for (i = 0; i < N; i++)
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_OK);
  }
  for (i = 0; i < N; i++)
    pebble_future_release(f[i]);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  free(f);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"a big chunk refused: small ones serve", test_big_chunk_refused},
      {"allocation failure: thread pool cycle", test_thread_pool},
      {"allocation failure: process pool cycle", test_process_pool},
      {"allocation failure: one-shot thread task cycle", test_thread_task},
      {"allocation failure: one-shot process task cycle", test_process_task},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(square);
  REGISTER_TASK(until_stopped);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  if (UNDER_TSAN) { /* it crashes at start under a replaced malloc */
    printf("SKIP: ThreadSanitizer's runtime cannot run under a replaced "
           "malloc\n");
    return 77;
  }
  rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (rep == MAP_FAILED) {
    perror("mmap");
    return 2;
  }
  return run_suite("alloc", tests);
}
