/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_proc.c -- child processes: start, channel I/O, kill, reap.
 *
 * Each child leads its own process group, so a kill reaches whatever the
 * task started too.  It talks to the parent over a socketpair: the
 * parent's end is non-blocking and written with MSG_NOSIGNAL, so a dead
 * child shows as PEBBLE_EDIED and never as SIGPIPE in the application.
 * A forked (not exec'd) child sends its own messages through a pipe
 * instead (posix_internal.h, res_fd); the socket then carries the
 * parent's messages and the descriptors the child passes.
 *
 * The group id is the child's pid, which stays reserved while the child
 * is a zombie; exits are seen without reaping (posix_exit.c), so group
 * kills stay safe until proc_reap, the one place that reaps.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posix_internal.h"

#ifdef MSG_DONTWAIT
#define PBP_DONTWAIT MSG_DONTWAIT
#else
#define PBP_DONTWAIT 0 /* the parent's end is O_NONBLOCK anyway */
#endif

#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif

ssize_t pbp_send(int fd, const void *buf, size_t len, int flags) {
#ifdef MSG_NOSIGNAL
  flags |= MSG_NOSIGNAL;
#endif
  return send(fd, buf, len > SSIZE_MAX ? SSIZE_MAX : len, flags);
}

static void proc_free(pebble_bk_proc *p) {
  pbp_launch_free(p);
  pbp_proc_close_passed(p);
  pbp_fd_close(p->chan_fd);
  pbp_fd_close(p->res_fd);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* The whole group; the child alone if it has no group (yet). */
static void signal_group(pebble_bk_proc *p, int sig) {
  /* A forkserver's child is held by the server until we release it. */
  if (!p->via_server && !pbp_child_still_ours(p->pid))
    return;
  if (killpg(p->pid, sig) != 0 && errno == ESRCH)
    kill(p->pid, sig);
  if (p->via_server)
    pbp_forkserver_continue();
}

/* With p->lock held.  Kill what is left of the group while the zombie
 * leader still reserves its id, then reap the leader. */
static void reap_locked(pebble_bk_proc *p, int blocking) {
  pid_t r;
  int st = 0;

  signal_group(p, SIGKILL);
  if (p->via_server) {
    /* The server wrote how it ended (this blocks only in destroy, after
     * the kill above); then it may reap. */
    pbp_forkserver_exit(p->exit_fd, &p->exit);
    pbp_forkserver_release(p->pid);
    p->reaped = 1;
    return;
  }
  pbp_guardian_forget(p->pid, p->guardian_slot); /* before the id can be
                                                     reused */
  p->guardian_slot = -1;
  do
    r = waitpid(p->pid, &st, blocking ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    /* Seen ending but not reapable yet: it is a moment away, killed. */
    do
      r = waitpid(p->pid, &st, 0);
    while (r < 0 && errno == EINTR);
  }
  memset(&p->exit, 0, sizeof p->exit);
  if (r == p->pid) {
    p->exit.status_known = 1;
    if (WIFEXITED(st)) {
      p->exit.exited = 1;
      p->exit.exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      p->exit.signal = WTERMSIG(st);
#ifdef WCOREDUMP
      p->exit.core_dumped = WCOREDUMP(st) ? 1 : 0;
#endif
    }
  }
  /* else ECHILD: the application reaped it, or ignores SIGCHLD. */
  pbp_launch_exit(p, &p->exit);
  p->reaped = 1;
}

/* After an exec'ing child's fork: EOF on err_fd means the exec worked;
 * otherwise the child sent exec's errno and is about to _exit. */
static int exec_errno(int err_fd) {
  int e = 0;
  ssize_t n;
  do
    n = read(err_fd, &e, sizeof e);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof e ? (e != 0 ? e : ENOEXEC) : 0;
}

int pbp_proc_launch(pebble_bk_proc **out, pbp_child_setup *setup,
                    int *sys_errno) {
  pebble_bk_proc *p;
  sigset_t all, old;
  int sv[2], errpipe[2] = {-1, -1}, err, rc;
  pid_t pid;

  *out = NULL;
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return PEBBLE_ENOMEM;
  p->chan_fd = p->exit_fd = p->res_fd = -1;
  p->guardian_slot = -1;
  if ((rc = pthread_mutex_init(&p->lock, NULL)) != 0) {
    free(p);
    *sys_errno = rc;
    return PEBBLE_ESYSTEM;
  }
  /* Even where the worker dies with us by a parent-death signal: what
   * its task started does not, and only the guardian kills the group. */
  if ((rc = pbp_guardian_ensure(sys_errno)) != PEBBLE_OK) {
    proc_free(p);
    return rc;
  }
  if (pbp_socketpair(sv) != 0) {
    *sys_errno = errno;
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  p->chan_fd = sv[0];
  if (pbp_fd_set_nonblock(sv[0]) != 0) {
    *sys_errno = errno;
    pbp_fd_close(sv[1]);
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  setup->parent = getpid();
  setup->chan_fd = sv[1];
  setup->res_fd = -1;
  setup->err_fd = -1;
  if (setup->exec_path == NULL) {
    /* A forked child sends its messages through a pipe (posix_internal.h);
     * a spawned one keeps the socket both ways, as its one inherited
     * descriptor. */
    int res[2];
    if (pbp_pipe(res, 0) != 0) {
      *sys_errno = errno;
      pbp_fd_close(sv[1]);
      proc_free(p);
      return PEBBLE_ESYSTEM;
    }
    p->res_fd = res[0]; /* closed with p from here on */
    if (pbp_fd_set_nonblock(res[0]) != 0) {
      *sys_errno = errno;
      pbp_fd_close(res[1]);
      pbp_fd_close(sv[1]);
      proc_free(p);
      return PEBBLE_ESYSTEM;
    }
    setup->res_fd = res[1];
  }

  fflush(NULL); /* or the child's copy of buffered output prints again */
  /* The child starts with every signal blocked, so none of the
   * application's handlers can run in it before they are reset. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pbp_fd_lock();
  if (setup->exec_path != NULL) {
    /* The write end stays out of the registry: the child keeps it until
     * exec closes it.  We hold the lock until the parent closes it, so
     * no other fork can inherit it. */
    if (pbp_pipe_locked(errpipe, 0) != 0) {
      *sys_errno = errno;
      pbp_fd_close_locked(sv[1]);
      if (setup->res_fd >= 0)
        pbp_fd_close_locked(setup->res_fd);
      pbp_fd_unlock();
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      proc_free(p);
      return PEBBLE_ESYSTEM;
    }
    pbp_fd_forget_locked(errpipe[1]);
    setup->err_fd = errpipe[1];
  }
  setup->guardian_fd = pbp_guardian_fd_locked();
  setup->guardian_entry = NULL;
  if (setup->guardian_fd >= 0)
    p->guardian_slot = pbp_guardian_slot_take_locked(&setup->guardian_entry);
  pid = pbp_fork_locked();
  if (pid == 0)
    pbp_child_run(setup);
  err = errno;
  if (pid < 0 && p->guardian_slot >= 0) {
    pbp_guardian_slot_put_locked(p->guardian_slot);
    p->guardian_slot = -1;
  }
  pbp_fd_close_locked(sv[1]);
  if (setup->res_fd >= 0)
    pbp_fd_close_locked(setup->res_fd);
  if (errpipe[1] >= 0)
    close(errpipe[1]);
  pbp_fd_unlock();
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    pbp_fd_close(errpipe[0]);
    *sys_errno = err;
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  /* The child does the same; whichever runs first wins, and EACCES or
   * ESRCH here only mean the child was quicker. */
  setpgid(pid, pid);
  p->pid = pid;

  rc = PEBBLE_OK;
  if (errpipe[0] >= 0) {
    if ((err = exec_errno(errpipe[0])) != 0) {
      *sys_errno = err;
      rc = PEBBLE_ESYSTEM;
    }
    pbp_fd_close(errpipe[0]);
  }
  if (rc == PEBBLE_OK)
    rc = pbp_exit_watch_start(p, sys_errno);
  if (rc != PEBBLE_OK) {
    /* A child whose end we could not see must not run unsupervised. */
    pthread_mutex_lock(&p->lock);
    reap_locked(p, 1);
    pthread_mutex_unlock(&p->lock);
    proc_free(p);
    return rc;
  }
  *out = p;
  return PEBBLE_OK;
}

int pbp_proc_start(pebble_bk_proc **out, pebble_child_main_fn child_main,
                   void *arg, int *sys_errno) {
  pbp_child_setup setup;
  int ignored;
  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL || child_main == NULL)
    return PEBBLE_EINVAL;
  memset(&setup, 0, sizeof setup);
  setup.child_main = child_main;
  setup.arg = arg;
  return pbp_proc_launch(out, &setup, sys_errno);
}

/* A worker forked by the forkserver: our ends of its channel and of its
 * exit pipe stay here, the others travel to the server. */
int pbp_proc_forkserver(pebble_bk_proc **out, int *sys_errno) {
  pebble_bk_proc *p;
  int sv[2], ex[2], rc, ignored;
  pid_t pid = -1;
  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL)
    return pbp_forkserver_ensure(sys_errno);
  *out = NULL;
  p = calloc(1, sizeof *p);
  if (p == NULL)
    return PEBBLE_ENOMEM;
  p->chan_fd = p->exit_fd = p->res_fd = -1;
  p->guardian_slot = -1;
  p->via_server = 1;
  if ((rc = pthread_mutex_init(&p->lock, NULL)) != 0) {
    free(p);
    *sys_errno = rc;
    return PEBBLE_ESYSTEM;
  }
  if (pbp_socketpair(sv) != 0) {
    *sys_errno = errno;
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  p->chan_fd = sv[0];
  if (pbp_fd_set_nonblock(sv[0]) != 0 || pbp_pipe(ex, 0) != 0) {
    *sys_errno = errno;
    pbp_fd_close(sv[1]);
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  p->exit_fd = ex[0];
  rc = pbp_forkserver_fork(sv[1], ex[1], &pid, sys_errno);
  pbp_fd_close(sv[1]);
  pbp_fd_close(ex[1]);
  if (rc != PEBBLE_OK) {
    pbp_exit_watch_stop(p);
    proc_free(p);
    return rc;
  }
  p->pid = pid;
  *out = p;
  return PEBBLE_OK;
}

long pbp_proc_pid(const pebble_bk_proc *p) {
  return p != NULL ? (long)p->pid : (long)PEBBLE_EINVAL;
}

int pbp_proc_read(pebble_bk_proc *p, void *buf, size_t len, size_t *done) {
  if (done != NULL)
    *done = 0;
  /* len 0 would be indistinguishable from end-of-file. */
  if (p == NULL || buf == NULL || done == NULL || len == 0)
    return PEBBLE_EINVAL;
  if (len > SSIZE_MAX)
    len = SSIZE_MAX;
  if (p->launch != NULL)
    return pbp_launch_read(p, buf, len, done);
  for (;;) {
    ssize_t n = p->res_fd >= 0 ? read(p->res_fd, buf, len)
                               : pbp_proc_recv(p, buf, len, PBP_DONTWAIT);
    if (n >= 0) {
      *done = (size_t)n;
      return PEBBLE_OK;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return PEBBLE_ENOTREADY;
    if (errno == ECONNRESET)
      return PEBBLE_OK; /* the child is gone: end-of-file */
    return PEBBLE_ESYSTEM;
  }
}

int pbp_proc_write(pebble_bk_proc *p, const void *buf, size_t len,
                   size_t *done) {
  if (done != NULL)
    *done = 0;
  if (p == NULL || done == NULL || (buf == NULL && len > 0))
    return PEBBLE_EINVAL;
  if (len == 0)
    return PEBBLE_OK;
  if (p->launch != NULL)
    return pbp_launch_write(p, buf, len, done);
  for (;;) {
    ssize_t n = pbp_send(p->chan_fd, buf, len, PBP_DONTWAIT);
    if (n >= 0) {
      *done = (size_t)n;
      return PEBBLE_OK;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return PEBBLE_ENOTREADY;
    if (errno == EPIPE || errno == ECONNRESET)
      return PEBBLE_EDIED;
    return PEBBLE_ESYSTEM;
  }
}

int pbp_proc_kill(pebble_bk_proc *p, int force) {
  if (p == NULL)
    return PEBBLE_EINVAL;
  pthread_mutex_lock(&p->lock);
  if (!p->reaped) /* afterwards the id may belong to someone else */
    signal_group(p, force ? SIGKILL : SIGTERM);
  pthread_mutex_unlock(&p->lock);
  return PEBBLE_OK;
}

int pbp_proc_reap(pebble_bk_proc *p, pebble_bk_exit *exit) {
  if (p == NULL || exit == NULL)
    return PEBBLE_EINVAL;
  if (p->launch != NULL && !p->reaped && pbp_exit_seen(p))
    pbp_launch_drain(p); /* the report may follow bytes nobody read */
  pthread_mutex_lock(&p->lock);
  if (!p->reaped) {
    if (!pbp_exit_seen(p)) {
      /* Too early: reaping now would have to block. */
      pthread_mutex_unlock(&p->lock);
      return PEBBLE_ENOTREADY;
    }
    reap_locked(p, 0);
  }
  *exit = p->exit;
  pthread_mutex_unlock(&p->lock);
  return PEBBLE_OK;
}

void pbp_proc_destroy(pebble_bk_proc *p) {
  if (p == NULL)
    return;
  pbp_waitset_forget_proc(p);
  pthread_mutex_lock(&p->lock);
  if (!p->reaped)
    reap_locked(p, 1); /* killed first, so this ends soon */
  pthread_mutex_unlock(&p->lock);
  pbp_exit_watch_stop(p);
  proc_free(p);
}

/* ---- the child's end: blocking ---- */

int pbp_chan_write_all(pebble_bk_chan *chan, const void *buf, size_t len) {
  const char *at = buf;
  if (chan == NULL || (buf == NULL && len > 0))
    return PEBBLE_EINVAL;
  while (len > 0) {
    /* To a pipe: a parent gone raises SIGPIPE, which ends this worker as
     * the parent's death would anyway. */
    ssize_t n = chan->out_fd != chan->fd
                    ? write(chan->out_fd, at, len > SSIZE_MAX ? SSIZE_MAX : len)
                    : pbp_send(chan->fd, at, len, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EPIPE || errno == ECONNRESET ? PEBBLE_EDIED
                                                   : PEBBLE_ESYSTEM;
    }
    at += n;
    len -= (size_t)n;
  }
  return PEBBLE_OK;
}

int pbp_chan_read_all(pebble_bk_chan *chan, void *buf, size_t len) {
  char *at = buf;
  if (chan == NULL || (buf == NULL && len > 0))
    return PEBBLE_EINVAL;
  while (len > 0) {
    ssize_t n = recv(chan->fd, at, len > SSIZE_MAX ? SSIZE_MAX : len, 0);
    if (n == 0)
      return PEBBLE_EDIED; /* the parent closed its end */
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == ECONNRESET ? PEBBLE_EDIED : PEBBLE_ESYSTEM;
    }
    at += n;
    len -= (size_t)n;
  }
  return PEBBLE_OK;
}

int pbp_chan_read(pebble_bk_chan *chan, void *buf, size_t len, size_t *done) {
  if (done != NULL)
    *done = 0;
  if (chan == NULL || buf == NULL || done == NULL || len == 0)
    return PEBBLE_EINVAL;
  for (;;) {
    /* Our messages go through a pipe (posix_internal.h): the parent never
     * reads this socket's data, so a blocking recv wakes only for data. */
    ssize_t n = recv(chan->fd, buf, len > SSIZE_MAX ? SSIZE_MAX : len,
                     chan->out_fd != chan->fd ? 0 : MSG_DONTWAIT);
    if (n > 0) {
      *done = (size_t)n;
      return PEBBLE_OK;
    }
    if (n == 0)
      return PEBBLE_EDIED; /* the parent closed its end */
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* Wait in poll, not in recv: a socket wakes a reader blocked in
       * recv each time the other side frees the space of a message this
       * end sent (one wait queue for both directions), while poll wakes
       * only for data. */
      struct pollfd pfd;
      pfd.fd = chan->fd;
      pfd.events = POLLIN;
      pfd.revents = 0;
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
        return PEBBLE_ESYSTEM;
      continue;
    }
    return errno == ECONNRESET ? PEBBLE_EDIED : PEBBLE_ESYSTEM;
  }
}

int pbp_chan_read_ready(pebble_bk_chan *chan, void *buf, size_t len,
                        size_t *done) {
  if (done != NULL)
    *done = 0;
  if (chan == NULL || buf == NULL || done == NULL || len == 0)
    return PEBBLE_EINVAL;
  for (;;) {
    ssize_t n = recv(chan->fd, buf, len > SSIZE_MAX ? SSIZE_MAX : len,
                     MSG_DONTWAIT);
    if (n > 0) {
      *done = (size_t)n;
      return PEBBLE_OK;
    }
    if (n == 0)
      return PEBBLE_EDIED;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return PEBBLE_ENOTREADY;
    return errno == ECONNRESET ? PEBBLE_EDIED : PEBBLE_ESYSTEM;
  }
}
