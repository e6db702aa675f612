/* SPDX-License-Identifier: Apache-2.0 */
/*
 * static_app.c -- an application linked with libpebble.a (libtool's
 * -static), which defines names of its own that the library uses inside:
 * it links only if the archive exports nothing but pebble_*.  Runs a
 * thread task and a process task on the backend PEBBLE_BACKEND names (a
 * module then has to load into a program that exports no libpebble
 * function).  tests/check-static.sh runs it.
 */
#include <inttypes.h>
#include <stdio.h>

#include <pebble.h>

/* The library's own internal names, as an application might pick them. */
int pb_error(int code);
int pb_error(int code) { return code + 1; }
int pbp_fd_lock;

static int add_one(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v + 1);
}

static int run(pebble_kind kind, const char *what, int64_t in) {
  pebble_future *f;
  int64_t out = 0;
  if (pebble_run(kind, add_one, &in, sizeof in, NULL, &f) != PEBBLE_OK) {
    fprintf(stderr, "%s task: cannot launch: %s\n", what, pebble_last_error());
    return 1;
  }
  if (pebble_future_get_int(f, PEBBLE_FOREVER, &out) != PEBBLE_OK ||
      out != in + 1) {
    fprintf(stderr, "%s task: %s\n", what, pebble_future_message(f));
    pebble_future_release(f);
    return 1;
  }
  pebble_future_release(f);
  printf("%s task: %" PRId64 "\n", what, out);
  return 0;
}

int main(void) {
  int failed;
  if (pebble_init() != PEBBLE_OK) {
    fprintf(stderr, "init: %s\n", pebble_last_error());
    return 1;
  }
  printf("backend: %s\n", pebble_backend_name());
  failed = run(PEBBLE_THREAD, "thread", 1) | run(PEBBLE_PROCESS, "process", 2);
  pbp_fd_lock = pb_error(failed);
  pebble_shutdown();
  return pbp_fd_lock == 1 ? 0 : 1;
}
