/* SPDX-License-Identifier: Apache-2.0 */
/* core_spawn.c -- the spawn start method: this program is its own worker
 * program, so main() registers the tasks and calls pebble_worker_main()
 * before anything else. */
#include "core_util.h"

#include <pthread.h>
#include <stdatomic.h>

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v * v);
}
/* Arguments arrive aligned as malloc'd memory, whatever the task's name
 * length (the name travels before the argument). */
static int arg_misalignment(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)size;
  return pebble_result_int(ctx, (int64_t)((uintptr_t)arg % 16));
}
static int crash(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  raise(SIGSEGV);
  return 0;
}
static int sleeps(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  for (;;)
    pause();
  return 0;
}
/* The worker marker is gone once read: children are ordinary programs. */
static int env_clean(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, getenv("PEBBLE_WORKER_CHANNEL") == NULL);
}
static int my_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, getpid());
}
static int64_t init_value;
static int init(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  return pebble_arg_int(arg, size, &init_value) == PEBBLE_OK ? 0 : 1;
}
static int read_init(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, init_value);
}
static int unregistered(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  return 0;
}

static pebble_pool *spawn_pool(unsigned workers, pebble_task_fn initializer,
                               const void *arg, size_t size) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = workers;
  o.start_method = PEBBLE_START_SPAWN;
  o.initializer = initializer;
  o.initializer_arg = arg;
  o.initializer_arg_size = size;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_OK);
  return p;
}

static int64_t get_int(pebble_pool *p, pebble_task_fn fn, int64_t v,
                       pebble_time_t timeout, int *rc) {
  pebble_task_options o;
  pebble_future *f = NULL;
  int64_t out = -1;
  pebble_task_options_init(&o);
  o.timeout = timeout;
  *rc = pebble_pool_schedule(p, fn, &v, sizeof v, &o, &f);
  if (*rc == PEBBLE_OK)
    *rc = pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  pebble_future_release(f);
  return out;
}

static void test_results(void) {
  pebble_pool *p = spawn_pool(2, NULL, NULL, 0);
  int rc, i;
  for (i = 0; i < 10; i++) {
    CU_ASSERT_EQUAL(get_int(p, square, i, PEBBLE_DEFAULT, &rc), i * i);
    CU_ASSERT_EQUAL(rc, PEBBLE_OK);
  }
  CU_ASSERT_EQUAL(get_int(p, arg_misalignment, 7, PEBBLE_DEFAULT, &rc), 0);
  CU_ASSERT_EQUAL(rc, PEBBLE_OK);
  CU_ASSERT_EQUAL(get_int(p, env_clean, 0, PEBBLE_DEFAULT, &rc), 1);
  CU_ASSERT(get_int(p, my_pid, 0, PEBBLE_DEFAULT, &rc) != getpid());
  pebble_pool_destroy(p);
}

static void test_failures(void) {
  pebble_pool *p = spawn_pool(1, NULL, NULL, 0);
  int rc;
  get_int(p, crash, 0, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL(rc, PEBBLE_EDIED);
  get_int(p, sleeps, 0, PEBBLE_MSEC(200), &rc);
  CU_ASSERT_EQUAL(rc, PEBBLE_ETIMEDOUT);
  CU_ASSERT_EQUAL(get_int(p, square, 9, PEBBLE_DEFAULT, &rc), 81);
  /* Never registered: refused at once, never a hang. */
  get_int(p, unregistered, 0, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL(rc, PEBBLE_ENOTFOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "registered"));
  pebble_pool_destroy(p);
}

static void test_initializer(void) {
  int64_t v = 1234;
  int rc;
  pebble_pool *p = spawn_pool(1, init, &v, sizeof v);
  CU_ASSERT_EQUAL(get_int(p, read_init, 0, PEBBLE_DEFAULT, &rc), 1234);
  pebble_pool_destroy(p);
}

static atomic_int threads_stop;
static void *idle_thread(void *arg) {
  (void)arg;
  while (!atomic_load(&threads_stop))
    usleep(1000);
  return NULL;
}
/* A program whose main thread already runs other threads: spawn does
 * not copy them (fork would copy only the caller). */
static void test_threaded_program(void) {
  pthread_t t[3];
  pebble_pool *p;
  int i, rc;
  for (i = 0; i < 3; i++)
    pthread_create(&t[i], NULL, idle_thread, NULL);
  p = spawn_pool(2, NULL, NULL, 0);
  CU_ASSERT_EQUAL(get_int(p, square, 12, PEBBLE_DEFAULT, &rc), 144);
  pebble_pool_destroy(p);
  atomic_store(&threads_stop, 1);
  for (i = 0; i < 3; i++)
    pthread_join(t[i], NULL);
}

static void test_unregistered_initializer(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.start_method = PEBBLE_START_SPAWN;
  o.initializer = unregistered;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                  PEBBLE_ENOTFOUND);
  o.initializer = NULL;
  o.start_method = 9;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_EINVAL);
}

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  return pebble_result_set(ctx, arg, size);
}

