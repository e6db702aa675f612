/* SPDX-License-Identifier: Apache-2.0 */
/*
 * glib_loop.c -- collecting results inside a GLib main loop: the
 * completion queue's descriptor is added with g_unix_fd_add(), and each
 * time it is readable the callback drains the queue, without blocking
 * the loop's thread on a future.  The tasks run in a process pool: a
 * crash in one would fail its future, not the application.  Built when
 * configure finds GLib (Debian: libglib2.0-dev).
 */
#include <inttypes.h>
#include <stdio.h>

#include <glib-unix.h>
#include <glib.h>
#include <pebble.h>

#define TASKS 10

static int cube(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, n * n * n);
}

struct app {
  GMainLoop *loop;
  pebble_cqueue *queue;
  int pending, failed;
  int64_t total;
};

static gboolean on_readable(gint fd, GIOCondition condition, gpointer data) {
  struct app *app = data;
  pebble_future *done[4];
  size_t n, k;
  (void)fd;
  (void)condition;
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
  if (app->pending > 0)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE; /* all in: the source goes */
}

static gboolean on_guard(gpointer data) {
  struct app *app = data;
  fprintf(stderr, "glib_loop: %d results still missing after 60 s\n",
          app->pending);
  app->failed = 1;
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE;
}

int main(void) {
  struct app app = {0};
  pebble_pool *pool;
  intptr_t handle;
  guint watch, guard;
  int64_t i;

  if (pebble_pool_create(&pool, PEBBLE_PROCESS, NULL) != PEBBLE_OK ||
      pebble_cqueue_create(&app.queue) != PEBBLE_OK ||
      pebble_cqueue_handle(app.queue, &handle) != PEBBLE_OK) {
    fprintf(stderr, "setup: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 1; i <= TASKS; i++) {
    pebble_future *f;
    if (pebble_pool_schedule(pool, cube, &i, sizeof i, NULL, &f) !=
        PEBBLE_OK) {
      fprintf(stderr, "schedule: %s\n", pebble_last_error());
      return 1;
    }
    pebble_cqueue_add(app.queue, f);
    pebble_future_release(f); /* the queue holds its own reference */
    app.pending++;
  }

  app.loop = g_main_loop_new(NULL, FALSE);
  /* The descriptor stays readable while results wait (level-triggered). */
  watch = g_unix_fd_add((gint)handle, G_IO_IN, on_readable, &app);
  guard = g_timeout_add_seconds(60, on_guard, &app);
  g_main_loop_run(app.loop);
  if (app.pending > 0)
    g_source_remove(watch); /* the guard fired: the watch is still there */
  else
    g_source_remove(guard);
  g_main_loop_unref(app.loop);

  printf("sum of cubes 1..%d = %" PRId64 " (%d results through g_unix_fd_add)\n",
         TASKS, app.total, TASKS - app.pending);
  pebble_cqueue_destroy(app.queue);
  pebble_pool_destroy(pool);
  return app.failed || app.pending != 0;
}
