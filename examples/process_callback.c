/* SPDX-License-Identifier: Apache-2.0 */
/*
 * process_callback.c -- the seed's second example: five tasks, each in a
 * separate process; a callback prints what each one returned.
 */
#include <inttypes.h>
#include <stdio.h>

#include <pebble.h>

static int do_job(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t foo;
  if (pebble_arg_int(arg, size, &foo) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, foo + 0); /* bar defaults to 0 */
}

/* Runs on the library's callback thread once the task's process is done. */
static void task_done(pebble_future *task, void *user_data) {
  int64_t result;
  (void)user_data;
  if (pebble_future_get_int(task, PEBBLE_NOWAIT, &result) == PEBBLE_OK)
    printf("Task %" PRIu64 " returned %" PRId64 "\n", pebble_future_seq(task),
           result);
  else
    printf("Task %" PRIu64 " failed: %s\n", pebble_future_seq(task),
           pebble_future_message(task));
  fflush(stdout);
}

int main(void) {
  pebble_task_options opts;
  pebble_task *job;
  pebble_future *tasks[5];
  int64_t i;

  /* Registered, so the task runs in a spawned process too (the only kind
   * on Windows); a spawned worker serves it from pebble_worker_main. */
  pebble_register("do_job", do_job);
  pebble_worker_main();
  pebble_task_options_init(&opts);
  opts.callback = task_done; /* @process(callback=task_done) */
  if (pebble_task_create(&job, PEBBLE_PROCESS, do_job, &opts) != PEBBLE_OK) {
    fprintf(stderr, "task: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 0; i < 5; i++)
    pebble_task_launch(job, &i, sizeof i, &tasks[i]);
  /* Instead of the seed's raw_input(): wait until all five are done;
   * their callbacks have run when it returns. */
  pebble_wait_all(tasks, 5, PEBBLE_FOREVER);
  for (i = 0; i < 5; i++)
    pebble_future_release(tasks[i]);
  pebble_task_destroy(job);
  pebble_shutdown();
  return 0;
}
