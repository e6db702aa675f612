/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_waitset_win32.c -- the manager thread's wait on Windows.
 *
 * On Windows apr_poll() and apr_pollset take sockets only: a pipe is
 * refused (APR_EBADF), so the Unix waitset (apr_waitset.c) would return
 * at once on every wait and the manager would spin.  Here the wait is on
 * one auto-reset Win32 event: a wake sets it, a deadline is the wait's
 * timeout.  That is all thread tasks and thread pools need, and an idle
 * library sleeps in WaitForSingleObject.
 *
 * Process tasks are not ported yet (issue 14, item 4): the backend does
 * not claim PEBBLE_CAP_PROCESSES on Windows, and a watch on a process is
 * refused.  Their channels and exits will be waited for here too (see
 * docs/backends.md, "Windows").
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include <windows.h>

#include "apr_internal.h"

struct pebble_bk_waitset {
  HANDLE wake;      /* auto-reset event */
  int wake_pending; /* the event is set, or about to be; atomic */
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
  *out = ws;
  return PEBBLE_OK;
}

void pba_waitset_destroy(pebble_bk_waitset *ws) {
  if (ws == NULL)
    return;
  CloseHandle(ws->wake);
  free(ws);
}

/* One SetEvent per sleep, however many wakes: the flag is cleared by the
 * waiter after its wait returns, before it looks at its work. */
void pba_waitset_wake(pebble_bk_waitset *ws) {
  if (__atomic_exchange_n(&ws->wake_pending, 1, __ATOMIC_ACQ_REL) == 0)
    SetEvent(ws->wake);
}

int pba_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                      unsigned events, void *tag) {
  (void)tag;
  if (ws == NULL || proc == NULL)
    return PEBBLE_EINVAL;
  return events == 0 ? PEBBLE_OK : PEBBLE_ENOTSUP;
}

void pba_waitset_forget_proc(pebble_bk_proc *proc) { (void)proc; }

int pba_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                     pebble_wait_event *events, size_t cap, size_t *count) {
  (void)events, (void)cap;
  *count = 0;
  for (;;) {
    DWORD ms = INFINITE, r;
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
    if (r == WAIT_OBJECT_0) {
      PBA_STORE(&ws->wake_pending, 0);
      return PEBBLE_OK;
    }
    if (r != WAIT_TIMEOUT)
      return PEBBLE_ESYSTEM;
  }
}
