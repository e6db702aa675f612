/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_internal.h -- private to the APR backend.
 *
 * Map of the backend:
 *   apr_backend.c   the table, init/shutdown, settings, clock, fork
 *                   generation, the memory pools every object lives in
 *   apr_thread.c    threads, mutexes, condition variables
 *   apr_deadline.c  waking timed waiters on the monotonic clock (APR's
 *                   timed wait counts on the wall clock)
 *   apr_pipe.c      pipes: creation, non-blocking I/O without SIGPIPE
 *   apr_proc.c      processes: fork, kill, reap, the exit watcher
 *   apr_spawn.c     the spawn start method (apr_proc_create), and the
 *                   worker's side of it
 *   apr_waitset.c   waiting for channels, exits and wakes (apr_poll)
 *   apr_notifier.c  the notifier for applications' event loops
 *
 * Every object owns a subpool of the backend's root pool, created and
 * destroyed with it, so memory follows the number of live objects and
 * never the number of tasks run; the root's allocator is locked, so
 * subpools come and go from any thread, and each subpool is used by one
 * object only (under that object's lock where threads share it).
 */
#ifndef PEBBLE_APR_INTERNAL_H
#define PEBBLE_APR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <apr.h>
#include <apr_file_io.h>
#include <apr_pools.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "pebble_backend.h"

#if defined(__GNUC__) && !defined(_WIN32) /* PE has no ELF visibility */
#define PBA_HIDDEN __attribute__((visibility("hidden")))
#else
#define PBA_HIDDEN
#endif

#define PBA_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define PBA_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define PBA_CHANNEL_ENV "PEBBLE_WORKER_CHANNEL"
/* The longest single poll, in milliseconds (a day): APR passes the
 * timeout to the system as an int of milliseconds; longer waits are made
 * of several polls. */
#define PBA_POLL_MAX_MS ((uint64_t)24 * 3600 * 1000)
#define PBA_BACKEND_ENV "PEBBLE_WORKER_BACKEND"

/* ---- apr_backend.c ---- */
PBA_HIDDEN void pba_log(int level, const char *fmt, ...) PEBBLE_PRINTF(2, 3);
PBA_HIDDEN uint64_t pba_now_ns(void);
/* A new subpool of the root pool for one object; NULL when out of
 * memory or when the backend is not started. */
PBA_HIDDEN apr_pool_t *pba_pool_new(void);
/* PEBBLE_* code for an APR status (errno values map as the POSIX
 * backend maps them). */
PBA_HIDDEN int pba_status(apr_status_t st);
/* The errno-like number behind an APR status, for *sys_errno. */
PBA_HIDDEN int pba_sys_errno(apr_status_t st);

/* ---- apr_lifeline.c: workers die with their parent ----
 * A pipe whose write end only this process holds; every worker gets the
 * read end and a thread that waits on it, and ends the worker when it
 * reads end-of-file, that is when this process is gone. */
PBA_HIDDEN int pba_lifeline_start(void);
PBA_HIDDEN void pba_lifeline_stop(void);
/* The read end workers get (NULL before start). */
PBA_HIDDEN apr_file_t *pba_lifeline_end(void);
/* In a worker: watch fd / the adopted file, and end the process at
 * end-of-file.  PEBBLE_OK or a PEBBLE_E* code. */
PBA_HIDDEN int pba_lifeline_watch_forked(void);
PBA_HIDDEN int pba_lifeline_watch_adopted(apr_file_t *end, apr_pool_t *pool);

/* ---- apr_thread.c ---- */
PBA_HIDDEN int pba_thread_create(pebble_bk_thread **thread, void (*fn)(void *),
                                 void (*unwound)(void *), void *arg,
                                 unsigned flags);
PBA_HIDDEN int pba_thread_join(pebble_bk_thread *thread);
PBA_HIDDEN uint64_t pba_thread_self_id(void);
PBA_HIDDEN int pba_mutex_create(pebble_bk_mutex **mutex);
PBA_HIDDEN void pba_mutex_destroy(pebble_bk_mutex *mutex);
PBA_HIDDEN void pba_mutex_lock(pebble_bk_mutex *mutex);
PBA_HIDDEN void pba_mutex_unlock(pebble_bk_mutex *mutex);
PBA_HIDDEN int pba_cond_create(pebble_bk_cond **cond);
PBA_HIDDEN void pba_cond_destroy(pebble_bk_cond *cond);
PBA_HIDDEN void pba_cond_signal(pebble_bk_cond *cond);
PBA_HIDDEN void pba_cond_broadcast(pebble_bk_cond *cond);
PBA_HIDDEN int pba_cond_wait(pebble_bk_cond *cond, pebble_bk_mutex *mutex,
                             uint64_t deadline_ns);
/* Remember the signal mask application threads run with (from init). */
PBA_HIDDEN void pba_thread_capture_app_mask(void);
/* Run the calling thread with the application's signal mask until
 * pba_thread_mask_restore (spawned programs inherit it). */
PBA_HIDDEN void pba_thread_mask_app(void *saved, size_t saved_size);
PBA_HIDDEN void pba_thread_mask_restore(const void *saved);
#define PBA_MASK_BYTES 256

/* The raw pieces a condition variable is made of, for apr_deadline.c. */
struct pebble_bk_mutex {
  apr_pool_t *pool;
  apr_thread_mutex_t *m;
};
struct pebble_bk_cond {
  apr_pool_t *pool;
  apr_thread_cond_t *c;
};

/* ---- apr_deadline.c ---- */
/* Start / stop the thread that wakes timed waiters (init / shutdown). */
PBA_HIDDEN int pba_deadline_start(void);
PBA_HIDDEN void pba_deadline_stop(void);
/* cond_wait with a deadline on the monotonic clock. */
PBA_HIDDEN int pba_deadline_wait(pebble_bk_cond *cond, pebble_bk_mutex *mutex,
                                 uint64_t deadline_ns);

/* ---- apr_pipe.c ---- */
/* A pipe whose ends are closed on exec and in forked children; `nonblock_read` / `nonblock_write`
 * make that end non-blocking. */
PBA_HIDDEN apr_status_t pba_pipe(apr_file_t **rd, apr_file_t **wr,
                                 int nonblock_read, int nonblock_write,
                                 apr_pool_t *pool);
/* Close a pipe end made by pba_pipe (NULL is fine) and set it to NULL. */
PBA_HIDDEN void pba_file_close(apr_file_t **f);
/* The registry of library descriptors a forked child closes (apr_proc.c;
 * empty where APR has no fork). */
PBA_HIDDEN void pba_fd_track(apr_file_t *f);
PBA_HIDDEN void pba_fd_untrack(apr_file_t *f);
/* Non-blocking read/write with the proc_read/proc_write contract. */
PBA_HIDDEN int pba_pipe_read(apr_file_t *f, void *buf, size_t len,
                             size_t *done);
PBA_HIDDEN int pba_pipe_write(apr_file_t *f, const void *buf, size_t len,
                              size_t *done);
/* Blocking, whole-buffer I/O for the child's side. */
PBA_HIDDEN int pba_pipe_read_all(apr_file_t *f, void *buf, size_t len);
PBA_HIDDEN int pba_pipe_write_all(apr_file_t *f, const void *buf, size_t len);

/* ---- processes ---- */
#if defined(_WIN32)
/* Windows (apr_proc_win32.c): Win32 handles, a Job object per worker, and
 * two threads per worker that move the channel's bytes, so the manager
 * never blocks on a pipe (docs/backends.md, "Windows"). */
struct pebble_bk_chan {
  void *rd; /* HANDLE from the parent, blocking */
  void *wr; /* HANDLE to the parent, blocking */
};
/* The events of PEBBLE_EV_* that are ready now (level-triggered). */
PBA_HIDDEN unsigned pba_proc_ready(pebble_bk_proc *proc);
/* Set the waitset the process's threads wake when its state changes
 * (NULL: none); returns the one it had. */
PBA_HIDDEN pebble_bk_waitset *pba_proc_notify_to(pebble_bk_proc *proc,
                                                 pebble_bk_waitset *ws);
#else
struct pebble_bk_chan {
  apr_file_t *rd; /* from the parent, blocking */
  apr_file_t *wr; /* to the parent, blocking */
};

struct pebble_bk_proc {
  apr_pool_t *pool;
  apr_proc_t proc;
  apr_file_t *to_child;   /* parent's ends, non-blocking */
  apr_file_t *from_child;
  apr_file_t *exit_rd;    /* readable once the watcher reaped the child */
  apr_file_t *exit_wr;
  apr_thread_t *watcher;  /* waits in apr_proc_wait */
  apr_thread_mutex_t *lock; /* orders kill against reap (pid reuse) */
  int reaped;             /* under lock */
  pebble_bk_exit exit;    /* valid once reaped */
  pebble_bk_chan child;   /* the child's ends, in the parent until started */
  /* The waitset watching this process; guarded by that waitset's lock. */
  pebble_bk_waitset *ws;
};
#endif

/* ---- apr_proc.c ---- */
PBA_HIDDEN int pba_proc_new(pebble_bk_proc **proc, int *sys_errno);
/* After the child exists: close the child's ends here and start the
 * watcher thread. */
PBA_HIDDEN int pba_proc_started(pebble_bk_proc *proc, int *sys_errno);
/* Free a process whose child never started (or was reaped at start). */
PBA_HIDDEN void pba_proc_destroy_unstarted(pebble_bk_proc *proc);
PBA_HIDDEN int pba_proc_start(pebble_bk_proc **proc,
                              pebble_child_main_fn child_main, void *arg,
                              int *sys_errno);
PBA_HIDDEN long pba_proc_pid(const pebble_bk_proc *proc);
PBA_HIDDEN int pba_proc_read(pebble_bk_proc *proc, void *buf, size_t len,
                             size_t *done);
PBA_HIDDEN int pba_proc_write(pebble_bk_proc *proc, const void *buf,
                              size_t len, size_t *done);
PBA_HIDDEN int pba_proc_kill(pebble_bk_proc *proc, int force);
PBA_HIDDEN int pba_proc_reap(pebble_bk_proc *proc, pebble_bk_exit *exit);
PBA_HIDDEN void pba_proc_destroy(pebble_bk_proc *proc);
PBA_HIDDEN int pba_chan_write_all(pebble_bk_chan *chan, const void *buf,
                                  size_t len);
PBA_HIDDEN int pba_chan_read_all(pebble_bk_chan *chan, void *buf, size_t len);
/* Fork handlers (where APR has fork). */
PBA_HIDDEN void pba_proc_atfork_once(void);
/* An operation that opens a descriptor and writes APR's bookkeeping for
 * it (a pool cleanup that closes it before exec) runs between these two,
 * and a fork of the application waits for it (the core calls
 * pba_fork_prepare/parent/child from its fork handlers).  Not nested;
 * nothing inside may log or take a core lock. */
PBA_HIDDEN void pba_fd_ops_begin(void);
PBA_HIDDEN void pba_fd_ops_end(void);
PBA_HIDDEN void pba_fork_prepare(void);
PBA_HIDDEN void pba_fork_parent(void);
PBA_HIDDEN void pba_fork_child(void);
PBA_HIDDEN uint64_t pba_proc_fork_generation(void);

/* ---- apr_spawn.c ---- */
PBA_HIDDEN int pba_proc_spawn(pebble_bk_proc **proc, const char *program,
                              const char *argv0, int *sys_errno);
PBA_HIDDEN int pba_chan_adopt(pebble_bk_chan **chan);

/* ---- apr_waitset.c ---- */
PBA_HIDDEN int pba_waitset_create(pebble_bk_waitset **ws);
PBA_HIDDEN void pba_waitset_destroy(pebble_bk_waitset *ws);
PBA_HIDDEN int pba_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                                 unsigned events, void *tag);
PBA_HIDDEN void pba_waitset_wake(pebble_bk_waitset *ws);
PBA_HIDDEN int pba_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                                pebble_wait_event *events, size_t cap,
                                size_t *count);
PBA_HIDDEN void pba_waitset_forget_proc(pebble_bk_proc *proc);

/* ---- apr_notifier.c ---- */
PBA_HIDDEN int pba_notifier_create(pebble_bk_notifier **n);
PBA_HIDDEN void pba_notifier_destroy(pebble_bk_notifier *n);
PBA_HIDDEN intptr_t pba_notifier_handle(pebble_bk_notifier *n);
PBA_HIDDEN void pba_notifier_set(pebble_bk_notifier *n);
PBA_HIDDEN void pba_notifier_clear(pebble_bk_notifier *n);

#endif /* PEBBLE_APR_INTERNAL_H */
