/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_thread.c -- threads, mutexes and condition variables.
 *
 * Condition variables run on CLOCK_MONOTONIC so deadlines never move with
 * the wall clock.  Library threads (PEBBLE_BK_THREAD_INTERNAL) start with
 * every signal blocked, so the application's handlers only ever run on
 * its own threads.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "posix_internal.h"

struct pebble_bk_thread {
  pthread_t tid;
  void (*fn)(void *);
  void (*unwound)(void *);
  void *arg;
  unsigned flags;
};

/* Each on cache lines of its own: the library's locks are taken by
 * different threads at once (a future's stripe by its waiter while the
 * manager takes the next one's), and two sharing a line would make each
 * lock a cache miss for both. */
#define PBP_LINE 64

struct pebble_bk_mutex {
  _Alignas(PBP_LINE) pthread_mutex_t m;
};

struct pebble_bk_cond {
  _Alignas(PBP_LINE) pthread_cond_t c;
};

static void *alloc_lines(size_t size) {
  void *p = NULL;
  return posix_memalign(&p, PBP_LINE, size) == 0 ? p : NULL;
}

/* Set in library threads: threads they create for tasks must not inherit
 * their fully blocked mask. */
static PBP_TLS int in_library_thread;

/* The mask of the application thread that initialised the backend: what
 * task threads get when a library thread creates them. */
static pthread_mutex_t app_mask_lock = PTHREAD_MUTEX_INITIALIZER;
static sigset_t app_mask;
static int app_mask_known;

void pbp_thread_capture_app_mask(void) {
  sigset_t cur;
  if (in_library_thread || pthread_sigmask(SIG_SETMASK, NULL, &cur) != 0)
    return;
  pthread_mutex_lock(&app_mask_lock);
  app_mask = cur;
  app_mask_known = 1;
  pthread_mutex_unlock(&app_mask_lock);
}

void pbp_thread_child_is_task(void) { in_library_thread = 0; }

static int get_app_mask(sigset_t *out) {
  int known;
  pthread_mutex_lock(&app_mask_lock);
  known = app_mask_known;
  if (known)
    *out = app_mask;
  pthread_mutex_unlock(&app_mask_lock);
  return known;
}

static int from_errno(int err) {
  return err == ENOMEM ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
}

/* Runs only when the thread ends without fn returning (pthread_exit). */
static void run_unwound(void *p) {
  pebble_bk_thread *t = p;
  if (t->unwound != NULL)
    t->unwound(t->arg);
}

static void *thread_start(void *p) {
  pebble_bk_thread *t = p;
  in_library_thread = (t->flags & PEBBLE_BK_THREAD_INTERNAL) != 0;
  pthread_cleanup_push(run_unwound, t);
  t->fn(t->arg);
  pthread_cleanup_pop(0);
  return NULL;
}

int pbp_thread_create(pebble_bk_thread **thread, void (*fn)(void *),
                      void (*unwound)(void *), void *arg, unsigned flags) {
  pebble_bk_thread *t;
  sigset_t want, old;
  int set_mask = 0, rc;

  if (thread == NULL || fn == NULL || (flags & ~PEBBLE_BK_THREAD_INTERNAL))
    return PEBBLE_EINVAL;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return PEBBLE_ENOMEM;
  t->fn = fn;
  t->unwound = unwound;
  t->arg = arg;
  t->flags = flags;
  /* The new thread inherits the mask in force at pthread_create: set it
   * here so no signal can arrive before the thread could block it. */
  if (flags & PEBBLE_BK_THREAD_INTERNAL) {
    sigfillset(&want);
    set_mask = 1;
  } else if (in_library_thread) {
    set_mask = get_app_mask(&want);
  }
  if (set_mask)
    pthread_sigmask(SIG_SETMASK, &want, &old);
  rc = pthread_create(&t->tid, NULL, thread_start, t);
  if (set_mask)
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    free(t);
    return from_errno(rc);
  }
  *thread = t;
  return PEBBLE_OK;
}

int pbp_thread_join(pebble_bk_thread *t) {
  if (t == NULL)
    return PEBBLE_EINVAL;
  if (pthread_equal(t->tid, pthread_self()))
    return PEBBLE_EDEADLK;
  if (pthread_join(t->tid, NULL) != 0)
    return PEBBLE_ESYSTEM;
  free(t);
  return PEBBLE_OK;
}

