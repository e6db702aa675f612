/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_proc.c -- processes: start by fork, channel I/O, kill, reap.
 *
 * Each process has a watcher thread blocked in apr_proc_wait(); when the
 * child ends the watcher records how, then writes a byte to the process's
 * exit pipe, which the waitset watches.  Nothing is polled, and no APR
 * "other child" bookkeeping (which needs periodic refreshing) is used.
 *
 * apr_proc_wait() reaps as it waits, so between its return and the
 * watcher taking the lock a kill could, in principle, reach a new process
 * that reused the pid in that instant; the POSIX backend avoids this with
 * waitid(WNOWAIT), which APR does not offer.  Kills are made under the
 * lock the watcher sets `reaped` under, which keeps the window to those
 * few instructions.
 *
 * APR has no process groups, so a kill reaches the worker alone, not
 * processes it started (PEBBLE_CAP_KILL_GROUP is not claimed).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_portable.h>
#ifdef HAVE_STDIO_EXT_H
#include <stdio_ext.h>
#endif

#include "apr_internal.h"

#if defined(__linux__)
#include <sys/prctl.h>
#include <unistd.h>
#endif

#ifndef SIGKILL
#define SIGKILL 9 /* Windows: apr_proc_kill terminates whatever the number */
#endif

#if APR_HAS_FORK
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

/* ---- the registry of library descriptors, for forked children ----
 * A plain pthread mutex: the child of a fork re-initialises it, which an
 * APR mutex does not allow. */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int *fds;
static size_t n_fds, cap_fds;
static unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void) {
  PBA_STORE(&fork_gen, PBA_LOAD(&fork_gen) + 1);
  pthread_mutex_init(&fd_lock, NULL);
}

/* ---- descriptor operations and the application's fork ----
 * fork() copies the descriptor table before the memory, so a thread that
 * opens a descriptor and registers APR's cleanup for it in between leaves
 * the child a cleanup for a descriptor the child does not have.  The
 * child's next descriptor can then take that number, and APR's cleanup
 * before exec (apr_proc_create) closes it in the program the child
 * starts: a spawned worker lost its lifeline that way and killed itself.
 * So a fork waits for such an operation to finish.  The core takes this
 * lock after its own (pba_fork_prepare is called from its fork handler),
 * the order every caller follows: one that holds a core lock may take it,
 * nothing that holds it takes a core lock. */
static pthread_mutex_t fd_ops = PTHREAD_MUTEX_INITIALIZER;

void pba_fd_ops_begin(void) { pthread_mutex_lock(&fd_ops); }
void pba_fd_ops_end(void) { pthread_mutex_unlock(&fd_ops); }
void pba_fork_prepare(void) { pthread_mutex_lock(&fd_ops); }
void pba_fork_parent(void) { pthread_mutex_unlock(&fd_ops); }
void pba_fork_child(void) { pthread_mutex_init(&fd_ops, NULL); }

static void register_atfork(void) {
  pthread_atfork(NULL, NULL, after_fork_child);
}

void pba_proc_atfork_once(void) { pthread_once(&atfork_once, register_atfork); }

uint64_t pba_proc_fork_generation(void) {
  pba_proc_atfork_once();
  return (uint64_t)PBA_LOAD(&fork_gen);
}

void pba_fd_track(apr_file_t *f) {
  apr_os_file_t fd;
  if (f == NULL || apr_os_file_get(&fd, f) != APR_SUCCESS)
    return;
  pthread_mutex_lock(&fd_lock);
  if (n_fds == cap_fds) {
    size_t cap = cap_fds ? cap_fds * 2 : 64;
    int *grown = realloc(fds, cap * sizeof *grown);
    if (grown != NULL) {
      fds = grown;
      cap_fds = cap;
    }
  }
  /* Out of memory: the descriptor stays open in forked children, which
   * costs only end-of-file detection on that pipe. */
  if (n_fds < cap_fds)
    fds[n_fds++] = fd;
  pthread_mutex_unlock(&fd_lock);
}

