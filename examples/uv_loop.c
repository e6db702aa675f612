/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uv_loop.c -- collecting results inside a libuv loop: the completion
 * queue's descriptor is watched by a uv_poll_t, and each time it is
 * readable the callback drains the queue, without blocking the loop's
 * thread on a future.  Built when configure finds libuv (Debian:
 * libuv1-dev).
 */
#include <inttypes.h>
#include <stdio.h>

#include <pebble.h>
#include <uv.h>

#define TASKS 10

static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, n * n);
}

struct app {
  pebble_cqueue *queue;
  uv_poll_t watcher;
  uv_timer_t guard; /* ends the loop should a result never come */
  int pending, failed;
  int64_t total;
};

static void on_readable(uv_poll_t *watcher, int status, int events) {
  struct app *app = watcher->data;
  pebble_future *done[4];
  size_t n, k;
  (void)events;
  if (status < 0) {
    fprintf(stderr, "uv_poll: %s\n", uv_strerror(status));
    app->failed = 1;
    uv_stop(watcher->loop);
    return;
  }
  /* Drain everything that is there: a small array, several rounds. */
  do {
    pebble_cqueue_drain(app->queue, done, 4, &n);
    for (k = 0; k < n; k++) {
      int64_t v;
      if (pebble_future_get_int(done[k], PEBBLE_NOWAIT, &v) == PEBBLE_OK) {
        app->total += v;
      } else {
        fprintf(stderr, "task failed: %s\n", pebble_future_message(done[k]));
        app->failed = 1;
      }
      pebble_future_release(done[k]);
      app->pending--;
    }
  } while (n == 4);
  if (app->pending == 0) { /* all in: let the loop end */
    uv_poll_stop(&app->watcher);
    uv_timer_stop(&app->guard);
  }
}

static void on_guard(uv_timer_t *guard) {
  struct app *app = guard->data;
  fprintf(stderr, "uv_loop: %d results still missing after 60 s\n",
          app->pending);
  app->failed = 1;
  uv_stop(guard->loop);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  struct app app = {0};
  pebble_pool *pool;
  intptr_t handle;
  int64_t i;

  if (pebble_pool_create(&pool, PEBBLE_THREAD, NULL) != PEBBLE_OK ||
      pebble_cqueue_create(&app.queue) != PEBBLE_OK ||
      pebble_cqueue_handle(app.queue, &handle) != PEBBLE_OK) {
    fprintf(stderr, "setup: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 1; i <= TASKS; i++) {
    pebble_future *f;
    if (pebble_pool_schedule(pool, square, &i, sizeof i, NULL, &f) !=
        PEBBLE_OK) {
      fprintf(stderr, "schedule: %s\n", pebble_last_error());
      return 1;
    }
    pebble_cqueue_add(app.queue, f);
    pebble_future_release(f); /* the queue holds its own reference */
    app.pending++;
  }

  /* The descriptor stays readable while results wait (level-triggered):
   * one wake-up may bring several, and none is lost between wake-ups. */
  uv_poll_init(loop, &app.watcher, (int)handle);
  app.watcher.data = &app;
  uv_poll_start(&app.watcher, UV_READABLE, on_readable);
  uv_timer_init(loop, &app.guard);
  app.guard.data = &app;
  uv_timer_start(&app.guard, on_guard, 60000, 0);
  uv_run(loop, UV_RUN_DEFAULT);

  uv_close((uv_handle_t *)&app.watcher, NULL);
  uv_close((uv_handle_t *)&app.guard, NULL);
  uv_run(loop, UV_RUN_DEFAULT); /* runs the close callbacks */
  uv_loop_close(loop);

  printf("sum of squares 1..%d = %" PRId64 " (%d results through a uv_poll_t)\n",
         TASKS, app.total, TASKS - app.pending);
  pebble_cqueue_destroy(app.queue);
  pebble_pool_destroy(pool);
  return app.failed || app.pending != 0;
}
