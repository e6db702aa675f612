/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_waitset_win32.c -- the manager thread's wait on Windows.
 *
 * On Windows apr_poll() and apr_pollset take sockets only: a pipe is
 * refused (APR_EBADF), so the Unix waitset (apr_waitset.c) would return
 * at once on every wait and the manager would spin.  Here the wait is on
 * one auto-reset Win32 event: a wake sets it, a deadline is the wait's
 * timeout, and an idle library sleeps in WaitForSingleObject.
 *
 * Processes (apr_proc_win32.c) do their waiting elsewhere: each worker's
 * reader and writer threads block in ReadFile/WriteFile, and its exit is
 * a wait on the process handle in the system's thread pool; whichever
 * changes the worker's state wakes this event.  The wait then asks each
 * watched worker what is ready (level-triggered, as poll() is).  One
 * event and no handle list, so there is no 64-handle limit of
 * WaitForMultipleObjects to work around (docs/backends.md, "Windows").
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include <windows.h>

#include "apr_internal.h"

typedef struct watch {
  pebble_bk_proc *proc;
  unsigned events; /* 0: kept, so a later watch needs no memory */
  void *tag;
} watch;

struct pebble_bk_waitset {
  HANDLE wake;      /* auto-reset event */
  int wake_pending; /* the event is set, or about to be; atomic */
  CRITICAL_SECTION lock;
  watch *watches;   /* under lock */
  size_t n, cap;
};

int pba_waitset_create(pebble_bk_waitset **out) {
  pebble_bk_waitset *ws;
  if (out == NULL)
    return PEBBLE_EINVAL;
  ws = calloc(1, sizeof *ws);
  if (ws == NULL)
    return PEBBLE_ENOMEM;
  ws->wake = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (ws->wake == NULL) {
    free(ws);
    return PEBBLE_ESYSTEM;
  }
  InitializeCriticalSection(&ws->lock);
  *out = ws;
  return PEBBLE_OK;
}

void pba_waitset_destroy(pebble_bk_waitset *ws) {
  size_t i;
  if (ws == NULL)
    return;
  for (i = 0; i < ws->n; i++)
    pba_proc_notify_to(ws->watches[i].proc, NULL);
  DeleteCriticalSection(&ws->lock);
  CloseHandle(ws->wake);
  free(ws->watches);
  free(ws);
}

/* One SetEvent per sleep, however many wakes: the flag is cleared by the
 * waiter before it looks at what is ready. */
void pba_waitset_wake(pebble_bk_waitset *ws) {
  if (__atomic_exchange_n(&ws->wake_pending, 1, __ATOMIC_ACQ_REL) == 0)
    SetEvent(ws->wake);
}

/* Lock held. */
static watch *find(pebble_bk_waitset *ws, pebble_bk_proc *proc) {
  size_t i;
  for (i = 0; i < ws->n; i++)
    if (ws->watches[i].proc == proc)
      return &ws->watches[i];
  return NULL;
}

int pba_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                      unsigned events, void *tag) {
  watch *w;
  int rc = PEBBLE_OK;
  if (ws == NULL || proc == NULL)
    return PEBBLE_EINVAL;
  EnterCriticalSection(&ws->lock);
  if ((w = find(ws, proc)) == NULL && events != 0) {
    if (ws->n == ws->cap) {
      size_t cap = ws->cap ? ws->cap * 2 : 16;
      watch *grown = realloc(ws->watches, cap * sizeof *grown);
      if (grown == NULL)
        rc = PEBBLE_ENOMEM;
      else {
        ws->watches = grown;
        ws->cap = cap;
      }
    }
    if (rc == PEBBLE_OK) {
      w = &ws->watches[ws->n++];
      w->proc = proc;
      pba_proc_notify_to(proc, ws);
    }
  }
  if (w != NULL) {
    w->events = events;
    w->tag = tag;
  }
  LeaveCriticalSection(&ws->lock);
  return rc;
}

void pba_waitset_forget_proc(pebble_bk_proc *proc) {
  pebble_bk_waitset *ws = pba_proc_notify_to(proc, NULL);
  watch *w;
  if (ws == NULL)
    return;
  EnterCriticalSection(&ws->lock);
  if ((w = find(ws, proc)) != NULL)
    *w = ws->watches[--ws->n];
  LeaveCriticalSection(&ws->lock);
}

/* What the watched workers have ready, up to cap events. */
static size_t collect(pebble_bk_waitset *ws, pebble_wait_event *events,
                      size_t cap) {
  size_t i, count = 0;
  EnterCriticalSection(&ws->lock);
  for (i = 0; i < ws->n && count < cap; i++) {
    unsigned ready;
    if (ws->watches[i].events == 0)
      continue;
    ready = pba_proc_ready(ws->watches[i].proc) & ws->watches[i].events;
    if (ready != 0) {
      events[count].tag = ws->watches[i].tag;
      events[count].events = ready;
      count++;
    }
  }
  LeaveCriticalSection(&ws->lock);
  return count;
}

int pba_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                     pebble_wait_event *events, size_t cap, size_t *count) {
  int woken = 0;
  *count = 0;
  for (;;) {
    DWORD ms = INFINITE, r;
    /* Cleared before looking, so a change after the look sets the event
     * again and the wait below returns. */
    __atomic_exchange_n(&ws->wake_pending, 0, __ATOMIC_SEQ_CST);
    if ((*count = collect(ws, events, cap)) > 0 || woken)
      return PEBBLE_OK;
    if (deadline_ns != PEBBLE_BK_FOREVER) {
      uint64_t now = pba_now_ns(), left;
      if (now >= deadline_ns)
        return PEBBLE_OK; /* deadline: nothing to report */
      /* Whole milliseconds, rounded up, so it never returns early; at
       * most a day at a time (INFINITE is one less than 2^32). */
      left = (deadline_ns - now + 999999) / 1000000;
      ms = (DWORD)(left > PBA_POLL_MAX_MS ? PBA_POLL_MAX_MS : left);
    }
    r = WaitForSingleObject(ws->wake, ms);
    if (r == WAIT_OBJECT_0)
      woken = 1; /* a look at what changed, then back to the caller */
    else if (r != WAIT_TIMEOUT)
      return PEBBLE_ESYSTEM;
  }
}