void pba_fd_untrack(apr_file_t *f) {
  apr_os_file_t fd;
  size_t i;
  if (f == NULL || apr_os_file_get(&fd, f) != APR_SUCCESS)
    return;
  pthread_mutex_lock(&fd_lock);
  for (i = 0; i < n_fds; i++)
    if (fds[i] == fd) {
      fds[i] = fds[--n_fds];
      break;
    }
  pthread_mutex_unlock(&fd_lock);
}

/* The registry as it is now, in a buffer of the caller's (malloc'd, or
 * NULL when out of memory).  The lock is not held across the fork: fork
 * handlers take the core's locks, which other threads hold while they
 * create pipes here, and that order must not be reversed.  A pipe made
 * between the copy and the fork stays open in that one child, which
 * costs only end-of-file detection on that pipe while the child lives. */
static int *fd_snapshot(size_t *n) {
  int *copy;
  pthread_mutex_lock(&fd_lock);
  copy = malloc((n_fds ? n_fds : 1) * sizeof *copy);
  *n = copy != NULL ? n_fds : 0;
  if (copy != NULL)
    memcpy(copy, fds, n_fds * sizeof *copy);
  pthread_mutex_unlock(&fd_lock);
  return copy;
}

/* In the new child, async-signal-safe only: default signal handling, no
 * blocked signals, stdin from /dev/null, no library descriptor but the
 * channel's. */
static void child_prepare(pebble_bk_proc *proc, const int *lib_fds,
                          size_t n_lib_fds) {
  apr_os_file_t keep_rd = -1, keep_wr = -1, keep_life = -1;
  struct sigaction dfl;
  sigset_t none;
  size_t i;
  int sig, null_fd;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  apr_os_file_get(&keep_rd, proc->child.rd);
  apr_os_file_get(&keep_wr, proc->child.wr);
  if (pba_lifeline_end() != NULL)
    apr_os_file_get(&keep_life, pba_lifeline_end());
  for (i = 0; i < n_lib_fds; i++)
    if (lib_fds[i] != keep_rd && lib_fds[i] != keep_wr &&
        lib_fds[i] != keep_life)
      close(lib_fds[i]);
  null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0 && null_fd != 0) {
    dup2(null_fd, 0);
    close(null_fd);
  }
}
#else
void pba_fd_ops_begin(void) {}
void pba_fd_ops_end(void) {}
void pba_fork_prepare(void) {}
void pba_fork_parent(void) {}
void pba_fork_child(void) {}
void pba_proc_atfork_once(void) {}
uint64_t pba_proc_fork_generation(void) { return 0; }
void pba_fd_track(apr_file_t *f) { (void)f; }
void pba_fd_untrack(apr_file_t *f) { (void)f; }
#endif

#define file_close pba_file_close

static void close_all(pebble_bk_proc *proc) {
  file_close(&proc->to_child);
  file_close(&proc->from_child);
  file_close(&proc->exit_rd);
  file_close(&proc->exit_wr);
  file_close(&proc->child.rd);
  file_close(&proc->child.wr);
}

int pba_proc_new(pebble_bk_proc **out, int *sys_errno) {
  pebble_bk_proc *proc;
  apr_pool_t *pool;
  apr_status_t st;
  *out = NULL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  proc = apr_pcalloc(pool, sizeof *proc);
  proc->pool = pool;
  st = apr_thread_mutex_create(&proc->lock, APR_THREAD_MUTEX_DEFAULT, pool);
  /* Parent to child: the parent writes without blocking. */
  if (st == APR_SUCCESS)
    st = pba_pipe(&proc->child.rd, &proc->to_child, 0, 1, pool);
  /* Child to parent: the parent reads without blocking. */
  if (st == APR_SUCCESS)
    st = pba_pipe(&proc->from_child, &proc->child.wr, 1, 0, pool);
  if (st == APR_SUCCESS)
    st = pba_pipe(&proc->exit_rd, &proc->exit_wr, 1, 0, pool);
  if (st != APR_SUCCESS) {
    *sys_errno = pba_sys_errno(st);
    close_all(proc);
    apr_pool_destroy(pool);
    return PEBBLE_ESYSTEM;
  }
  *out = proc;
  return PEBBLE_OK;
}

