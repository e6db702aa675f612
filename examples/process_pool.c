/* SPDX-License-Identifier: Apache-2.0 */
/*
 * process_pool.c -- a process pool survives a task that times out, a task
 * that crashes and a task that is cancelled, and keeps serving the rest.
 * The tasks are registered, so workers may be spawned (the only way on
 * Windows) as well as forked.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <pebble.h>

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, n * n);
}

static int hang(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  for (;;)
#ifdef _WIN32
    Sleep(INFINITE); /* only a kill ends this */
#else
    pause(); /* only a kill ends this */
#endif
  return 0;
}

static int crash(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
#ifdef _WIN32
  *(volatile int *)0 = 0; /* an access violation */
#else
  raise(SIGSEGV);
#endif
  return 0;
}

static void report(const char *what, pebble_future *f) {
  int64_t v;
  int rc = pebble_future_get_int(f, PEBBLE_FOREVER, &v);
  if (rc == PEBBLE_OK)
    printf("%s: %" PRId64 "\n", what, v);
  else
    printf("%s: %s (%s)\n", what, pebble_status_name(rc),
           pebble_future_message(f));
}

int main(void) {
  pebble_pool_options po;
  pebble_task_options slow;
  pebble_pool *pool;
  pebble_future *a, *b, *c, *d, *e;
  pebble_pool_stats st;
  int64_t seven = 7, eight = 8;

  pebble_register("square", square);
  pebble_register("hang", hang);
  pebble_register("crash", crash);
  pebble_worker_main(); /* a spawned worker serves tasks here */
  pebble_pool_options_init(&po);
  po.workers = 2;
  if (pebble_pool_create(&pool, PEBBLE_PROCESS, &po) != PEBBLE_OK) {
    fprintf(stderr, "pool: %s\n", pebble_last_error());
    return 1;
  }
  pebble_task_options_init(&slow);
  slow.timeout = PEBBLE_MSEC(200);

  pebble_pool_schedule(pool, hang, NULL, 0, &slow, &a);  /* times out */
  pebble_pool_schedule(pool, crash, NULL, 0, NULL, &b);  /* dies */
  pebble_pool_schedule(pool, hang, NULL, 0, NULL, &c);   /* cancelled */
  pebble_pool_schedule(pool, square, &seven, sizeof seven, NULL, &d);
  pebble_pool_schedule(pool, square, &eight, sizeof eight, NULL, &e);

  report("timeout", a);
  report("crash", b);
  pebble_future_cancel(c);
  report("cancel", c);
  report("7 squared", d);
  report("8 squared", e);

  pebble_pool_close(pool);
  pebble_pool_join(pool, PEBBLE_FOREVER);
  st.struct_size = sizeof st;
  pebble_pool_stats_get(pool, &st);
  printf("done %" PRIu64 ", failed %" PRIu64 ", timed out %" PRIu64
         ", cancelled %" PRIu64 "\n",
         st.done, st.failed, st.timed_out, st.cancelled);
  pebble_future_release(a);
  pebble_future_release(b);
  pebble_future_release(c);
  pebble_future_release(d);
  pebble_future_release(e);
  pebble_pool_destroy(pool);
  return 0;
}
