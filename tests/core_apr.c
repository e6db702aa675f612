/* SPDX-License-Identifier: Apache-2.0 */
/* core_apr.c -- what is particular to the APR backend: choosing it from
 * the environment and from code, its settings, an application's APR pool
 * handed to Pebble and then destroyed (an Apache graceful restart), and
 * spawned workers that find the backend their parent chose in code.
 * The shared suites run under it in the conformance matrix. */
#include "core_util.h"

#include <apr_general.h>
#include <apr_pools.h>

static int add_one(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v + 1);
}

static int works(pebble_kind kind) {
  pebble_future *f;
  int64_t v = 41, out = 0;
  if (pebble_run(kind, add_one, &v, sizeof v, NULL, &f) != PEBBLE_OK)
    return 0;
  if (pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK)
    out = 0;
  pebble_future_release(f);
  return out == 42;
}

static const char *apr_module_dir(void) {
  static char dir[4096];
  const char *top = getenv("top_builddir");
  snprintf(dir, sizeof dir, "%s/backends/apr/.libs", top ? top : ".");
  return dir;
}

static int thread_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

static void env_body(void) {
  const char *name, *reason;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  setenv("PEBBLE_BACKEND", "apr", 1);
  if (!works(PEBBLE_THREAD) || !works(PEBBLE_PROCESS))
    _exit(1);
  if (pebble_backend_name() == NULL ||
      strcmp(pebble_backend_name(), "apr") != 0)
    _exit(2);
  pebble_backend_choice(&name, &reason);
  if (strstr(reason, "PEBBLE_BACKEND") == NULL)
    _exit(3);
  _exit(pebble_shutdown() == PEBBLE_OK ? 0 : 4);
}
static void test_env(void) { CU_ASSERT(in_child(env_body)); }

static void code_body(void) {
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  setenv("PEBBLE_BACKEND", "posix", 1); /* code wins over the variable */
  if (pebble_backend_select("apr") != PEBBLE_OK)
    _exit(1);
  if (!works(PEBBLE_PROCESS) || strcmp(pebble_backend_name(), "apr") != 0)
    _exit(2);
  /* And back, once idle. */
  if (pebble_backend_select("posix") != PEBBLE_OK || !works(PEBBLE_PROCESS) ||
      strcmp(pebble_backend_name(), "posix") != 0)
    _exit(3);
  _exit(pebble_shutdown() == PEBBLE_OK ? 0 : 4);
}
static void test_code(void) { CU_ASSERT(in_child(code_body)); }

static void settings_body(void) {
  int dummy;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  unsetenv("PEBBLE_BACKEND");
  if (pebble_backend_configure("apr", "no_such_key", &dummy) !=
          PEBBLE_ENOTSUP ||
      strstr(pebble_last_error(), "no_such_key") == NULL)
    _exit(1);
  if (pebble_backend_configure("nosuch", "parent_pool", NULL) !=
      PEBBLE_EBACKEND)
    _exit(2);
  if (pebble_backend_configure("apr", NULL, NULL) != PEBBLE_EINVAL)
    _exit(3);
  if (pebble_backend_configure("posix", "parent_pool", NULL) !=
      PEBBLE_ENOTSUP)
    _exit(4);
  if (pebble_backend_select("apr") != PEBBLE_OK || !works(PEBBLE_THREAD))
    _exit(5);
  /* Settings apply when the backend starts; not while it runs. */
  if (pebble_backend_configure("apr", "parent_pool", NULL) != PEBBLE_EBUSY)
    _exit(6);
  _exit(pebble_shutdown() == PEBBLE_OK ? 0 : 7);
}
static void test_settings(void) { CU_ASSERT(in_child(settings_body)); }

static void log_to_nothing(int level, const char *message, void *user) {
  (void)level, (void)message;
  if (strstr(message, "parent pool") != NULL)
    (*(int *)user)++;
}

/* An application that already runs APR hands Pebble its pool; destroying
 * that pool shuts Pebble down: no library thread, no worker left. */
