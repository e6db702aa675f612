/*
 * posix_forkserver.c -- the forkserver start method.
 *
 * A single-threaded helper process, forked once (when the library starts
 * with PEBBLE_START_METHOD=forkserver, else at the first forkserver
 * worker), forks the workers on request.  Workers get fork's speed
 * without the application's threads ever being forked again; they see
 * the program as it was when the server was forked, and find tasks by
 * their registered names, as spawned workers do.
 *
 * Parent and server talk over a socket pair, in requests of exactly
 * FS_REQ bytes (a stream keeps no boundaries).  To start a worker the
 * parent sends 'S' with two descriptors: the worker's end of its channel,
 * and the write end of an exit pipe.  The server forks, answers with the
 * pid (or -errno), and when the worker ends writes how it ended into the
 * exit pipe, which the parent's waitset watches like any exit descriptor.
 * The server sees the end with waitid(WNOWAIT) and reaps only when the
 * parent sends 'R' for that pid: until then the zombie holds the pid and
 * its group id, so the parent's kills can never reach a stranger.
 *
 * When the parent dies the server reads end-of-file, kills every worker's
 * group and exits; workers die with the server (parent-death signal, or
 * that same kill where the kernel has none).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posix_internal.h"

#if PBP_USE_PDEATHSIG
#include <sys/prctl.h>
#endif

/* What the server writes into a worker's exit pipe. */
typedef struct fs_exit {
  int32_t known, exited, code, signal, core;
} fs_exit;

/* A request: type ('S' start, 'R' release), 3 bytes of padding, pid. */
#define FS_REQ 8

static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static int fs_ctl = -1;
static pid_t fs_pid = -1;

/* ---- both sides: one message, with up to two descriptors ---- */

static ssize_t recv_part(int fd, void *buf, size_t len, int *fds, int *nfds);

static int send_msg(int fd, const void *buf, size_t len, const int *fds,
                    int nfds) {
  struct msghdr m;
  struct iovec iov;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } ctl;
  ssize_t n;
  memset(&m, 0, sizeof m);
  iov.iov_base = (void *)buf;
  iov.iov_len = len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    struct cmsghdr *c;
    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  do
    n = sendmsg(fd, &m, PBP_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)len ? 0 : -1;
}

/* 0 at end-of-file, -1 on error, else the bytes read; *nfds set.  Reads
 * until len bytes are in (descriptors come with the first part). */
static ssize_t recv_msg(int fd, void *buf, size_t len, int *fds, int *nfds) {
  ssize_t got = recv_part(fd, buf, len, fds, nfds);
  while (got > 0 && (size_t)got < len) {
    ssize_t n;
    do
      n = recv(fd, (char *)buf + got, len - (size_t)got, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
      return n;
    got += n;
  }
  return got;
}

static ssize_t recv_part(int fd, void *buf, size_t len, int *fds, int *nfds) {
  struct msghdr m;
  struct iovec iov;
  struct cmsghdr *c;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(2 * sizeof(int))];
  } ctl;
  ssize_t n;
  memset(&m, 0, sizeof m);
  iov.iov_base = buf;
  iov.iov_len = len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  *nfds = 0;
  do
    n = recvmsg(fd, &m, PBP_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  for (c = CMSG_FIRSTHDR(&m); n > 0 && c != NULL; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      if (k > 2)
        k = 2;
      memcpy(fds, CMSG_DATA(c), (size_t)k * sizeof(int));
      *nfds = k;
    }
  return n;
}

/* ---- the server ---- */

typedef struct fs_worker {
  pid_t pid;
  int exit_wr; /* -1 once the end was reported */
} fs_worker;

static fs_worker *workers;
static size_t n_workers, cap_workers;
static int sigchld_pipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  int saved = errno;
  (void)sig;
  (void)!write(sigchld_pipe[1], "c", 1);
  errno = saved;
}

static void report_exits(void) {
  size_t i;
  for (i = 0; i < n_workers; i++) {
    siginfo_t si;
    fs_exit x;
    if (workers[i].exit_wr < 0)
      continue;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)workers[i].pid, &si,
               WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != workers[i].pid)
      continue;
    memset(&x, 0, sizeof x);
    x.known = 1;
    if (si.si_code == CLD_EXITED) {
      x.exited = 1;
      x.code = si.si_status;
    } else {
      x.signal = si.si_status;
      x.core = si.si_code == CLD_DUMPED;
    }
    (void)!write(workers[i].exit_wr, &x, sizeof x);
    close(workers[i].exit_wr);
    workers[i].exit_wr = -1;
  }
}

