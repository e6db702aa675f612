/* SPDX-License-Identifier: Apache-2.0 */
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
 * Parent and server talk over a socket pair, in fixed-size requests
 * (fs_req; a stream keeps no boundaries).  To start a worker the parent
 * sends 'S' with two descriptors: the worker's end of its channel, and
 * the write end of an exit pipe.  The request also carries the
 * application's identity and resource limits at that moment, which the
 * server takes on before it forks (see fs_req).  The server forks, answers with the
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
#include <grp.h>
#include <string.h>
#include <sys/resource.h>
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

/* The resource limits a worker gets from the application as they are at
 * its start (those the system has). */
static const int fs_limits[] = {
#ifdef RLIMIT_NPROC
    RLIMIT_NPROC,
#endif
#ifdef RLIMIT_AS
    RLIMIT_AS,
#endif
#ifdef RLIMIT_MEMLOCK
    RLIMIT_MEMLOCK,
#endif
    RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_FSIZE,
    RLIMIT_CPU};
#define FS_NLIMITS (sizeof fs_limits / sizeof fs_limits[0])
/* More supplementary groups than this (Linux's own maximum) are refused. */
#define FS_MAX_GROUPS 65536

/* A request ('S' start a worker, 'R' release a pid).  Both ends are the
 * same program, so native types are fine.  An 'S' carries the
 * application's identity and resource limits at that moment, which the
 * server takes on before it forks: a worker never keeps privileges the
 * application gave up, and the system refuses its fork exactly when it
 * would refuse the application's own (RLIMIT_NPROC); ngroups group ids
 * follow the request. */
typedef struct fs_req {
  int32_t type;
  int32_t pid;
  uid_t uid[3]; /* real, effective, saved */
  gid_t gid[3];
  int32_t ngroups;
  struct rlimit lim[FS_NLIMITS];
} fs_req;

/* On the fork page (posix_internal.h): a child's fork handler writes
 * them. */
#define fs_lock pbp_fp.fs_lock
#define fs_ctl pbp_fp.fs_ctl
#define fs_pid pbp_fp.fs_pid
/* The server ended under us: no new one until the backend shuts down (a
 * new server would be a fork of the application as it is now, which is
 * what this start method was chosen to avoid). */
#define fs_lost pbp_fp.fs_lost
/* Set while this thread forks the server, holding fs_lock. */
static PBP_TLS int fs_forking;

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

/* Exactly len bytes, no descriptors: 0, or -1 at an error or end. */
static int read_exact(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    got += (size_t)n;
  }
  return 0;
}

static void get_ids(uid_t uid[3], gid_t gid[3]) {
#ifdef HAVE_GETRESUID
  getresuid(&uid[0], &uid[1], &uid[2]);
#else
  uid[0] = getuid();
  uid[1] = uid[2] = geteuid();
#endif
#ifdef HAVE_GETRESGID
  getresgid(&gid[0], &gid[1], &gid[2]);
#else
  gid[0] = getgid();
  gid[1] = gid[2] = getegid();
#endif
}

