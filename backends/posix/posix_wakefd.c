/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_wakefd.c -- a descriptor other threads make readable: the wake-up
 * of a waitset and the notifier an application's event loop watches.
 *
 * An eventfd on Linux (one descriptor, one counter); elsewhere a
 * non-blocking pipe.  Both stay readable until drained, so a signal sent
 * before the waiter starts waiting is never lost, and signalling twice is
 * the same as once.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <unistd.h>

#include "posix_internal.h"

#if PBP_USE_EVENTFD
#include <sys/eventfd.h>
#endif

int pbp_wakefd_open(pbp_wakefd *w) {
#if PBP_USE_EVENTFD
  int fd;
  pbp_fd_lock();
  fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd >= 0 && pbp_fd_add_locked(fd) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    fd = -1;
  }
  pbp_fd_unlock();
  if (fd < 0)
    return -1;
  w->rd = w->wr = fd;
  return 0;
#else
  int fds[2];
  if (pbp_pipe(fds, 1) != 0)
    return -1;
  w->rd = fds[0];
  w->wr = fds[1];
  return 0;
#endif
}

void pbp_wakefd_close(pbp_wakefd *w) {
  if (w->wr != w->rd)
    pbp_fd_close(w->wr);
  pbp_fd_close(w->rd);
  w->rd = w->wr = -1;
}

/* Only write(): callable from a signal handler.  A full pipe or counter
 * is already readable, so EAGAIN needs nothing more. */
void pbp_wakefd_signal(const pbp_wakefd *w) {
  int saved = errno;
#if PBP_USE_EVENTFD
  uint64_t one = 1;
  while (write(w->wr, &one, sizeof one) < 0 && errno == EINTR)
    ;
#else
  char one = 1;
  while (write(w->wr, &one, 1) < 0 && errno == EINTR)
    ;
#endif
  errno = saved;
}

void pbp_wakefd_drain(const pbp_wakefd *w) {
#if PBP_USE_EVENTFD
  uint64_t count;
  while (read(w->rd, &count, sizeof count) < 0 && errno == EINTR)
    ;
#else
  char buf[64];
  for (;;) {
    ssize_t n = read(w->rd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < (ssize_t)sizeof buf)
      break; /* empty now, or EAGAIN */
  }
#endif
}
