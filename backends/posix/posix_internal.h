/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_internal.h -- private to the POSIX backend.
 *
 * Map of the backend:
 *   posix_backend.c   the table, init/shutdown, clock, fork generation
 *   posix_thread.c    threads, mutexes, condition variables
 *   posix_fd.c        the registry of library descriptors, fork locking
 *   posix_wakefd.c    a descriptor another thread can make readable
 *   posix_notifier.c  the notifier for applications' event loops
 *   posix_proc.c      processes: start, channel I/O, kill, reap
 *   posix_spawn.c     the spawn start method: a worker program, and
 *                     its side (adopting the channel)
 *   posix_launch.c    spawned workers started through a launcher
 *                     command (ssh, srun, mpirun), and their reports
 *   posix_child.c     what a new child does before the task's code
 *   posix_exit.c      knowing when a child ended, without polling
 *   posix_guardian.c  killing workers' process groups (what their tasks
 *                     started too) when the parent dies
 *   posix_waitset.c   waiting for channels, exits and wakes
 *
 * Cross-file names start with pbp_ and are hidden, so that a build
 * without -fvisibility=hidden still exports only the entry point.
 */
#ifndef PEBBLE_POSIX_INTERNAL_H
#define PEBBLE_POSIX_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pebble_backend.h"

#if defined(__GNUC__)
#define PBP_HIDDEN __attribute__((visibility("hidden")))
#define PBP_NORETURN __attribute__((noreturn))
#define PBP_TLS __thread
#else
#define PBP_HIDDEN
#define PBP_NORETURN
#define PBP_TLS _Thread_local
#endif

/* ---- what this build uses ---- */

/* Parent-death signal (Linux prctl) for a worker itself; the guardian
 * process kills workers' groups everywhere, and workers too without it. */
#if defined(__linux__) && !defined(PEBBLE_NO_PDEATHSIG)
#define PBP_USE_PDEATHSIG 1
#else
#define PBP_USE_PDEATHSIG 0
#endif

/* Exit waiting through a pidfd; a helper thread in waitid otherwise, also
 * at run time when the kernel refuses pidfd_open. */
#if defined(__linux__) && !defined(PEBBLE_NO_PIDFD)
#include <sys/syscall.h>
#ifdef SYS_pidfd_open
#define PBP_USE_PIDFD 1
#endif
#endif
#ifndef PBP_USE_PIDFD
#define PBP_USE_PIDFD 0
#endif

/* Wake descriptors: eventfd on Linux, a non-blocking pipe otherwise. */
#if defined(__linux__) && !defined(PEBBLE_NO_EVENTFD)
#define PBP_USE_EVENTFD 1
#else
#define PBP_USE_EVENTFD 0
#endif

#ifdef NSIG
#define PBP_NSIG NSIG
#else
#define PBP_NSIG 65
#endif

/* Atomic loads and stores of shared words; gcc and clang builtins work in
 * C99 mode too. */
#define PBP_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PBP_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ---- the fork page ----
 * What a new child writes before its task runs (the fork handlers, its
 * table of descriptors) and what the forking thread writes right after a
 * fork, gathered on one page of its own (defined in posix_fd.c).  A fork
 * makes every written page of the parent copy-on-write on both sides,
 * and each page either side then writes costs it a page fault; spread
 * over the files' own statics these were three or four pages a launch on
 * each side (docs/performance.md, one-shot launch). */
#define PBP_FD_STATIC 64       /* descriptors before the table moves out */
#define PBP_GUARDIAN_SLOTS 1024
typedef struct pbp_fork_page {
  /* posix_fd.c: the registry of library descriptors */
  pthread_mutex_t reg_lock;
  int *reg_fds;
  size_t reg_count, reg_cap;
  int reg_holding;    /* reg_holder forks with the lock held */
  pthread_t reg_holder;
  int reg_initial[PBP_FD_STATIC];
  /* posix_backend.c: bumped in every child */
  unsigned long fork_gen;
  /* posix_guardian.c: its socket, the shared table, the free entries */
  int g_fd;
  volatile int32_t *g_slots;
  int g_free_n;
  int16_t g_free[PBP_GUARDIAN_SLOTS];
  /* posix_forkserver.c */
  pthread_mutex_t fs_lock;
  int fs_ctl;
  pid_t fs_pid;
  int fs_lost;
} pbp_fork_page;
extern PBP_HIDDEN pbp_fork_page pbp_fp;

