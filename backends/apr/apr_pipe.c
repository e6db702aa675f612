/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_pipe.c -- the pipes a channel is made of.
 *
 * APR has no socket pair, so a channel is two pipes, one each way.  APR
 * leaves a new pipe inheritable and counts on apr_proc_create closing it
 * in the child; inherit_unset makes it close-on-exec at once, so programs
 * the application starts by other means do not get our pipes either.
 * Writing to a pipe whose reader is gone raises SIGPIPE on Unix; the
 * contract promises it never does, so a write blocks the signal for the
 * calling thread and takes back the one it may have raised.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <apr_errno.h>

#include "apr_internal.h"

#if !defined(_WIN32)
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#define PBA_GUARD_SIGPIPE 1
#endif

apr_status_t pba_pipe(apr_file_t **rd, apr_file_t **wr, int nonblock_read,
                      int nonblock_write, apr_pool_t *pool) {
  apr_status_t st;
  pba_fd_ops_begin();
  st = apr_file_pipe_create_ex(rd, wr, APR_FULL_BLOCK, pool);
  if (st == APR_SUCCESS) {
    apr_file_inherit_unset(*rd);
    apr_file_inherit_unset(*wr);
    pba_fd_track(*rd);
    pba_fd_track(*wr);
  }
  pba_fd_ops_end();
  if (st != APR_SUCCESS)
    return st;
  /* A zero timeout is APR's non-blocking mode. */
  if (nonblock_read)
    apr_file_pipe_timeout_set(*rd, 0);
  if (nonblock_write)
    apr_file_pipe_timeout_set(*wr, 0);
  return APR_SUCCESS;
}

void pba_file_close(apr_file_t **f) {
  if (*f != NULL) {
    pba_fd_untrack(*f);
    apr_file_close(*f);
    *f = NULL;
  }
}

int pba_pipe_read(apr_file_t *f, void *buf, size_t len, size_t *done) {
  apr_size_t n = len;
  apr_status_t st;
  *done = 0;
  st = apr_file_read(f, buf, &n);
  if (st == APR_SUCCESS) {
    *done = n;
    return PEBBLE_OK;
  }
  if (APR_STATUS_IS_EOF(st))
    return PEBBLE_OK; /* *done == 0: end of file */
  if (APR_STATUS_IS_EAGAIN(st) || APR_STATUS_IS_TIMEUP(st))
    return PEBBLE_ENOTREADY;
  return pba_status(st);
}

#ifdef PBA_GUARD_SIGPIPE
/* Write with SIGPIPE blocked; if the write raised it (and it was not
 * pending already), take it back before unblocking. */
static apr_status_t write_no_sigpipe(apr_file_t *f, const void *buf,
                                     apr_size_t *n) {
  sigset_t pipe_only, old, pending;
  apr_status_t st;
  int was_pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  st = apr_file_write(f, buf, n);
  if (APR_STATUS_IS_EPIPE(st) && !was_pending) {
    static const struct timespec zero = {0, 0};
    int saved = errno;
    while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
      ;
    errno = saved;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return st;
}
#else
static apr_status_t write_no_sigpipe(apr_file_t *f, const void *buf,
                                     apr_size_t *n) {
  return apr_file_write(f, buf, n);
}
#endif

int pba_pipe_write(apr_file_t *f, const void *buf, size_t len, size_t *done) {
  apr_size_t n = len;
  apr_status_t st;
  *done = 0;
  st = write_no_sigpipe(f, buf, &n);
  if (st == APR_SUCCESS || (n > 0 && (APR_STATUS_IS_EAGAIN(st) ||
                                      APR_STATUS_IS_TIMEUP(st)))) {
    *done = n;
    return PEBBLE_OK;
  }
  if (APR_STATUS_IS_EAGAIN(st) || APR_STATUS_IS_TIMEUP(st))
    return PEBBLE_ENOTREADY;
  if (APR_STATUS_IS_EPIPE(st))
    return PEBBLE_EDIED;
  return pba_status(st);
}

int pba_pipe_read_all(apr_file_t *f, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    apr_size_t n = len;
    apr_status_t st = apr_file_read(f, p, &n);
    if (st != APR_SUCCESS && !(APR_STATUS_IS_EINTR(st)))
      return APR_STATUS_IS_EOF(st) ? PEBBLE_EDIED : pba_status(st);
    p += n;
    len -= n;
  }
  return PEBBLE_OK;
}

int pba_pipe_write_all(apr_file_t *f, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    apr_size_t n = len;
    apr_status_t st = write_no_sigpipe(f, p, &n);
    if (st != APR_SUCCESS && !(APR_STATUS_IS_EINTR(st)))
      return APR_STATUS_IS_EPIPE(st) ? PEBBLE_EDIED : pba_status(st);
    p += n;
    len -= n;
  }
  return PEBBLE_OK;
}
