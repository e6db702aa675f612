/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manager.c -- the library thread that supervises work.
 *
 * One thread per library state runs one event loop: commands posted by
 * other threads, events of the processes it watches, and deadlines.  It
 * waits on one backend waitset with the nearest deadline as its timeout,
 * so nothing is ever polled.  What to do on an event or a deadline is up
 * to the watched object (a one-shot job, a pool worker); this file only
 * runs the loop.  Processes are started from this thread because
 * parent-death signals follow the forking thread, which must live as long
 * as the workers.  It never runs user callbacks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "internal.h"

#define PB_EVENTS_MAX 64

struct pb_manager {
  pb_lib *lib;
  const pebble_backend *bk;
  pebble_bk_waitset *ws;
  pebble_bk_mutex *lock; /* guards the command queue and stop */
  /* Held by the manager thread whenever it is not waiting for events,
   * and by an application thread that reads a worker's outcomes itself
   * (pb_manager_enter): whoever holds it may do the manager's work. */
  pebble_bk_mutex *baton;
  pb_cmd *head, *tail;
  int stop;
  /* Under the lock: the manager is about to wait or waiting (set only
   * after it found no command), and whether a poster woke it since. */
  int sleeping, woken;
  atomic_long owned; /* work not yet cleaned up */
  pebble_bk_thread *thread;
  pb_watch *active; /* manager thread only */
};

void pb_manager_activate(pb_manager *m, pb_watch *w) {
  if (w->active)
    return;
  w->active = 1;
  w->prev = NULL;
  w->next = m->active;
  if (m->active != NULL)
    m->active->prev = w;
  m->active = w;
}

void pb_manager_deactivate(pb_manager *m, pb_watch *w) {
  if (!w->active)
    return;
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    m->active = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
  w->active = 0;
}

pebble_bk_waitset *pb_manager_waitset(pb_manager *m) { return m->ws; }

void pb_manager_enter(pb_manager *m) { m->bk->mutex_lock(m->baton); }

void pb_manager_leave(pb_manager *m) { m->bk->mutex_unlock(m->baton); }

void pb_manager_adopt(pb_manager *m, long delta) {
  atomic_fetch_add(&m->owned, delta);
}

/* Wakes the manager only when it sleeps and nobody woke it yet: a
 * manager that is awake looks at the queue again before it sleeps (so a
 * post from the manager thread itself never writes), and the wake-up
 * stays pending until its wait, so it is never lost. */
void pb_manager_post(pb_manager *m, pb_cmd *cmd) {
  int wake = 0;
  m->bk->mutex_lock(m->lock);
  if (!atomic_load_explicit(&cmd->queued, memory_order_relaxed)) {
    atomic_store(&cmd->queued, 1);
    cmd->next = NULL;
    if (m->tail != NULL)
      m->tail->next = cmd;
    else
      m->head = cmd;
    m->tail = cmd;
    if (m->sleeping && !m->woken)
      wake = m->woken = 1;
  }
  m->bk->mutex_unlock(m->lock);
  if (wake)
    m->bk->waitset_wake(m->ws);
}

/* The caller's write, this load, the dequeue's store of 0 and the run's
 * read are all sequentially consistent: a load that still sees 1 comes
 * before the dequeue in their single order, so the run that follows the
 * dequeue sees the write.  A scheduling thread in a burst then skips the
 * lock the manager takes for every command. */
void pb_manager_post_seen(pb_manager *m, pb_cmd *cmd) {
  if (atomic_load(&cmd->queued))
    return;
  pb_manager_post(m, cmd);
}

/* Commit to sleeping unless a command came in meanwhile. */
static int may_sleep(pb_manager *m) {
  int ok;
  m->bk->mutex_lock(m->lock);
  ok = m->head == NULL;
  if (ok) {
    m->sleeping = 1;
    m->woken = 0;
  }
  m->bk->mutex_unlock(m->lock);
  return ok;
}

static void awake(pb_manager *m) {
  m->bk->mutex_lock(m->lock);
  m->sleeping = 0;
  m->bk->mutex_unlock(m->lock);
}

