/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_loop.c -- collecting results inside an application's own poll()
 * loop through a completion queue, without blocking a thread on a future.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>

#include <pebble.h>

static int cube(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, n * n * n);
}

int main(void) {
  pebble_pool *pool;
  pebble_cqueue *queue;
  intptr_t handle;
  int64_t i, total = 0;
  int pending = 5;

  if (pebble_pool_create(&pool, PEBBLE_PROCESS, NULL) != PEBBLE_OK ||
      pebble_cqueue_create(&queue) != PEBBLE_OK ||
      pebble_cqueue_handle(queue, &handle) != PEBBLE_OK) {
    fprintf(stderr, "setup: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 1; i <= 5; i++) {
    pebble_future *f;
    pebble_pool_schedule(pool, cube, &i, sizeof i, NULL, &f);
    pebble_cqueue_add(queue, f);
    pebble_future_release(f); /* the queue holds its own reference */
  }
  while (pending > 0) {
    struct pollfd pfd;
    pebble_future *done[8];
    size_t n, k;
    pfd.fd = (int)handle;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, -1) < 0) /* other descriptors would go here too */
      return 1;
    pebble_cqueue_drain(queue, done, 8, &n);
    for (k = 0; k < n; k++) {
      int64_t v;
      if (pebble_future_get_int(done[k], PEBBLE_NOWAIT, &v) == PEBBLE_OK)
        total += v;
      pebble_future_release(done[k]);
      pending--;
    }
  }
  printf("sum of cubes 1..5 = %" PRId64 "\n", total);
  pebble_cqueue_destroy(queue);
  pebble_pool_destroy(pool);
  return 0;
}
