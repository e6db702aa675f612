/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_waitset.c -- one thread waits for channels, exits and wakes.
 *
 * apr_poll() over a wake pipe and, for every watched process, its
 * channel pipes and its exit pipe.  The array is rebuilt for each wait
 * from the watch list, which other threads may change: every change bumps
 * an epoch and wakes the waiter, which then reports nothing (the files
 * it polled may be closed by now) and is simply called again.
 *
 * apr_poll() takes milliseconds underneath; the timeout is rounded up and
 * the wait repeated until the deadline has really passed, so it never
 * returns early.  Only adding a process allocates: it makes room for it
 * in the list and in the waiter's array at once, so a wait never needs
 * memory and a process whose watch was refused is known to the caller.
 * (On Windows apr_poll takes sockets only: the waitset there is
 * apr_waitset_win32.c.)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include <apr_poll.h>

#include "apr_internal.h"

typedef struct watch {
  pebble_bk_proc *proc;
  unsigned events;
  void *tag;
} watch;

struct pebble_bk_waitset {
  apr_pool_t *pool;
  apr_thread_mutex_t *lock; /* guards the watch list and the epoch */
  apr_file_t *wake_rd, *wake_wr;
  int wake_pending;         /* a byte is in the pipe; atomic */
  watch *watches;
  size_t n_watches, cap_watches;
  unsigned long epoch;
  size_t rotate;            /* where reporting starts: fairness under cap */
  /* Scratch of the waiting thread, sized under the lock by watch; the
   * array a waiter is polling, and one replaced meanwhile, freed by the
   * waiter once its poll is over. */
  apr_pollfd_t *pfds;
  size_t cap_pfds;
  apr_pollfd_t *polling, *retired;
};

/* With the lock held: room for `need` watches, in the list and in the
 * waiter's array (a waiter may be polling the old one: it is kept for
 * it to free). */
static int reserve_locked(pebble_bk_waitset *ws, size_t need) {
  size_t cap;
  apr_pollfd_t *pfds;
  if (need > ws->cap_watches) {
    watch *grown;
    cap = ws->cap_watches ? ws->cap_watches * 2 : 16;
    grown = realloc(ws->watches, cap * sizeof *grown);
    if (grown == NULL)
      return PEBBLE_ENOMEM;
    ws->watches = grown;
    ws->cap_watches = cap;
  }
  if (1 + 3 * need <= ws->cap_pfds)
    return PEBBLE_OK;
  cap = 1 + 3 * (need < 16 ? 16 : need * 2);
  pfds = malloc(cap * sizeof *pfds);
  if (pfds == NULL)
    return PEBBLE_ENOMEM;
  if (ws->pfds != NULL && ws->pfds == ws->polling) {
    free(ws->retired); /* NULL: one poll sees one array */
    ws->retired = ws->pfds;
  } else {
    free(ws->pfds);
  }
  ws->pfds = pfds;
  ws->cap_pfds = cap;
  return PEBBLE_OK;
}

int pba_waitset_create(pebble_bk_waitset **out) {
  pebble_bk_waitset *ws;
  apr_pool_t *pool;
  apr_status_t st;
  if (out == NULL)
    return PEBBLE_EINVAL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  /* malloc'd, not from the pool: it holds malloc'd arrays, and pool
   * memory may come from mmap, where leak checkers cannot follow them. */
  ws = calloc(1, sizeof *ws);
  if (ws == NULL) {
    apr_pool_destroy(pool);
    return PEBBLE_ENOMEM;
  }
  ws->pool = pool;
  if (reserve_locked(ws, 0) != PEBBLE_OK) {
    apr_pool_destroy(pool);
    free(ws);
    return PEBBLE_ENOMEM;
  }
  st = apr_thread_mutex_create(&ws->lock, APR_THREAD_MUTEX_DEFAULT, pool);
  if (st == APR_SUCCESS)
    st = pba_pipe(&ws->wake_rd, &ws->wake_wr, 1, 1, pool);
  if (st != APR_SUCCESS) {
    pba_file_close(&ws->wake_rd);
    pba_file_close(&ws->wake_wr);
    apr_pool_destroy(pool);
    free(ws->pfds);
    free(ws);
    return pba_status(st);
  }
  *out = ws;
  return PEBBLE_OK;
}

void pba_waitset_destroy(pebble_bk_waitset *ws) {
  size_t i;
  if (ws == NULL)
    return;
  for (i = 0; i < ws->n_watches; i++)
    ws->watches[i].proc->ws = NULL;
  free(ws->watches);
  free(ws->pfds);
  free(ws->retired);
  pba_file_close(&ws->wake_rd);
  pba_file_close(&ws->wake_wr);
  apr_pool_destroy(ws->pool);
  free(ws);
}

void pba_waitset_wake(pebble_bk_waitset *ws) {
  apr_size_t one = 1;
  if (__atomic_exchange_n(&ws->wake_pending, 1, __ATOMIC_ACQ_REL) == 0)
    apr_file_write(ws->wake_wr, "w", &one);
}

/* Empty the pipe first, then clear the flag: a wake in between finds
 * the flag still set and writes nothing, which is fine, since the caller
 * looks at its work after this returns.  The other order could leave the
 * flag set over an empty pipe, and every later wake would be lost. */
static void drain_wake(pebble_bk_waitset *ws) {
  char buf[64];
  apr_size_t n = sizeof buf;
  while (apr_file_read(ws->wake_rd, buf, &n) == APR_SUCCESS && n > 0)
    n = sizeof buf;
  PBA_STORE(&ws->wake_pending, 0);
}