int pbp_thread_start_detached(void *(*fn)(void *), void *arg) {
  /* Helper threads only block in one system call: a small stack will do,
   * with room for sanitizers. */
  size_t stack = 256u * 1024u;
  pthread_attr_t attr;
  pthread_t tid;
  sigset_t all, old;
  int rc;

#ifdef PTHREAD_STACK_MIN
  if (stack < (size_t)PTHREAD_STACK_MIN)
    stack = (size_t)PTHREAD_STACK_MIN;
#endif
  if (pthread_attr_init(&attr) != 0)
    return ENOMEM;
  pthread_attr_setstacksize(&attr, stack);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&tid, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

#if !defined(__linux__) && !defined(__APPLE__)
static unsigned long long next_thread_id = 1;
static PBP_TLS unsigned long long my_thread_id;
#endif

uint64_t pbp_thread_self_id(void) {
#if defined(__linux__)
  return (uint64_t)syscall(SYS_gettid);
#elif defined(__APPLE__)
  uint64_t id = 0;
  pthread_threadid_np(NULL, &id);
  return id;
#else
  if (my_thread_id == 0)
    my_thread_id = __atomic_fetch_add(&next_thread_id, 1, __ATOMIC_RELAXED);
  return (uint64_t)my_thread_id;
#endif
}

/* ---- mutexes ---- */

/* The library's locks guard a few stores each: where the system offers it,
 * a contended lock spins briefly before sleeping, which on most machines
 * costs less than the futex calls of a sleep and a wake-up. */
static int init_mutex(pthread_mutex_t *m) {
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
  pthread_mutexattr_t attr;
  int rc;
  if (pthread_mutexattr_init(&attr) != 0)
    return pthread_mutex_init(m, NULL);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
#else
  return pthread_mutex_init(m, NULL);
#endif
}

int pbp_mutex_create(pebble_bk_mutex **mutex) {
  pebble_bk_mutex *m;
  int rc;
  if (mutex == NULL)
    return PEBBLE_EINVAL;
  m = alloc_lines(sizeof *m);
  if (m == NULL)
    return PEBBLE_ENOMEM;
  rc = init_mutex(&m->m);
  if (rc != 0) {
    free(m);
    return from_errno(rc);
  }
  *mutex = m;
  return PEBBLE_OK;
}

void pbp_mutex_destroy(pebble_bk_mutex *m) {
  if (m == NULL)
    return;
  pthread_mutex_destroy(&m->m);
  free(m);
}

void pbp_mutex_lock(pebble_bk_mutex *m) {
  if (m != NULL)
    pthread_mutex_lock(&m->m);
}

void pbp_mutex_unlock(pebble_bk_mutex *m) {
  if (m != NULL)
    pthread_mutex_unlock(&m->m);
}

/* ---- condition variables ---- */

int pbp_cond_create(pebble_bk_cond **cond) {
  pebble_bk_cond *c;
  pthread_condattr_t attr;
  int rc;
  if (cond == NULL)
    return PEBBLE_EINVAL;
  c = alloc_lines(sizeof *c);
  if (c == NULL)
    return PEBBLE_ENOMEM;
  rc = pthread_condattr_init(&attr);
  if (rc == 0) {
#if !defined(__APPLE__)
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    if (rc == 0)
      rc = pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
  }
  if (rc != 0) {
    free(c);
    return from_errno(rc);
  }
  *cond = c;
  return PEBBLE_OK;
}

void pbp_cond_destroy(pebble_bk_cond *c) {
  if (c == NULL)
    return;
  pthread_cond_destroy(&c->c);
  free(c);
}

void pbp_cond_signal(pebble_bk_cond *c) {
  if (c != NULL)
    pthread_cond_signal(&c->c);
}

void pbp_cond_broadcast(pebble_bk_cond *c) {
  if (c != NULL)
    pthread_cond_broadcast(&c->c);
}

/* A nanosecond count as a timespec, clamped where time_t is narrow. */
static struct timespec to_timespec(uint64_t ns) {
  struct timespec ts;
  uint64_t sec = ns / 1000000000u;
  if (sizeof(time_t) < 8 && sec > (uint64_t)INT32_MAX)
    sec = (uint64_t)INT32_MAX;
  ts.tv_sec = (time_t)sec;
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

int pbp_cond_wait(pebble_bk_cond *c, pebble_bk_mutex *m, uint64_t deadline_ns) {
  struct timespec ts;
  int rc;
  if (c == NULL || m == NULL)
    return PEBBLE_EINVAL;
  if (deadline_ns == PEBBLE_BK_FOREVER) {
    pthread_cond_wait(&c->c, &m->m);
    return PEBBLE_OK;
  }
#if defined(__APPLE__)
  {
    /* No monotonic condattr here: wait for the time left, measured on
     * our clock. */
    uint64_t now = pbp_now_ns();
    if (deadline_ns <= now)
      return PEBBLE_ENOTREADY;
    ts = to_timespec(deadline_ns - now);
    rc = pthread_cond_timedwait_relative_np(&c->c, &m->m, &ts);
  }
#else
  ts = to_timespec(deadline_ns);
  rc = pthread_cond_timedwait(&c->c, &m->m, &ts);
#endif
  return rc == ETIMEDOUT ? PEBBLE_ENOTREADY : PEBBLE_OK;
}
