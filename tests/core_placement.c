/* SPDX-License-Identifier: Apache-2.0 */
/* core_placement.c -- the manager thread leaves the CPU of a worker that
 * has more work (api/placement.c), and nothing else.
 *
 * This program defines sched_getcpu, sched_getaffinity and
 * sched_setaffinity itself: the library calls them through the PLT, so
 * these win, and the forked workers inherit them.  While `faking` is on,
 * every thread and worker runs on CPU 0, the affinity mask is CPUs 0 to
 * fake_cpus - 1, and a change of the mask is recorded, not made.  So the
 * manager always shares CPU 0 with the worker whose result it reads, and
 * the test sees each request to move and each mask given back (workers
 * forked, whatever PEBBLE_START_METHOD says, to inherit the fakes).  With
 * `faking` off they go to the C library, for the test of real masks.
 * Linux only: elsewhere the library never moves a thread. */
#include "core_util.h"

#ifdef __linux__
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static _Atomic int faking;
static int fake_cpus = 2;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int narrowed, restored, other_sets;
static _Atomic int masks_read; /* sched_getaffinity while faking */
static int last_was_narrowing;

/* Built with hidden visibility like the rest: these must be seen. */
#define EXPORTED __attribute__((visibility("default")))

static void fake_mask(cpu_set_t *set) {
  int c;
  CPU_ZERO(set);
  for (c = 0; c < fake_cpus; c++)
    CPU_SET(c, set);
}

EXPORTED int sched_getcpu(void) {
  static int (*real)(void);
  if (atomic_load(&faking))
    return 0;
  if (real == NULL)
    *(void **)&real = dlsym(RTLD_NEXT, "sched_getcpu");
  return real();
}

EXPORTED int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set) {
  static int (*real)(pid_t, size_t, cpu_set_t *);
  if (atomic_load(&faking) && pid == 0 && size >= sizeof(cpu_set_t)) {
    fake_mask(set);
    atomic_fetch_add(&masks_read, 1);
    return 0;
  }
  if (real == NULL)
    *(void **)&real = dlsym(RTLD_NEXT, "sched_getaffinity");
  return real(pid, size, set);
}

EXPORTED int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set) {
  static int (*real)(pid_t, size_t, const cpu_set_t *);
  if (atomic_load(&faking) && pid == 0 && size >= sizeof(cpu_set_t)) {
    cpu_set_t full, less;
    fake_mask(&full);
    less = full;
    CPU_CLR(0, &less);
    pthread_mutex_lock(&seen_lock);
    if (CPU_EQUAL(set, &less)) {
      narrowed++;
      last_was_narrowing = 1;
    } else if (CPU_EQUAL(set, &full) && last_was_narrowing) {
      restored++;
      last_was_narrowing = 0;
    } else {
      other_sets++;
    }
    pthread_mutex_unlock(&seen_lock);
    return 0;
  }
  if (real == NULL)
    *(void **)&real = dlsym(RTLD_NEXT, "sched_setaffinity");
  return real(pid, size, set);
}

static void seen_reset(void) {
  pthread_mutex_lock(&seen_lock);
  narrowed = restored = other_sets = last_was_narrowing = 0;
  pthread_mutex_unlock(&seen_lock);
}

static int seen(int *n, int *r, int *o) {
  pthread_mutex_lock(&seen_lock);
  *n = narrowed;
  *r = restored;
  *o = other_sets;
  pthread_mutex_unlock(&seen_lock);
  return *n;
}

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  (void)size;
  memcpy(&v, arg, sizeof v);
  return pebble_result_int(ctx, v);
}

static int sleep_then_echo(pebble_ctx *ctx, const void *arg, size_t size) {
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return echo(ctx, arg, size);
}

#define BACKLOG 2000

/* One task that keeps the worker(s) busy for 200 ms, BACKLOG short ones
 * queued behind it; every result checked.  Returns the number of checks
 * that failed; *tail_ms (if not NULL): the milliseconds from the first
 * result to the last. */