static void record_exit(pebble_bk_proc *proc, apr_status_t st, int code,
                        apr_exit_why_e why) {
  memset(&proc->exit, 0, sizeof proc->exit);
  if (st == APR_CHILD_DONE) {
    proc->exit.status_known = 1;
    if (why & APR_PROC_EXIT) {
      proc->exit.exited = 1;
      proc->exit.exit_code = code;
    } else {
      proc->exit.signal = code;
      proc->exit.core_dumped = (why & APR_PROC_SIGNAL_CORE) != 0;
    }
  }
  proc->reaped = 1;
}

static void *APR_THREAD_FUNC watcher_main(apr_thread_t *self, void *arg) {
  pebble_bk_proc *proc = arg;
  apr_exit_why_e why = APR_PROC_EXIT;
  apr_size_t one = 1;
  apr_status_t st;
  int code = 0;
  (void)self;
#if !defined(_WIN32)
  apr_setup_signal_thread();
#endif
  st = apr_proc_wait(&proc->proc, &code, &why, APR_WAIT);
#if !defined(_WIN32)
  /* APR waits with WUNTRACED and answers a status that is neither an
   * exit nor a signal's end, i.e. a child stopped from outside
   * (SIGSTOP), with APR_EGENERAL: the child lives on, so wait again for
   * its end. */
  while (st == APR_EGENERAL)
    st = apr_proc_wait(&proc->proc, &code, &why, APR_WAIT);
#endif
  apr_thread_mutex_lock(proc->lock);
  record_exit(proc, st, code, why);
  apr_thread_mutex_unlock(proc->lock);
  apr_file_write(proc->exit_wr, "x", &one);
  return NULL;
}

int pba_proc_started(pebble_bk_proc *proc, int *sys_errno) {
  apr_status_t st;
  /* The child's ends belong to the child now. */
  file_close(&proc->child.rd);
  file_close(&proc->child.wr);
  st = apr_thread_create(&proc->watcher, NULL, watcher_main, proc,
                         proc->pool);
  if (st != APR_SUCCESS) {
    apr_exit_why_e why = APR_PROC_EXIT;
    int code = 0;
    *sys_errno = pba_sys_errno(st);
    apr_proc_kill(&proc->proc, SIGKILL);
    record_exit(proc, apr_proc_wait(&proc->proc, &code, &why, APR_WAIT),
                code, why);
    return pba_status(st);
  }
  return PEBBLE_OK;
}

void pba_proc_destroy_unstarted(pebble_bk_proc *proc) {
  close_all(proc);
  apr_pool_destroy(proc->pool);
}

#if APR_HAS_FORK
/* Another application thread's stdio output written after the flush
 * before fork is in the child's buffers too: the parent prints it. */
static void stdio_forget_parents(void) {
#if defined(HAVE___FPURGE)
  __fpurge(stdout);
  __fpurge(stderr);
#elif defined(HAVE_FPURGE)
  fpurge(stdout);
  fpurge(stderr);
#endif
}
#endif

int pba_proc_start(pebble_bk_proc **out, pebble_child_main_fn child_main,
                   void *arg, int *sys_errno) {
#if APR_HAS_FORK
  pebble_bk_proc *proc;
  apr_status_t st;
  int rc, ignored, *snapshot;
  size_t n_snapshot;
#if defined(__linux__)
  pid_t parent;
#endif
  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL || child_main == NULL)
    return PEBBLE_EINVAL;
  if ((rc = pba_proc_new(&proc, sys_errno)) != PEBBLE_OK)
    return rc;
  snapshot = fd_snapshot(&n_snapshot);
  fflush(NULL); /* or the child's copy of buffered output prints again */
