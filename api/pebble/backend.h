/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pebble/backend.h -- the contract between the Pebble core and a backend.
 *
 * The core (futures, deadlines, cancellation, process supervision) talks
 * to threads, locks, processes and event waiting only through one
 * `const pebble_backend` table.  A backend module exports exactly one
 * symbol, `pebble_backend_<name>_get`, a function returning its table
 * (write it with PEBBLE_BACKEND_ENTRY(name) below), and is found by name:
 * the file pebble_<name>.so in PEBBLE_BACKEND_PATH or in the install
 * directory (`pkg-config --variable=moduledir pebble`).  A module calls
 * nothing of libpebble's and is not linked with it: what it needs from
 * the library comes through the pebble_host given to init.
 * examples/backend/ in the source distribution is a complete one.
 *
 * Stability (docs/abi.md, "The backend contract"):
 * - The contract has its own version, PEBBLE_BACKEND_ABI_MAJOR.MINOR,
 *   independent of the library's.  Within one major the table only grows
 *   at its end: a minor version appends operations (optional: a module
 *   may leave them NULL) and may add PEBBLE_CAP_* flags or fields at the
 *   end of pebble_host.  No operation is ever moved, removed or given a
 *   new meaning or signature within a major; anything of that kind bumps
 *   the major.
 * - A module states what it was built for in the first fields of its
 *   table: abi_major = PEBBLE_BACKEND_ABI_MAJOR, abi_minor =
 *   PEBBLE_BACKEND_ABI_MINOR and struct_size = sizeof(pebble_backend), as
 *   this header defines them at build time.  The core calls no operation
 *   beyond struct_size, so a module built for an older minor keeps
 *   working with a newer library (the newer operations count as NULL),
 *   and one built for a newer minor works with an older library (which
 *   never calls what it does not know).  A module reads pebble_host
 *   fields only within host->struct_size.
 * - The loader checks the table before calling anything, and refuses
 *   (the selection or first use fails, pebble_last_error() names the
 *   file): with PEBBLE_EABI a different major, a struct_size too small
 *   for the mandatory operations, a NULL mandatory operation, or
 *   PEBBLE_CAP_PROCESSES claimed without the process operations; with
 *   PEBBLE_EBACKEND a file that does not load, lacks the entry point, or
 *   whose table names another backend.
 * - Mandatory: init, fork_generation, now_ns, the thread, mutex and
 *   condition operations, and the waitset.  Everything else may be NULL
 *   (the process ones only without PEBBLE_CAP_PROCESSES).
 * - This header needs C99 (<stdint.h>) and includes <pebble.h>.
 *
 * All times are nanoseconds on the backend's monotonic clock (now_ns);
 * PEBBLE_BK_FOREVER as a deadline means no deadline.
 * Every function returning int returns PEBBLE_OK or a PEBBLE_E* code.
 */
#ifndef PEBBLE_BACKEND_H
#define PEBBLE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <pebble.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEBBLE_BACKEND_ABI_MAJOR 1u
#define PEBBLE_BACKEND_ABI_MINOR 7u
#define PEBBLE_BK_FOREVER UINT64_MAX

/* Opaque objects, defined by each backend. */
typedef struct pebble_bk_thread pebble_bk_thread;
typedef struct pebble_bk_mutex pebble_bk_mutex;
typedef struct pebble_bk_cond pebble_bk_cond;
typedef struct pebble_bk_proc pebble_bk_proc;   /* parent's handle on a child */
typedef struct pebble_bk_chan pebble_bk_chan;   /* child's end of its channel */
typedef struct pebble_bk_waitset pebble_bk_waitset;
typedef struct pebble_bk_notifier pebble_bk_notifier;

struct pebble_backend;

/* What the core lends a backend at init. */
typedef struct pebble_host {
  size_t struct_size;
  /* Log a line through the application's hook (may be dropped). */
  void (*log)(int level, const char *fmt, ...) PEBBLE_PRINTF(2, 3);
  /* Shut the library down as pebble_shutdown() does, from a thread of the
   * application (a backend calls it when something it was tied to goes
   * away, such as an APR pool the application handed over).  May fail
   * with PEBBLE_EBUSY while the application still holds objects. */
  int (*shutdown)(void);
  /* In a worker the backend started without the core's help (a
   * forkserver's): serve tasks on chan as a spawned worker does, reading
   * its settings first.  Returns the exit status for the process. */
  int (*worker_serve)(const struct pebble_backend *bk, pebble_bk_chan *chan);
} pebble_host;