/* ---- posix_backend.c ---- */
PBP_HIDDEN void pbp_log(int level, const char *fmt, ...) PEBBLE_PRINTF(2, 3);
PBP_HIDDEN uint64_t pbp_now_ns(void);
/* Registers the fork handlers (idempotent); called before any library
 * descriptor or thread exists. */
PBP_HIDDEN void pbp_atfork_once(void);

/* ---- posix_thread.c ---- */
PBP_HIDDEN int pbp_thread_create(pebble_bk_thread **thread, void (*fn)(void *),
                                 void (*unwound)(void *), void *arg,
                                 unsigned flags);
PBP_HIDDEN int pbp_thread_join(pebble_bk_thread *thread);
PBP_HIDDEN uint64_t pbp_thread_self_id(void);
PBP_HIDDEN int pbp_mutex_create(pebble_bk_mutex **mutex);
PBP_HIDDEN void pbp_mutex_destroy(pebble_bk_mutex *mutex);
PBP_HIDDEN void pbp_mutex_lock(pebble_bk_mutex *mutex);
PBP_HIDDEN void pbp_mutex_unlock(pebble_bk_mutex *mutex);
PBP_HIDDEN int pbp_cond_create(pebble_bk_cond **cond);
PBP_HIDDEN void pbp_cond_destroy(pebble_bk_cond *cond);
PBP_HIDDEN void pbp_cond_signal(pebble_bk_cond *cond);
PBP_HIDDEN void pbp_cond_broadcast(pebble_bk_cond *cond);
PBP_HIDDEN int pbp_cond_wait(pebble_bk_cond *cond, pebble_bk_mutex *mutex,
                             uint64_t deadline_ns);
/* In a new child: its one thread runs the task, not library code. */
PBP_HIDDEN void pbp_thread_child_is_task(void);
/* posix_child.c: in a forked child, drop the stdio output it inherited. */
PBP_HIDDEN void pbp_stdio_forget_parents(void);
/* Remember the signal mask application threads run with (from init). */
PBP_HIDDEN void pbp_thread_capture_app_mask(void);
/* Start a small detached library thread with every signal blocked; 0 or
 * an errno value. */
PBP_HIDDEN int pbp_thread_start_detached(void *(*fn)(void *), void *arg);

/* ---- posix_fd.c: the registry of library descriptors ----
 * Every descriptor the backend opens is created close-on-exec and
 * recorded here, under the registry lock, so a forked child can close all
 * of them but its own channel.  Every fork of the process (ours and the
 * application's) happens with the lock held (fork handlers), so a child
 * always sees a consistent table. */
PBP_HIDDEN void pbp_fd_lock(void);
PBP_HIDDEN void pbp_fd_unlock(void);
/* With the lock held: record fd / forget it / forget and close it. */
PBP_HIDDEN int pbp_fd_add_locked(int fd);
PBP_HIDDEN void pbp_fd_forget_locked(int fd);
PBP_HIDDEN void pbp_fd_close_locked(int fd);
/* Take the lock, forget and close fd (ignored when negative). */
PBP_HIDDEN void pbp_fd_close(int fd);
/* Set close-on-exec, where it could not be set atomically. */
PBP_HIDDEN int pbp_fd_set_cloexec(int fd);
PBP_HIDDEN int pbp_fd_set_nonblock(int fd);
/* Create and record; return 0 or -1 with errno.  Lock NOT held. */
PBP_HIDDEN int pbp_socketpair(int sv[2]);
PBP_HIDDEN int pbp_pipe(int fds[2], int nonblock);
/* The same with the lock already held. */
PBP_HIDDEN int pbp_socketpair_locked(int sv[2]);
PBP_HIDDEN int pbp_pipe_locked(int fds[2], int nonblock);
/* fork() with the registry lock held by the caller; the lock stays held in
 * the parent and is free in the child. */
