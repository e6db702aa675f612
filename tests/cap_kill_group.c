/* SPDX-License-Identifier: Apache-2.0 */
/* cap_kill_group.c -- a task's whole process group is killed with it.
 *
 * Needs PEBBLE_CAP_KILL_GROUP: under a backend without it (APR has no
 * process groups) the program exits 77, which the test harness and the
 * conformance matrix report as skipped, by name. */
#ifndef _WIN32
#include <poll.h>
#endif

#include "core_util.h"

static pebble_future *run(pebble_task_fn fn, const void *arg, size_t size,
                          const pebble_task_options *o) {
  pebble_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_PROCESS, fn, arg, size, o, &f),
                        PEBBLE_OK);
  return f;
}

static int grandchild_then_sleep(pebble_ctx *ctx, const void *arg,
                                 size_t size) {
  int fd = test_fifo_writer(arg, size);
  pid_t g = fork();
  (void)ctx;
  if (g == 0) {
    for (;;)
      pause();
  }
  (void)!write(fd, &g, sizeof g);
  for (;;)
    pause();
  return 0;
}


static void test_timeout_kills_group(void) {
  pebble_task_options o;
  pebble_exit_info x;
  pebble_future *f;
  test_fifo p;
  pid_t g = 0;
  double t0;
  CU_ASSERT_EQUAL_FATAL(test_fifo_open(&p), 0);
  pebble_task_options_init(&o);
  o.timeout = PEBBLE_MSEC(300);
  t0 = now_s();
  f = run(grandchild_then_sleep, p.path, strlen(p.path) + 1, &o);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  CU_ASSERT(now_s() - t0 >= 0.29);
  CU_ASSERT(now_s() - t0 < 10);
  CU_ASSERT_EQUAL(read(p.rd, &g, sizeof g), (ssize_t)sizeof g);
  CU_ASSERT(exit_info_within(f, &x, 10));
  CU_ASSERT_EQUAL(x.signal, SIGKILL);
  CU_ASSERT_EQUAL(x.killed_by_library, 1);
  CU_ASSERT(g > 0 && gone_within(g, 10)); /* the whole group went */
  test_fifo_close(&p);
  pebble_future_release(f);
}
static int stubborn_grandchild(pebble_ctx *ctx, const void *arg, size_t size) {
  return grandchild_then_sleep(ctx, arg, size);
}

/* The same through a pool: cancelling the task kills the worker's group. */
static void test_pool_cancel_kills_group(void) {
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future *f;
  test_fifo p;
  pid_t g = 0;
  CU_ASSERT_EQUAL_FATAL(test_fifo_open(&p), 0);
  pebble_pool_options_init(&po);
  po.workers = 1;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&pool, PEBBLE_PROCESS, &po),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(pool, stubborn_grandchild, p.path,
                                             strlen(p.path) + 1, NULL, &f),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(read(p.rd, &g, sizeof g), (ssize_t)sizeof g);
  CU_ASSERT_EQUAL(pebble_future_cancel(f), PEBBLE_OK);
  CU_ASSERT(g > 0 && gone_within(g, 10));
  pebble_future_release(f);
  CU_ASSERT_EQUAL(pebble_pool_close(pool), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(pool, PEBBLE_SEC(30)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_destroy(pool), PEBBLE_OK);
  test_fifo_close(&p);
}

static int quick_task(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  return pebble_result_int(ctx, 7);
}

/* The application of the next tests: a fresh run of this program that
 * starts a process task whose own child sleeps, then waits to be killed.
 * Restarted: it first runs a process task and shuts the library down, so
 * the task that sleeps belongs to the library's second life. */
static int application_main(const char *fifo_path, int restarted) {
  pebble_future *f = NULL;
  int64_t v = 0;
  if (restarted &&
      (pebble_run(PEBBLE_PROCESS, quick_task, NULL, 0, NULL, &f) !=
           PEBBLE_OK ||
       pebble_future_get_int(f, PEBBLE_FOREVER, &v) != PEBBLE_OK ||
       v != 7)) {
    fprintf(stderr, "application: %s\n", pebble_last_error());
    return 1;
  }
  if (restarted) {
    pebble_future_release(f);
    f = NULL;
    if (pebble_shutdown() != PEBBLE_OK) {
      fprintf(stderr, "application: %s\n", pebble_last_error());
      return 1;
    }
  }
  if (pebble_run(PEBBLE_PROCESS, grandchild_then_sleep, fifo_path,
                 strlen(fifo_path) + 1, NULL, &f) != PEBBLE_OK) {
    fprintf(stderr, "application: %s\n", pebble_last_error());
    return 1;
  }
  for (;;)
    pause();
}

/* SIGKILL the application: its worker dies with it (parent-death signal or
 * guardian), and so must what the task started in the worker's group.
 * Restarted: the same in the library's second life, and the first life's
 * guardian, told to stop, must not kill the second life's workers. */
static void application_death(int restarted) {
  char self[4096];
  struct pollfd pfd;
  test_fifo p;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  pid_t app, g = 0;
  int st;
  CU_ASSERT_FATAL(n > 0);
  self[n] = '\0';
  CU_ASSERT_EQUAL_FATAL(test_fifo_open(&p), 0);
  app = fork();
  CU_ASSERT_FATAL(app >= 0);
  if (app == 0) {
    execl(self, self, restarted ? "--restarted-application" : "--application",
          p.path, (char *)NULL);
    _exit(127);
  }
  pfd.fd = p.rd;
  pfd.events = POLLIN;
  CU_ASSERT_EQUAL(poll(&pfd, 1, 60000), 1);
  CU_ASSERT_EQUAL(read(p.rd, &g, sizeof g), (ssize_t)sizeof g);
  if (restarted && g > 0) {
    /* Time for the first guardian to read its end-of-file and exit. */
    CU_ASSERT(!gone_within(g, 1.0));
  }
  kill(app, SIGKILL);
  while (waitpid(app, &st, 0) < 0 && errno == EINTR)
    ;
  CU_ASSERT(g > 0 && gone_within(g, 20));
  if (g > 0 && !gone_within(g, 0.1))
    kill(g, SIGKILL); /* leave nothing behind, even when failing */
  test_fifo_close(&p);
}

static void test_application_death_kills_group(void) { application_death(0); }

static void test_restarted_library_guards_its_groups(void) {
  application_death(1);
}

int main(int argc, char **argv) {
  CU_TestInfo tests[] = {
      {"timeout kills the process group",
       NEEDS_FIFOS(test_timeout_kills_group)},
      {"pool cancel kills the process group",
       NEEDS_FIFOS(test_pool_cancel_kills_group)},
      {"the application's death kills the process group",
       NEEDS_FIFOS(test_application_death_kills_group)},
      {"a library started again guards its process groups",
       NEEDS_FIFOS(test_restarted_library_guards_its_groups)},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(grandchild_then_sleep);
  REGISTER_TASK(stubborn_grandchild);
  REGISTER_TASK(quick_task);
  if (pebble_worker_main() != PEBBLE_OK)
    return 2;
  if (argc == 3 && strcmp(argv[1], "--application") == 0)
    return application_main(argv[2], 0);
  if (argc == 3 && strcmp(argv[1], "--restarted-application") == 0)
    return application_main(argv[2], 1);
  if (!(active_caps() & PEBBLE_CAP_KILL_GROUP)) {
    const char *name, *reason;
    pebble_backend_choice(&name, &reason);
    printf("SKIP: backend '%s' does not kill process groups "
           "(no PEBBLE_CAP_KILL_GROUP)\n",
           name);
    return 77;
  }
  return run_suite("process groups", tests);
}