int pba_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                      unsigned events, void *tag) {
  size_t i;
  if (ws == NULL || proc == NULL)
    return PEBBLE_EINVAL;
  apr_thread_mutex_lock(ws->lock);
  for (i = 0; i < ws->n_watches && ws->watches[i].proc != proc; i++)
    ;
  if (events == 0) {
    if (i < ws->n_watches) {
      ws->watches[i] = ws->watches[--ws->n_watches];
      proc->ws = NULL;
    }
  } else {
    if (i == ws->n_watches) {
      if (reserve_locked(ws, ws->n_watches + 1) != PEBBLE_OK) {
        apr_thread_mutex_unlock(ws->lock);
        return PEBBLE_ENOMEM;
      }
      ws->n_watches++;
      ws->watches[i].proc = proc;
      proc->ws = ws;
    }
    ws->watches[i].events = events;
    ws->watches[i].tag = tag;
  }
  ws->epoch++;
  apr_thread_mutex_unlock(ws->lock);
  pba_waitset_wake(ws);
  return PEBBLE_OK;
}

void pba_waitset_forget_proc(pebble_bk_proc *proc) {
  pebble_bk_waitset *ws = proc->ws;
  if (ws != NULL)
    pba_waitset_watch(ws, proc, 0, NULL);
}

static void add_fd(apr_pollfd_t *pfd, apr_file_t *f, apr_int16_t what,
                   size_t watch_index, unsigned kind) {
  pfd->p = NULL;
  pfd->desc_type = APR_POLL_FILE;
  pfd->reqevents = what;
  pfd->rtnevents = 0;
  pfd->desc.f = f;
  /* Which watch, and which of its events, in one word. */
  pfd->client_data = (void *)(uintptr_t)(watch_index * 8u + kind);
}

int pba_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                     pebble_wait_event *events, size_t cap, size_t *count) {
  unsigned long epoch;
  apr_int32_t n_ready = 0;
  size_t n = 0, i;
  apr_pollfd_t *pfds;
  apr_status_t st;
  int rc = PEBBLE_OK, ready = 0;

  *count = 0;
  apr_thread_mutex_lock(ws->lock);
  /* The array has room for every watch (watch made it). */
  pfds = ws->polling = ws->pfds;
  add_fd(&pfds[n++], ws->wake_rd, APR_POLLIN, 0, 0);
  for (i = 0; i < ws->n_watches; i++) {
    const watch *w = &ws->watches[i];
    if (w->events & PEBBLE_EV_READ)
      add_fd(&pfds[n++], w->proc->from_child, APR_POLLIN, i,
             PEBBLE_EV_READ);
    if (w->events & PEBBLE_EV_WRITE)
      add_fd(&pfds[n++], w->proc->to_child, APR_POLLOUT, i,
             PEBBLE_EV_WRITE);
    if (w->events & PEBBLE_EV_EXIT)
      add_fd(&pfds[n++], w->proc->exit_rd, APR_POLLIN, i, PEBBLE_EV_EXIT);
  }
  epoch = ws->epoch;
  apr_thread_mutex_unlock(ws->lock);

  for (;;) {
    apr_interval_time_t timeout = -1;
    if (deadline_ns != PEBBLE_BK_FOREVER) {
      uint64_t now = pba_now_ns();
      if (now >= deadline_ns)
        break; /* deadline: nothing to report */
      /* Whole milliseconds, rounded up: apr_poll truncates.  At most a
       * day at a time: apr_poll hands poll() an int of milliseconds, and
       * a larger count would wrap (to "forever", or to a short wait). */
      uint64_t ms = (deadline_ns - now + 999999) / 1000000;
      if (ms > PBA_POLL_MAX_MS)
        ms = PBA_POLL_MAX_MS;
      timeout = (apr_interval_time_t)ms * 1000;
    }
    st = apr_poll(pfds, (apr_int32_t)n, &n_ready, timeout);
    if (st == APR_SUCCESS) {
      ready = 1;
      break;
    }
    if (!APR_STATUS_IS_TIMEUP(st) && !APR_STATUS_IS_EINTR(st)) {
      rc = pba_status(st);
      break;
    }
  }

  if (ready && pfds[0].rtnevents)
    drain_wake(ws);
  apr_thread_mutex_lock(ws->lock);
  ws->polling = NULL;
  /* Same epoch: the list, and so the array, did not change. */
  if (ready && epoch == ws->epoch) {
    /* Fold the ready descriptors into one event per watch, starting at a
     * rotating point so that a full `events` array starves nobody. */
    size_t start = n > 1 ? 1 + ws->rotate % (n - 1) : 1, k;
    for (k = 0; k + 1 < n && *count < cap; k++) {
      const apr_pollfd_t *pfd = &pfds[1 + (start - 1 + k) % (n - 1)];
      uintptr_t cd = (uintptr_t)pfd->client_data;
      size_t wi = cd / 8u, j;
      unsigned kind = (unsigned)(cd % 8u);
      if (pfd->rtnevents == 0)
        continue;
      for (j = 0; j < *count && events[j].tag != ws->watches[wi].tag; j++)
        ;
      if (j == *count) {
        events[j].tag = ws->watches[wi].tag;
        events[j].events = 0;
        (*count)++;
      }
      events[j].events |= kind;
    }
    ws->rotate++;
  }
  free(ws->retired); /* replaced while polled */
  ws->retired = NULL;
  apr_thread_mutex_unlock(ws->lock);
  return rc;
}
