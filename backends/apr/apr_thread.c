/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_thread.c -- threads, mutexes and condition variables through APR.
 *
 * Each thread object owns a pool: APR makes the thread's own pool a
 * subpool of it, and both go when the thread is joined.  A thread that
 * ends without returning (the task called apr_thread_exit or the
 * platform's equivalent) is noticed by a thread-key destructor, which
 * runs `unwound`; on Windows, where APR runs no thread-key destructors,
 * by a fiber-local storage callback, which runs at ExitThread too.  Library threads run with every asynchronous signal
 * blocked; task threads with the mask the application had at init, since
 * they are started from library threads and would inherit theirs.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <apr_portable.h>
#include <apr_signal.h>

#include "apr_internal.h"

#if !defined(_WIN32)
#include <pthread.h>
#include <signal.h>
#define PBA_HAVE_SIGMASK 1
static sigset_t app_mask;
#else
#include <windows.h>
#endif

struct pebble_bk_thread {
  apr_pool_t *pool;
  apr_thread_t *t;
  void (*fn)(void *);
  void (*unwound)(void *);
  void *arg;
  unsigned flags;
};

/* Set to the running thread object while fn runs; its destructor fires
 * only for a thread that ends with it still set. */
static apr_threadkey_t *running_key;
static apr_pool_t *key_pool;
/* Kept here too: APR may take pool memory from mmap, which leak checkers
 * do not scan, so the allocator must be reachable from our own data. */
static apr_allocator_t *key_allocator;

static void unwound_destructor(void *value) {
  pebble_bk_thread *t = value;
  if (t != NULL && t->unwound != NULL)
    t->unwound(t->arg);
}

#ifdef _WIN32
static DWORD running_fls = FLS_OUT_OF_INDEXES;
static VOID WINAPI unwound_fls(PVOID value) { unwound_destructor(value); }
static void running_set(pebble_bk_thread *t) {
  if (running_fls != FLS_OUT_OF_INDEXES)
    FlsSetValue(running_fls, t);
}
#else
static void running_set(pebble_bk_thread *t) {
  if (running_key != NULL)
    apr_threadkey_private_set(t, running_key);
}
#endif

void pba_thread_capture_app_mask(void) {
#ifdef PBA_HAVE_SIGMASK
  pthread_sigmask(SIG_SETMASK, NULL, &app_mask);
#endif
  /* The key lives for the process: a key deleted while threads run
   * could miss a destructor. */
#ifdef _WIN32
  if (running_fls == FLS_OUT_OF_INDEXES)
    running_fls = FlsAlloc(unwound_fls);
#endif
  if (key_pool == NULL && apr_allocator_create(&key_allocator) == APR_SUCCESS &&
      apr_pool_create_unmanaged_ex(&key_pool, NULL, key_allocator) ==
          APR_SUCCESS) {
    apr_allocator_owner_set(key_allocator, key_pool);
    if (apr_threadkey_private_create(&running_key, unwound_destructor,
                                     key_pool) != APR_SUCCESS)
      running_key = NULL;
  }
}

void pba_thread_mask_app(void *saved, size_t saved_size) {
#ifdef PBA_HAVE_SIGMASK
  if (saved_size >= sizeof(sigset_t))
    pthread_sigmask(SIG_SETMASK, &app_mask, (sigset_t *)saved);
#else
  (void)saved;
  (void)saved_size;
#endif
}

void pba_thread_mask_restore(const void *saved) {
#ifdef PBA_HAVE_SIGMASK
  pthread_sigmask(SIG_SETMASK, (const sigset_t *)saved, NULL);
#else
  (void)saved;
#endif
}

static void *APR_THREAD_FUNC trampoline(apr_thread_t *self, void *data) {
  pebble_bk_thread *t = data;
  (void)self;
#ifdef PBA_HAVE_SIGMASK
  if (t->flags & PEBBLE_BK_THREAD_INTERNAL)
    apr_setup_signal_thread();
  else
    pthread_sigmask(SIG_SETMASK, &app_mask, NULL);
#endif
  running_set(t);
  t->fn(t->arg);
  running_set(NULL);
  return NULL;
}

int pba_thread_create(pebble_bk_thread **out, void (*fn)(void *),
                      void (*unwound)(void *), void *arg, unsigned flags) {
  apr_threadattr_t *attr;
  pebble_bk_thread *t;
  apr_pool_t *pool;
  apr_status_t st;
  if (out == NULL || fn == NULL)
    return PEBBLE_EINVAL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  t = apr_pcalloc(pool, sizeof *t);
  t->pool = pool;
  t->fn = fn;
  t->unwound = unwound;
  t->arg = arg;
  t->flags = flags;
  st = apr_threadattr_create(&attr, pool);
  if (st == APR_SUCCESS)
    st = apr_thread_create(&t->t, attr, trampoline, t, pool);
  if (st != APR_SUCCESS) {
    apr_pool_destroy(pool);
    return pba_status(st);
  }
  *out = t;
  return PEBBLE_OK;
}

int pba_thread_join(pebble_bk_thread *t) {
  apr_status_t retval, st;
  if (t == NULL)
    return PEBBLE_EINVAL;
  st = apr_thread_join(&retval, t->t);
  apr_pool_destroy(t->pool);
  return pba_status(st);
}

uint64_t pba_thread_self_id(void) {
  /* An integer on the Unix ports, a HANDLE-sized value on Windows. */
  apr_os_thread_t self = apr_os_thread_current();
  uint64_t id = 0;
  memcpy(&id, &self, sizeof self < sizeof id ? sizeof self : sizeof id);
  return id;
}

int pba_mutex_create(pebble_bk_mutex **out) {
  pebble_bk_mutex *m;
  apr_pool_t *pool;
  apr_status_t st;
  if (out == NULL)
    return PEBBLE_EINVAL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  m = apr_pcalloc(pool, sizeof *m);
  m->pool = pool;
  st = apr_thread_mutex_create(&m->m, APR_THREAD_MUTEX_DEFAULT, pool);
  if (st != APR_SUCCESS) {
    apr_pool_destroy(pool);
    return pba_status(st);
  }
  *out = m;
  return PEBBLE_OK;
}

void pba_mutex_destroy(pebble_bk_mutex *m) {
  if (m != NULL)
    apr_pool_destroy(m->pool); /* the mutex's cleanup destroys it */
}

void pba_mutex_lock(pebble_bk_mutex *m) { apr_thread_mutex_lock(m->m); }

void pba_mutex_unlock(pebble_bk_mutex *m) { apr_thread_mutex_unlock(m->m); }

int pba_cond_create(pebble_bk_cond **out) {
  pebble_bk_cond *c;
  apr_pool_t *pool;
  apr_status_t st;
  if (out == NULL)
    return PEBBLE_EINVAL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  c = apr_pcalloc(pool, sizeof *c);
  c->pool = pool;
  st = apr_thread_cond_create(&c->c, pool);
  if (st != APR_SUCCESS) {
    apr_pool_destroy(pool);
    return pba_status(st);
  }
  *out = c;
  return PEBBLE_OK;
}

void pba_cond_destroy(pebble_bk_cond *c) {
  if (c != NULL)
    apr_pool_destroy(c->pool);
}

void pba_cond_signal(pebble_bk_cond *c) { apr_thread_cond_signal(c->c); }

void pba_cond_broadcast(pebble_bk_cond *c) { apr_thread_cond_broadcast(c->c); }

int pba_cond_wait(pebble_bk_cond *c, pebble_bk_mutex *m,
                  uint64_t deadline_ns) {
  if (deadline_ns == PEBBLE_BK_FOREVER) {
    apr_thread_cond_wait(c->c, m->m);
    return PEBBLE_OK;
  }
  return pba_deadline_wait(c, m, deadline_ns);
}