static int backlog_burst_timed(unsigned workers, double *tail_ms) {
  pebble_pool_options po;
  pebble_pool *p;
  static pebble_future *f[BACKLOG + 1];
  int64_t i, v;
  int bad = 0;
  double first = 0;
  pebble_pool_options_init(&po);
  po.workers = workers;
  po.start_method = PEBBLE_START_FORK; /* the fakes are inherited */
  if (pebble_pool_create(&p, PEBBLE_PROCESS, &po) != PEBBLE_OK) {
    printf("(pool: %s) ", pebble_last_error());
    return 1;
  }
  for (i = 0; i <= BACKLOG; i++)
    if (pebble_pool_schedule(p, i == 0 ? sleep_then_echo : echo, &i,
                             sizeof i, NULL, &f[i]) != PEBBLE_OK) {
      printf("(schedule: %s) ", pebble_last_error());
      bad++;
      f[i] = NULL;
    }
  for (i = 0; i <= BACKLOG; i++) {
    if (f[i] == NULL)
      continue;
    if (pebble_future_get_int(f[i], PEBBLE_SEC(60), &v) != PEBBLE_OK ||
        v != i)
      bad++;
    if (i == 0)
      first = now_s();
    pebble_future_release(f[i]);
  }
  if (tail_ms != NULL)
    *tail_ms = (now_s() - first) * 1e3;
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  return bad;
}

static int backlog_burst(unsigned workers) {
  return backlog_burst_timed(workers, NULL);
}

/* Each request to leave CPU 0 is followed by the mask given back, and the
 * library asks for no other mask. */
static void check_pairs(int n, int r, int o) {
  CU_ASSERT_EQUAL(n, r);
  CU_ASSERT_EQUAL(o, 0);
}

static void test_leaves_a_busy_workers_cpu(void) {
  int n, r, o;
  SKIP_IF_NO_PROCESSES();
  seen_reset();
  atomic_store(&faking, 1);
  CU_ASSERT_EQUAL(backlog_burst(1), 0);
  atomic_store(&faking, 0);
  CU_ASSERT(seen(&n, &r, &o) >= 1);
  check_pairs(n, r, o);
}

static void test_round_trips_stay(void) {
  pebble_pool_options po;
  pebble_pool *p;
  pebble_future *f;
  int64_t i, v;
  int n, r, o;
  SKIP_IF_NO_PROCESSES();
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_method = PEBBLE_START_FORK;
  CU_ASSERT_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &po) == PEBBLE_OK);
  seen_reset();
  atomic_store(&faking, 1);
  /* A worker with nothing more to do sleeps after its result: sharing
   * its CPU is then what a round trip wants. */
  for (i = 0; i < 100; i++) {
    CU_ASSERT_EQUAL_FATAL(
        pebble_pool_schedule(p, echo, &i, sizeof i, NULL, &f), PEBBLE_OK);
    CU_ASSERT(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_OK &&
              v == i);
    pebble_future_release(f);
  }
  atomic_store(&faking, 0);
  CU_ASSERT_EQUAL(seen(&n, &r, &o), 0);
  CU_ASSERT_EQUAL(o, 0);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

static void test_too_few_cpus_stay(void) {
  int n, r, o;
  SKIP_IF_NO_PROCESSES();
  /* Two workers and the manager want three CPUs; two are allowed. */
  seen_reset();
  atomic_store(&faking, 1);
  CU_ASSERT_EQUAL(backlog_burst(2), 0);
  atomic_store(&faking, 0);
  CU_ASSERT_EQUAL(seen(&n, &r, &o), 0);
  CU_ASSERT_EQUAL(o, 0);
  /* One worker, one CPU allowed: each of the manager's reads of the
   * backlog's results finds it on the worker's CPU, but it looks at its
   * mask at most once a millisecond (the library's other looks are
   * few: the spin settings, once). */
  fake_cpus = 1;
  seen_reset();
  atomic_store(&faking, 1);
  {
    double ms;
    atomic_store(&masks_read, 0);
    CU_ASSERT_EQUAL(backlog_burst_timed(1, &ms), 0);
    atomic_store(&faking, 0);
    if (atomic_load(&masks_read) > ms + 4)
      printf("(%d looks at the mask in %.1f ms) ", atomic_load(&masks_read),
             ms);
    CU_ASSERT(atomic_load(&masks_read) <= ms + 4);
  }
  fake_cpus = 2;
  CU_ASSERT_EQUAL(seen(&n, &r, &o), 0);
  CU_ASSERT_EQUAL(o, 0);
}

