/* SPDX-License-Identifier: Apache-2.0 */
/* core_resolve.c -- process pools: every future resolves with the status
 * its cause promises, also when a worker dies at the wrong moment.
 *
 * The rule under test (docs/pools.md, "Timeouts, cancellation, crashes"):
 * a task has started once its worker's channel has accepted a byte of its
 * message (a task sent ahead: once the worker says it starts it).  A task
 * that never started goes back to the queue when its worker dies, and its
 * future never showed PEBBLE_RUNNING; a started task whose worker dies
 * resolves PEBBLE_EDIED, unless Pebble killed the worker because the pool
 * was stopped (the task is then cancelled) or broke (PEBBLE_EBROKEN with
 * the initializer's message).
 *
 * Each case is a race: it runs for several rounds. */
#include "core_util.h"

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v * v);
}
static int init_fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 3, "no database");
}
/* Sleeps the argument's milliseconds (5 if none), returns its pid. */
static int nap_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t ms = 5;
  if (size == sizeof ms)
    memcpy(&ms, arg, sizeof ms);
  usleep((useconds_t)ms * 1000);
  return pebble_result_int(ctx, getpid());
}
/* Takes a large argument and then runs long: killed before it returns. */
static int big_then_sleep(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  usleep(3000 * 1000);
  return pebble_result_int(ctx, (int64_t)size);
}

static pebble_pool *make(unsigned workers, int eager) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_eagerly = eager;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_OK);
  return p;
}

#ifdef _WIN32
/* Windows: a process's handle is signalled once it has ended and its
 * handles, its channel among them, are closed.  (A /proc path would name
 * some Linux process under Wine, not the worker.) */
static int closed_within(pid_t pid, double seconds) {
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
  DWORD rc;
  if (h == NULL)
    return 1;
  rc = WaitForSingleObject(h, (DWORD)(seconds * 1000));
  CloseHandle(h);
  return rc == WAIT_OBJECT_0;
}
#else
/* Linux: a killed process has closed its channel once it is reaped, or
 * a zombie with no other thread left (a thread group's leader shows as a
 * zombie while its other threads still exit, holding the descriptors). */
static int threads_of(pid_t pid) {
  char path[64];
  struct dirent *e;
  DIR *d;
  int n = 0;
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  if ((d = opendir(path)) == NULL)
    return 0;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}
static int closed_within(pid_t pid, double seconds) {
  double end = now_s() + seconds;
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  while (now_s() < end) {
    char buf[256], *paren;
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
      return 1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    paren = strrchr(buf, ')');
    if (paren == NULL ||
        (paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X') &&
         threads_of(pid) <= 1))
      return 1;
    usleep(200);
  }
  return 0;
}
#endif

/* Item 1: a failing initializer; the tasks handed to workers still in
 * their initializer never ran: EBROKEN with its message, never EDIED. */
#define BROKEN_ROUNDS 12
static void test_broken_pool_tasks(void) {
  int round, edied = 0;
  for (round = 0; round < BROKEN_ROUNDS; round++) {
    pebble_pool_options o;
    pebble_pool *p = NULL;
    pebble_future *f[3];
    int i;
    pebble_pool_options_init(&o);
    o.workers = 2;
    o.initializer = init_fails;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    for (i = 0; i < 3; i++) {
      int rc = pebble_pool_schedule(p, square, &(int64_t){2},
                                    sizeof(int64_t), NULL, &f[i]);
      CU_ASSERT(rc == PEBBLE_OK || rc == PEBBLE_EBROKEN);
      if (rc != PEBBLE_OK)
        f[i] = NULL;
    }
    for (i = 0; i < 3; i++) {
      if (f[i] == NULL)
        continue;
      CU_ASSERT_EQUAL(pebble_future_wait(f[i], PEBBLE_SEC(30)), PEBBLE_OK);
      CU_ASSERT_EQUAL(pebble_future_status(f[i]), PEBBLE_EBROKEN);
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_future_message(f[i]),
                                    "no database"));
      if (pebble_future_status(f[i]) == PEBBLE_EDIED && edied++ == 0)
        printf("(round %d: %s) ", round, pebble_future_message(f[i]));
      pebble_future_release(f[i]);
    }
    pebble_pool_destroy(p);
  }
  if (edied)
    printf("(%d futures EDIED in %d rounds) ", edied, BROKEN_ROUNDS);
}

/* Item 2: stop while short tasks run and are handed out: every future is
 * done or cancelled; none is charged with the kill stop sent. */
#define STOP_ROUNDS 24
#define STOP_TASKS 1000
static void test_stop_never_edied(void) {
  static pebble_future *f[STOP_TASKS];
  int round, edied = 0;
  for (round = 0; round < STOP_ROUNDS; round++) {
    pebble_pool *p = make(2, 0);
    int i, n = 0;
    for (i = 0; i < STOP_TASKS; i++) {
      if (pebble_pool_schedule(p, nap_pid, NULL, 0, NULL, &f[n]) !=
          PEBBLE_OK)
        break;
      n++;
    }
    CU_ASSERT_EQUAL(n, STOP_TASKS);
    usleep(30 * 1000);
    CU_ASSERT_EQUAL(pebble_pool_stop(p), PEBBLE_OK);
    for (i = 0; i < n; i++) {
      int st;
      CU_ASSERT_EQUAL(pebble_future_wait(f[i], PEBBLE_SEC(30)), PEBBLE_OK);
      st = pebble_future_status(f[i]);
      CU_ASSERT(st == PEBBLE_OK || st == PEBBLE_ECANCELED);
      if (st == PEBBLE_EDIED && edied++ == 0)
        printf("(round %d: %s) ", round, pebble_future_message(f[i]));
      pebble_future_release(f[i]);
    }
    pebble_pool_destroy(p);
  }
  if (edied)
    printf("(%d futures EDIED in %d rounds) ", edied, STOP_ROUNDS);
}

