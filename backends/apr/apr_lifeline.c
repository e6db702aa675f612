/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_lifeline.c -- workers end when the process that started them ends.
 *
 * APR has no parent-death signal, so the backend makes its own: one pipe
 * per library life whose write end stays in this process alone (it is
 * close-on-exec and closed in forked children), while every worker holds
 * the read end and runs one small thread blocked reading it.  Nothing is
 * ever written; the read returns only with end-of-file, when the kernel
 * closed the write end because this process died, and the worker then
 * kills itself, whatever its task is doing.
 *
 * A program the application forks by other means keeps a copy of the
 * write end (fork copies every descriptor) and so keeps workers alive
 * while it lives; see docs/backends.md.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <signal.h>
#include <stdlib.h>

#include <apr_portable.h>

#include "apr_internal.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <pthread.h>
#include <unistd.h>
#endif

static apr_pool_t *pool;
static apr_file_t *rd, *wr;

int pba_lifeline_start(void) {
  apr_status_t st;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  st = pba_pipe(&rd, &wr, 0, 0, pool);
  if (st != APR_SUCCESS) {
    apr_pool_destroy(pool);
    pool = NULL;
    return pba_status(st);
  }
  return PEBBLE_OK;
}

void pba_lifeline_stop(void) {
  if (pool == NULL)
    return;
  pba_file_close(&rd);
  pba_file_close(&wr);
  apr_pool_destroy(pool);
  pool = NULL;
}

apr_file_t *pba_lifeline_end(void) { return rd; }

static void end_this_process(void) {
#if defined(_WIN32)
  TerminateProcess(GetCurrentProcess(), 1);
#else
  kill(getpid(), SIGKILL);
#endif
  abort();
}

/* Blocks until end-of-file; a stray byte or an interrupted read just
 * goes round again. */
static void wait_for_eof(apr_file_t *end) {
  for (;;) {
    char byte;
    apr_size_t n = 1;
    apr_status_t st = apr_file_read(end, &byte, &n);
    if (APR_STATUS_IS_EOF(st) || (st == APR_SUCCESS && n == 0))
      break;
    if (st != APR_SUCCESS && !APR_STATUS_IS_EINTR(st) &&
        !APR_STATUS_IS_EAGAIN(st))
      break; /* the descriptor is unusable: treat as gone */
  }
  end_this_process();
}

#if APR_HAS_FORK
/* In a forked child an APR thread would allocate from pools whose locks
 * another thread of the parent may have held at the fork; a bare thread
 * needs nothing of theirs. */
static void *forked_watch(void *arg) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  wait_for_eof(arg);
  return NULL;
}

int pba_lifeline_watch_forked(void) {
  pthread_t t;
  pthread_attr_t attr;
  int err;
  if (rd == NULL)
    return PEBBLE_ESTATE;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  err = pthread_create(&t, &attr, forked_watch, rd);
  pthread_attr_destroy(&attr);
  return err == 0 ? PEBBLE_OK : PEBBLE_ESYSTEM;
}
#else
int pba_lifeline_watch_forked(void) { return PEBBLE_ENOTSUP; }
#endif

static void *APR_THREAD_FUNC adopted_watch(apr_thread_t *self, void *arg) {
  (void)self;
#if !defined(_WIN32)
  {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
  }
#endif
  wait_for_eof(arg);
  return NULL;
}

int pba_lifeline_watch_adopted(apr_file_t *end, apr_pool_t *p) {
  apr_thread_t *t;
  apr_threadattr_t *attr;
  apr_status_t st = apr_threadattr_create(&attr, p);
  if (st == APR_SUCCESS)
    st = apr_threadattr_detach_set(attr, 1);
  if (st == APR_SUCCESS)
    st = apr_thread_create(&t, attr, adopted_watch, end, p);
  return pba_status(st);
}
