/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread_task.c -- the seed's first example: run do_job(1, bar=2) in a
 * thread and print its result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pebble.h>

struct job_args {
  int foo, bar;
};

static int do_job(pebble_ctx *ctx, const void *arg, size_t size) {
  struct job_args a;
  if (size != sizeof a)
    return pebble_fail(ctx, 1, "expected struct job_args");
  memcpy(&a, arg, sizeof a);
  return pebble_result_int(ctx, a.foo + a.bar);
}

int main(void) {
  struct job_args args = {1, 2};
  pebble_future *task;
  int64_t result;
  /* PEBBLE_PROCESS instead would run it in a separate process. */
  if (pebble_run(PEBBLE_THREAD, do_job, &args, sizeof args, NULL, &task) !=
      PEBBLE_OK) {
    fprintf(stderr, "launch: %s\n", pebble_last_error());
    return 1;
  }
  if (pebble_future_get_int(task, PEBBLE_FOREVER, &result) != PEBBLE_OK) {
    fprintf(stderr, "task: %s\n", pebble_future_message(task));
    return 1;
  }
  printf("%" PRId64 "\n", result);
  pebble_future_release(task);
  return 0;
}