/* The pids of a 2-worker pool's workers (two naps at once go to both). */
static int two_pids(pebble_pool *p, pid_t pid[2]) {
  pebble_future *f[2];
  int64_t v[2] = {0, 0}, ms = 100;
  int i;
  for (i = 0; i < 2; i++)
    if (pebble_pool_schedule(p, nap_pid, &ms, sizeof ms, NULL, &f[i]) != 0)
      return 0;
  for (i = 0; i < 2; i++) {
    pebble_future_get_int(f[i], PEBBLE_SEC(30), &v[i]);
    pebble_future_release(f[i]);
    pid[i] = (pid_t)v[i];
  }
  return v[0] > 0 && v[1] > 0 && v[0] != v[1];
}

/* Item 3: an idle worker killed from outside; tasks scheduled before the
 * pool has seen its exit must not be charged with it (the worker's
 * channel refuses them: none of their bytes was accepted).  The test
 * waits until the worker's channel is closed, so that a write cannot
 * land in it; the pool may have seen the exit by then (the POSIX fork and
 * spawn rows mostly have: the race shows under forkserver and APR). */
#define IDLE_ROUNDS 16
#define IDLE_TASKS 10
static void test_idle_killed_not_charged(void) {
  int round, edied = 0, tried = 0;
  for (round = 0; round < IDLE_ROUNDS; round++) {
    pebble_pool *p = make(2, 1);
    pebble_future *f[IDLE_TASKS];
    pid_t pid[2];
    int i;
    if (!two_pids(p, pid)) {
      /* Both naps on one worker: only on a very loaded machine. */
      pebble_pool_destroy(p);
      continue;
    }
    tried++;
    usleep(50 * 1000); /* idle */
    CU_ASSERT_EQUAL(kill(pid[round % 2], SIGKILL), 0);
    CU_ASSERT(closed_within(pid[round % 2], 10));
    for (i = 0; i < IDLE_TASKS; i++)
      CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(p, square, &(int64_t){i},
                                                 sizeof(int64_t), NULL,
                                                 &f[i]),
                            PEBBLE_OK);
    for (i = 0; i < IDLE_TASKS; i++) {
      int64_t v = -1;
      int rc = pebble_future_get_int(f[i], PEBBLE_SEC(30), &v);
      CU_ASSERT_EQUAL(rc, PEBBLE_OK);
      CU_ASSERT_EQUAL(v, (int64_t)i * i);
      if (rc == PEBBLE_EDIED && edied++ == 0)
        printf("(round %d: %s) ", round, pebble_future_message(f[i]));
      pebble_future_release(f[i]);
    }
    pebble_pool_destroy(p);
  }
  CU_ASSERT(tried > 0);
  if (edied)
    printf("(%d futures EDIED in %d rounds) ", edied, tried);
}

/* Item 4: the worker is killed while a large argument is on its way to
 * it.  Part of the message was accepted, so the task had started: it
 * resolves PEBBLE_EDIED with the signal, under every backend; it is not
 * run again. */
#define BIG_ARG ((size_t)100 << 20)
#define BIG_ROUNDS 3
static void test_killed_with_argument_in_flight(void) {
  unsigned char *big = malloc(BIG_ARG);
  int round;
  SKIP_ON_WINDOWS(SIGNALS_WHY);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  memset(big, 0x5a, BIG_ARG);
  for (round = 0; round < BIG_ROUNDS; round++) {
    pebble_pool *p = make(1, 1);
    pebble_future *f;
    pebble_exit_info info;
    int64_t pid = 0;
    int st;
    /* The worker's pid, and the worker idle again. */
    f = NULL;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(p, nap_pid, &(int64_t){0},
                                               sizeof(int64_t), NULL, &f),
                          PEBBLE_OK);
    CU_ASSERT_EQUAL_FATAL(pebble_future_get_int(f, PEBBLE_SEC(30), &pid), 0);
    pebble_future_release(f);
    CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(p, big_then_sleep, big,
                                               BIG_ARG, NULL, &f),
                          PEBBLE_OK);
    usleep(1000 * (round % 3)); /* early, or while it reads */
    CU_ASSERT_EQUAL(kill((pid_t)pid, SIGKILL), 0);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
    st = pebble_future_status(f);
    CU_ASSERT_EQUAL(st, PEBBLE_EDIED);
    if (st != PEBBLE_EDIED)
      printf("(round %d: status %d: %s) ", round, st,
             pebble_future_message(f));
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CU_ASSERT_EQUAL(pebble_future_exit_info(f, &info), PEBBLE_OK);
    CU_ASSERT_EQUAL(info.pid, (long)pid);
    CU_ASSERT_EQUAL(info.signal, SIGKILL);
    CU_ASSERT_EQUAL(info.killed_by_library, 0);
    pebble_future_release(f);
    pebble_pool_destroy(p);
  }
  free(big);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"initializer fails: tasks handed out resolve EBROKEN",
       test_broken_pool_tasks},
      {"stop: tasks are done or cancelled, never EDIED",
       test_stop_never_edied},
      {"idle worker killed from outside: new tasks not charged",
       test_idle_killed_not_charged},
      {"worker killed with a large argument in flight: EDIED",
       test_killed_with_argument_in_flight},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(square);
  REGISTER_TASK(init_fails);
  REGISTER_TASK(nap_pid);
  REGISTER_TASK(big_then_sleep);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  if (skip_without_processes())
    return 77;
  return run_suite("resolve", tests);
}
