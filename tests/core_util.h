/* SPDX-License-Identifier: Apache-2.0 */
/* core_util.h -- small helpers shared by the core test programs. */
#ifndef PEBBLE_CORE_UTIL_H
#define PEBBLE_CORE_UTIL_H

#define _GNU_SOURCE 1
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
/* Why a test is skipped where the system lacks what it needs. */
#define NO_FORK_WHY "needs fork(), which Windows does not have"
#define NO_FIFO_WHY "needs a named FIFO, which Windows does not have"
#ifdef _WIN32
#include "win_posix.h"
#else
#include <sys/wait.h>
#endif

#include <pebble.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* How many of this process's mappings name `what` (Linux: -1 elsewhere). */
static inline int count_mappings(const char *what) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, what) != NULL;
  fclose(f);
  return n;
}
static inline int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* Nothing to read in this pipe now (its write end still open). */
#ifndef _WIN32
static inline int pipe_is_empty(int fd) {
  char c;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return read(fd, &c, 1) == -1;
}
#endif

/* Number of live children of this process (all threads). */
static inline int count_children(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[320], buf[4096];
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    f = fopen(path, "r");
    if (f == NULL)
      continue;
    while (fscanf(f, "%4095s", buf) == 1)
      n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

/* Wait (bounded) until kill(pid, 0) says the process is gone. */
static inline int gone_within(pid_t pid, double seconds) {
  double end = now_s() + seconds;
  while (now_s() < end) {
    if (kill(pid, 0) != 0 && errno == ESRCH)
      return 1;
    usleep(10000);
  }
  return 0;
}

/* f's process (a one-shot task's, or a pool worker that ended for the
 * task) reaped within `seconds`, and how it ended in *x. */
static inline int exit_info_within(pebble_future *f, pebble_exit_info *x,
                                   double seconds) {
  memset(x, 0, sizeof *x);
  x->struct_size = sizeof *x;
  return pebble_future_wait_exit(f, (pebble_time_t)(seconds * 1e6)) ==
             PEBBLE_OK &&
         pebble_future_exit_info(f, x) == PEBBLE_OK;
}

/* The process has ended: gone, or a zombie that the forkserver collects
 * when the library tells it to, a moment after the library's reap (where
 * a zombie cannot be told from a live process, the moment is waited
 * for). */
static inline int process_ended(long pid) {
  if (pid <= 0)
    return 0;
  if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
    return 1;
#ifdef __linux__
  {
    char path[64], buf[512], *end;
    FILE *in;
    size_t n;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((in = fopen(path, "r")) == NULL)
      return 1;
    n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    if (n == 0)
      return 1; /* it went between the open and the read */
    buf[n] = '\0';
    end = strrchr(buf, ')'); /* the state follows the command's name */
    return end != NULL && end[1] != '\0' && (end[2] == 'Z' || end[2] == 'X');
  }
#else
  return gone_within((pid_t)pid, 10);
#endif
}

/* ThreadSanitizer cannot follow a program that starts threads in the
 * child of a fork of a threaded program (it stops on "dup thread with
 * used id"): tests that do are skipped under it, by name. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif
/* AddressSanitizer's allocator stops the program on some allocations a
 * plain malloc would refuse with NULL; tests that need that say so. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
/* Run body in a forked child (for process-wide changes); 1 if it exited 0.
 * Under ThreadSanitizer, in_child() skips the test instead (see above):
 * the bodies start the library's threads in the child. */
#ifdef _WIN32
#define in_child_fork(body) ((void)(body), skip_test(#body, NO_FORK_WHY))
#else
static inline int in_child_fork(void (*body)(void)) {
  int st;
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  if (pid < 0 || waitpid(pid, &st, 0) != pid)
    return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return 1;
  /* Which check failed: the bodies exit with a number per check. */
  if (WIFEXITED(st))
    printf("(the child exited with %d) ", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf("(the child was killed by signal %d) ", WTERMSIG(st));
  return 0;
}
#endif

/* ---- the conformance matrix ----
 * The same programs run under every backend and start method
 * (tests/matrix-row.sh sets PEBBLE_BACKEND and PEBBLE_START_METHOD).
 * Under the spawn method workers are fresh runs of the test program, so
 * each program registers its tasks by name and lets pebble_worker_main()
 * take over first thing in main(). */
#define REGISTER_TASK(fn) pebble_register(#fn, fn)

static inline int spawn_mode(void) {
  const char *m = getenv("PEBBLE_START_METHOD");
  return m != NULL && strcmp(m, "spawn") == 0;
}

/* The capabilities of the backend the library would use now. */
static unsigned caps_found;
static void caps_visit(const pebble_backend_info *info, void *want) {
  if (info->usable && strcmp(info->name, (const char *)want) == 0)
    caps_found = info->caps;
}
static inline unsigned active_caps(void) {
  const char *name, *reason;
  static char want[64];
  pebble_backend_choice(&name, &reason);
  snprintf(want, sizeof want, "%s", name);
  caps_found = 0;
  pebble_backend_foreach(caps_visit, want);
  return caps_found;
}

/* A test that cannot run under this start method says so, by name, and
 * run_suite counts it: skipped, never passed. */
static unsigned tests_skipped;
static char skipped_names[2048];
static inline int skip_test(const char *test, const char *why) {
  static CU_pTest last; /* a test that skips two parts counts once */
  CU_pTest current = CU_get_current_test();
  size_t used = strlen(skipped_names);
  printf("skipped (%s) ", why);
  if (current != NULL && current == last)
    return 1;
  last = current;
  snprintf(skipped_names + used, sizeof skipped_names - used, "%s%s",
           used ? "; " : "", test);
  tests_skipped++;
  return 1;
}
/* ---- a backend that runs no processes ----
 * A backend without PEBBLE_CAP_PROCESSES (the out-of-tree example's row,
 * example-threads) refuses process tasks and pools: a program of process
 * tests exits 77 saying so, a test that needs processes is skipped by
 * name, and a test that runs both kinds runs its thread half and is named
 * on the line "Process halves left out" (the matrix shows it). */
#define NO_PROCESSES_WHY "the backend runs no processes"
static inline int no_processes(void) {
  static int known = -1;
  if (known < 0)
    known = (active_caps() & PEBBLE_CAP_PROCESSES) == 0;
  return known;
}
static inline int skip_without_processes(void) {
  const char *name, *reason;
  if (!no_processes())
    return 0;
  pebble_backend_choice(&name, &reason);
  printf("SKIP: backend '%s' runs no processes (no PEBBLE_CAP_PROCESSES)\n",
         name);
  return 1;
}
#define SKIP_IF_NO_PROCESSES()                                               \
  do {                                                                       \
    if (no_processes() && skip_test(__func__, NO_PROCESSES_WHY))             \
      return;                                                                \
  } while (0)
/* In a test of both kinds: leave the process half out, and say so (once
 * per test, however many times the test asks). */
static unsigned tests_halved;
static char halved_names[2048];
static inline int skip_process_half(const char *test) {
  static const char *last;
  if (last != test) {
    size_t used = strlen(halved_names);
    last = test;
    printf("process half left out (%s) ", NO_PROCESSES_WHY);
    snprintf(halved_names + used, sizeof halved_names - used, "%s%s",
             used ? "; " : "", test);
    tests_halved++;
  }
  return 1;
}
#define PROCESS_HALF_SKIPPED(kind)                                           \
  ((kind) == PEBBLE_PROCESS && no_processes() && skip_process_half(__func__))

/* A pipe that a worker reaches by name, under every start method: a
 * FIFO in a fresh directory.  (A forkserver worker has the descriptors the
 * server had when it started, not a pipe the test opened afterwards.)
 * The test reads from rd; it also holds a write end, so a read waits for
 * the worker's data instead of seeing end-of-file before the worker has
 * opened the FIFO.  The worker opens path for writing. */
typedef struct test_fifo {
  char dir[64], path[80];
  int rd, wr;
} test_fifo;
static inline int test_fifo_open(test_fifo *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/pebble-test-XXXXXX");
  t->rd = t->wr = -1;
  if (mkdtemp(t->dir) == NULL)
    return -1;
  snprintf(t->path, sizeof t->path, "%s/fifo", t->dir);
  if (mkfifo(t->path, 0600) != 0 ||
      (t->rd = open(t->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
      (t->wr = open(t->path, O_WRONLY | O_CLOEXEC)) < 0 ||
      fcntl(t->rd, F_SETFL, 0) != 0)
    return -1;
  return 0;
}
static inline void test_fifo_close(test_fifo *t) {
  if (t->rd >= 0)
    close(t->rd);
  if (t->wr >= 0)
    close(t->wr);
  unlink(t->path);
  rmdir(t->dir);
}
/* In the worker: the FIFO whose path is the task's argument. */
static inline int test_fifo_writer(const void *arg, size_t size) {
  char path[80];
  if (size == 0 || size > sizeof path)
    return -1;
  memcpy(path, arg, size);
  path[size - 1] = '\0';
  return open(path, O_WRONLY | O_CLOEXEC);
}

/* Forkserver workers are forked from a server started before the test
 * opened its pipes or redirected its output: they have neither. */
static inline int forkserver_mode(void) {
  const char *m = getenv("PEBBLE_START_METHOD");
  return m != NULL && strcmp(m, "forkserver") == 0;
}

/* Spawned workers of a backend that cannot pass a descriptor have no
 * page (docs/backends.md): the pool cannot tell whether they began a
 * task, and charges them with it (docs/pools.md). */
#define NO_PAGE_WHY                                                          \
  "APR's spawned workers have no page (APR passes no descriptor), so a "    \
  "task handed to one that dies is charged with its death"
static inline int workers_without_page(void) {
  const char *name = NULL, *reason = NULL;
  pebble_backend_choice(&name, &reason);
  return spawn_mode() && name != NULL && strcmp(name, "apr") == 0;
}

/* Workers forked from this (threaded) process: neither spawn nor a fork
 * server. */
static inline int threaded_fork_mode(void) {
  return !spawn_mode() && !forkserver_mode();
}
/* The POSIX backend can send ahead; the APR one cannot. */
static inline int ahead_expected(void) {
  const char *name, *reason;
  pebble_backend_choice(&name, &reason);
  return strcmp(name, "posix") == 0;
}
/* GCC 12's libasan has no fork interceptor (newer ones lock the allocator
 * around fork): a child forked while another thread is inside ASan's
 * malloc inherits that lock held and hangs at its first allocation. */
#define ASAN_FORK_WHY                                                        \
  "AddressSanitizer (GCC 12) does not lock its allocator around fork(): "   \
  "a child forked while another thread allocates can hang in malloc"

#define TSAN_FORK_WHY "ThreadSanitizer cannot follow threads in a forked child"
#define in_child(body)                                                       \
  (UNDER_TSAN ? skip_test(#body, TSAN_FORK_WHY) : in_child_fork(body))
#define SKIP_IF_TSAN()                                                       \
  do {                                                                       \
    if (UNDER_TSAN && skip_test(__func__, TSAN_FORK_WHY))                  \
      return;                                                                \
  } while (0)

/* In a test table: {"name", NEEDS_FIFOS(test_fn)} marks a test that needs
 * a named FIFO (test_fifo_open; none on Windows): run_suite skips it
 * there, by name and with the reason. */
static CU_TestFunc fifo_tests[64];
static unsigned fifo_tests_n;
static inline CU_TestFunc needs_fifos(CU_TestFunc fn) {
  if (fifo_tests_n < sizeof fifo_tests / sizeof fifo_tests[0])
    fifo_tests[fifo_tests_n++] = fn;
  return fn;
}
#define NEEDS_FIFOS(fn) needs_fifos(fn)
static inline void skipped_no_fifos(void) {
  CU_pTest t = CU_get_current_test();
  skip_test(t != NULL ? t->pName : "?", NO_FIFO_WHY);
}

/* A test that forks (or runs this program again by fork and exec): POSIX
 * only, skipped by name on Windows. */
#ifdef _WIN32
#define SKIP_IF_NO_FORK()                                                    \
  do {                                                                       \
    if (skip_test(__func__, NO_FORK_WHY))                                    \
      return;                                                                \
  } while (0)
#else
#define SKIP_IF_NO_FORK()                                                    \
  do {                                                                       \
  } while (0)
#endif

/* A test of POSIX behaviour with no Windows counterpart yet: skipped by
 * name on Windows, with why. */
#define SIGNALS_WHY "asserts POSIX signal numbers; Windows reports the " \
                    "exception's NTSTATUS (not ported yet)"
#ifdef _WIN32
#define SKIP_ON_WINDOWS(why)                                                 \
  do {                                                                       \
    if (skip_test(__func__, why))                                            \
      return;                                                                \
  } while (0)
#else
#define SKIP_ON_WINDOWS(why)                                                 \
  do {                                                                       \
  } while (0)
#endif

#define SKIP_IF_SPAWN(why)                                                   \
  do {                                                                       \
    if (spawn_mode() && skip_test(__func__, why))                            \
      return;                                                                \
  } while (0)

/* Valgrind runs everything tens of times slower and has its own malloc;
 * /proc/self/exe is valgrind's own tool there, so a test cannot run its
 * program again. */
static inline int under_valgrind(void) {
  const char *pre = getenv("LD_PRELOAD");
  return pre != NULL && strstr(pre, "vgpreload") != NULL;
}
#define SELF_EXEC_WHY "runs this program again, which valgrind's own " \
                      "/proc/self/exe does not allow"

/* A snapshot of a pool's statistics (zeroes if the call failed). */
static inline pebble_pool_stats pool_stats(pebble_pool *p) {
  pebble_pool_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CU_ASSERT_EQUAL(pebble_pool_stats_get(p, &st), PEBBLE_OK);
  return st;
}

/* Schedules fn on p with an 8-byte integer argument and the given
 * timeout; the future, or NULL (the failed assertion says why). */
static inline pebble_future *schedule_int(pebble_pool *p, pebble_task_fn fn,
                                          int64_t v, pebble_time_t timeout) {
  pebble_task_options o;
  pebble_future *f = NULL;
  pebble_task_options_init(&o);
  o.timeout = timeout;
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, fn, &v, sizeof v, &o, &f),
                  PEBBLE_OK);
  return f;
}

/* A task that sleeps the microseconds its argument says, then returns
 * them (each program registers it: REGISTER_TASK(nap_us)). */
static inline int nap_us(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t us;
  if (pebble_arg_int(arg, size, &us) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  usleep((useconds_t)us);
  return pebble_result_int(ctx, us);
}

#ifndef _WIN32
/* Once f's task runs in a process (a pool's worker or its own), that
 * process a moment into it, stopped from outside (SIGSTOP); 0 if none. */
static inline pid_t stop_process_of(pebble_future *f) {
  long pid = 0;
  double t0 = now_s();
  while (pebble_future_pid(f, &pid) == PEBBLE_ESTATE && now_s() - t0 < 30)
    usleep(1000);
  usleep(20000); /* into the task */
  if (pid <= 0 || kill((pid_t)pid, SIGSTOP) != 0)
    return 0;
  return (pid_t)pid;
}
#endif

/* make check keeps a program's output in its .log file and prints only
 * PASS or FAIL: each failed assertion is also written to descriptor 9,
 * which the harness points at the terminal (AM_TESTS_FD_REDIRECT), so a
 * failure on a machine whose tree is gone afterwards still says where. */
static inline void print_failures_to_terminal(const char *suite) {
#ifndef _WIN32
  CU_pFailureRecord r;
  unsigned shown = 0;
  const char *backend = getenv("PEBBLE_BACKEND");
  const char *method = getenv("PEBBLE_START_METHOD");
  char where[128] = ""; /* the matrix's row: which backend, which start */
  if (fcntl(9, F_GETFD) == -1)
    return; /* run by hand: the failures are in the output already */
  if (backend != NULL || method != NULL)
    snprintf(where, sizeof where, " (%s, %s)", backend ? backend : "posix",
             method ? method : "default start");
  for (r = CU_get_failure_list(); r != NULL && shown < 20; r = r->pNext) {
    dprintf(9, "%s%s: failed: %s: %s:%u: %s\n", suite, where,
            r->pTest && r->pTest->pName ? r->pTest->pName : "?",
            r->strFileName ? r->strFileName : "?", r->uiLineNumber,
            r->strCondition ? r->strCondition : "?");
    shown++;
  }
  if (r != NULL)
    dprintf(9, "%s%s: more failures in its .log file\n", suite, where);
#else
  (void)suite;
#endif
}

/* Run before each test, after CUnit printed its name: a program stopped
 * at its time limit leaves in its log the test it was in, not a buffer
 * that died with it. */
static inline void flush_before_test(void) { fflush(stdout); }

static inline int run_suite(const char *name, CU_TestInfo *tests) {
  CU_SuiteInfo suites[] = {{name, NULL, NULL, flush_before_test, NULL, tests},
                           CU_SUITE_INFO_NULL};
  unsigned failures;
#ifdef _WIN32
  unsigned i, j;
  for (i = 0; tests[i].pName != NULL; i++)
    for (j = 0; j < fifo_tests_n; j++)
      if (tests[i].pTestFunc == fifo_tests[j])
        tests[i].pTestFunc = skipped_no_fifos;
#endif
  {
    /* PEBBLE_TEST_ONLY=text runs only the tests whose name holds text:
     * the way to repeat one test while chasing a rare failure. */
    const char *only = getenv("PEBBLE_TEST_ONLY");
    unsigned from, to = 0;
    if (only != NULL && *only != '\0') {
      for (from = 0; tests[from].pName != NULL; from++)
        if (strstr(tests[from].pName, only) != NULL)
          tests[to++] = tests[from];
      tests[to] = tests[from]; /* the terminator */
    }
  }
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  CU_register_suites(suites);
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  print_failures_to_terminal(name);
  CU_cleanup_registry();
  /* A line the matrix reads: how many of the tests above were skipped. */
  printf("\nSkipped tests: %u%s%s\n", tests_skipped,
         tests_skipped ? ": " : "", skipped_names);
  if (tests_halved)
    printf("Process halves left out: %u: %s\n", tests_halved, halved_names);
  return failures ? 1 : 0;
}

#endif