/* thread_create flags */
#define PEBBLE_BK_THREAD_INTERNAL 0x1u /* library thread: block all signals */

/*
 * Runs in the child process after the backend prepared it.  Returns the
 * exit status the backend passes to _exit().  The backend never returns
 * into the parent's code paths from the child.
 */
typedef int (*pebble_child_main_fn)(void *arg, pebble_bk_chan *chan);

/* How a child ended, filled by proc_reap. */
typedef struct pebble_bk_exit {
  int status_known; /* 0: already reaped by someone else, status lost */
  int exited;
  int exit_code;
  int signal;
  int core_dumped;
} pebble_bk_exit;

/* Waitset events */
#define PEBBLE_EV_READ 0x1u   /* channel has data or end-of-file */
#define PEBBLE_EV_WRITE 0x2u  /* channel can take more bytes */
#define PEBBLE_EV_EXIT 0x4u   /* the process has ended (not reaped yet) */

typedef struct pebble_wait_event {
  void *tag;       /* as given to waitset_watch */
  unsigned events; /* PEBBLE_EV_* that are ready */
} pebble_wait_event;

/* ABI 1.7: how a pool wants its spawned workers launched
 * (proc_spawn_launched).  Read only within struct_size. */
typedef struct pebble_bk_launch {
  size_t struct_size;
  /* The launcher's shell command line; NULL: the backend's own choice
   * (the POSIX backend's PEBBLE_LAUNCHER), or none. */
  const char *command;
  /* Whole seconds between heartbeats (1 to 3600); 0: the backend's
   * default (PEBBLE_LAUNCHER_HEARTBEAT, else 5). */
  long heartbeat_s;
  /* Whole seconds a launched worker may take to say its first word; 0:
   * no bound; -1: the backend's default (PEBBLE_LAUNCHER_START_TIMEOUT,
   * else 120). */
  long start_timeout_s;
} pebble_bk_launch;