static int set_ids(const uid_t uid[3], const gid_t gid[3], int ngroups,
                   const gid_t *groups) {
  if (setgroups((size_t)ngroups, groups) != 0)
    return -1;
#ifdef HAVE_GETRESGID
  if (setresgid(gid[0], gid[1], gid[2]) != 0)
    return -1;
#else
  if (setregid(gid[0], gid[1]) != 0)
    return -1;
#endif
#ifdef HAVE_GETRESUID
  return setresuid(uid[0], uid[1], uid[2]);
#else
  return setreuid(uid[0], uid[1]);
#endif
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
static PBP_NORETURN void worker_main(int ctl, int chan_fd, int exit_wr,
                                     pid_t server) {
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
  close(exit_wr); /* the server's to write; end-of-file if the server dies */
  close(sigchld_pipe[0]);
  close(sigchld_pipe[1]);
  for (i = 0; i < n_workers; i++)
    if (workers[i].exit_wr >= 0)
      close(workers[i].exit_wr);
  /* None of the server's state is this process's: if a task uses Pebble
   * and starts a server of its own, that one starts empty (a stale table
   * would have it close descriptor numbers, and kill process ids, that
   * are no longer what they were). */
  free(workers);
  workers = NULL;
  n_workers = cap_workers = 0;
  sigchld_pipe[0] = sigchld_pipe[1] = -1;
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
  chan.fd = chan.out_fd = chan_fd;
  sig = pbp_host_worker_serve(&chan);
  fflush(NULL); /* the tasks' buffered output */
  _exit(sig);
}

/* Become what the request says the application is now (identity,
 * supplementary groups, resource limits): 0, or an errno value. */
static int take_on(const fs_req *r, const gid_t *groups) {
  uid_t uid[3];
  gid_t gid[3], *mine;
  int n, need_ids, err = 0;
  size_t i;
  get_ids(uid, gid);
  need_ids = memcmp(uid, r->uid, sizeof uid) != 0 ||
             memcmp(gid, r->gid, sizeof gid) != 0;
  n = getgroups(0, NULL);
  if (!need_ids && n != r->ngroups)
    need_ids = 1;
  if (!need_ids && n > 0) {
    mine = malloc((size_t)n * sizeof *mine);
    need_ids = mine == NULL || getgroups(n, mine) != n ||
               memcmp(mine, groups, (size_t)n * sizeof *mine) != 0;
    free(mine);
  }
  /* Raising limits and changing groups need privilege, which a saved
   * set-user-id of 0 may still give back; set_ids settles the ids after. */
  if (need_ids && geteuid() != 0)
    (void)!seteuid(0);
  for (i = 0; i < FS_NLIMITS; i++) {
    struct rlimit now;
    if (getrlimit(fs_limits[i], &now) == 0 &&
        (now.rlim_cur != r->lim[i].rlim_cur ||
         now.rlim_max != r->lim[i].rlim_max) &&
        setrlimit(fs_limits[i], &r->lim[i]) != 0 && err == 0)
      err = errno;
  }
  if (need_ids && set_ids(r->uid, r->gid, r->ngroups, groups) != 0 &&
      err == 0)
    err = errno;
  return err;
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
      fs_req req;
      gid_t *groups = NULL;
      int fds[2] = {-1, -1}, nfds, i;
      int32_t pid32;
      ssize_t n = recv_msg(ctl, &req, sizeof req, fds, &nfds);
      if (n == (ssize_t)sizeof req && req.type == 'S' &&
          (req.ngroups < 0 || req.ngroups > FS_MAX_GROUPS ||
           (req.ngroups > 0 &&
            ((groups = malloc((size_t)req.ngroups * sizeof *groups)) ==
                 NULL ||
             read_exact(ctl, groups,
                        (size_t)req.ngroups * sizeof *groups) != 0))))
        n = 0; /* not what the parent sends: treated as its end */
      if (n != (ssize_t)sizeof req) {
        size_t k;
        /* The parent is gone: so are its workers, reaped here so that
         * none is left a zombie for whoever inherits it. */
        for (k = 0; k < n_workers; k++)
          kill(-workers[k].pid, SIGKILL);
        for (k = 0; k < n_workers; k++)
          while (waitpid(workers[k].pid, NULL, 0) < 0 && errno == EINTR)
            ;
        _exit(0);
      }
      if (req.type == 'S' && nfds == 2) {
        pid_t pid = -1;
        int err = take_on(&req, groups);
        if (err == 0 && n_workers == cap_workers) {
          size_t cap = cap_workers ? cap_workers * 2 : 16;
          fs_worker *grown = realloc(workers, cap * sizeof *grown);
          if (grown != NULL) {
            workers = grown;
            cap_workers = cap;
          }
        }
        if (err == 0 && n_workers == cap_workers)
          err = ENOMEM;
        if (err == 0) {
          pid = fork();
          if (pid == 0)
            worker_main(ctl, fds[0], fds[1], getppid());
          if (pid < 0)
            err = errno;
        }
        pid32 = pid > 0 ? (int32_t)pid : -(int32_t)err;
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
      } else if (req.type == 'R') {
        release((pid_t)req.pid);
      } else {
        /* A start whose descriptors did not arrive (a descriptor limit):
         * the parent waits for an answer, so it gets one. */
        for (i = 0; i < nfds; i++)
          close(fds[i]);
        if (req.type == 'S') {
          pid32 = -(int32_t)EMFILE;
          (void)!send(ctl, &pid32, sizeof pid32, PBP_NOSIGNAL);
        }
      }
      free(groups);
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
  if (fs_lost) {
    *sys_errno = EPIPE;
    return PEBBLE_ESYSTEM;
  }
  if (pbp_socketpair(sv) != 0) {
    *sys_errno = errno;
    return PEBBLE_ESYSTEM;
  }
  fflush(NULL);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pbp_fd_lock();
  fs_forking = 1;
  pid = pbp_fork_locked();
  fs_forking = 0;
  if (pid == 0) {
    pbp_thread_child_is_task();
    pbp_stdio_forget_parents(); /* or each worker would print it again */
    pbp_fd_child_close_all_but(sv[1], -1);
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

/* How long the server may take to answer a start request.  It forks and
 * answers at once, in a millisecond or so; one that says nothing for
 * this long is stopped (SIGSTOP) or hung, and waiting on would hang the
 * thread that asked, the library's manager thread. */
#define FS_ANSWER_NS (UINT64_C(10) * 1000000000u)

/* The server's answer to a start request: 1 read, 0 the server is gone
 * (end of file, an error), -1 no answer within FS_ANSWER_NS. */
static int read_answer(int32_t *reply) {
  uint64_t deadline = pbp_now_ns() + FS_ANSWER_NS, now;
  for (;;) {
    struct pollfd pfd;
    ssize_t n;
    int ms;
    pfd.fd = fs_ctl;
    pfd.events = POLLIN;
    pfd.revents = 0;
    now = pbp_now_ns();
    if (now >= deadline)
      return -1;
    ms = (int)((deadline - now + 999999u) / 1000000u);
    n = poll(&pfd, 1, ms);
    if (n < 0 && errno != EINTR)
      return 0;
    if (n <= 0)
      continue; /* interrupted, or the time is up: looked at above */
    do /* the answer is written whole: it is all here */
      n = recv(fs_ctl, reply, sizeof *reply, MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *reply;
  }
}

/* The server ended (killed from outside, most likely): say so once, reap
 * it, and refuse further requests with EPIPE.  Its workers die with it
 * (parent-death signal) and their futures resolve as crashed, status
 * unknown.  fs_lock held. */
static void lost_locked(void) {
  int st = 0;
  pid_t pid = fs_pid;
  char how[64] = "status unknown";
  pbp_fd_close(fs_ctl);
  fs_ctl = -1;
  fs_pid = -1;
  fs_lost = 1;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (WIFSIGNALED(st))
    snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(st));
  else if (WIFEXITED(st) && st != 0)
    snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
  pbp_log(PEBBLE_LOG_ERROR,
          "the forkserver (pid %ld) has ended (%s): forkserver workers "
          "cannot start in this process until pebble_shutdown()",
          (long)pid, how);
}

/* The application's identity and limits now, for an 'S' request followed
 * by its groups; NULL if that cannot be had. */
static fs_req *start_request(size_t *len, int *sys_errno) {
  fs_req *r;
  int n = getgroups(0, NULL);
  size_t i;
  if (n < 0 || n > FS_MAX_GROUPS) {
    *sys_errno = n < 0 ? errno : EINVAL;
    return NULL;
  }
  *len = sizeof *r + (size_t)n * sizeof(gid_t);
  r = calloc(1, *len);
  if (r == NULL) {
    *sys_errno = ENOMEM;
    return NULL;
  }
  r->type = 'S';
  get_ids(r->uid, r->gid);
  if (n > 0 && getgroups(n, (gid_t *)(void *)(r + 1)) != n) {
    *sys_errno = errno ? errno : EAGAIN;
    free(r);
    return NULL;
  }
  r->ngroups = n;
  for (i = 0; i < FS_NLIMITS; i++)
    if (getrlimit(fs_limits[i], &r->lim[i]) != 0) {
      *sys_errno = errno;
      free(r);
      return NULL;
    }
  return r;
}

/* Ask the server for a worker on chan_fd, reporting on exit_wr. */
int pbp_forkserver_fork(int chan_fd, int exit_wr, pid_t *pid,
                        int *sys_errno) {
  int fds[2] = {chan_fd, exit_wr}, rc;
  size_t len = 0;
  fs_req *req = start_request(&len, sys_errno);
  int32_t reply = 0;
  if (req == NULL)
    return PEBBLE_ESYSTEM;
  pthread_mutex_lock(&fs_lock);
  rc = ensure_locked(sys_errno);
  if (rc == PEBBLE_OK && send_msg(fs_ctl, req, len, fds, 2) != 0) {
    *sys_errno = EPIPE;
    rc = PEBBLE_ESYSTEM;
    lost_locked();
  }
  if (rc == PEBBLE_OK) {
    int got = read_answer(&reply);
    if (got < 0) {
      /* Stopped or hung: it is ended, as a crashed one would be. */
      pbp_log(PEBBLE_LOG_ERROR,
              "the forkserver (pid %ld) did not answer a request for a "
              "worker within %u s (stopped or hung): killing it",
              (long)fs_pid, (unsigned)(FS_ANSWER_NS / 1000000000u));
      kill(fs_pid, SIGKILL);
    }
    if (got <= 0) {
      *sys_errno = got < 0 ? ETIMEDOUT : EPIPE;
      rc = PEBBLE_ESYSTEM;
      lost_locked();
    } else if (reply <= 0) {
      *sys_errno = -reply;
      rc = PEBBLE_ESYSTEM;
    } else {
      *pid = (pid_t)reply;
    }
  }
  pthread_mutex_unlock(&fs_lock);
  free(req);
  return rc;
}

void pbp_forkserver_release(pid_t pid) {
  fs_req req;
  memset(&req, 0, sizeof req);
  req.type = 'R';
  req.pid = (int32_t)pid;
  pthread_mutex_lock(&fs_lock);
  if (fs_ctl >= 0)
    send_msg(fs_ctl, &req, sizeof req, NULL, 0);
  pthread_mutex_unlock(&fs_lock);
}

/* The library's kill of a worker must be seen: its end is the server's
 * to report (and destroy waits for that report), so a server stopped from
 * outside is continued, as pebble_shutdown() continues it.  A server busy
 * with a request is not stopped for long: the request's answer is waited
 * for at most FS_ANSWER_NS, then the server is killed.  The signal goes
 * under the lock, so the pid is still our unreaped child. */
void pbp_forkserver_continue(void) {
  if (pthread_mutex_trylock(&fs_lock) != 0)
    return;
  if (fs_pid > 0)
    kill(fs_pid, SIGCONT);
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
  fs_lost = 0; /* the library's next life may start a server again */
  pthread_mutex_unlock(&fs_lock);
  if (pid > 0) {
    /* One stopped from outside reads the end of file once it runs. */
    kill(pid, SIGCONT);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
}

/* In the child of any fork (the descriptor registry's lock is held by
 * this, the only thread): the server is the parent's.  Our copy of its
 * control socket is closed at once, or a child that lives on would keep
 * the server (and its workers) alive after the parent is gone.  The child
 * starts a server of its own if it uses the library. */
void pbp_forkserver_after_fork_child(void) {
  /* The lock: ours if this thread forked the server, so released as any
   * owner would (the server, and every worker and nested server forked
   * from it, then starts with it free); else another thread of the
   * parent may have held it, and only a fresh one will do. */
  if (fs_forking)
    pthread_mutex_unlock(&fs_lock);
  else
    pthread_mutex_init(&fs_lock, NULL);
  if (fs_ctl >= 0)
    pbp_fd_close_locked(fs_ctl);
  fs_ctl = -1;
  fs_pid = -1;
  fs_lost = 0;
}