/* Run queued commands one at a time: a command may post again. */
static int run_commands(pb_manager *m) {
  for (;;) {
    pb_cmd *cmd;
    int stop;
    m->bk->mutex_lock(m->lock);
    cmd = m->head;
    if (cmd != NULL) {
      m->head = cmd->next;
      if (m->head == NULL)
        m->tail = NULL;
      atomic_store(&cmd->queued, 0); /* see pb_manager_post_seen */
    }
    stop = m->stop;
    m->bk->mutex_unlock(m->lock);
    if (cmd == NULL)
      return stop;
    cmd->run(m, cmd);
  }
}

/* Run due deadlines; return the nearest one still ahead. */
static uint64_t expire(pb_manager *m) {
  uint64_t now = m->bk->now_ns(), next = PEBBLE_BK_FOREVER;
  pb_watch *w, *following;
  for (w = m->active; w != NULL; w = following) {
    following = w->next;
    if (w->deadline <= now && w->on_deadline != NULL) {
      w->on_deadline(m, w, now); /* may deactivate or free w */
      continue;
    }
    if (w->deadline < next)
      next = w->deadline;
  }
  /* A handler may have set a deadline earlier than the scan saw. */
  for (w = m->active; w != NULL; w = w->next)
    if (w->deadline < next)
      next = w->deadline;
  return next;
}

static void manager_main(void *arg) {
  pb_manager *m = arg;
  pebble_wait_event events[PB_EVENTS_MAX];
  int wait_rc = PEBBLE_OK; /* the last wait's error, said once */
  pb_role.library_thread = 1;
  pb_role.manager_thread = 1;
  pb_manager_enter(m);
  for (;;) {
    size_t n = 0, i;
    uint64_t next;
    int rc, stop = run_commands(m);
    next = expire(m);
    if (stop && m->active == NULL && atomic_load(&m->owned) == 0)
      break;
    if (!may_sleep(m))
      continue; /* a deadline handler posted: run it first */
    pb_manager_leave(m);
    rc = m->bk->waitset_wait(m->ws, next, events, PB_EVENTS_MAX, &n);
    pb_manager_enter(m);
    if (rc != PEBBLE_OK && rc != wait_rc) /* a backend fault: say so once */
      pb_log(PEBBLE_LOG_ERROR,
             "the manager thread's wait failed (%s): it cannot sleep "
             "until the backend's waitset works",
             pebble_strerror(rc));
    wait_rc = rc;
    awake(m);
    for (i = 0; i < n; i++) {
      pb_watch *w = events[i].tag;
      if (w != NULL && w->on_events != NULL)
        w->on_events(m, w, events[i].events);
    }
  }
  pb_manager_leave(m);
}

int pb_manager_start(pb_lib *lib, pb_manager **out) {
  const pebble_backend *bk = lib->bk;
  pb_manager *m = calloc(1, sizeof *m);
  int rc;
  if (m == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory starting the manager");
  m->lib = lib;
  m->bk = bk;
  atomic_init(&m->owned, 0);
  rc = bk->mutex_create(&m->lock);
  if (rc == PEBBLE_OK && (rc = bk->mutex_create(&m->baton)) != PEBBLE_OK)
    bk->mutex_destroy(m->lock);
  if (rc == PEBBLE_OK && (rc = bk->waitset_create(&m->ws)) != PEBBLE_OK) {
    bk->mutex_destroy(m->baton);
    bk->mutex_destroy(m->lock);
  }
  if (rc == PEBBLE_OK &&
      (rc = bk->thread_create(&m->thread, manager_main, NULL, m,
                              PEBBLE_BK_THREAD_INTERNAL)) != PEBBLE_OK) {
    bk->waitset_destroy(m->ws);
    bk->mutex_destroy(m->baton);
    bk->mutex_destroy(m->lock);
  }
  if (rc != PEBBLE_OK) {
    free(m);
    return pb_error(PEBBLE_ESYSTEM,
                    "cannot start the library's manager thread: %s",
                    pebble_strerror(rc));
  }
  *out = m;
  return PEBBLE_OK;
}

/* Waits until everything the manager owns is cleaned up. */
void pb_manager_stop(pb_manager *m) {
  m->bk->mutex_lock(m->lock);
  m->stop = 1;
  m->bk->mutex_unlock(m->lock);
  m->bk->waitset_wake(m->ws);
  m->bk->thread_join(m->thread);
  m->bk->waitset_destroy(m->ws);
  m->bk->mutex_destroy(m->baton);
  m->bk->mutex_destroy(m->lock);
  free(m);
}