/* One-shot process tasks with the spawn start method. */
static pebble_future *run_spawned(pebble_task_fn fn, const void *arg,
                                  size_t size, pebble_time_t timeout,
                                  int *rc) {
  pebble_task_options o;
  pebble_future *f = NULL;
  pebble_task_options_init(&o);
  o.start_method = PEBBLE_START_SPAWN;
  o.timeout = timeout;
  *rc = pebble_run(PEBBLE_PROCESS, fn, arg, size, &o, &f);
  return f;
}
static void test_one_shot(void) {
  int64_t v = 11, out = 0;
  int rc;
  size_t big = (size_t)20 << 20, i, s = 0;
  unsigned char *in = malloc(big);
  const void *d;
  pebble_future *f = run_spawned(square, &v, sizeof v, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL_FATAL(rc, PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get_int(f, PEBBLE_SEC(30), &out), PEBBLE_OK);
  CU_ASSERT_EQUAL(out, 121);
  pebble_future_release(f);
  f = run_spawned(crash, NULL, 0, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_EDIED);
  pebble_future_release(f);
  f = run_spawned(sleeps, NULL, 0, PEBBLE_MSEC(200), &rc);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL),
                  PEBBLE_ETIMEDOUT);
  pebble_future_release(f);
  f = run_spawned(unregistered, NULL, 0, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL(rc, PEBBLE_ENOTFOUND);
  CU_ASSERT_PTR_NULL(f);
  /* A large argument goes out in many writes. */
  CU_ASSERT_PTR_NOT_NULL_FATAL(in);
  for (i = 0; i < big; i++)
    in[i] = (unsigned char)(i * 13 + (i >> 9));
  f = run_spawned(echo, in, big, PEBBLE_DEFAULT, &rc);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &d, &s), PEBBLE_OK);
  CU_ASSERT(s == big && memcmp(d, in, big) == 0);
  pebble_future_release(f);
  free(in);
}

static void on_usr1(int sig) { (void)sig; }

int main(void) {
  CU_TestInfo tests[] = {
      {"results from spawned workers", test_results},
      {"crash, timeout, unregistered task", test_failures},
      {"initializer found by name, argument passed", test_initializer},
      {"a program already running threads", test_threaded_program},
      {"bad spawn settings", test_unregistered_initializer},
      {"one-shot spawned tasks", test_one_shot},
      CU_TEST_INFO_NULL};
  pebble_register("spawn.square", square);
  pebble_register("spawn.arg_misalignment", arg_misalignment);
  pebble_register("spawn.crash", crash);
  pebble_register("spawn.sleeps", sleeps);
  pebble_register("spawn.env_clean", env_clean);
  pebble_register("spawn.my_pid", my_pid);
  pebble_register("spawn.init", init);
  pebble_register("spawn.read_init", read_init);
  pebble_register("spawn.echo", echo);
  if (pebble_worker_main() != PEBBLE_OK)
    return 3; /* a worker never gets here */
#ifdef SIGUSR1
  signal(SIGUSR1, on_usr1);
#else
  (void)on_usr1;
#endif
  if (skip_without_processes())
    return 77;
  return run_suite("spawn", tests);
}
