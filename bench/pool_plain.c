/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_plain.c -- the simplest correct thread pool, written here as the
 * floor any pool library is measured against: a ring of pending tasks
 * under one mutex, one condition variable that idle workers sleep on, and
 * the shared latch for completion.  No per-task allocation.
 */
#include "pools.h"

#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

typedef struct plain_sys {
  pthread_mutex_t lock;
  pthread_cond_t work;
  bench_latch **ring; /* a task is just the latch it counts down */
  size_t cap, head, count;
  int idle, quit;
  unsigned nthreads;
  pthread_t *threads;
  bench_latch *done;
} plain_sys;

static void *worker(void *arg) {
  plain_sys *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    bench_latch *task;
    while (s->count == 0 && !s->quit) {
      s->idle++;
      pthread_cond_wait(&s->work, &s->lock);
      s->idle--;
    }
    if (s->count == 0)
      break;
    task = s->ring[s->head];
    s->head = (s->head + 1) % s->cap;
    s->count--;
    pthread_mutex_unlock(&s->lock);
    bench_latch_count(task); /* the no-op's only effect */
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static void *create(unsigned workers, size_t max_burst) {
  plain_sys *s = calloc(1, sizeof *s);
  unsigned i;
  if (s == NULL || (s->ring = calloc(max_burst, sizeof *s->ring)) == NULL ||
      (s->threads = calloc(workers, sizeof *s->threads)) == NULL)
    bench_die("out of memory");
  s->cap = max_burst;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->work, NULL);
  s->done = bench_latch_new();
  s->nthreads = workers;
  for (i = 0; i < workers; i++)
    if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
      bench_die("pthread_create failed");
  return s;
}

static void submit(plain_sys *s, bench_latch *task) {
  pthread_mutex_lock(&s->lock);
  s->ring[(s->head + s->count) % s->cap] = task;
  s->count++;
  if (s->idle > 0)
    pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->lock);
}

static void burst(void *p, size_t n) {
  plain_sys *s = p;
  size_t i;
  bench_latch_arm(s->done, n);
  for (i = 0; i < n; i++)
    submit(s, s->done);
  bench_latch_wait(s->done);
}

static void round_trip(void *p) { burst(p, 1); }

static void destroy(void *p) {
  plain_sys *s = p;
  unsigned i;
  pthread_mutex_lock(&s->lock);
  s->quit = 1;
  pthread_cond_broadcast(&s->work);
  pthread_mutex_unlock(&s->lock);
  for (i = 0; i < s->nthreads; i++)
    pthread_join(s->threads[i], NULL);
  pthread_cond_destroy(&s->work);
  pthread_mutex_destroy(&s->lock);
  bench_latch_free(s->done);
  free(s->threads);
  free(s->ring);
  free(s);
}

const bench_pool_sys bench_pool_plain = {"plain mutex+condvar queue", NULL,
                                         create, burst, round_trip, destroy};