static void parent_pool_body(void) {
  apr_pool_t *app;
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future *f;
  int64_t v = 1, out = 0;
  int threads_before, round, i;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  unsetenv("PEBBLE_BACKEND");
  if (apr_initialize() != APR_SUCCESS)
    _exit(1);
  /* Counted after the first life: a sanitizer's runtime may start a
   * thread of its own the first time any thread starts. */
  threads_before = -1;
  for (round = 0; round < 3; round++) { /* a restart, then again */
    if (apr_pool_create(&app, NULL) != APR_SUCCESS)
      _exit(2);
    if (pebble_backend_configure("apr", "parent_pool", app) != PEBBLE_OK ||
        pebble_backend_select("apr") != PEBBLE_OK)
      _exit(3);
    pebble_pool_options_init(&po);
    po.workers = 2;
    if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK ||
        pebble_pool_schedule(pool, add_one, &v, sizeof v, NULL, &f) !=
            PEBBLE_OK ||
        pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK ||
        out != 2)
      _exit(4);
    pebble_future_release(f);
    if (pebble_pool_close(pool) != PEBBLE_OK ||
        pebble_pool_join(pool, PEBBLE_SEC(30)) != PEBBLE_OK ||
        pebble_pool_destroy(pool) != PEBBLE_OK)
      _exit(5);
    if (pebble_backend_name() == NULL)
      _exit(6);
    apr_pool_destroy(app); /* the graceful restart */
    if (pebble_backend_name() != NULL)
      _exit(7);
    if (threads_before < 0)
      threads_before = thread_count();
    /* A joined thread can stay listed in /proc for a moment. */
    for (i = 0; i < 500 && (thread_count() != threads_before ||
                            count_children() != 0);
         i++)
      usleep(10000);
    if (thread_count() != threads_before || count_children() != 0) {
      printf("threads %d (before: %d), children %d ", thread_count(),
             threads_before, count_children());
      _exit(8);
    }
  }
  apr_terminate();
  _exit(0);
}
static void test_parent_pool(void) { CU_ASSERT(in_child(parent_pool_body)); }

/* Destroying the pool while the application still holds a future cannot
 * pull the library away: it stays up, says why, and shuts down later. */
static void parent_pool_busy_body(void) {
  apr_pool_t *app;
  pebble_future *f;
  int64_t v = 1;
  int logged = 0;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  unsetenv("PEBBLE_BACKEND");
  pebble_set_log_handler(log_to_nothing, &logged, PEBBLE_LOG_ERROR);
  if (apr_initialize() != APR_SUCCESS || apr_pool_create(&app, NULL) !=
                                              APR_SUCCESS)
    _exit(1);
  if (pebble_backend_configure("apr", "parent_pool", app) != PEBBLE_OK ||
      pebble_backend_select("apr") != PEBBLE_OK ||
      pebble_run(PEBBLE_THREAD, add_one, &v, sizeof v, NULL, &f) != PEBBLE_OK)
    _exit(2);
  apr_pool_destroy(app);
  if (logged != 1 || pebble_backend_name() == NULL)
    _exit(3);
  if (!works(PEBBLE_PROCESS))
    _exit(4);
  /* Its thread may not even have run yet on a loaded machine, and
   * shutdown rightly refuses while task code may still run. */
  if (pebble_future_wait(f, PEBBLE_SEC(30)) != PEBBLE_OK)
    _exit(6);
  pebble_future_release(f);
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(5);
  apr_terminate();
  _exit(0);
}
static void test_parent_pool_busy(void) {
  CU_ASSERT(in_child(parent_pool_busy_body));
}

/* Chosen in code, not in the environment: a spawned worker still runs
 * the APR backend, since the channel it inherits is APR's. */
static void spawn_code_body(void) {
  pebble_pool_options po;
  pebble_pool *pool;
  pebble_future *f;
  int64_t v = 9, out = 0;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  unsetenv("PEBBLE_BACKEND");
  if (pebble_backend_select("apr") != PEBBLE_OK)
    _exit(1);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_method = PEBBLE_START_SPAWN;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK ||
      pebble_pool_schedule(pool, add_one, &v, sizeof v, NULL, &f) !=
          PEBBLE_OK)
    _exit(2);
  if (pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK ||
      out != 10) {
    fprintf(stderr, "spawned: %s\n", pebble_last_error());
    _exit(3);
  }
  pebble_future_release(f);
  pebble_pool_close(pool);
  pebble_pool_join(pool, PEBBLE_SEC(30));
  _exit(pebble_pool_destroy(pool) == PEBBLE_OK ? 0 : 4);
}
static void test_spawn_code(void) { CU_ASSERT(in_child(spawn_code_body)); }

/* A pool whose options name a launcher: APR cannot start workers
 * through one (no proc_spawn_launched), and says so at creation. */
static void launcher_option_body(void) {
  pebble_pool_options po;
  pebble_pool *pool = NULL;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  unsetenv("PEBBLE_BACKEND");
  if (pebble_backend_select("apr") != PEBBLE_OK)
    _exit(1);
  pebble_pool_options_init(&po);
  po.workers = 1;
  po.start_method = PEBBLE_START_SPAWN;
  po.launcher = "env";
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_ENOTSUP ||
      pool != NULL || strstr(pebble_last_error(), "launcher") == NULL ||
      strstr(pebble_last_error(), "apr") == NULL) {
    printf("[%s] ", pebble_last_error());
    _exit(2);
  }
  po.launcher = NULL;
  po.launcher_heartbeat = PEBBLE_SEC(2);
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_ENOTSUP ||
      pool != NULL) {
    printf("[%s] ", pebble_last_error());
    _exit(3);
  }
  /* Without the launcher's options the pool works. */
  _exit(works(PEBBLE_PROCESS) && pebble_shutdown() == PEBBLE_OK ? 0 : 4);
}
static void test_launcher_option(void) {
  CU_ASSERT(in_child(launcher_option_body));
}

