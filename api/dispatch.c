/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dispatch.c -- the callback thread.
 *
 * Outcomes found by the manager (process results, deaths, timeouts) and
 * cancellations are handed here, so that a slow callback never delays a
 * deadline, a reap or another result.  Callbacks run one after another in
 * the order their futures resolved.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "internal.h"

typedef struct dispatch_item {
  pebble_future *future;
  struct dispatch_item *next;
} dispatch_item;

struct pb_dispatch {
  pb_lib *lib;
  pebble_bk_mutex *lock;
  pebble_bk_cond *wake;
  dispatch_item *head, *tail;
  int stop;
  pebble_bk_thread *thread;
};

static void dispatch_main(void *arg) {
  pb_dispatch *d = arg;
  const pebble_backend *bk = d->lib->bk;
  pb_role.library_thread = 1;
  bk->mutex_lock(d->lock);
  for (;;) {
    dispatch_item *item = d->head;
    if (item == NULL) {
      if (d->stop)
        break;
      bk->cond_wait(d->wake, d->lock, PEBBLE_BK_FOREVER);
      continue;
    }
    d->head = item->next;
    if (d->head == NULL)
      d->tail = NULL;
    bk->mutex_unlock(d->lock);
    pb_future_run_callbacks(item->future);
    pb_future_put(item->future);
    free(item);
    bk->mutex_lock(d->lock);
  }
  bk->mutex_unlock(d->lock);
}

int pb_dispatch_start(pb_lib *lib, pb_dispatch **out) {
  const pebble_backend *bk = lib->bk;
  pb_dispatch *d = calloc(1, sizeof *d);
  int rc;
  if (d == NULL)
    return PEBBLE_ENOMEM;
  d->lib = lib;
  rc = bk->mutex_create(&d->lock);
  if (rc == PEBBLE_OK && (rc = bk->cond_create(&d->wake)) != PEBBLE_OK)
    bk->mutex_destroy(d->lock);
  if (rc == PEBBLE_OK &&
      (rc = bk->thread_create(&d->thread, dispatch_main, NULL, d,
                              PEBBLE_BK_THREAD_INTERNAL)) != PEBBLE_OK) {
    bk->cond_destroy(d->wake);
    bk->mutex_destroy(d->lock);
  }
  if (rc != PEBBLE_OK) {
    free(d);
    pb_log(PEBBLE_LOG_ERROR, "cannot start the callback thread: %s",
           pebble_strerror(rc));
    return rc;
  }
  *out = d;
  return PEBBLE_OK;
}

void pb_dispatch_post(pb_dispatch *d, pebble_future *f) {
  const pebble_backend *bk = d->lib->bk;
  dispatch_item *item = malloc(sizeof *item);
  if (item == NULL) {
    /* Better late in the wrong thread than never. */
    pb_log(PEBBLE_LOG_ERROR, "out of memory queueing callbacks; running "
                             "them in the resolving thread");
    pb_future_run_callbacks(f);
    return;
  }
  pb_future_hold(f);
  item->future = f;
  item->next = NULL;
  bk->mutex_lock(d->lock);
  if (d->tail != NULL)
    d->tail->next = item;
  else
    d->head = item;
  d->tail = item;
  bk->cond_signal(d->wake);
  bk->mutex_unlock(d->lock);
}

void pb_dispatch_stop(pb_dispatch *d) {
  const pebble_backend *bk = d->lib->bk;
  bk->mutex_lock(d->lock);
  d->stop = 1;
  bk->cond_signal(d->wake);
  bk->mutex_unlock(d->lock);
  bk->thread_join(d->thread);
  bk->cond_destroy(d->wake);
  bk->mutex_destroy(d->lock);
  free(d);
}