typedef struct pebble_backend {
  /* --- metadata, in this order, in every ABI version --- */
  unsigned abi_major;
  unsigned abi_minor;
  size_t struct_size; /* sizeof(pebble_backend) the module was built with */
  const char *name;
  const char *description;
  unsigned caps; /* PEBBLE_CAP_* */

  /* --- life cycle --- */
  int (*init)(const pebble_host *host);
  void (*shutdown)(void);
  /* Bumped in the child of every fork of this process (atfork or the
   * platform's equivalent); the core compares it to refuse stale objects. */
  uint64_t (*fork_generation)(void);

  /* --- clock --- */
  uint64_t (*now_ns)(void);

  /* --- threads --- */
  /* Start fn(arg).  If the thread ends without fn returning (the task
   * called the platform's thread-exit), `unwound(arg)` runs instead. */
  int (*thread_create)(pebble_bk_thread **thread, void (*fn)(void *),
                       void (*unwound)(void *), void *arg, unsigned flags);
  /* Wait for the thread to end and free the handle. */
  int (*thread_join)(pebble_bk_thread *thread);
  /* A number identifying the calling thread. */
  uint64_t (*thread_self_id)(void);

  /* --- locks --- */
  int (*mutex_create)(pebble_bk_mutex **mutex);
  void (*mutex_destroy)(pebble_bk_mutex *mutex);
  void (*mutex_lock)(pebble_bk_mutex *mutex);
  void (*mutex_unlock)(pebble_bk_mutex *mutex);
  int (*cond_create)(pebble_bk_cond **cond);
  void (*cond_destroy)(pebble_bk_cond *cond);
  void (*cond_signal)(pebble_bk_cond *cond);
  void (*cond_broadcast)(pebble_bk_cond *cond);
  /* Wait until signalled or until the monotonic deadline: PEBBLE_OK (may
   * be spurious) or PEBBLE_ENOTREADY when the deadline passed. */
  int (*cond_wait)(pebble_bk_cond *cond, pebble_bk_mutex *mutex,
                   uint64_t deadline_ns);

  /* --- processes (NULL when caps lack PEBBLE_CAP_PROCESSES) --- */
  /*
   * Start a child that runs child_main(arg, chan) and ends with its
   * return value.  Before child_main the backend has, in the child, using
   * only async-signal-safe calls: put it in its own process group (also
   * from the parent), arranged for it to die with the parent, reset the
   * signal mask and handlers, closed every library descriptor but its own
   * channel, and given it /dev/null as standard input.
   * Must be called from one long-lived library thread (parent-death
   * signals follow the forking thread).  PEBBLE_ESYSTEM with errno kept
   * in *sys_errno when the system refuses.
   */
  int (*proc_start)(pebble_bk_proc **proc, pebble_child_main_fn child_main,
                    void *arg, int *sys_errno);
  long (*proc_pid)(const pebble_bk_proc *proc);
  /* Non-blocking channel I/O in the parent.  read: PEBBLE_OK with *done >
   * 0, PEBBLE_OK with *done == 0 at end-of-file, PEBBLE_ENOTREADY when
   * nothing is there.  write never raises SIGPIPE: PEBBLE_EDIED when the
   * child's end is gone. */
  int (*proc_read)(pebble_bk_proc *proc, void *buf, size_t len, size_t *done);
  int (*proc_write)(pebble_bk_proc *proc, const void *buf, size_t len,
                    size_t *done);
  /* Signal the child's group (or the child alone without
   * PEBBLE_CAP_KILL_GROUP): force = 0 asks it to end (SIGTERM), 1 kills.
   * Safe until proc_reap; a no-op afterwards. */
  int (*proc_kill)(pebble_bk_proc *proc, int force);
  /* After PEBBLE_EV_EXIT: kill what is left of the group, then reap the
   * child without blocking and fill *exit. */
  int (*proc_reap)(pebble_bk_proc *proc, pebble_bk_exit *exit);
  /* Close the handle.  A child not reaped yet is killed and reaped first
   * (this may block until it is gone). */
  void (*proc_destroy)(pebble_bk_proc *proc);

  /* --- the child's side of its channel (blocking) --- */
  int (*chan_write_all)(pebble_bk_chan *chan, const void *buf, size_t len);
  int (*chan_read_all)(pebble_bk_chan *chan, void *buf, size_t len);

  /* --- event waiting (one thread waits; any thread may wake it) --- */
  int (*waitset_create)(pebble_bk_waitset **ws);
  void (*waitset_destroy)(pebble_bk_waitset *ws);
  /* Watch proc for `events` (replaces an earlier watch; 0 removes it).
   * Only the first watch of a process may fail (PEBBLE_ENOMEM): it makes
   * room for everything waitset_wait needs, which allocates nothing. */
  int (*waitset_watch)(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                       unsigned events, void *tag);
  /* Make a waiting waitset_wait return early (async from any thread). */
  void (*waitset_wake)(pebble_bk_waitset *ws);
  /* Wait until something is ready, a wake, or the deadline.  Fills up to
   * cap events; *count may be 0 (woken or deadline). */
  int (*waitset_wait)(pebble_bk_waitset *ws, uint64_t deadline_ns,
                      pebble_wait_event *events, size_t cap, size_t *count);

  /* --- notifier (optional): an OS handle an application's event loop
   * can watch; readable while set, level-triggered --- */
  int (*notifier_create)(pebble_bk_notifier **n);
  void (*notifier_destroy)(pebble_bk_notifier *n);
  /* A file descriptor on POSIX, a HANDLE on Windows. */
  intptr_t (*notifier_handle)(pebble_bk_notifier *n);
  void (*notifier_set)(pebble_bk_notifier *n);   /* idempotent */
  void (*notifier_clear)(pebble_bk_notifier *n); /* idempotent */

  /* --- spawn start method (optional; caps PEBBLE_CAP_SPAWN) ---
   * Start `program` (NULL: the running program itself) as a worker: the
   * backend creates the channel, passes the child's end to the new
   * program through the environment variable PEBBLE_WORKER_CHANNEL (in a
   * form of its own: descriptor numbers on POSIX, handle values on
   * Windows; the only inherited library handles), sets
   * PEBBLE_WORKER_BACKEND to its own name so the worker loads the backend
   * that understands that form, and prepares the child as proc_start does
   * (own process group, parent-death, signals reset, stdin /dev/null).
   * argv[0] of the new program is `argv0` (NULL: the program's path).
   * Same contract as proc_start otherwise; must be called from the same
   * long-lived library thread. */
  int (*proc_spawn)(pebble_bk_proc **proc, const char *program,
                    const char *argv0, int *sys_errno);
  /* In a spawned worker: turn PEBBLE_WORKER_CHANNEL into a channel and
   * remove both variables from the environment, so the worker's own
   * children are ordinary programs.  PEBBLE_ENOTFOUND if this process was
   * not spawned as a worker. */
  int (*chan_adopt)(pebble_bk_chan **chan);

  /* --- ABI 1.1 --- */
  /* A setting of the backend's own, passed by the application with
   * pebble_backend_configure() before the backend starts (init not yet
   * called, or called again after a shutdown).  PEBBLE_ENOTSUP for a key
   * the backend does not know, PEBBLE_EINVAL for a bad value.  May be
   * NULL when the backend has no settings. */
  int (*configure)(const char *key, void *value);

  /* --- forkserver start method (ABI 1.2; optional, with caps
   * PEBBLE_CAP_FORKSERVER) ---
   * Start a worker through a single-threaded server process forked once,
   * the first time this is called (or earlier: proc == NULL only makes
   * sure the server runs).  The worker is prepared as by proc_start and
   * then runs the host's worker_serve, like a spawned worker.  It runs
   * with the caller's user and group ids, supplementary groups and
   * resource limits as they are at the call, and a fork the system would
   * refuse the caller is refused (PEBBLE_ESYSTEM and the errno).  A
   * server that has ended is reported (log) and refused with
   * PEBBLE_ESYSTEM/EPIPE until shutdown, never restarted silently.  Same
   * contract as proc_start otherwise; called from the same long-lived
   * library thread, except the proc == NULL form, which the core calls
   * at initialisation before it starts any thread. */
  int (*proc_forkserver)(pebble_bk_proc **proc, int *sys_errno);

  /* --- also ABI 1.2 --- */
  /* The child's side, optional: wait for at least one byte and read up
   * to len (*done > 0), so a worker can take a message's header and
   * payload, or several messages, in one read.  PEBBLE_EDIED when the
   * parent's end is closed.  NULL: the core reads with chan_read_all. */
  int (*chan_read)(pebble_bk_chan *chan, void *buf, size_t len,
                   size_t *done);

  /* --- ABI 1.3: handing an open descriptor to the parent (optional) ---
   * Large results travel as a sealed memory file rather than through the
   * channel.  The child's side: send len bytes of buf (a message header)
   * with a duplicate of `handle` attached to them; the child may close
   * its own handle on return.  PEBBLE_EDIED when the parent's end is
   * closed.  The parent's side: proc_read keeps descriptors that arrive
   * with the bytes it reads, in order (a few; more are closed), and
   * proc_take_handle gives the oldest to the caller, who then owns it;
   * PEBBLE_ENOTFOUND when none came.  proc_destroy closes any left.
   * Both NULL, or a struct older than 1.3: results go through the
   * channel. */
  int (*chan_send_handle)(pebble_bk_chan *chan, const void *buf, size_t len,
                          intptr_t handle);
  int (*proc_take_handle)(pebble_bk_proc *proc, intptr_t *handle);

  /* --- ABI 1.4: the child's side, optional: read up to len bytes that
   * are already there, without waiting.  PEBBLE_OK with *done > 0;
   * PEBBLE_ENOTREADY with *done == 0 when nothing is there; PEBBLE_EDIED
   * when the parent's end is closed.  A pool sends tasks ahead to a busy
   * worker only with it: before starting such a task the worker reads
   * what came after it, to honour a request to skip it.  NULL: one task
   * at a time. */
  int (*chan_read_ready)(pebble_bk_chan *chan, void *buf, size_t len,
                         size_t *done);

  /* --- ABI 1.5: fork of the application (optional, each may be NULL) ---
   * The core calls these from its own fork handlers while the backend is
   * running: fork_prepare in the forking thread after the core took its
   * own locks (so a lock taken here always comes after the core's),
   * fork_parent and fork_child after the fork, before the core lets go
   * of its locks.  Async-signal-safe work only in fork_child.  A backend
   * uses them to keep a fork from splitting one of its operations, e.g.
   * a descriptor opened but its bookkeeping not yet written: the kernel
   * copies the descriptor table before the memory, so a child could
   * otherwise inherit bookkeeping for a descriptor it does not have. */
  void (*fork_prepare)(void);
  void (*fork_parent)(void);
  void (*fork_child)(void);

  /* --- ABI 1.6: workers started through a launcher (optional) ---
   * A spawned worker may run on another host, started by a launcher
   * command (ssh, srun, mpirun) whose own exit says little about it.
   * For such a process: PEBBLE_OK with the name of the host it ran on and
   * its process id there, once its remote supervisor reported its end
   * (proc_reap then gives that end, not the launcher's); PEBBLE_ENOTREADY
   * when no report came (the launcher or its connection failed first);
   * PEBBLE_ETIMEDOUT when none came because the backend killed the
   * launcher after its link stayed silent past the heartbeats' bound;
   * with these two, host and pid still name the worker when its
   * supervisor said where it runs before the end (host is empty when it
   * did not).  PEBBLE_ENOTSUP for a process of this host.  NULL: every process is of
   * this host. */
  int (*proc_remote)(pebble_bk_proc *proc, char *host, size_t host_size,
                     long *pid);

  /* --- ABI 1.7: a launcher chosen per pool (optional) ---
   * As proc_spawn, with the launcher and its bounds given by the caller
   * (a pool's options) rather than taken from the environment alone:
   * `launch` says which (see pebble_bk_launch; NULL: as proc_spawn).
   * The backend copies what it keeps; the strings need live only for the
   * call.  PEBBLE_EINVAL for a launch it cannot use (e.g. a worker
   * program whose path a remote shell would change).  NULL: the core
   * refuses a pool with a launcher with PEBBLE_ENOTSUP. */
  int (*proc_spawn_launched)(pebble_bk_proc **proc, const char *program,
                             const char *argv0,
                             const pebble_bk_launch *launch, int *sys_errno);
} pebble_backend;

