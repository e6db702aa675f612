/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_futures.c -- the plain queue of pool_plain.c shaped like Pebble's
 * API: every task gets its own result object (malloc'd at submission,
 * freed by the submitter once it has waited on it), so this is the
 * reference for "one future per task" written directly in C.
 *
 * Written to be fast, not naive: a result object is a done flag and a
 * value; the worker publishes the flag and touches the shared lock only
 * when the submitter is actually asleep waiting (a waiter count, read
 * after the flag is set, in sequentially consistent order, so that either
 * the worker sees the waiter or the waiter sees the flag).  The queue is a
 * ring under one mutex with a condition variable for idle workers, as in
 * the plain pool.
 */
#include "pools.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

typedef struct result {
  atomic_int done;
  int value; /* the task's outcome, read after done */
} result;

typedef struct futures_sys {
  pthread_mutex_t lock;
  pthread_cond_t work;
  result **ring;
  size_t cap, head, count;
  int idle, quit;
  unsigned nthreads;
  pthread_t *threads;
  /* Results: a submitter asleep on a result it waits for. */
  pthread_mutex_t done_lock;
  pthread_cond_t done_cond;
  atomic_int waiters;
  result **pending; /* this burst's results, in submission order */
} futures_sys;

static void resolve(futures_sys *s, result *r, int value) {
  r->value = value;
  atomic_store(&r->done, 1);
  if (atomic_load(&s->waiters) > 0) {
    pthread_mutex_lock(&s->done_lock);
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->done_lock);
  }
}

static void *worker(void *arg) {
  futures_sys *s = arg;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    result *task;
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
    resolve(s, task, 0); /* the no-op's outcome */
    pthread_mutex_lock(&s->lock);
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

static void *create(unsigned workers, size_t max_burst) {
  futures_sys *s = calloc(1, sizeof *s);
  unsigned i;
  if (max_burst == 0)
    max_burst = 1;
  if (s == NULL || (s->ring = calloc(max_burst, sizeof *s->ring)) == NULL ||
      (s->pending = calloc(max_burst, sizeof *s->pending)) == NULL ||
      (s->threads = calloc(workers, sizeof *s->threads)) == NULL)
    bench_die("out of memory");
  s->cap = max_burst;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->work, NULL);
  pthread_mutex_init(&s->done_lock, NULL);
  pthread_cond_init(&s->done_cond, NULL);
  atomic_init(&s->waiters, 0);
  s->nthreads = workers;
  for (i = 0; i < workers; i++)
    if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
      bench_die("pthread_create failed");
  return s;
}

static result *submit(futures_sys *s) {
  result *r = malloc(sizeof *r);
  if (r == NULL)
    bench_die("out of memory");
  atomic_init(&r->done, 0);
  r->value = -1;
  pthread_mutex_lock(&s->lock);
  s->ring[(s->head + s->count) % s->cap] = r;
  s->count++;
  if (s->idle > 0)
    pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->lock);
  return r;
}

/* Wait for r, read its outcome, free it. */
static void wait_and_free(futures_sys *s, result *r) {
  if (!atomic_load(&r->done)) {
    pthread_mutex_lock(&s->done_lock);
    atomic_fetch_add(&s->waiters, 1);
    while (!atomic_load(&r->done))
      pthread_cond_wait(&s->done_cond, &s->done_lock);
    atomic_fetch_sub(&s->waiters, 1);
    pthread_mutex_unlock(&s->done_lock);
  }
  if (r->value != 0)
    bench_die("a no-op task failed");
  free(r);
}

static void burst(void *p, size_t n) {
  futures_sys *s = p;
  size_t i;
  if (n > s->cap)
    bench_die("burst of %zu tasks beyond the pool's %zu", n, s->cap);
  for (i = 0; i < n; i++)
    s->pending[i] = submit(s);
  for (i = 0; i < n; i++)
    wait_and_free(s, s->pending[i]);
}

static void round_trip(void *p) {
  futures_sys *s = p;
  wait_and_free(s, submit(s));
}

static void destroy(void *p) {
  futures_sys *s = p;
  unsigned i;
  pthread_mutex_lock(&s->lock);
  s->quit = 1;
  pthread_cond_broadcast(&s->work);
  pthread_mutex_unlock(&s->lock);
  for (i = 0; i < s->nthreads; i++)
    pthread_join(s->threads[i], NULL);
  pthread_cond_destroy(&s->work);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->done_cond);
  pthread_mutex_destroy(&s->done_lock);
  free(s->threads);
  free(s->ring);
  free(s->pending);
  free(s);
}

const bench_pool_sys bench_pool_futures = {
    "plain queue + result per task", NULL, create, burst, round_trip,
    destroy};