static void release(pid_t pid) {
  size_t i;
  for (i = 0; i < n_workers; i++)
    if (workers[i].pid == pid) {
      int st;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
      if (workers[i].exit_wr >= 0)
        close(workers[i].exit_wr);
      workers[i] = workers[--n_workers];
      return;
    }
}

/* In the worker: a fresh process for the core's serve loop. */
static PBP_NORETURN void worker_main(int ctl, int chan_fd, pid_t server) {
  pebble_bk_chan chan;
  struct sigaction dfl;
  sigset_t none;
  size_t i;
  int sig, fd;
  setpgid(0, 0);
#if PBP_USE_PDEATHSIG
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  if (getppid() != server)
    _exit(127);
  close(ctl);
  close(sigchld_pipe[0]);
  close(sigchld_pipe[1]);
  for (i = 0; i < n_workers; i++)
    if (workers[i].exit_wr >= 0)
      close(workers[i].exit_wr);
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (sig = 1; sig < PBP_NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (chan_fd <= 2) {
    int moved = fcntl(chan_fd, F_DUPFD_CLOEXEC, 3);
    close(chan_fd);
    chan_fd = moved;
  }
  fd = open("/dev/null", O_RDONLY);
  if (fd > 0) {
    dup2(fd, 0);
    close(fd);
  }
  chan.fd = chan_fd;
  sig = pbp_host_worker_serve(&chan);
  fflush(NULL); /* the tasks' buffered output */
  _exit(sig);
}

static PBP_NORETURN void server_main(int ctl) {
  struct sigaction sa;
  sigset_t none;
  int sig;
  /* Nothing of the application's signal handling applies here. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (sig = 1; sig < PBP_NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN); /* the application decides; EOF ends us */
  if (pipe(sigchld_pipe) != 0)
    _exit(127);
  fcntl(sigchld_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(sigchld_pipe[1], F_SETFL, O_NONBLOCK);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (;;) {
    struct pollfd p[2];
    p[0].fd = ctl;
    p[0].events = POLLIN;
    p[1].fd = sigchld_pipe[0];
    p[1].events = POLLIN;
    p[0].revents = p[1].revents = 0;
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      _exit(127);
    if (p[1].revents) {
      char buf[64];
      while (read(sigchld_pipe[0], buf, sizeof buf) > 0)
        ;
    }
    report_exits();
    if (p[0].revents) {
      char req[FS_REQ];
      int fds[2] = {-1, -1}, nfds;
      int32_t pid32;
      ssize_t n = recv_msg(ctl, req, sizeof req, fds, &nfds);
      if (n <= 0) {
        size_t i;
        /* The parent is gone: so are its workers. */
        for (i = 0; i < n_workers; i++)
          kill(-workers[i].pid, SIGKILL);
        _exit(0);
      }
      if (req[0] == 'S' && nfds == 2) {
        pid_t pid;
        if (n_workers == cap_workers) {
          size_t cap = cap_workers ? cap_workers * 2 : 16;
          fs_worker *grown = realloc(workers, cap * sizeof *grown);
          if (grown != NULL) {
            workers = grown;
            cap_workers = cap;
          }
        }
        pid = n_workers < cap_workers ? fork() : (errno = ENOMEM, -1);
        if (pid == 0)
          worker_main(ctl, fds[0], getppid());
        pid32 = pid > 0 ? (int32_t)pid : -(int32_t)errno;
        close(fds[0]);
        if (pid > 0) {
          setpgid(pid, pid);
          workers[n_workers].pid = pid;
          workers[n_workers].exit_wr = fds[1];
          n_workers++;
        } else {
          close(fds[1]);
        }
        (void)!send(ctl, &pid32, sizeof pid32, PBP_NOSIGNAL);
        report_exits(); /* it may have ended already */
      } else if (req[0] == 'R') {
        memcpy(&pid32, req + 4, sizeof pid32);
        release((pid_t)pid32);
      } else {
        int i;
        for (i = 0; i < nfds; i++)
          close(fds[i]);
      }
    }
  }
}

/* ---- the parent's side ---- */

static int ensure_locked(int *sys_errno) {
  sigset_t all, old;
  int sv[2];
  pid_t pid;
  if (fs_pid > 0)
    return PEBBLE_OK;
  if (pbp_socketpair(sv) != 0) {
    *sys_errno = errno;
    return PEBBLE_ESYSTEM;
  }
  fflush(NULL);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pbp_fd_lock();
  pid = pbp_fork_locked();
  if (pid == 0) {
    pbp_thread_child_is_task();
    pbp_fd_child_close_all_but(sv[1]);
    server_main(sv[1]);
  }
  *sys_errno = errno;
  pbp_fd_close_locked(sv[1]);
  pbp_fd_unlock();
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    pbp_fd_close(sv[0]);
    return PEBBLE_ESYSTEM;
  }
  fs_ctl = sv[0];
  fs_pid = pid;
  return PEBBLE_OK;
}

int pbp_forkserver_ensure(int *sys_errno) {
  int rc;
  pthread_mutex_lock(&fs_lock);
  rc = ensure_locked(sys_errno);
  pthread_mutex_unlock(&fs_lock);
  return rc;
}

/* Ask the server for a worker on chan_fd, reporting on exit_wr. */
int pbp_forkserver_fork(int chan_fd, int exit_wr, pid_t *pid,
                        int *sys_errno) {
  int fds[2] = {chan_fd, exit_wr}, rc;
  char req[FS_REQ] = {'S'};
  int32_t reply = 0;
  ssize_t n;
  pthread_mutex_lock(&fs_lock);
  rc = ensure_locked(sys_errno);
  if (rc == PEBBLE_OK && send_msg(fs_ctl, req, sizeof req, fds, 2) != 0) {
    *sys_errno = errno;
    rc = PEBBLE_ESYSTEM;
  }
  if (rc == PEBBLE_OK) {
    do
      n = recv(fs_ctl, &reply, sizeof reply, MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof reply || reply <= 0) {
      *sys_errno = n == (ssize_t)sizeof reply ? -reply : EPIPE;
      rc = PEBBLE_ESYSTEM;
    } else {
      *pid = (pid_t)reply;
    }
  }
  pthread_mutex_unlock(&fs_lock);
  return rc;
}

void pbp_forkserver_release(pid_t pid) {
  char req[FS_REQ] = {'R'};
  int32_t pid32 = (int32_t)pid;
  memcpy(req + 4, &pid32, sizeof pid32);
  pthread_mutex_lock(&fs_lock);
  if (fs_ctl >= 0)
    send_msg(fs_ctl, req, sizeof req, NULL, 0);
  pthread_mutex_unlock(&fs_lock);
}

/* Read how a forkserver worker ended (blocking when asked to). */
int pbp_forkserver_exit(int exit_fd, pebble_bk_exit *out) {
  fs_exit x;
  ssize_t n;
  memset(out, 0, sizeof *out);
  do
    n = read(exit_fd, &x, sizeof x);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof x || !x.known)
    return 0; /* the server is gone: unknown */
  out->status_known = 1;
  out->exited = x.exited;
  out->exit_code = x.code;
  out->signal = x.signal;
  out->core_dumped = x.core;
  return 1;
}

/* Backend shutdown, or the child of a fork: the server is not ours to
 * talk to any more.  Closing our end makes it kill its workers and go;
 * the parent reaps it. */
void pbp_forkserver_stop(void) {
  pid_t pid;
  pthread_mutex_lock(&fs_lock);
  pid = fs_pid;
  if (fs_ctl >= 0)
    pbp_fd_close(fs_ctl);
  fs_ctl = -1;
  fs_pid = -1;
  pthread_mutex_unlock(&fs_lock);
  if (pid > 0)
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
}

void pbp_forkserver_after_fork_child(void) {
  /* The server is our parent's; its control socket was closed with the
   * other library descriptors (or will be) and must not be used. */
  pthread_mutex_init(&fs_lock, NULL);
  fs_ctl = -1;
  fs_pid = -1;
}
