/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cqueue.c -- completion queues and waiting on many futures.
 *
 * A queue is fed by a done-callback on each future added to it, so it
 * works the same for every kind of task.  Its OS handle is the backend's
 * notifier, set while the queue holds futures and cleared when it is
 * drained empty; it is only created if the application asks for it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct cq_item {
  pebble_future *future;
  struct cq_item *next;
} cq_item;

struct pebble_cqueue {
  pb_lib *lib;
  uint64_t gen;
  atomic_int refs; /* the application's, and one per pending future */
  pebble_bk_mutex *lock;
  pebble_bk_cond *ready;
  cq_item *head, *tail;
  int destroyed;
  pebble_bk_notifier *notifier;
};

static void cq_unref(pebble_cqueue *q) {
  const pebble_backend *bk;
  if (atomic_fetch_sub(&q->refs, 1) != 1)
    return;
  bk = q->lib->bk;
  if (q->notifier != NULL)
    bk->notifier_destroy(q->notifier);
  bk->cond_destroy(q->ready);
  bk->mutex_destroy(q->lock);
  pb_lib_drop(q->lib);
  free(q);
}

int pebble_cqueue_create(pebble_cqueue **queue) {
  pebble_cqueue *q;
  pb_lib *L;
  int rc;
  if (queue == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_create: queue is NULL");
  *queue = NULL;
  if ((rc = pb_lib_get(&L)) != PEBBLE_OK)
    return rc;
  q = calloc(1, sizeof *q);
  if (q == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a queue");
  if (L->bk->mutex_create(&q->lock) != PEBBLE_OK) {
    free(q);
    return pb_error(PEBBLE_ESYSTEM, "cannot create the queue's lock");
  }
  if (L->bk->cond_create(&q->ready) != PEBBLE_OK) {
    L->bk->mutex_destroy(q->lock);
    free(q);
    return pb_error(PEBBLE_ESYSTEM, "cannot create the queue's condition");
  }
  q->lib = L;
  q->gen = L->gen;
  atomic_init(&q->refs, 1);
  pb_lib_hold(L);
  *queue = q;
  return PEBBLE_OK;
}

/* Takes the items out; releases them (no lock held). */
static void release_items(cq_item *it) {
  while (it != NULL) {
    cq_item *next = it->next;
    pebble_future_release(it->future);
    free(it);
    it = next;
  }
}

void pebble_cqueue_destroy(pebble_cqueue *q) {
  cq_item *items;
  if (q == NULL || q->lib->bk->fork_generation() != q->gen)
    return;
  q->lib->bk->mutex_lock(q->lock);
  q->destroyed = 1;
  items = q->head;
  q->head = q->tail = NULL;
  q->lib->bk->mutex_unlock(q->lock);
  release_items(items);
  cq_unref(q);
}

int pebble_cqueue_handle(pebble_cqueue *q, intptr_t *handle) {
  const pebble_backend *bk;
  int rc = PEBBLE_OK;
  if (q == NULL || handle == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_handle: NULL argument");
  if ((rc = pb_lib_check(q->lib, q->gen)) != PEBBLE_OK)
    return rc;
  bk = q->lib->bk;
  if (bk->struct_size < offsetof(pebble_backend, notifier_clear) +
                            sizeof bk->notifier_clear ||
      bk->notifier_create == NULL)
    return pb_error(PEBBLE_ENOTSUP,
                    "backend '%s' has no notifier for event loops", bk->name);
  bk->mutex_lock(q->lock);
  if (q->notifier == NULL) {
    rc = bk->notifier_create(&q->notifier);
    if (rc == PEBBLE_OK && q->head != NULL)
      bk->notifier_set(q->notifier);
  }
  if (rc == PEBBLE_OK)
    *handle = bk->notifier_handle(q->notifier);
  bk->mutex_unlock(q->lock);
  if (rc != PEBBLE_OK)
    return pb_error(rc, "cannot create the queue's OS handle");
  return PEBBLE_OK;
}

/* The done-callback that feeds the queue. */
static void deliver(pebble_future *f, void *user_data) {
  pebble_cqueue *q = user_data;
  const pebble_backend *bk = q->lib->bk;
  cq_item *it = malloc(sizeof *it);
  if (it == NULL) {
    pb_log(PEBBLE_LOG_ERROR, "out of memory delivering future %llu to a "
                             "completion queue",
           (unsigned long long)f->id);
    cq_unref(q);
    return;
  }
  it->future = pebble_future_ref(f);
  it->next = NULL;
  bk->mutex_lock(q->lock);
  if (q->destroyed) {
    bk->mutex_unlock(q->lock);
    pebble_future_release(f);
    free(it);
    cq_unref(q);
    return;
  }
  if (q->tail != NULL)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  if (q->notifier != NULL)
    bk->notifier_set(q->notifier);
  bk->cond_signal(q->ready);
  bk->mutex_unlock(q->lock);
  cq_unref(q);
}

int pebble_cqueue_add(pebble_cqueue *q, pebble_future *f) {
  int rc;
  if (q == NULL || f == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_add: NULL argument");
  if ((rc = pb_lib_check(q->lib, q->gen)) != PEBBLE_OK)
    return rc;
  atomic_fetch_add(&q->refs, 1); /* dropped by deliver */
  rc = pebble_future_add_callback(f, deliver, q);
  if (rc != PEBBLE_OK)
    cq_unref(q);
  return rc;
}

/* Pop one item (lock held); clear the handle when empty. */
static pebble_future *pop(pebble_cqueue *q) {
  cq_item *it = q->head;
  pebble_future *f;
  if (it == NULL)
    return NULL;
  q->head = it->next;
  if (q->head == NULL) {
    q->tail = NULL;
    if (q->notifier != NULL)
      q->lib->bk->notifier_clear(q->notifier);
  }
  f = it->future;
  free(it);
  return f;
}

int pebble_cqueue_drain(pebble_cqueue *q, pebble_future **futures, size_t cap,
                        size_t *count) {
  size_t n = 0;
  int rc;
  if (q == NULL || (futures == NULL && cap > 0) || count == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_drain: NULL argument");
  if ((rc = pb_lib_check(q->lib, q->gen)) != PEBBLE_OK)
    return rc;
  q->lib->bk->mutex_lock(q->lock);
  while (n < cap && (futures[n] = pop(q)) != NULL)
    n++;
  q->lib->bk->mutex_unlock(q->lock);
  *count = n;
  return PEBBLE_OK;
}

int pebble_cqueue_wait(pebble_cqueue *q, pebble_time_t timeout,
                       pebble_future **future) {
  const pebble_backend *bk;
  uint64_t deadline;
  pebble_future *f;
  int rc;
  if (q == NULL || future == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_wait: NULL argument");
  *future = NULL;
  if (timeout < 0 && timeout != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL, "pebble_cqueue_wait: negative timeout");
  if ((rc = pb_lib_check(q->lib, q->gen)) != PEBBLE_OK)
    return rc;
  bk = q->lib->bk;
  deadline = pb_deadline_after(bk, timeout);
  bk->mutex_lock(q->lock);
  while ((f = pop(q)) == NULL) {
    if (timeout == PEBBLE_NOWAIT ||
        (bk->cond_wait(q->ready, q->lock, deadline) == PEBBLE_ENOTREADY &&
         q->head == NULL))
      break;
  }
  bk->mutex_unlock(q->lock);
  if (f == NULL)
    return pb_error(PEBBLE_ENOTREADY, "no future resolved within the time "
                                      "given");
  *future = f;
  return PEBBLE_OK;
}

/* ---- waiting on many ---- */

/* The futures of a batch tend to resolve in the order they were
 * scheduled, so the last one is waited for first: one wait (a spin or a
 * sleep) for the whole batch, after which the others are mostly resolved
 * already.  Waiting in order instead watches each future while its
 * worker is settling it, and the two threads then pass that future's
 * memory back and forth for every task (a queue of 50,000 no-op tasks
 * drained at 760-830 ns a task that way, 85-100 ns last first). */
#define WAIT_AHEAD 8
static int wait_one(pebble_future *f, pb_lib *L, pebble_time_t timeout,
                    uint64_t deadline) {
  pebble_time_t left = timeout;
  if (deadline == PEBBLE_BK_FOREVER) /* also a timeout too large to count */
    left = PEBBLE_FOREVER;
  else if (timeout != PEBBLE_FOREVER && !pb_future_is_resolved(f)) {
    uint64_t now = L->bk->now_ns();
    left = now >= deadline ? 0 : (pebble_time_t)((deadline - now) / 1000);
  }
  return pebble_future_wait(f, left);
}

int pebble_wait_all(pebble_future *const *futures, size_t count,
                    pebble_time_t timeout) {
  size_t i;
  pb_lib *L;
  uint64_t deadline;
  int rc;
  if (futures == NULL && count > 0)
    return pb_error(PEBBLE_EINVAL, "pebble_wait_all: futures is NULL");
  if (timeout < 0 && timeout != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL, "pebble_wait_all: negative timeout");
  for (i = 0; i < count; i++)
    if (futures[i] == NULL)
      return pb_error(PEBBLE_EINVAL, "pebble_wait_all: futures[%zu] is NULL",
                      i);
  if (count == 0)
    return PEBBLE_OK;
  L = futures[count - 1]->lib;
  deadline = pb_deadline_after(L->bk, timeout);
  if ((rc = wait_one(futures[count - 1], L, timeout, deadline)) != PEBBLE_OK)
    return rc;
  for (i = 0; i + 1 < count; i++) {
    /* A batch of thousands has left the cache since the workers wrote
     * its outcomes: fetch the futures a few ahead of their look. */
    if (i + WAIT_AHEAD + 1 < count)
      PB_PREFETCH_READ(futures[i + WAIT_AHEAD]);
    if ((rc = wait_one(futures[i], L, timeout, deadline)) != PEBBLE_OK)
      return rc;
  }
  return PEBBLE_OK;
}

int pebble_wait_any(pebble_future *const *futures, size_t count,
                    pebble_time_t timeout, size_t *index) {
  pebble_cqueue *q;
  pebble_future *got;
  size_t i, found = 0;
  uint64_t deadline;
  int rc;
  if (futures == NULL || count == 0)
    return pb_error(PEBBLE_EINVAL, "pebble_wait_any: no futures");
  for (i = 0; i < count; i++) {
    if (futures[i] == NULL)
      return pb_error(PEBBLE_EINVAL, "pebble_wait_any: futures[%zu] is NULL",
                      i);
    if (pb_role.running_future == futures[i] && count == 1)
      return pb_error(PEBBLE_EDEADLK, "pebble_wait_any: called from the "
                                      "task that resolves the only future");
  }
  deadline = pb_deadline_after(futures[0]->lib->bk, timeout);
  /* The future found then waits as pebble_future_wait does: for the
   * callbacks attached before it resolved. */
  for (i = 0; i < count; i++)
    if (pb_future_is_resolved(futures[i])) {
      if (index != NULL)
        *index = i;
      return wait_one(futures[i], futures[i]->lib, timeout, deadline);
    }
  if (timeout == PEBBLE_NOWAIT)
    return pb_error(PEBBLE_ENOTREADY, "no future is resolved yet");
  /* A private queue fed by every future; whoever comes first wins. */
  if ((rc = pebble_cqueue_create(&q)) != PEBBLE_OK)
    return rc;
  for (i = 0; i < count && rc == PEBBLE_OK; i++)
    rc = pebble_cqueue_add(q, futures[i]);
  if (rc == PEBBLE_OK)
    rc = pebble_cqueue_wait(q, timeout, &got);
  if (rc == PEBBLE_OK) {
    pebble_future_release(got);
    for (i = 0; i < count; i++)
      if (pb_future_is_resolved(futures[i])) {
        found = i;
        if (index != NULL)
          *index = i;
        break;
      }
  }
  pebble_cqueue_destroy(q);
  if (rc == PEBBLE_OK)
    rc = wait_one(futures[found], futures[found]->lib, timeout, deadline);
  return rc;
}