/* The one symbol a backend module exports: pebble_backend_<name>_get. */
typedef const pebble_backend *(*pebble_backend_get_fn)(void);

/*
 * Define a backend's entry point with PEBBLE_BACKEND_ENTRY(name) { ... }.
 * Built as a module it is the exported pebble_backend_<name>_get; built
 * into libpebble (PEBBLE_BACKEND_BUILTIN defined) it is the hidden
 * pebble__backend_<name>_get, so the library exports only its API.
 */
#ifdef PEBBLE_BACKEND_BUILTIN
#define PEBBLE_BACKEND_ENTRY(name)                                           \
  const pebble_backend *pebble__backend_##name##_get(void)
#elif defined(_WIN32)
/* A module DLL exports its entry point (PEBBLE_API would import it).  The
 * declaration first keeps -Wmissing-prototypes quiet in a module. */
#define PEBBLE_BACKEND_ENTRY(name)                                           \
  __declspec(dllexport) const pebble_backend *pebble_backend_##name##_get(   \
      void);                                                                 \
  __declspec(dllexport) const pebble_backend *pebble_backend_##name##_get(void)
#else
#define PEBBLE_BACKEND_ENTRY(name)                                           \
  PEBBLE_API const pebble_backend *pebble_backend_##name##_get(void);        \
  PEBBLE_API const pebble_backend *pebble_backend_##name##_get(void)
#endif

#ifdef __cplusplus
}
#endif

#endif /* PEBBLE_BACKEND_H */