PBP_HIDDEN pid_t pbp_fork_locked(void);
/* In a child, async-signal-safe and without the lock: close every library
 * descriptor except keep and keep2 (-1: none); the table then holds only
 * those (or nothing). */
PBP_HIDDEN void pbp_fd_child_close_all_but(int keep, int keep2);
/* In a child: the table names new_fd where it named old_fd. */
PBP_HIDDEN void pbp_fd_child_renumber(int old_fd, int new_fd);
/* Fork handlers. */
PBP_HIDDEN void pbp_fd_before_fork(void);
PBP_HIDDEN void pbp_fd_after_fork_parent(void);
PBP_HIDDEN void pbp_fd_after_fork_child(void);
/* True in the child of a fork made by pbp_fork_locked, until it returns. */
PBP_HIDDEN int pbp_fd_forked_by_library(void);

/* ---- posix_wakefd.c ---- */
typedef struct pbp_wakefd {
  int rd; /* watched for readability */
  int wr; /* written to wake; the same as rd for an eventfd */
} pbp_wakefd;
PBP_HIDDEN int pbp_wakefd_open(pbp_wakefd *w);
PBP_HIDDEN void pbp_wakefd_close(pbp_wakefd *w);
PBP_HIDDEN void pbp_wakefd_signal(const pbp_wakefd *w); /* async-signal-safe */
PBP_HIDDEN void pbp_wakefd_drain(const pbp_wakefd *w);

/* ---- posix_notifier.c ---- */
PBP_HIDDEN int pbp_notifier_create(pebble_bk_notifier **n);
PBP_HIDDEN void pbp_notifier_destroy(pebble_bk_notifier *n);
PBP_HIDDEN intptr_t pbp_notifier_handle(pebble_bk_notifier *n);
PBP_HIDDEN void pbp_notifier_set(pebble_bk_notifier *n);
PBP_HIDDEN void pbp_notifier_clear(pebble_bk_notifier *n);

/* ---- processes ---- */

/* The parent's handle on a child. */
#define PBP_PASSED_MAX 4
struct pebble_bk_proc {
  pid_t pid;
  int chan_fd;           /* parent end of the channel, non-blocking */
  /* Forked children only (else -1): the read end of a pipe that carries
   * the child's messages to us, non-blocking; the socket then carries
   * only our messages to the child, and descriptors the child passes
   * (posix_handles.c).  A pipe write costs the child a fraction of a
   * socket send (no buffer allocated and charged per message). */
  int res_fd;
  int exit_fd;           /* readable once the child ended: pidfd, or a
                            socket a helper thread writes to */
  int has_exit_helper;   /* that thread's socket (closes when it is done) */
  pthread_mutex_t lock;  /* orders kill against reap (pid reuse) */
  int reaped;            /* under lock */
  pebble_bk_exit exit;   /* valid once reaped */
  int via_server;        /* a forkserver's child: it reaps, we release */
  /* Descriptors the child sent with its messages, oldest first, until
   * the core takes them (posix_handles.c); manager thread only. */
  int passed[PBP_PASSED_MAX];
  unsigned passed_count;
  /* The waitset watching this process, and the watch's slot in it; both
   * guarded by that waitset's lock. */
  pebble_bk_waitset *ws;
  size_t ws_slot;
  /* Started through a launcher (posix_launch.c), else NULL. */
  struct pbp_launch *launch;
  int guardian_slot;     /* its entry in the guardian's table, or -1 */
};

/* The child's end of its channel. */
struct pebble_bk_chan {
  int fd;     /* blocking */
  int out_fd; /* where the child's messages go: a pipe, or fd itself */
};

