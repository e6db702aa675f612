/* SPDX-License-Identifier: Apache-2.0 */
/*
 * thread_pool.c -- the seed's fourth example: a pool of five threads runs
 * ten tasks; a callback prints each task's id, its result and the thread
 * that ran it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <pebble.h>

struct job_args {
  int foo, bar;
};
struct job_result {
  int64_t sum;
  uint64_t thread_id;
};

static int do_job(pebble_ctx *ctx, const void *arg, size_t size) {
  struct job_args a;
  struct job_result r;
  pthread_t self = pthread_self();
  if (size != sizeof a)
    return pebble_fail(ctx, 1, "bad argument");
  memcpy(&a, arg, sizeof a);
  r.sum = a.foo + a.bar;
  r.thread_id = 0;
  memcpy(&r.thread_id, &self,
         sizeof self < sizeof r.thread_id ? sizeof self : sizeof r.thread_id);
  return pebble_result_set(ctx, &r, sizeof r);
}

/* Runs on the worker thread right after the task. */
static void task_done(pebble_future *f, void *user_data) {
  const void *data;
  size_t size;
  struct job_result r;
  (void)user_data;
  if (pebble_future_get(f, PEBBLE_NOWAIT, &data, &size) != PEBBLE_OK) {
    printf("Task %" PRIu64 " failed: %s\n", pebble_future_seq(f),
           pebble_future_message(f));
    return;
  }
  memcpy(&r, data, sizeof r);
  printf("Task %" PRIu64 " returned %" PRId64 " from thread %" PRIx64 "\n",
         pebble_future_seq(f), r.sum, r.thread_id);
}

int main(void) {
  pebble_pool_options po;
  pebble_task_options to;
  pebble_task *job;
  pebble_pool *pool;
  pebble_future *futures[10];
  int i;

  pebble_pool_options_init(&po);
  po.workers = 5;
  if (pebble_pool_create(&pool, PEBBLE_THREAD, &po) != PEBBLE_OK) {
    fprintf(stderr, "pool: %s\n", pebble_last_error());
    return 1;
  }
  /* A definition numbers its futures 0, 1, 2...: the seed's task.id. */
  pebble_task_options_init(&to);
  to.callback = task_done;
  pebble_task_create(&job, PEBBLE_THREAD, do_job, &to);
  for (i = 0; i < 10; i++) {
    struct job_args a = {i, 0};
    if (pebble_pool_schedule_task(pool, job, &a, sizeof a, &futures[i]) !=
        PEBBLE_OK) {
      fprintf(stderr, "schedule: %s\n", pebble_last_error());
      return 1;
    }
  }
  pebble_pool_close(pool);
  pebble_pool_join(pool, PEBBLE_FOREVER);
  for (i = 0; i < 10; i++)
    pebble_future_release(futures[i]);
  pebble_task_destroy(job);
  pebble_pool_destroy(pool);
  return 0;
}
