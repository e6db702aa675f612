/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_deadline.c -- timed waits that keep to the monotonic clock.
 *
 * apr_thread_cond_timedwait() turns its timeout into a wall-clock time,
 * so a clock set back while a thread waits would make it wait that much
 * longer.  Instead a timed waiter waits without a timeout, and one
 * keeper thread, which sleeps in apr_pollset_poll() (a relative timeout,
 * kept by the kernel on a monotonic clock), wakes it at its deadline.
 *
 * Waiters are listed by deadline under the keeper's lock.  To wake one,
 * the keeper takes it off the list and marks it firing, then broadcasts
 * its condition variable holding the waiter's mutex, so the wake cannot
 * fall between the waiter's registration and its wait.  A waiter that
 * leaves while it is firing lets go of its mutex until the keeper is
 * done with it, so neither waits on the other holding a lock.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <apr_poll.h>
#include <apr_signal.h>

#include "apr_internal.h"

typedef struct waiter {
  pebble_bk_cond *cond;
  pebble_bk_mutex *mutex;
  uint64_t deadline;
  int listed; /* on the list; under lock */
  int firing; /* the keeper is using cond and mutex; under lock */
  struct waiter *next;
} waiter;

static apr_pool_t *pool;
static apr_thread_mutex_t *lock;
static apr_thread_cond_t *fired; /* a firing ended */
static apr_pollset_t *sleeper;   /* empty but wakeable: a monotonic sleep */
static apr_thread_t *keeper;
static waiter *list;
static int stopping;

static void fire(waiter *w) {
  w->listed = 0;
  w->firing = 1;
  apr_thread_mutex_unlock(lock);
  apr_thread_mutex_lock(w->mutex->m);
  apr_thread_cond_broadcast(w->cond->c);
  apr_thread_mutex_unlock(w->mutex->m);
  apr_thread_mutex_lock(lock);
  w->firing = 0;
  apr_thread_cond_broadcast(fired);
}

static void *APR_THREAD_FUNC keeper_main(apr_thread_t *self, void *unused) {
  (void)self;
  (void)unused;
#if !defined(_WIN32)
  apr_setup_signal_thread();
#endif
  apr_thread_mutex_lock(lock);
  while (!stopping) {
    uint64_t now = pba_now_ns();
    apr_interval_time_t timeout = -1;
    const apr_pollfd_t *ready;
    apr_int32_t n;
    if (list != NULL && list->deadline <= now) {
      waiter *w = list;
      list = w->next;
      fire(w);
      continue;
    }
    if (list != NULL) { /* microseconds, rounded up: never early */
      uint64_t us = (list->deadline - now + 999) / 1000;
      /* At most a day per sleep: the pollset takes an int of
       * milliseconds, which a longer wait would wrap. */
      if (us > PBA_POLL_MAX_MS * 1000u)
        us = PBA_POLL_MAX_MS * 1000u;
      timeout = (apr_interval_time_t)us;
    }
    apr_thread_mutex_unlock(lock);
    apr_pollset_poll(sleeper, timeout, &n, &ready);
    apr_thread_mutex_lock(lock);
  }
  apr_thread_mutex_unlock(lock);
  return NULL;
}

int pba_deadline_start(void) {
  apr_status_t st;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  list = NULL;
  stopping = 0;
  st = apr_thread_mutex_create(&lock, APR_THREAD_MUTEX_DEFAULT, pool);
  if (st == APR_SUCCESS)
    st = apr_thread_cond_create(&fired, pool);
  if (st == APR_SUCCESS)
    st = apr_pollset_create(&sleeper, 1, pool, APR_POLLSET_WAKEABLE);
  if (st == APR_SUCCESS)
    st = apr_thread_create(&keeper, NULL, keeper_main, NULL, pool);
  if (st != APR_SUCCESS) {
    apr_pool_destroy(pool);
    pool = NULL;
    keeper = NULL;
    return pba_status(st);
  }
  return PEBBLE_OK;
}

void pba_deadline_stop(void) {
  apr_status_t ignored;
  if (pool == NULL)
    return;
  apr_thread_mutex_lock(lock);
  stopping = 1;
  apr_thread_mutex_unlock(lock);
  apr_pollset_wakeup(sleeper);
  apr_thread_join(&ignored, keeper);
  apr_pool_destroy(pool);
  pool = NULL;
  keeper = NULL;
}

int pba_deadline_wait(pebble_bk_cond *cond, pebble_bk_mutex *mutex,
                      uint64_t deadline_ns) {
  waiter w, **at;
  int first;
  if (pba_now_ns() >= deadline_ns)
    return PEBBLE_ENOTREADY;
  w.cond = cond;
  w.mutex = mutex;
  w.deadline = deadline_ns;
  w.firing = 0;
  apr_thread_mutex_lock(lock);
  for (at = &list; *at != NULL && (*at)->deadline <= deadline_ns;
       at = &(*at)->next)
    ;
  w.next = *at;
  *at = &w;
  w.listed = 1;
  first = list == &w;
  apr_thread_mutex_unlock(lock);
  if (first)
    apr_pollset_wakeup(sleeper);

  apr_thread_cond_wait(cond->c, mutex->m);

  apr_thread_mutex_lock(lock);
  if (w.listed) {
    for (at = &list; *at != &w; at = &(*at)->next)
      ;
    *at = w.next;
    w.listed = 0;
  }
  if (w.firing) {
    apr_thread_mutex_unlock(mutex->m);
    while (w.firing)
      apr_thread_cond_wait(fired, lock);
    apr_thread_mutex_unlock(lock);
    apr_thread_mutex_lock(mutex->m);
  } else {
    apr_thread_mutex_unlock(lock);
  }
  return pba_now_ns() >= deadline_ns ? PEBBLE_ENOTREADY : PEBBLE_OK;
}