/* How to start a child: what it runs, and what the parent prepared. */
typedef struct pbp_child_setup {
  /* What the child runs: child_main(arg), or exec_path. */
  pebble_child_main_fn child_main;
  void *arg;
  const char *exec_path;
  char *const *argv;
  char *const *envp;
  char *chan_digits;   /* in envp: where the channel's number goes */
  int chan_on_stdio;   /* a launcher: the channel is its stdin and stdout */
  /* Filled in by pbp_proc_launch. */
  pid_t parent;        /* getpid() of the parent before fork */
  int chan_fd;         /* child's end of the channel */
  int res_fd;          /* write end of the message pipe, or -1 */
  int guardian_fd;     /* the guardian's socket, told of our group */
  volatile int32_t *guardian_entry; /* or this entry of its shared table */
  int err_fd;          /* exec's errno goes here; closed by a good exec */
} pbp_child_setup;

/* ---- posix_proc.c ---- */
/* Fork a child prepared as in pbp_child_setup (the caller fills what it
 * runs); an exec that fails is PEBBLE_ESYSTEM with its errno. */
PBP_HIDDEN int pbp_proc_launch(pebble_bk_proc **proc, pbp_child_setup *setup,
                               int *sys_errno);
PBP_HIDDEN int pbp_proc_start(pebble_bk_proc **proc,
                              pebble_child_main_fn child_main, void *arg,
                              int *sys_errno);
PBP_HIDDEN long pbp_proc_pid(const pebble_bk_proc *proc);
PBP_HIDDEN int pbp_proc_read(pebble_bk_proc *proc, void *buf, size_t len,
                             size_t *done);
PBP_HIDDEN int pbp_proc_write(pebble_bk_proc *proc, const void *buf,
                              size_t len, size_t *done);
PBP_HIDDEN int pbp_proc_kill(pebble_bk_proc *proc, int force);
PBP_HIDDEN int pbp_proc_reap(pebble_bk_proc *proc, pebble_bk_exit *exit);
PBP_HIDDEN void pbp_proc_destroy(pebble_bk_proc *proc);
PBP_HIDDEN int pbp_chan_write_all(pebble_bk_chan *chan, const void *buf,
                                  size_t len);
PBP_HIDDEN int pbp_chan_read_all(pebble_bk_chan *chan, void *buf, size_t len);
PBP_HIDDEN int pbp_chan_read(pebble_bk_chan *chan, void *buf, size_t len,
                             size_t *done);
PBP_HIDDEN int pbp_chan_read_ready(pebble_bk_chan *chan, void *buf,
                                    size_t len, size_t *done);
/* ---- posix_handles.c ---- */
PBP_HIDDEN int pbp_chan_send_handle(pebble_bk_chan *chan, const void *buf,
                                    size_t len, intptr_t handle);
PBP_HIDDEN int pbp_proc_take_handle(pebble_bk_proc *proc, intptr_t *handle);
/* recv() on the parent's end that keeps descriptors sent along. */
PBP_HIDDEN ssize_t pbp_proc_recv(pebble_bk_proc *proc, void *buf, size_t len,
                                 int flags);
PBP_HIDDEN void pbp_proc_close_passed(pebble_bk_proc *proc);
/* send() flags that keep SIGPIPE away where MSG_NOSIGNAL exists. */
PBP_HIDDEN ssize_t pbp_send(int fd, const void *buf, size_t len, int flags);

/* ---- posix_spawn.c ---- */
#define PBP_CHANNEL_ENV "PEBBLE_WORKER_CHANNEL"
#define PBP_BACKEND_ENV "PEBBLE_WORKER_BACKEND"
PBP_HIDDEN int pbp_proc_spawn(pebble_bk_proc **proc, const char *program,
                              const char *argv0, int *sys_errno);
PBP_HIDDEN int pbp_proc_spawn_launched(pebble_bk_proc **proc,
                                       const char *program, const char *argv0,
                                       const pebble_bk_launch *launch,
                                       int *sys_errno);
PBP_HIDDEN int pbp_chan_adopt(pebble_bk_chan **chan);
/* ---- posix_launch.c ---- */
#define PBP_LAUNCHER_ENV "PEBBLE_LAUNCHER"
/* Seconds between a remote supervisor's heartbeats (default 5); a link
 * silent for 3 of them is lost. */