#if defined(__linux__)
  parent = getpid();
#endif
  st = apr_proc_fork(&proc->proc, proc->pool);
  if (st == APR_INCHILD) {
    /* First, before any _exit(): under a tool that runs the C library's
     * exit cleanup there (valgrind's default), the parent's buffered
     * output would otherwise come out a second time. */
    stdio_forget_parents();
#if defined(__linux__)
    /* A second guard beside the lifeline thread, which a fork can leave
     * unable to start (a runtime whose allocator lock another thread held
     * at the fork): the kernel's signal when the forking thread ends. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127); /* the parent is gone already: nobody would signal */
#endif
    child_prepare(proc, snapshot, n_snapshot);
    if (pba_lifeline_watch_forked() != PEBBLE_OK)
      _exit(127); /* a worker that would outlive us must not run */
    rc = child_main(arg, &proc->child);
    fflush(NULL); /* the task's own buffered output */
    _exit(rc);
  }
  free(snapshot);
  if (st != APR_INPARENT) {
    *sys_errno = pba_sys_errno(st);
    close_all(proc);
    apr_pool_destroy(proc->pool);
    return PEBBLE_ESYSTEM;
  }
  if ((rc = pba_proc_started(proc, sys_errno)) != PEBBLE_OK) {
    close_all(proc);
    apr_pool_destroy(proc->pool);
    return rc;
  }
  *out = proc;
  return PEBBLE_OK;
#else
  (void)out;
  (void)child_main;
  (void)arg;
  if (sys_errno != NULL)
    *sys_errno = 0;
  return PEBBLE_ENOTSUP;
#endif
}

long pba_proc_pid(const pebble_bk_proc *proc) { return (long)proc->proc.pid; }

int pba_proc_read(pebble_bk_proc *proc, void *buf, size_t len, size_t *done) {
  return pba_pipe_read(proc->from_child, buf, len, done);
}

int pba_proc_write(pebble_bk_proc *proc, const void *buf, size_t len,
                   size_t *done) {
  return pba_pipe_write(proc->to_child, buf, len, done);
}

int pba_proc_kill(pebble_bk_proc *proc, int force) {
  apr_status_t st = APR_SUCCESS;
  apr_thread_mutex_lock(proc->lock);
  if (!proc->reaped)
    st = apr_proc_kill(&proc->proc, force ? SIGKILL : SIGTERM);
  apr_thread_mutex_unlock(proc->lock);
  /* Already gone is what the caller wanted. */
#ifdef ESRCH
  if (pba_sys_errno(st) == ESRCH)
    st = APR_SUCCESS;
#endif
  return pba_status(st);
}

int pba_proc_reap(pebble_bk_proc *proc, pebble_bk_exit *exit) {
  int rc = PEBBLE_OK;
  apr_thread_mutex_lock(proc->lock);
  if (proc->reaped)
    *exit = proc->exit;
  else
    rc = PEBBLE_ENOTREADY;
  apr_thread_mutex_unlock(proc->lock);
  return rc;
}

void pba_proc_destroy(pebble_bk_proc *proc) {
  apr_status_t ignored;
  if (proc == NULL)
    return;
  pba_waitset_forget_proc(proc);
  if (proc->watcher != NULL) {
    pba_proc_kill(proc, 1);
    apr_thread_join(&ignored, proc->watcher);
  }
  close_all(proc);
  apr_pool_destroy(proc->pool);
}

int pba_chan_write_all(pebble_bk_chan *chan, const void *buf, size_t len) {
  return pba_pipe_write_all(chan->wr, buf, len);
}

int pba_chan_read_all(pebble_bk_chan *chan, void *buf, size_t len) {
  return pba_pipe_read_all(chan->rd, buf, len);
}
