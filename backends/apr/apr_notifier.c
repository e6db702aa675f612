/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_notifier.c -- a pipe an application's event loop can watch:
 * readable while set.  Set and clear are idempotent, so the pipe holds at
 * most one byte.  On Windows a loop waits on handles, not on a pipe's
 * readability: there it is a manual-reset Event, signalled while set.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <apr_portable.h>

#include "apr_internal.h"

#ifdef _WIN32
#include <stdlib.h>

#include <windows.h>

struct pebble_bk_notifier {
  HANDLE event; /* manual reset: stays signalled until cleared */
};

int pba_notifier_create(pebble_bk_notifier **out) {
  pebble_bk_notifier *n;
  if (out == NULL)
    return PEBBLE_EINVAL;
  if ((n = calloc(1, sizeof *n)) == NULL)
    return PEBBLE_ENOMEM;
  n->event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (n->event == NULL) {
    free(n);
    return PEBBLE_ESYSTEM;
  }
  *out = n;
  return PEBBLE_OK;
}

void pba_notifier_destroy(pebble_bk_notifier *n) {
  if (n != NULL) {
    CloseHandle(n->event);
    free(n);
  }
}

intptr_t pba_notifier_handle(pebble_bk_notifier *n) {
  return (intptr_t)n->event;
}

void pba_notifier_set(pebble_bk_notifier *n) { SetEvent(n->event); }

void pba_notifier_clear(pebble_bk_notifier *n) { ResetEvent(n->event); }

#else /* a pipe */

struct pebble_bk_notifier {
  apr_pool_t *pool;
  apr_thread_mutex_t *lock;
  apr_file_t *rd, *wr;
  int set; /* under lock */
};

int pba_notifier_create(pebble_bk_notifier **out) {
  pebble_bk_notifier *n;
  apr_pool_t *pool;
  apr_status_t st;
  if (out == NULL)
    return PEBBLE_EINVAL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  n = apr_pcalloc(pool, sizeof *n);
  n->pool = pool;
  st = apr_thread_mutex_create(&n->lock, APR_THREAD_MUTEX_DEFAULT, pool);
  if (st == APR_SUCCESS)
    st = pba_pipe(&n->rd, &n->wr, 1, 1, pool);
  if (st != APR_SUCCESS) {
    pba_file_close(&n->rd);
    pba_file_close(&n->wr);
    apr_pool_destroy(pool);
    return pba_status(st);
  }
  *out = n;
  return PEBBLE_OK;
}

void pba_notifier_destroy(pebble_bk_notifier *n) {
  if (n != NULL) {
    pba_file_close(&n->rd);
    pba_file_close(&n->wr);
    apr_pool_destroy(n->pool);
  }
}

intptr_t pba_notifier_handle(pebble_bk_notifier *n) {
  apr_os_file_t h;
  if (apr_os_file_get(&h, n->rd) != APR_SUCCESS)
    return -1;
  return (intptr_t)h;
}

void pba_notifier_set(pebble_bk_notifier *n) {
  apr_thread_mutex_lock(n->lock);
  if (!n->set) {
    apr_size_t one = 1;
    if (apr_file_write(n->wr, "n", &one) == APR_SUCCESS)
      n->set = 1;
  }
  apr_thread_mutex_unlock(n->lock);
}

void pba_notifier_clear(pebble_bk_notifier *n) {
  apr_thread_mutex_lock(n->lock);
  if (n->set) {
    char byte;
    apr_size_t one = 1;
    apr_file_read(n->rd, &byte, &one);
    n->set = 0;
  }
  apr_thread_mutex_unlock(n->lock);
}
#endif