#define PBP_HEARTBEAT_ENV "PEBBLE_LAUNCHER_HEARTBEAT"
/* Seconds a launched worker may take to say its first word (default 120,
 * 0: no bound). */
#define PBP_START_TIMEOUT_ENV "PEBBLE_LAUNCHER_START_TIMEOUT"
/* The environment's launcher command line, or NULL when workers start
 * here; the environment's heartbeat and start bound (seconds, or the
 * defaults 5 and 120; a start bound of 0 is none). */
PBP_HIDDEN const char *pbp_launcher(void);
PBP_HIDDEN long pbp_launch_heartbeat_s(void);
PBP_HIDDEN long pbp_launch_start_timeout_s(void);
/* Make setup exec the launcher with the worker's words (heartbeats every
 * `heartbeat` seconds); *argv is to be freed with pbp_launch_free_argv
 * once the child is started. */
PBP_HIDDEN int pbp_launch_prepare(pbp_child_setup *setup,
                                  const char *launcher, const char *program,
                                  long heartbeat, char ***argv);
PBP_HIDDEN void pbp_launch_free_argv(char **argv);
/* Heartbeats every `heartbeat` seconds, a first word within `start`
 * seconds (0: no bound). */
PBP_HIDDEN int pbp_launch_attach(pebble_bk_proc *p, long heartbeat,
                                 long start);
PBP_HIDDEN void pbp_launch_free(pebble_bk_proc *p);
/* Silence (manager thread, the waitset): bytes came at `now`; when the
 * launcher must have said something by; kill it if that has passed. */
PBP_HIDDEN void pbp_launch_heard(pebble_bk_proc *p, uint64_t now);
PBP_HIDDEN uint64_t pbp_launch_silence_deadline(const pebble_bk_proc *p);
PBP_HIDDEN void pbp_launch_check_silence(pebble_bk_proc *p, uint64_t now);
/* The core's bytes to a launched worker, framed (posix_launch.c); and the
 * heartbeats that go down between frames: the moment the next is due, and
 * sending it when it is. */
PBP_HIDDEN int pbp_launch_write(pebble_bk_proc *p, const void *buf,
                                size_t len, size_t *done);
PBP_HIDDEN uint64_t pbp_launch_beat_deadline(pebble_bk_proc *p);
PBP_HIDDEN void pbp_launch_beat(pebble_bk_proc *p, uint64_t now);
PBP_HIDDEN int pbp_launch_lost(const pebble_bk_proc *p);
/* proc_read for a launched worker: the worker's bytes, frames taken out. */
PBP_HIDDEN int pbp_launch_read(pebble_bk_proc *p, void *buf, size_t len,
                               size_t *done);
/* At the reap, when the core has read all it wanted: look for the report
 * in what is left (the worker's bytes there are dropped). */
PBP_HIDDEN void pbp_launch_drain(pebble_bk_proc *p);
/* The remote worker's end in place of the launcher's, once reported. */
PBP_HIDDEN void pbp_launch_exit(const pebble_bk_proc *p,
                                pebble_bk_exit *exit);
PBP_HIDDEN int pbp_proc_remote(pebble_bk_proc *p, char *host,
                               size_t host_size, long *pid);

/* ---- posix_forkserver.c ---- */
#ifdef MSG_NOSIGNAL
#define PBP_NOSIGNAL MSG_NOSIGNAL
#else
#define PBP_NOSIGNAL 0
#endif
#ifdef MSG_CMSG_CLOEXEC
#define PBP_CMSG_CLOEXEC MSG_CMSG_CLOEXEC
#else
#define PBP_CMSG_CLOEXEC 0
#endif
PBP_HIDDEN int pbp_forkserver_ensure(int *sys_errno);
PBP_HIDDEN int pbp_forkserver_fork(int chan_fd, int exit_wr, pid_t *pid,
                                   int *sys_errno);
