/* SPDX-License-Identifier: Apache-2.0 */
/*
 * latch.c -- the peers' completion signal: an atomic countdown, so that
 * a task that is not the last one touches no lock, and a mutex/condition
 * pair that only the last task and the waiter use.
 */
#include "pools.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

struct bench_latch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  atomic_size_t left;
  int open;
};

bench_latch *bench_latch_new(void) {
  bench_latch *l = calloc(1, sizeof *l);
  if (l == NULL)
    bench_die("out of memory");
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->cond, NULL);
  atomic_init(&l->left, 0);
  return l;
}

void bench_latch_arm(bench_latch *l, size_t n) {
  l->open = 0;
  atomic_store(&l->left, n);
}

void bench_latch_count(bench_latch *l) {
  if (atomic_fetch_sub(&l->left, 1) != 1)
    return;
  pthread_mutex_lock(&l->lock);
  l->open = 1;
  pthread_cond_signal(&l->cond);
  pthread_mutex_unlock(&l->lock);
}

void bench_latch_wait(bench_latch *l) {
  pthread_mutex_lock(&l->lock);
  while (!l->open)
    pthread_cond_wait(&l->cond, &l->lock);
  pthread_mutex_unlock(&l->lock);
}

void bench_latch_free(bench_latch *l) {
  pthread_cond_destroy(&l->cond);
  pthread_mutex_destroy(&l->lock);
  free(l);
}
