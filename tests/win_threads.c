/* SPDX-License-Identifier: Apache-2.0 */
/*
 * win_threads.c -- the thread side of the contract on Windows (run under
 * Wine by make check): thread tasks, their errors, timeouts, cancel and
 * callbacks, ExitThread in a task, thread pools and maps, a completion
 * queue's Event handle, the built-in default backend, and an
 * idle library that uses no CPU.  Plain C with no CUnit (there is no mingw build of it
 * here); the last lines are CUnit's summary, which the matrix counts.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <windows.h>

#include <pebble.h>

static int n_run, n_failed;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
      return 1;                                                              \
    }                                                                        \
  } while (0)

static void run(const char *name, int (*test)(void)) {
  int failed;
  printf("-- %s\n", name);
  fflush(stdout);
  failed = test();
  n_run++;
  n_failed += failed != 0;
  printf("%s: %s\n", failed ? "FAILED" : "passed", name);
  fflush(stdout);
}

static double now_s(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart / (double)f.QuadPart;
}

/* ---- task functions ---- */

static int add(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an int");
  return pebble_result_int(ctx, v + 1);
}

static int fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 42, "failed on purpose (%zu bytes)", (size_t)7);
}

static atomic_int stopped_seen;
/* Runs until told to stop (at most 30 s). */
static int until_stopped(pebble_ctx *ctx, const void *arg, size_t size) {
  int i;
  (void)arg, (void)size;
  for (i = 0; i < 3000; i++) {
    if (pebble_should_stop(ctx)) {
      atomic_fetch_add(&stopped_seen, 1);
      return pebble_result_int(ctx, -1);
    }
    Sleep(10);
  }
  return pebble_result_int(ctx, 0);
}

/* Ends its thread without returning, as pthread_exit does on Linux. */
static int exits_thread(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  ExitThread(0);
  return 0;
}

static atomic_int callbacks;
static void count_callback(pebble_future *f, void *data) {
  (void)f;
  atomic_fetch_add(&callbacks, *(int *)data);
}

/* ---- tests ---- */

static int test_default_backend(void) {
  const char *name = NULL, *reason = NULL;
  CHECK(pebble_init() == PEBBLE_OK);
  CHECK(pebble_backend_choice(&name, &reason) == PEBBLE_OK);
  printf("  backend %s (%s)\n", name, reason);
  CHECK(strcmp(pebble_backend_name(), "apr") == 0);
  return 0;
}