PBP_HIDDEN void pbp_forkserver_release(pid_t pid);
/* A worker of the server was just signalled to end: continue a server
 * stopped from outside, which would otherwise never report that end. */
PBP_HIDDEN void pbp_forkserver_continue(void);
/* How a forkserver worker ended, from its exit pipe: 1 if known. */
PBP_HIDDEN int pbp_forkserver_exit(int exit_fd, pebble_bk_exit *out);
PBP_HIDDEN void pbp_forkserver_stop(void);
PBP_HIDDEN void pbp_forkserver_after_fork_child(void);
PBP_HIDDEN int pbp_proc_forkserver(pebble_bk_proc **proc, int *sys_errno);
/* The core's serve loop for a worker the backend started itself. */
PBP_HIDDEN int pbp_host_worker_serve(pebble_bk_chan *chan);

/* ---- posix_child.c ---- */
/* Runs in the new child right after fork; never returns. */
PBP_HIDDEN PBP_NORETURN void pbp_child_run(const pbp_child_setup *setup);

/* ---- posix_exit.c ---- */
/* Is the child still ours, running or a zombie, so that its pid and
 * group id cannot belong to anyone else?  Not once the application
 * reaped it (or ignores SIGCHLD): the id may be reused already. */
PBP_HIDDEN int pbp_child_still_ours(pid_t pid);
/* Arrange for proc->exit_fd to become readable when the child ends. */
PBP_HIDDEN int pbp_exit_watch_start(pebble_bk_proc *proc, int *sys_errno);
/* Non-blocking: has the child ended (its exit fd readable)? */
PBP_HIDDEN int pbp_exit_seen(const pebble_bk_proc *proc);
/* After the child was reaped: close the exit descriptor. */
PBP_HIDDEN void pbp_exit_watch_stop(pebble_bk_proc *proc);

/* ---- posix_guardian.c ---- */
/* Start the guardian if it is not running (PEBBLE_ESYSTEM with
 * *sys_errno if the system refuses). */
PBP_HIDDEN int pbp_guardian_ensure(int *sys_errno);
/* The descriptor a new worker registers through, with the registry lock
 * held across the fork; -1 without a guardian. */
PBP_HIDDEN int pbp_guardian_fd_locked(void);
/* With the registry lock held: a free entry of the table the guardian
 * shares with us, for the next worker (-1 if none is free: the worker
 * then sends its group id instead); *entry is where the child writes. */
PBP_HIDDEN int pbp_guardian_slot_take_locked(volatile int32_t **entry);
/* A slot taken for a fork that failed goes back. */
PBP_HIDDEN void pbp_guardian_slot_put_locked(int slot);
/* In the worker child, async-signal-safe: ask the guardian to kill this
 * process group if the parent dies (in its entry, or by a message). */
PBP_HIDDEN void pbp_guardian_child_register(int guardian_fd,
                                            volatile int32_t *entry);
/* The parent reaps pgid (registered in slot, or by message if -1): the
 * guardian must forget it. */
PBP_HIDDEN void pbp_guardian_forget(pid_t pgid, int slot);
/* Backend shutdown: let the guardian go (it exits on end-of-file). */
PBP_HIDDEN void pbp_guardian_stop(void);
/* Fork handler, in the child (registry lock not taken). */
PBP_HIDDEN void pbp_guardian_after_fork_child(void);

/* ---- posix_waitset.c ---- */
PBP_HIDDEN int pbp_waitset_create(pebble_bk_waitset **ws);
PBP_HIDDEN void pbp_waitset_destroy(pebble_bk_waitset *ws);
PBP_HIDDEN int pbp_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                                 unsigned events, void *tag);
PBP_HIDDEN void pbp_waitset_wake(pebble_bk_waitset *ws);
PBP_HIDDEN int pbp_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                                pebble_wait_event *events, size_t cap,
                                size_t *count);
/* Drop proc's watch, whichever waitset holds it (proc_destroy). */
PBP_HIDDEN void pbp_waitset_forget_proc(pebble_bk_proc *proc);

#endif /* PEBBLE_POSIX_INTERNAL_H */