static void test_setting(void) {
  pebble_pool *p;
  int n, r, o;
  SKIP_IF_NO_PROCESSES();
  /* Read as the library starts: 0 keeps the manager where it is. */
  CU_ASSERT_EQUAL_FATAL(pebble_shutdown(), PEBBLE_OK);
  setenv("PEBBLE_MOVE_MANAGER", "0", 1);
  seen_reset();
  atomic_store(&faking, 1);
  CU_ASSERT_EQUAL(backlog_burst(1), 0);
  atomic_store(&faking, 0);
  CU_ASSERT_EQUAL(seen(&n, &r, &o), 0);
  CU_ASSERT_EQUAL(o, 0);
  /* Anything but 0 or 1 is refused, named. */
  CU_ASSERT_EQUAL_FATAL(pebble_shutdown(), PEBBLE_OK);
  setenv("PEBBLE_MOVE_MANAGER", "yes", 1);
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, NULL),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(),
                                "PEBBLE_MOVE_MANAGER='yes'"));
  /* 1, as unset, lets it move again. */
  setenv("PEBBLE_MOVE_MANAGER", "1", 1);
  seen_reset();
  atomic_store(&faking, 1);
  CU_ASSERT_EQUAL(backlog_burst(1), 0);
  atomic_store(&faking, 0);
  CU_ASSERT(seen(&n, &r, &o) >= 1);
  check_pairs(n, r, o);
  unsetenv("PEBBLE_MOVE_MANAGER");
}

/* With the real calls: whatever the manager did during a burst, every
 * thread of this process ends with the mask it started with. */
static int masks_all_equal(const char *expect) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int same = 1;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    char path[320], line[512];
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue; /* a thread that just ended */
    while (fgets(line, sizeof line, f) != NULL)
      if (strncmp(line, "Cpus_allowed_list:", 18) == 0 &&
          strcmp(line, expect) != 0) {
        printf("(thread %s: %s) ", e->d_name, line);
        same = 0;
      }
    fclose(f);
  }
  closedir(d);
  return same;
}

static void test_real_masks_given_back(void) {
  char expect[512] = "";
  FILE *f = fopen("/proc/self/status", "r");
  int k;
  SKIP_IF_NO_PROCESSES();
  CU_ASSERT_FATAL(f != NULL);
  while (fgets(expect, sizeof expect, f) != NULL &&
         strncmp(expect, "Cpus_allowed_list:", 18) != 0)
    ;
  fclose(f);
  CU_ASSERT_FATAL(strncmp(expect, "Cpus_allowed_list:", 18) == 0);
  for (k = 0; k < 3; k++)
    CU_ASSERT_EQUAL(backlog_burst(1), 0);
  CU_ASSERT(masks_all_equal(expect));
}

int main(void) {
  CU_TestInfo tests[] = {
      {"the manager leaves the CPU of a worker with more work",
       test_leaves_a_busy_workers_cpu},
      {"round trips leave it where it is", test_round_trips_stay},
      {"fewer CPUs than workers and manager: it stays",
       test_too_few_cpus_stay},
      {"PEBBLE_MOVE_MANAGER: 0, invalid, 1", test_setting},
      {"every thread ends with the mask it had", test_real_masks_given_back},
      CU_TEST_INFO_NULL};
  return run_suite("placement", tests);
}
#else
int main(void) {
  printf("core_placement: the manager thread moves only on Linux\n");
  return 77;
}
#endif
