/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_exit.c -- a descriptor that becomes readable when a child ends,
 * so the waitset sees exits without polling and without SIGCHLD.
 *
 * Where the kernel has pidfds, that descriptor is the child's pidfd.
 * Otherwise (compiled out with PEBBLE_NO_PIDFD, or refused at run time) a
 * small detached helper thread blocks in waitid(..., WNOWAIT), then
 * writes to a socket and closes its end.  Once the child is reaped we wait
 * for that end to close: a destroyed process handle leaves no descriptor
 * behind, not even for a moment.  Detached, not joined: a joinable
 * thread alive at a fork would be reported as leaked in every child by
 * ThreadSanitizer.  WNOWAIT leaves the child a zombie: its pid, and so
 * its process group id, stay reserved until proc_reap, which can therefore
 * still kill what is left of the group safely.  Nothing here ever calls
 * waitpid(-1) or installs a SIGCHLD handler: other children of the
 * application are none of our business.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posix_internal.h"

#if PBP_USE_PIDFD
/* Cleared for good the first time the kernel says it has no pidfds. */
static int pidfd_usable = 1;

static int open_pidfd(pid_t pid) {
  int fd;
  if (!PBP_LOAD(&pidfd_usable))
    return -1;
  pbp_fd_lock(); /* opened and recorded before any fork can see it */
  fd = (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
  if (fd >= 0 && pbp_fd_add_locked(fd) != 0) {
    close(fd);
    fd = -1;
    errno = ENOMEM;
  }
  pbp_fd_unlock();
  if (fd < 0 && (errno == ENOSYS || errno == EPERM))
    PBP_STORE(&pidfd_usable, 0); /* old kernel, or a seccomp filter */
  return fd;
}
#endif

/* What a helper needs; it owns this and its end of the socket, so it may
 * outlive the process handle. */
typedef struct helper_arg {
  pid_t pid;
  int fd;
} helper_arg;

int pbp_child_still_ours(pid_t pid) {
  siginfo_t info;
  int rc;
  memset(&info, 0, sizeof info);
  do
    rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
  while (rc != 0 && errno == EINTR);
  return rc == 0;
}

static void *exit_helper(void *arg) {
  helper_arg a = *(helper_arg *)arg;
  siginfo_t info;
  char one = 1;
  free(arg);
  memset(&info, 0, sizeof info);
  /* Returns when the child is a zombie, or with ECHILD when it is gone
   * already (the application reaped it or ignores SIGCHLD). */
  while (waitid(P_PID, (id_t)a.pid, &info, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR)
    ;
  /* The handle may be destroyed by now: MSG_NOSIGNAL, errors ignored. */
  while (pbp_send(a.fd, &one, 1, 0) < 0 && errno == EINTR)
    ;
  pbp_fd_close(a.fd);
  return NULL;
}

int pbp_exit_watch_start(pebble_bk_proc *p, int *sys_errno) {
  helper_arg *a;
  int sv[2], rc;
#if PBP_USE_PIDFD
  p->exit_fd = open_pidfd(p->pid);
  if (p->exit_fd >= 0 && pbp_child_still_ours(p->pid))
    return PEBBLE_OK;
  /* No pidfds here, or the application reaped the child first (ESRCH, or
   * a pidfd that may name a stranger who reused the pid): the helper
   * reports a child that is gone at once. */
  pbp_fd_close(p->exit_fd);
  p->exit_fd = -1;
#endif
  a = malloc(sizeof *a);
  if (a == NULL) {
    *sys_errno = ENOMEM;
    return PEBBLE_ESYSTEM;
  }
  /* A socket rather than a pipe: the helper's late write to a closed
   * handle must not raise SIGPIPE. */
  if (pbp_socketpair(sv) != 0) {
    *sys_errno = errno;
    free(a);
    return PEBBLE_ESYSTEM;
  }
  a->pid = p->pid;
  a->fd = sv[1];
  rc = pbp_thread_start_detached(exit_helper, a);
  if (rc != 0) {
    pbp_fd_close(sv[0]);
    pbp_fd_close(sv[1]);
    free(a);
    *sys_errno = rc;
    return PEBBLE_ESYSTEM;
  }
  p->exit_fd = sv[0];
  p->has_exit_helper = 1;
  return PEBBLE_OK;
}

int pbp_exit_seen(const pebble_bk_proc *p) {
  struct pollfd pfd;
  int n;
  pfd.fd = p->exit_fd;
  pfd.events = POLLIN;
  pfd.revents = 0;
  do
    n = poll(&pfd, 1, 0);
  while (n < 0 && errno == EINTR);
  return n > 0;
}

/* Wait for the helper's end to close.  It closes right after its write,
 * once waitid returned; after the reap that is at once (the zombie, or
 * ECHILD). */
static void wait_helper_done(int fd) {
  /* Only if the child's pid went to another child of ours between the
   * reap and the helper's waitid could this last: then give up. */
  uint64_t deadline = pbp_now_ns() + UINT64_C(2000000000);
  for (;;) {
    char buf[16];
    struct pollfd pfd;
    uint64_t now;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0)
      return;
    if (n > 0 || errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return;
    now = pbp_now_ns();
    if (now >= deadline)
      return;
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
  }
}

void pbp_exit_watch_stop(pebble_bk_proc *p) {
  if (p->has_exit_helper)
    wait_helper_done(p->exit_fd);
  p->has_exit_helper = 0;
  pbp_fd_close(p->exit_fd);
  p->exit_fd = -1;
}