static int test_thread_result(void) {
  pebble_future *f;
  int64_t v = 0, in = 41;
  CHECK(pebble_run(PEBBLE_THREAD, add, &in, sizeof in, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_OK);
  CHECK(v == 42);
  pebble_future_release(f);
  return 0;
}

static int test_thread_error(void) {
  pebble_future *f;
  int64_t v;
  CHECK(pebble_run(PEBBLE_THREAD, fails, NULL, 0, NULL, &f) == PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_ETASK);
  CHECK(pebble_future_task_code(f) == 42);
  printf("  message: %s\n", pebble_future_message(f));
  CHECK(strstr(pebble_future_message(f), "failed on purpose (7 bytes)"));
  pebble_future_release(f);
  return 0;
}

static int test_thread_timeout(void) {
  pebble_future *f;
  pebble_task_options o;
  double t0, took;
  pebble_task_options_init(&o);
  o.timeout = PEBBLE_MSEC(300);
  t0 = now_s();
  CHECK(pebble_run(PEBBLE_THREAD, until_stopped, NULL, 0, &o, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_wait(f, PEBBLE_SEC(60)) == PEBBLE_OK);
  took = now_s() - t0;
  printf("  resolved after %.3f s\n", took);
  CHECK(pebble_future_status(f) == PEBBLE_ETIMEDOUT);
  CHECK(took >= 0.29 && took < 20);
  pebble_future_release(f);
  return 0;
}

static int test_thread_cancel(void) {
  pebble_future *f;
  int before = atomic_load(&stopped_seen), i;
  CHECK(pebble_run(PEBBLE_THREAD, until_stopped, NULL, 0, NULL, &f) ==
        PEBBLE_OK);
  Sleep(50);
  CHECK(pebble_future_cancel(f) == PEBBLE_OK);
  CHECK(pebble_future_status(f) == PEBBLE_ECANCELED);
  /* The task itself sees the request and returns. */
  for (i = 0; i < 2000 && atomic_load(&stopped_seen) == before; i++)
    Sleep(10);
  CHECK(atomic_load(&stopped_seen) > before);
  pebble_future_release(f);
  return 0;
}

/* The future resolves as failed (as for pthread_exit on Linux): the
 * backend sees the thread end through a fiber-local storage callback. */
static int test_exit_thread(void) {
  pebble_future *f;
  CHECK(pebble_run(PEBBLE_THREAD, exits_thread, NULL, 0, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_get(f, PEBBLE_SEC(30), NULL, NULL) == PEBBLE_ETASK);
  CHECK(pebble_future_state(f) == PEBBLE_FAILED);
  printf("  message: %s\n", pebble_future_message(f));
  pebble_future_release(f);
  return 0;
}

static int test_callbacks(void) {
  pebble_future *f;
  pebble_task_options o;
  int one = 1, ten = 10, i;
  int64_t in = 1;
  atomic_store(&callbacks, 0);
  pebble_task_options_init(&o);
  o.callback = count_callback;
  o.callback_data = &one;
  CHECK(pebble_run(PEBBLE_THREAD, add, &in, sizeof in, &o, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_add_callback(f, count_callback, &ten) == PEBBLE_OK);
  CHECK(pebble_future_wait(f, PEBBLE_SEC(60)) == PEBBLE_OK);
  /* A waiter returns after the callbacks have run. */
  CHECK(atomic_load(&callbacks) == 11);
  /* Added to a resolved future: runs now, in this thread. */
  CHECK(pebble_future_add_callback(f, count_callback, &ten) == PEBBLE_OK);
  CHECK(atomic_load(&callbacks) == 21);
  pebble_future_release(f);
  /* A timed-out task's callback runs too (on the library's thread). */
  atomic_store(&callbacks, 0);
  o.timeout = PEBBLE_MSEC(100);
  CHECK(pebble_run(PEBBLE_THREAD, until_stopped, NULL, 0, &o, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_wait(f, PEBBLE_SEC(60)) == PEBBLE_OK);
  for (i = 0; i < 2000 && atomic_load(&callbacks) == 0; i++)
    Sleep(10);
  CHECK(atomic_load(&callbacks) == 1);
  pebble_future_release(f);
  return 0;
}

static int test_thread_pool(void) {
  pebble_pool *p;
  pebble_pool_options po;
  pebble_future *fs[40];
  int64_t i, v;
  pebble_pool_options_init(&po);
  po.workers = 3;
  CHECK(pebble_pool_create(&p, PEBBLE_THREAD, &po) == PEBBLE_OK);
  for (i = 0; i < 40; i++)
    CHECK(pebble_pool_schedule(p, add, &i, sizeof i, NULL, &fs[i]) ==
          PEBBLE_OK);
  for (i = 0; i < 40; i++) {
    CHECK(pebble_future_get_int(fs[i], PEBBLE_SEC(60), &v) == PEBBLE_OK);
    CHECK(v == i + 1);
    pebble_future_release(fs[i]);
  }
  CHECK(pebble_pool_close(p) == PEBBLE_OK);
  CHECK(pebble_pool_join(p, PEBBLE_SEC(60)) == PEBBLE_OK);
  CHECK(pebble_pool_destroy(p) == PEBBLE_OK);
  return 0;
}

static int test_pool_timeout_and_map(void) {
  pebble_pool *p;
  pebble_pool_options po;
  pebble_future *f;
  pebble_map *m;
  pebble_item items[10];
  int64_t vals[10];
  size_t i;
  pebble_pool_options_init(&po);
  po.workers = 2;
  po.task_timeout = PEBBLE_MSEC(200);
  CHECK(pebble_pool_create(&p, PEBBLE_THREAD, &po) == PEBBLE_OK);
  CHECK(pebble_pool_schedule(p, until_stopped, NULL, 0, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_wait(f, PEBBLE_SEC(60)) == PEBBLE_OK);
  CHECK(pebble_future_status(f) == PEBBLE_ETIMEDOUT);
  pebble_future_release(f);
  for (i = 0; i < 10; i++) {
    vals[i] = (int64_t)i * 10;
    items[i].data = &vals[i];
    items[i].size = sizeof vals[i];
  }
  CHECK(pebble_pool_map(p, add, items, 10, NULL, &m) == PEBBLE_OK);
  for (i = 0; i < 10; i++) {
    const void *d;
    size_t n;
    int64_t v;
    CHECK(pebble_map_get(m, i, PEBBLE_SEC(60), &d, &n) == PEBBLE_OK);
    CHECK(n == sizeof v);
    memcpy(&v, d, sizeof v);
    CHECK(v == vals[i] + 1);
  }
  pebble_map_release(m);
  CHECK(pebble_pool_stop(p) == PEBBLE_OK);
  CHECK(pebble_pool_join(p, PEBBLE_SEC(60)) == PEBBLE_OK);
  CHECK(pebble_pool_destroy(p) == PEBBLE_OK);
  return 0;
}

/* A completion queue's handle is an Event a Windows loop waits on:
 * signalled while resolved futures wait in the queue, reset once it is
 * drained. */
static int test_cqueue_event(void) {
  pebble_cqueue *q;
  pebble_future *f, *got[4];
  intptr_t h;
  size_t n = 0;
  int64_t in = 5, v;
  CHECK(pebble_cqueue_create(&q) == PEBBLE_OK);
  CHECK(pebble_cqueue_handle(q, &h) == PEBBLE_OK);
  CHECK(WaitForSingleObject((HANDLE)h, 0) == WAIT_TIMEOUT);
  CHECK(pebble_run(PEBBLE_THREAD, add, &in, sizeof in, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_cqueue_add(q, f) == PEBBLE_OK);
  pebble_future_release(f);
  CHECK(WaitForSingleObject((HANDLE)h, 60000) == WAIT_OBJECT_0);
  CHECK(pebble_cqueue_drain(q, got, 4, &n) == PEBBLE_OK);
  CHECK(n == 1);
  CHECK(pebble_future_get_int(got[0], 0, &v) == PEBBLE_OK && v == 6);
  pebble_future_release(got[0]);
  CHECK(WaitForSingleObject((HANDLE)h, 0) == WAIT_TIMEOUT);
  pebble_cqueue_destroy(q);
  return 0;
}

static double cpu_seconds(void) {
  FILETIME c, e, k, u;
  ULARGE_INTEGER kk, uu;
  GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u);
  kk.LowPart = k.dwLowDateTime, kk.HighPart = k.dwHighDateTime;
  uu.LowPart = u.dwLowDateTime, uu.HighPart = u.dwHighDateTime;
  return (double)(kk.QuadPart + uu.QuadPart) / 1e7;
}

/* The manager thread sleeps by event: an idle library, with a pool of
 * idle threads, takes (almost) no CPU: under 1 % over 5 s, as issue 14
 * asks.  A spinning manager takes a whole CPU on an idle machine, and
 * was measured at 8.6 % on this 2-core one at a load of 16, so the bound
 * tells them apart even there. */
static int test_idle_uses_no_cpu(void) {
  pebble_pool *p;
  pebble_pool_options po;
  pebble_future *f;
  int64_t in = 1, v;
  double c0, t0, cpu, wall;
  pebble_pool_options_init(&po);
  po.workers = 2;
  CHECK(pebble_pool_create(&p, PEBBLE_THREAD, &po) == PEBBLE_OK);
  CHECK(pebble_pool_schedule(p, add, &in, sizeof in, NULL, &f) == PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_OK);
  pebble_future_release(f);
  Sleep(200);
  c0 = cpu_seconds();
  t0 = now_s();
  Sleep(5000);
  cpu = cpu_seconds() - c0;
  wall = now_s() - t0;
  printf("  idle: %.3f s CPU in %.3f s (%.1f %%)\n", cpu, wall,
         100 * cpu / wall);
  CHECK(cpu < 0.01 * wall);
  CHECK(pebble_pool_destroy(p) == PEBBLE_OK);
  return 0;
}

static int test_shutdown(void) {
  CHECK(pebble_shutdown() == PEBBLE_OK);
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  run("default backend is the built-in apr", test_default_backend);
  run("thread task result", test_thread_result);
  run("thread task error", test_thread_error);
  run("thread task timeout", test_thread_timeout);
  run("thread task cancel", test_thread_cancel);
  run("thread task that calls ExitThread", test_exit_thread);
  run("callbacks", test_callbacks);
  run("thread pool", test_thread_pool);
  run("thread pool timeout and map", test_pool_timeout_and_map);
  run("completion queue handle is an Event", test_cqueue_event);
  run("idle library uses no CPU", test_idle_uses_no_cpu);
  run("shutdown", test_shutdown);
  printf("Run Summary:    Type  Total    Ran Passed Failed Inactive\n");
  printf("               tests  %5d  %5d  %5d  %5d        0\n", n_run, n_run,
         n_run - n_failed, n_failed);
  return n_failed ? 1 : 0;
}
