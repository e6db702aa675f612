/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_fd.c -- the registry of library descriptors.
 *
 * A forked worker must not keep other workers' channels, wake descriptors
 * or pidfds open: a channel held by a sibling never reports end-of-file,
 * and a leaked pidfd pins a process.  So every descriptor the backend
 * opens is created close-on-exec (atomically where the system allows) and
 * recorded here, and a new child closes all of them but its own channel.
 *
 * Descriptors are created and recorded under one lock, and every fork of
 * the process takes that lock first (fork handlers; the library's own
 * forks hold it already), so a child always inherits a table that matches
 * its descriptors.  A child never takes the lock: it only reads the table.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "posix_internal.h"

#if defined(HAVE_PIPE2) || defined(__linux__) || defined(__FreeBSD__) ||     \
    defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#define PBP_HAVE_PIPE2 1
#endif

/* The table starts in static storage, on the fork page
 * (posix_internal.h): a new child writes the lock (fork handler) and the
 * table (it closes what is not its own).  Only more than PBP_FD_STATIC
 * descriptors move the table to the heap.  The page is aligned to its
 * size, so nothing else shares it. */
#if defined(__GNUC__)
__attribute__((aligned(4096)))
#endif
pbp_fork_page pbp_fp = {
    PTHREAD_MUTEX_INITIALIZER, pbp_fp.reg_initial, 0, PBP_FD_STATIC, 0, 0,
    {0},                           /* the registry */
    0,                             /* fork_gen */
    -1, NULL, 0, {0},              /* the guardian */
    PTHREAD_MUTEX_INITIALIZER, -1, -1, 0 /* the forkserver */
};
#define reg_lock pbp_fp.reg_lock
#define reg_fds pbp_fp.reg_fds
#define reg_count pbp_fp.reg_count
#define reg_cap pbp_fp.reg_cap

void pbp_fd_lock(void) {
  pbp_atfork_once(); /* before the first fork could need the handlers */
  pthread_mutex_lock(&reg_lock);
}

void pbp_fd_unlock(void) { pthread_mutex_unlock(&reg_lock); }

int pbp_fd_add_locked(int fd) {
  size_t i;
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  for (i = 0; i < reg_count; i++)
    if (reg_fds[i] == fd)
      return 0; /* left over from a fork: the number is ours again */
  if (reg_count == reg_cap) {
    size_t cap = reg_cap * 2;
    int *grown = reg_fds == pbp_fp.reg_initial
                     ? malloc(cap * sizeof *grown)
                     : realloc(reg_fds, cap * sizeof *grown);
    if (grown == NULL) {
      errno = ENOMEM;
      return -1;
    }
    if (reg_fds == pbp_fp.reg_initial)
      memcpy(grown, pbp_fp.reg_initial, sizeof pbp_fp.reg_initial);
    reg_fds = grown;
    reg_cap = cap;
  }
  reg_fds[reg_count++] = fd;
  return 0;
}

void pbp_fd_forget_locked(int fd) {
  size_t i;
  for (i = 0; i < reg_count; i++)
    if (reg_fds[i] == fd) {
      reg_fds[i] = reg_fds[--reg_count];
      return;
    }
}

/* Forgotten and closed under the lock: a fork in between would otherwise
 * see a number the application may already have reused. */
void pbp_fd_close_locked(int fd) {
  if (fd < 0)
    return;
  pbp_fd_forget_locked(fd);
  close(fd);
}

void pbp_fd_close(int fd) {
  if (fd < 0)
    return;
  pbp_fd_lock();
  pbp_fd_close_locked(fd);
  pbp_fd_unlock();
}

int pbp_fd_set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0)
    return -1;
  return (flags & FD_CLOEXEC) ? 0 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int pbp_fd_set_nonblock(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0)
    return -1;
  return (flags & O_NONBLOCK) ? 0 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Record both ends, or close both and fail. */
static int add_pair_locked(int fds[2]) {
  int err;
  if (pbp_fd_add_locked(fds[0]) == 0) {
    if (pbp_fd_add_locked(fds[1]) == 0)
      return 0;
    pbp_fd_forget_locked(fds[0]);
  }
  err = errno;
  close(fds[0]);
  close(fds[1]);
  errno = err;
  return -1;
}

int pbp_socketpair_locked(int sv[2]) {
#ifdef SOCK_CLOEXEC
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -1;
#else
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return -1;
  /* Not atomic, but no fork of ours can come in between: we hold the
   * registry lock. */
  pbp_fd_set_cloexec(sv[0]);
  pbp_fd_set_cloexec(sv[1]);
#endif
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  {
    /* Without MSG_NOSIGNAL, the socket itself must not raise SIGPIPE. */
    int one = 1;
    setsockopt(sv[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    setsockopt(sv[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
  return add_pair_locked(sv);
}

int pbp_socketpair(int sv[2]) {
  int rc;
  pbp_fd_lock();
  rc = pbp_socketpair_locked(sv);
  pbp_fd_unlock();
  return rc;
}

int pbp_pipe_locked(int fds[2], int nonblock) {
#ifdef PBP_HAVE_PIPE2
  if (pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) != 0)
    return -1;
#else
  if (pipe(fds) != 0)
    return -1;
  pbp_fd_set_cloexec(fds[0]);
  pbp_fd_set_cloexec(fds[1]);
  if (nonblock) {
    pbp_fd_set_nonblock(fds[0]);
    pbp_fd_set_nonblock(fds[1]);
  }
#endif
  return add_pair_locked(fds);
}

int pbp_pipe(int fds[2], int nonblock) {
  int rc;
  pbp_fd_lock();
  rc = pbp_pipe_locked(fds, nonblock);
  pbp_fd_unlock();
  return rc;
}

pid_t pbp_fork_locked(void) {
  pid_t pid;
  pbp_fp.reg_holder = pthread_self(); /* under the lock */
  PBP_STORE(&pbp_fp.reg_holding, 1); /* the fork handlers: the lock is ours */
  pid = fork();
  PBP_STORE(&pbp_fp.reg_holding, 0);
  return pid;
}

/* Only the thread that set it can see itself as the holder: any other
 * sees another thread's id, or holding at 0. */
static int fork_holder(void) {
  return PBP_LOAD(&pbp_fp.reg_holding) &&
         pthread_equal(pbp_fp.reg_holder, pthread_self());
}

int pbp_fd_forked_by_library(void) { return fork_holder(); }

void pbp_fd_child_close_all_but(int keep, int keep2) {
  size_t i;
  int kept = 0, kept2 = 0;
  for (i = 0; i < reg_count; i++) {
    if (reg_fds[i] == keep)
      kept = 1;
    else if (keep2 >= 0 && reg_fds[i] == keep2)
      kept2 = 1;
    else
      close(reg_fds[i]);
  }
  reg_count = 0;
  if (kept)
    reg_fds[reg_count++] = keep;
  if (kept2)
    reg_fds[reg_count++] = keep2;
}

void pbp_fd_child_renumber(int old_fd, int new_fd) {
  size_t i;
  for (i = 0; i < reg_count; i++)
    if (reg_fds[i] == old_fd)
      reg_fds[i] = new_fd;
}

void pbp_fd_before_fork(void) {
  if (!fork_holder())
    pthread_mutex_lock(&reg_lock);
}

void pbp_fd_after_fork_parent(void) {
  if (!fork_holder())
    pthread_mutex_unlock(&reg_lock);
}

/* The forking thread holds the lock either way; in the child it is the
 * only thread, so the lock is simply released. */
void pbp_fd_after_fork_child(void) { pthread_mutex_unlock(&reg_lock); }
