/* SPDX-License-Identifier: Apache-2.0 */
/*
 * object_callbacks.c -- the seed's third example: callbacks assigned at
 * run time to an object, counting successes and failures of process
 * tasks.  The user data pointer plays the role of Python's `self`.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <pebble.h>

struct foo {
  /* Callbacks run on the library's callback thread while main() goes on,
   * so the counters are atomic. */
  atomic_int counter;
  atomic_int errors;
  pebble_task *do_job;
  pebble_task *do_wrong_job;
};

static int do_job(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, 1);
}

static int do_wrong_job(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 1, "Ops!");
}

/* foo.task_done: get() gives the result, or the task's error. */
static void task_done(pebble_future *task, void *self) {
  struct foo *foo = self;
  int64_t value;
  if (pebble_future_get_int(task, PEBBLE_NOWAIT, &value) == PEBBLE_OK)
    atomic_fetch_add(&foo->counter, (int)value);
  else if (strcmp(pebble_future_message(task), "Ops!") == 0)
    atomic_fetch_add(&foo->errors, 1);
}

static int foo_init(struct foo *foo) {
  atomic_init(&foo->counter, 0);
  atomic_init(&foo->errors, 0);
  if (pebble_task_create(&foo->do_job, PEBBLE_PROCESS, do_job, NULL) ||
      pebble_task_create(&foo->do_wrong_job, PEBBLE_PROCESS, do_wrong_job,
                         NULL))
    return -1;
  /* self.do_job.callback = self.task_done, assigned at run time. */
  pebble_task_set_callback(foo->do_job, task_done, foo, NULL);
  pebble_task_set_callback(foo->do_wrong_job, task_done, foo, NULL);
  return 0;
}

int main(void) {
  struct foo foo;
  pebble_future *tasks[10];
  int i;

  /* Registered, so the tasks run in spawned processes too (the only kind
   * on Windows); a spawned worker serves them from pebble_worker_main. */
  pebble_register("do_job", do_job);
  pebble_register("do_wrong_job", do_wrong_job);
  pebble_worker_main();
  if (foo_init(&foo) != 0) {
    fprintf(stderr, "%s\n", pebble_last_error());
    return 1;
  }
  for (i = 0; i < 5; i++) {
    pebble_task_launch(foo.do_job, NULL, 0, &tasks[2 * i]);
    pebble_task_launch(foo.do_wrong_job, NULL, 0, &tasks[2 * i + 1]);
  }
  /* Instead of the seed's sleep(1): wait for the tasks, which returns
   * once their callbacks have run too, release them, and shut down. */
  pebble_wait_all(tasks, 10, PEBBLE_FOREVER);
  for (i = 0; i < 10; i++)
    pebble_future_release(tasks[i]);
  pebble_task_destroy(foo.do_job);
  pebble_task_destroy(foo.do_wrong_job);
  pebble_shutdown();
  printf("%d\n%d\n", atomic_load(&foo.counter), atomic_load(&foo.errors));
  return 0;
}