/* Timed waits end on time on the monotonic clock (the backend's keeper
 * thread, not APR's wall-clock timed wait). */
static int never_ends(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  while (pebble_should_stop(ctx) == PEBBLE_OK)
    usleep(1000);
  return 0;
}
static void timed_wait_body(void) {
  pebble_future *f;
  double t0, waited;
  int i;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  setenv("PEBBLE_BACKEND", "apr", 1);
  if (pebble_run(PEBBLE_THREAD, never_ends, NULL, 0, NULL, &f) != PEBBLE_OK)
    _exit(1);
  for (i = 0; i < 5; i++) {
    t0 = now_s();
    if (pebble_future_wait(f, PEBBLE_MSEC(50)) != PEBBLE_ENOTREADY)
      _exit(2);
    waited = now_s() - t0;
    if (waited < 0.049 || waited > 5.0)
      _exit(3);
  }
  pebble_future_cancel(f);
  pebble_future_release(f);
  _exit(0);
}
static void test_timed_wait(void) { CU_ASSERT(in_child(timed_wait_body)); }

/* The APR backend has no forkserver: asked for one, from the environment
 * or in options, the core refuses with PEBBLE_ENOTSUP and a message that
 * names the backend and the method, and never falls back silently. */
static int names_both(const char *msg) {
  return strstr(msg, "'apr'") != NULL && strstr(msg, "forkserver") != NULL;
}
static void no_forkserver_env_body(void) {
  pebble_future *f = NULL;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  setenv("PEBBLE_BACKEND", "apr", 1);
  setenv("PEBBLE_START_METHOD", "forkserver", 1);
  if (pebble_run(PEBBLE_PROCESS, add_one, NULL, 0, NULL, &f) !=
      PEBBLE_ENOTSUP)
    _exit(1);
  if (f != NULL || !names_both(pebble_last_error())) {
    printf("[%s] ", pebble_last_error());
    _exit(2);
  }
  _exit(0);
}
static void test_no_forkserver_env(void) {
  CU_ASSERT(in_child(no_forkserver_env_body));
}
static void no_forkserver_options_body(void) {
  pebble_task_options o;
  pebble_pool_options po;
  pebble_future *f = NULL;
  pebble_pool *p = NULL;
  setenv("PEBBLE_BACKEND_PATH", apr_module_dir(), 1);
  setenv("PEBBLE_BACKEND", "apr", 1);
  unsetenv("PEBBLE_START_METHOD");
  pebble_task_options_init(&o);
  o.start_method = PEBBLE_START_FORKSERVER;
  if (pebble_run(PEBBLE_PROCESS, add_one, NULL, 0, &o, &f) != PEBBLE_ENOTSUP)
    _exit(1);
  if (f != NULL || !names_both(pebble_last_error())) {
    printf("[%s] ", pebble_last_error());
    _exit(2);
  }
  pebble_pool_options_init(&po);
  po.start_method = PEBBLE_START_FORKSERVER;
  if (pebble_pool_create(&p, PEBBLE_PROCESS, &po) != PEBBLE_ENOTSUP)
    _exit(3);
  if (p != NULL || !names_both(pebble_last_error())) {
    printf("[%s] ", pebble_last_error());
    _exit(4);
  }
  /* What the backend can do still works. */
  _exit(works(PEBBLE_PROCESS) && pebble_shutdown() == PEBBLE_OK ? 0 : 5);
}
static void test_no_forkserver_options(void) {
  CU_ASSERT(in_child(no_forkserver_options_body));
}

int main(void) {
  CU_TestInfo tests[] = {
      {"no forkserver: PEBBLE_START_METHOD refused", test_no_forkserver_env},
      {"no forkserver: options refused", test_no_forkserver_options},
      {"chosen from the environment", test_env},
      {"chosen from code", test_code},
      {"settings", test_settings},
      {"the application's pool, destroyed: three lives", test_parent_pool},
      {"pool destroyed while a future is held", test_parent_pool_busy},
      {"spawned worker of a backend chosen in code", test_spawn_code},
      {"timed waits", test_timed_wait},
      {"a launcher in the pool's options: not supported",
       test_launcher_option},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(add_one);
  REGISTER_TASK(never_ends);
  /* A run of the whole suite under the forkserver start method
   * (PEBBLE_START_METHOD=forkserver make check) is about the POSIX
   * backend: APR has no forkserver, and its refusal is tested above. */
  if (forkserver_mode())
    unsetenv("PEBBLE_START_METHOD");
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  return run_suite("apr backend", tests);
}
