/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h -- shared by the files of the backend-independent core.
 *
 * Map of the core:
 *   library.c   library state, lazy init, shutdown, backend selection
 *   loader.c    finding, loading and checking backend modules
 *   future.c    the task/result store: futures, states, waiting, callbacks
 *   dispatch.c  the callback thread
 *   manager.c   the supervising thread: one event loop over processes,
 *               deadlines and commands
 *   job.c       one-shot tasks: a thread task's life, a process task's
 *               child, and what the manager does for them
 *   message.c   the worker message format
 *   channel.c   reading and sending worker messages
 *   task.c      launching: pebble_run, task definitions
 *   ctx.c       what a task sees: results, failures, cooperative stop
 *   registry.c  named tasks
 *   values.c    helpers for int, double and string values
 *   status.c    status codes and per-thread error messages
 *   log.c       the logging hook
 *   platform.c  the few things needed before any backend exists
 */
#ifndef PEBBLE_INTERNAL_H
#define PEBBLE_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pebble.h"
#include "pebble_backend.h"

#if defined(_MSC_VER)
#define PB_TLS __declspec(thread)
#else
#define PB_TLS _Thread_local
#endif

#ifdef _WIN32
#define PB_DEFAULT_BACKEND "apr" /* the only backend there, built in */
/* The directory of the module (DLL or program) that holds libpebble,
 * joined with rel; fallback when the system cannot say. */
const char *pb_library_relative_dir(const char *rel, const char *fallback);
#else
#define PB_DEFAULT_BACKEND "posix"
#endif
/* A system error code in words: strerror, or on Windows (where the codes
 * are GetLastError's) the system's own text, from FormatMessage. */
const char *pb_sys_strerror(int err);
/* "was killed by signal 11 (SIGSEGV)", or on Windows, for an exception's
 * code, "crashed: access violation (0xC0000005)" (crash.c). */
void pb_crash_phrase(char *buf, size_t size, int sig);
#ifdef _WIN32
/* "access violation" for 0xC0000005; NULL when not an exception's code. */
const char *pb_exception_name(int code);
#endif
#define PB_STRIPES 32
#define PB_MESSAGE_MAX 1024 /* task failure messages, with the NUL */

typedef struct pb_lib pb_lib;
typedef struct pb_job pb_job;
typedef struct pb_manager pb_manager;
typedef struct pb_dispatch pb_dispatch;
typedef struct pb_binding pb_binding;

/* What runs a future's task: lets cancel stop it (a one-shot job, a pool
 * task).  cancel_locked runs with the future's stripe lock held. */
struct pb_runner;
typedef struct pb_runner_ops {
  void (*cancel_locked)(struct pb_runner *runner);
  /* Optional: called once by whoever resolves the future, before any
   * waiter can see the outcome (no lock held). */
  void (*settled)(struct pb_runner *runner);
  /* Optional: a cancel is about to resolve the running task's future
   * (stripe lock held).  1: the task has ended already and its outcome is
   * on its way: the cancel leaves the future to it.  0: the cancel goes
   * on (and whatever must stop the task may be done here already). */
  int (*ended_locked)(struct pb_runner *runner);
} pb_runner_ops;
/* One pointer to shared operations: it sits in every pool task. */
typedef struct pb_runner {
  const pb_runner_ops *ops;
} pb_runner;

/* ---- status.c ---- */
/* Record a message for pebble_last_error() and return code. */
int pb_error(int code, const char *fmt, ...) PEBBLE_PRINTF(2, 3);

/* ---- log.c ---- */
void pb_log(int level, const char *fmt, ...) PEBBLE_PRINTF(2, 3);
/* Would a line of that level go anywhere?  For lines that cost work. */
int pb_log_wants(int level);
/* "task 'name' (future 7)" or "task of future 7", in buf, for logs. */
#define PB_LABEL_MAX 112
const char *pb_task_label(const pebble_future *f, char *buf, size_t len);

/* ---- platform.c ---- */
enum pb_static_lock { PB_LOCK_BOOT, PB_LOCK_LOG, PB_LOCK_REGISTRY, PB_LOCK_COUNT };
void pb_static_lock(enum pb_static_lock which);
void pb_static_unlock(enum pb_static_lock which);
/* The running backend's fork hooks (ABI 1.5), called by the core's fork
 * handlers after they took the static locks; set and cleared with
 * PB_LOCK_BOOT held.  Any of them may be NULL. */
void pb_fork_hooks_set(void (*prepare)(void), void (*parent)(void),
                       void (*child)(void));
/* getenv that returns NULL in setuid/setgid programs. */
const char *pb_secure_getenv(const char *name);
int pb_file_exists(const char *path);
/* Call fn for each entry name of dir; returns PEBBLE_ENOTFOUND if the
 * directory cannot be opened. */
int pb_dir_each(const char *dir, void (*fn)(const char *name, void *user),
                void *user);
void *pb_dl_open(const char *path, char *err, size_t errlen);
void *pb_dl_sym(void *handle, const char *symbol);
const char *pb_module_ext(void);
unsigned pb_online_cpus(void);
/* Bytes of physical memory; SIZE_MAX where the system does not say. */
size_t pb_physical_memory(void);
/* Fault in the pages of a large block about to be filled (best effort). */
void pb_prefault(void *p, size_t size);

/* ---- worker_page.c: what a process worker runs, shared with its pool ----
 * run: 0 at first, then (ordinal << 2 | 1) while the worker runs the task
 * the pool numbered so, (ordinal << 2 | 2) once it returned, or all ones
 * once the pool claimed the worker to kill it. */
#define PB_RING_BYTES ((size_t)64 << 10)
typedef struct pb_worker_page {
  atomic_ullong run;
  atomic_uint skip_epoch; /* bumped by the pool after it writes a SKIP */
  /* The outcome ring (worker_page.c): the worker's small messages, in
   * order, instead of a write each to its channel.  Written by the pool:
   * bytes it took from the ring, messages it took from the channel, and
   * whether it wants a NUDGE on the channel for the next message put in
   * the ring (it stopped looking).  `waiter`: bit 0 set while a thread
   * waiting for one of this worker's futures sleeps on this word (then the
   * worker wakes it instead of nudging the pool); the bits above count
   * wake-ups, so that a sleeper never misses one (worker_page.c). */
  _Alignas(64) atomic_ullong ring_head;
  atomic_ullong chan_taken;
  atomic_uint want_nudge;
  atomic_uint waiter;
  /* Written by the worker: bytes it put in the ring; bytes of its own
   * messages (but nudges) it wrote on its channel since it took the page,
   * each message counted before it is written, so that the pool knows
   * bytes beyond that count for not the worker's (channel.c). */
  _Alignas(64) atomic_ullong ring_tail;
  atomic_ullong chan_bytes;
  _Alignas(64) unsigned char ring[PB_RING_BYTES];
} pb_worker_page;
/* Pool side: a page a forked worker inherits; NULL where there is none. */
pb_worker_page *pb_page_new_inherited(void);
void pb_page_free(pb_worker_page *page);
/* Worker side: a page in a sealed memory file, to send to the pool. */
int pb_page_create_file(intptr_t *handle, pb_worker_page **page);
/* Pool side: map the page a worker sent (always closes the handle). */
int pb_page_map_file(intptr_t handle, pb_worker_page **page, char *why,
                     size_t whylen);
/* Worker: about to start task `ordinal`; 0 if the pool claimed the worker
 * (start nothing, wait to be killed). */
int pb_page_begin(pb_worker_page *page, uint64_t ordinal);
/* Worker: task `ordinal` returned. */
void pb_page_end(pb_worker_page *page, uint64_t ordinal);
/* Pool: may the worker be killed to stop task `ordinal`?  1: claimed, the
 * worker starts nothing more; 0: the task has ended. */
int pb_page_claim(pb_worker_page *page, uint64_t ordinal);
/* Pool, once the worker is dead: did it start task `ordinal` (or a later
 * one), or was it claimed?  0: it died before it began that task. */
int pb_page_began(pb_worker_page *page, uint64_t ordinal);
atomic_uint *pb_page_skip_epoch(pb_worker_page *page); /* NULL: no page */
/* Worker: the outcome ring of `page` carries this process's messages on
 * `chan` from now on; `chan_sent`: messages it sent on the channel before
 * (the pool counts them as it takes them).  NULL page: none. */
void pb_ring_use(pb_worker_page *page, pebble_bk_chan *chan,
                 uint64_t chan_sent);
/* Worker: send n bytes holding `msgs` whole messages on chan, through the
 * ring when it has room and the pool has taken every message sent on the
 * channel before (so that the two keep their order), else on the channel.
 * `handle`: the first message carries a descriptor (the channel only,
 * through chan_send_handle; -1: none).  PEBBLE_OK or PEBBLE_EDIED. */
int pb_ring_send(const pebble_backend *bk, pebble_bk_chan *chan,
                 const void *buf, size_t n, unsigned msgs, intptr_t handle);
/* Worker: msgs more messages, of n bytes in all, go on chan, not through
 * pb_ring_send. */
void pb_ring_note_chan(pebble_bk_chan *chan, unsigned msgs, size_t n);
/* Pool: copy up to len bytes the worker put in the ring to dst; *got 0
 * when it is empty.  PEBBLE_EPROTO if the worker's count is impossible. */
int pb_ring_read(pb_worker_page *page, void *dst, size_t len, size_t *got);
/* Pool: the worker has put bytes in the ring that the pool did not take. */
int pb_ring_pending(pb_worker_page *page);
/* A thread waiting for a worker's future sleeps on its page (Linux, a
 * futex word in shared memory): 0 where the system has no such wait.
 * pb_page_waiter_arm says a waiter sleeps (the worker's next message
 * wakes it) and returns the value to sleep on; pb_page_waiter_disarm,
 * once no waiter does; pb_page_sleep returns when the word is not `seen`
 * any more, when woken, or after ns nanoseconds (UINT64_MAX: no limit);
 * pb_page_wake wakes every sleeper. */
int pb_page_can_sleep(void);
/* A thread asleep on a page for future f, listed on f's stripe so that
 * whoever settles f wakes it there (future.c; stripe lock). */
typedef struct pb_page_waiter {
  const struct pebble_future *f;
  pb_worker_page *page;
  struct pb_page_waiter *next;
} pb_page_waiter;
unsigned pb_page_waiter_arm(pb_worker_page *page);
void pb_page_waiter_disarm(pb_worker_page *page);
void pb_page_sleep(pb_worker_page *page, unsigned seen, uint64_t ns);
void pb_page_wake(pb_worker_page *page);

/* ---- shared_result.c: large process results as sealed memory files ----
 * len counts the result's trailing NUL.  pb_shared_map always closes the
 * handle; on failure it says why. */
#define PB_SHARED_RESULT_MIN ((size_t)1 << 20)
int pb_shared_create(size_t len, intptr_t *handle, void **addr);
int pb_shared_seal(intptr_t handle);
int pb_shared_map(intptr_t handle, size_t len, void **addr, char *why,
                  size_t whylen);
void pb_shared_unmap(void *addr, size_t len);
void pb_shared_close(intptr_t handle);
/* Free a result of `size` bytes (NUL after): mapped, or malloc'd. */
void pb_result_free(void *result, size_t size, int mapped);
/* Whether a backend's struct has an optional operation, and sets it. */
#define PB_BK_HAS(bk, op)                                                    \
  ((bk)->struct_size >= offsetof(pebble_backend, op) + sizeof(bk)->op &&     \
   (bk)->op != NULL)
const char *pb_path_list_separator(void);

/* ---- loader.c ---- */
typedef struct pb_backend_ref {
  const pebble_backend *bk;
  const char *path; /* NULL when built in; owned by the loader cache */
} pb_backend_ref;
/* Resolve a backend name: PEBBLE_BACKEND_PATH, built-ins, install dir. */
int pb_backend_resolve(const char *name, pb_backend_ref *out);
/* Check a table before any use; fills a message naming `where`. */
int pb_backend_check(const pebble_backend *bk, const char *where,
                     const char *want_name);
const pebble_backend *pb_builtin_backend(const char *name);
/* Names of every backend that could be selected, comma separated. */
void pb_backend_names(char *buf, size_t len);

/* ---- map.c ---- */
/* The task each map chunk runs (the registry's "pebble.map_chunk"). */
int pb_map_chunk(pebble_ctx *ctx, const void *arg, size_t arg_size);

/* ---- blocks.c: pool tasks' blocks, carved from chunks and reused ---- */
/* A future, its pool task and a small argument; blocks lie back to back
 * in chunks (64 KiB, then 8 MiB), each after its chunk's address
 * (blocks.c). */
#define PB_BLOCK_SIZE 176
typedef struct pb_chunk pb_chunk;
typedef struct pb_blocks {
  pebble_bk_mutex *lock;
  /* Lock held: the chunk blocks are taken from while it has any, then
   * the chunks that were given blocks back, in turn. */
  pb_chunk *current, *ready;
  /* Chunks given blocks back without the lock since (each once), taken
   * over whole into `ready` by the lock's holder. */
  pb_chunk *_Atomic given_back;
  /* Blocks ever given back; in_use is settled with it as far as
   * `settled` (lock held). */
  atomic_size_t returned;
  size_t settled;
  pb_chunk *chunk_list;   /* every chunk held */
  pb_chunk *carving;      /* the newest chunk, while some of it is uncut */
  char *carve, *carve_end; /* its blocks never handed out */
  size_t chunks;          /* in chunk_list */
  size_t capacity;        /* blocks they hold in all */
  size_t in_use; /* handed out, less the returns settled so far */
  size_t peak;   /* most in use at once, lately */
  uint64_t peak_at; /* when the peak was last looked at (0: not yet) */
  /* The huge pages of the big chunk being cut (`carving`), faulted in
   * ahead of the cutting by threads with nothing else to do
   * (pb_blocks_prefault): the next to fault in, NULL when none is left
   * (lock held), the threads faulting pages in (lock held: while there
   * are any, no chunk is given back), and whether a look is worth the
   * lock. */
  char *fault_next;
  unsigned prefaulters;
  atomic_int fault_wanted;
  /* The big chunk to cut next, made by such a thread once the last huge
   * page of `carving` is being cut, and the next of its huge pages to
   * fault in (lock held); `reserving`: one is being made. */
  pb_chunk *next_chunk;
  char *next_fault;
  int reserving;
} pb_blocks;
int pb_blocks_init(pb_blocks *b, const pebble_backend *bk);
void pb_blocks_destroy(pb_blocks *b, const pebble_backend *bk);
/* A block of PB_BLOCK_SIZE bytes (not zeroed), or NULL. */
void *pb_blocks_get(pb_blocks *b, const pebble_backend *bk);
/* Up to n blocks under one lock (a new chunk only when none is spare):
 * their count, 0 when there is no memory. */
size_t pb_blocks_get_some(pb_blocks *b, const pebble_backend *bk, void **out,
                          size_t n);
void pb_blocks_put(pb_blocks *b, const pebble_backend *bk, void *block);
/* Give back every chunk with no block in use (a pool was destroyed). */
void pb_blocks_trim(pb_blocks *b, const pebble_backend *bk);
/* From a thread with nothing else to do: faults in the next huge page of
 * the chunk blocks are being cut from, or makes the chunk to cut next or
 * faults in one of its pages; 1 if it did something. */
int pb_blocks_prefault(pb_blocks *b, const pebble_backend *bk);

/* ---- library.c ---- */
/* Does a process task or pool with this start method get workers that
 * find tasks by name (spawn or forkserver), rather than forked copies? */
int pb_lib_spawns(const struct pb_lib *L, int start_method);
/* "fork", "spawn", "forkserver" (for messages). */
const char *pb_start_method_name(int start_method);
/* The start method PEBBLE_START_DEFAULT stands for, resolved. */
int pb_lib_method(const struct pb_lib *L, int start_method);
/* Its name, resolved the same way (for messages). */
const char *pb_lib_method_name(const struct pb_lib *L, int start_method);
/* Can this backend start workers that way? */
int pb_backend_can(const pebble_backend *bk, int start_method);
/* Start a worker that finds tasks by name: spawned (program, NULL for
 * this one) or from the forkserver, as the method says. */
int pb_start_named_worker(struct pb_lib *L, int start_method,
                          const char *program, pebble_bk_proc **proc,
                          int *sys_errno);
/* The same, spawned through the launcher `launch` says (a pool's
 * options; NULL: as pb_start_named_worker).  The backend must have
 * proc_spawn_launched (checked when the pool was made). */
int pb_start_launched_worker(struct pb_lib *L, int start_method,
                             const char *program,
                             const pebble_bk_launch *launch,
                             pebble_bk_proc **proc, int *sys_errno);
/* The host's worker_serve (worker.c). */
int pb_worker_serve_configured(const pebble_backend *bk, pebble_bk_chan *chan);
/* Space between groups of fields that different threads write, so that
 * one thread's writes do not take another's cache line from it. */
#define PB_LINE_GAP 64

struct pb_lib {
  /* Read by every thread for every task, written at start only (but a
   * stripe's page_waiters, written under its lock for each wait on a
   * worker's page: kept here, beside its lock, as moving it apart measured
   * no different). */
  const pebble_backend *bk;
  const char *backend_path;
  int default_method;      /* what PEBBLE_START_DEFAULT means here */
  uint64_t gen;            /* backend fork generation at init */
  pebble_bk_cond *drained;
  struct {
    pebble_bk_mutex *mutex;
    pebble_bk_cond *cond;
    /* Threads that wait for one of the stripe's futures on a worker's
     * page instead of on cond (pool_processes.c); the stripe's lock. */
    struct pb_page_waiter *page_waiters;
  } stripes[PB_STRIPES];
  pebble_bk_mutex *lock;   /* guards starting the manager and dispatcher */
  pb_manager *_Atomic manager;
  pb_dispatch *_Atomic dispatch;
  char gap_counters[PB_LINE_GAP];

  /* Written for every future made or released: kept off the cache lines
   * of the fields above, which every thread reads for every task. */
  atomic_long live;        /* futures the application holds, and task
                              definitions */
  atomic_long running;     /* tasks whose code may still be running */
  /* One-shot tasks whose future has not resolved or whose callbacks have
   * not all run yet: pebble_shutdown() waits for them (drained, on lock). */
  atomic_long tasks_open;
  atomic_int drain_waiters;
  atomic_uint_fast64_t next_id;
  char gap_blocks[PB_LINE_GAP];

  pb_blocks blocks;
  char gap_end[PB_LINE_GAP];
  char backend_reason[96];
};

/* The library state, initialised on first use.  PEBBLE_OK or an error
 * with a message already recorded. */
int pb_lib_get(pb_lib **lib);
/* PEBBLE_EFORKED if `lib` and `gen` belong to the parent of a fork. */
int pb_lib_check(const pb_lib *lib, uint64_t gen);
/* PEBBLE_EFORKED, with its message. */
int pb_forked_error(void);
void pb_lib_hold(pb_lib *lib);
void pb_lib_drop(pb_lib *lib);
/* A one-shot task opens (its future counts until its callbacks ran, see
 * pb_future_track) and is over. */
void pb_lib_task_open(pb_lib *lib);
void pb_lib_task_done(pb_lib *lib);
pb_manager *pb_lib_manager(pb_lib *lib);
pb_dispatch *pb_lib_dispatch(pb_lib *lib);

/* Per-thread flags used to refuse calls that would deadlock. */
typedef struct pb_thread_role {
  const pebble_future *running_future; /* thread task running here */
  int callbacks;                       /* depth of callbacks running here */
  const void *pool;                    /* pool whose worker thread this is */
  const void *callback_owner;          /* pool of the future whose
                                          callbacks run here */
  int library_thread;                  /* manager or dispatcher */
  int manager_thread;                  /* the manager itself */
  /* While set, futures this thread settles wake their waiters only at
   * pb_future_flush_wakes (the stripes to wake, and their library). */
  int defer_wakes;
  uint32_t wake_stripes;
  struct pb_lib *wake_lib;
} pb_thread_role;
/* Read on every task's path: in the static TLS block (initial-exec), a
 * load from the thread pointer instead of a __tls_get_addr call.  glibc
 * keeps room there for libraries loaded later with dlopen. */
#if defined(__ELF__) && defined(__GNUC__)
#define PB_TLS_FAST __attribute__((tls_model("initial-exec")))
#else
#define PB_TLS_FAST
#endif
extern PB_TLS pb_thread_role pb_role PB_TLS_FAST;

/* ---- future.c ---- */
typedef struct pb_callback {
  pebble_callback_fn fn;
  void *user_data;
  struct pb_callback *next;
} pb_callback;

/* A callback with its user data, shared by launches of a definition. */
struct pb_binding {
  atomic_int refs;
  pebble_callback_fn fn;
  void *user_data;
  void (*destroy)(void *user_data);
};
pb_binding *pb_binding_new(pebble_callback_fn fn, void *user_data,
                           void (*destroy)(void *));
pb_binding *pb_binding_ref(pb_binding *b);
void pb_binding_unref(pb_binding *b);

#define PB_STATE_SETTLING 5 /* internal: a resolver won, fields being set */

/* What few futures need, out of line so that a pool task's block stays
 * small (future.c): created when first needed, never moved, freed with
 * the future. */
typedef struct pb_future_rare {
  char *name;
  uint64_t seq;
  char *message; /* written once by the resolver */
  /* Guarded by the stripe lock. */
  pb_binding *binding;
  pb_callback *callbacks;
  pebble_exit_info *exit; /* only once a process ended */
} pb_future_rare;

struct pebble_future {
  pb_lib *lib;
  /* The fork generation's low 32 bits (pb_future_forked): a child would
   * need 2^32 forks to mistake a parent's future for its own. */
  uint32_t gen;
  atomic_int refs;      /* all references */
  uint64_t id;
  atomic_int user_refs; /* those the application holds */
  atomic_int state;
  /* Outcome, written once by the resolver before the final state. */
  int status;
  int task_code;
  int sys_errno;
  atomic_uchar watched; /* a waiter or callback may be on the stripe */
  /* Callbacks attached before it resolved have not all run yet: waits
   * from application threads go on until they have (future.c). */
  atomic_uchar callbacks_pending;
  /* The small fields together: a future, its pool task and a small
   * argument fit one PB_BLOCK_SIZE block (blocks.c). */
  unsigned char tracked; /* counts in the library's tasks_open until its
                            callbacks ran */
  unsigned char in_block;      /* allocated by pb_blocks (a pool task's) */
  unsigned char process;       /* runs in another process: waiters sleep */
  /* Stripe lock: the cancel of a task sent ahead to a process worker
   * waits until the worker's skip request is written (pool_processes.c). */
  unsigned char skip_wait;
  /* The outcome's details share a byte: settle writes them all, in the
   * SETTLING state, and they are read only once the state is final. */
  unsigned char ran : 1;           /* it was RUNNING when it resolved */
  unsigned char result_mapped : 1; /* result is a mapping (shared_result.c) */
  unsigned char result_type : 2;   /* enum pb_value_type */
  /* result lies in the future's own allocation (a pool task's small
   * result, copied where its argument was: pb_ptask_keep_result) */
  unsigned char result_inline : 1;
  /* Written under the stripe lock: a process runs or holds the task, and
   * whether it ends for the task (its end then recorded in rare->exit) is
   * not settled yet; pebble_future_wait_exit() waits while it is set.  A
   * byte of its own: settle writes the bits above without the lock. */
  atomic_uchar exit_due;
  /* The process that started the task (pebble_future_pid), 0 until then;
   * stripe lock.  In the future rather than its rare fields: it is set
   * where no error can be returned, and so needs no allocation at
   * schedule. */
  int32_t pid;
  const void *owner; /* the pool that runs it, or NULL */
  void *result;
  size_t result_size;
  /* While the task is in flight.  Written under the stripe lock; a
   * resolver other than cancel clears it as it settles, so whoever frees
   * the task can see without the lock that nobody will use it again. */
  pb_runner *_Atomic runner;
  /* Name, sequence number, message, callbacks, process details: NULL
   * until one of them is set (pb_future_rare_get). */
  pb_future_rare *_Atomic rare;
};
/* f's rare fields, created if need be (NULL only when out of memory);
 * safe from any thread. */
pb_future_rare *pb_future_rare_get(pebble_future *f);
/* Stripe lock held: a process now runs or holds f's task; until
 * pb_future_exit_over_locked, pebble_future_wait_exit() waits. */
void pb_future_exit_due_locked(pebble_future *f);
/* Stripe lock held: no process end beyond what f records is to come
 * (clears exit_due and wakes pebble_future_wait_exit). */
void pb_future_exit_over_locked(pebble_future *f);
/* Its rare fields if it has them, else NULL. */
#define pb_future_rare_of(f)                                                 \
  atomic_load_explicit(&(f)->rare, memory_order_acquire)
uint64_t pb_future_seq_of(const pebble_future *f);
const char *pb_future_name_of(const pebble_future *f);

/* The future's size rounded up so that what follows it is aligned. */
#define PB_FUTURE_SPAN ((sizeof(pebble_future) + 15) & ~(size_t)15)
/* Created in the parent of a fork (this process is its child)? */
#define pb_future_forked(f)                                                  \
  ((uint32_t)(f)->lib->bk->fork_generation() != (f)->gen)

/* Futures share PB_STRIPES lock/condition pairs, chosen by id. */
#define PB_STRIPE(f) ((unsigned)((f)->id % PB_STRIPES))

/* What made a result, so that the typed getters (values.c) can refuse a
 * result of another type.  Travels in a RESULT message's code. */
enum pb_value_type {
  PB_VALUE_BYTES = 0, /* pebble_result_set / pebble_result_alloc */
  PB_VALUE_INT = 1,
  PB_VALUE_DOUBLE = 2,
  PB_VALUE_STRING = 3
};
#define PB_VALUE_TYPE_MAX PB_VALUE_STRING /* fits pebble_future.result_type */

typedef struct pb_outcome {
  int state;       /* PEBBLE_DONE, PEBBLE_FAILED or PEBBLE_CANCELLED */
  int status;
  int in_block;      /* allocated by pb_blocks (a pool task's future) */
  void *result;    /* taken over by the future (malloc'd, NUL after) */
  size_t result_size;
  int result_mapped; /* result is a mapped memory file (shared_result.c) */
  int result_type;   /* enum pb_value_type */
  int result_inline; /* result lies in the future's own allocation */
  /* result lies in the task's ctx or a channel reader, and is copied
   * (pb_ptask_keep_result, pb_outcome_own) before either is reused */
  int result_borrowed;
  char *message;   /* taken over (malloc'd) or NULL */
  int task_code;
  int sys_errno;
} pb_outcome;

/* A new future with one internal reference (see pb_future_put). */
int pb_future_new(pb_lib *lib, const char *name, uint64_t seq,
                  pb_binding *binding, pebble_future **out);
/* The same, with `extra` zeroed bytes after the future in the same block
 * (*extra_out, 16-byte aligned), freed with it: a pool task lives there
 * so that scheduling allocates once. */
int pb_future_new_extra(pb_lib *lib, const char *name, uint64_t seq,
                        pb_binding *binding, size_t extra,
                        pebble_future **out, void **extra_out);
/* The same in `block` (one of lib->blocks', or NULL: one is taken), with
 * `id` (0: the next of the library's).  The block is the future's, or
 * given back when the future cannot be made or does not fit it. */
int pb_future_new_in(pb_lib *lib, void *block, uint64_t id, const char *name,
                     uint64_t seq, pb_binding *binding, size_t extra,
                     pebble_future **out, void **extra_out);
/* Count f in the library's open tasks until it resolved and its
 * callbacks ran (before the task can resolve it); pb_future_untrack
 * undoes it for a task that never started. */
void pb_future_track(pebble_future *f);
void pb_future_untrack(pebble_future *f);
/* Internal references: they do not keep pebble_shutdown() waiting. */
void pb_future_hold(pebble_future *f);
/* The caller's reference to a future no other thread has seen yet. */
void pb_future_ref_new(pebble_future *f);
void pb_future_put(pebble_future *f);
/* PENDING -> RUNNING; 0 if the future was resolved meanwhile. */
int pb_future_start(pebble_future *f);
/* Resolve once.  Returns 1 if this call won (the outcome's buffers are
 * then owned by the future), 0 if the future was already resolved (the
 * caller still owns them).  Callbacks run inline when `inline_callbacks`,
 * else on the callback thread. */
int pb_future_resolve(pebble_future *f, pb_outcome *o, int inline_callbacks);
/* Free an outcome's buffers after losing a resolve. */
void pb_outcome_discard(pb_outcome *o);
/* The manager reading a batch of outcomes: the waiters of the futures it
 * settles are woken together at the flush (once, not once a future, for
 * an application that waits for each result in turn).  Flushing also
 * ends the deferring. */
void pb_future_defer_wakes(void);
void pb_future_flush_wakes(void);
/* A borrowed result copied to memory of its own; out of memory, the
 * outcome becomes that failure.  Before the outcome resolves a future. */
void pb_outcome_own(pb_outcome *o);
/* Run the callbacks of a resolved future in this thread. */
void pb_future_run_callbacks(pebble_future *f);
void pb_future_set_exit(pebble_future *f, const pebble_exit_info *exit);
void pb_stripe_lock(pebble_future *f);
void pb_stripe_unlock(pebble_future *f);
/* A cancel waits at most this long for a skip request to go out. */
#define PB_SKIP_WAIT_NS UINT64_C(2000000000)
/* Let the cancel of f go on: its skip request is written, or its task is
 * gone.  _locked: with f's stripe lock held. */
void pb_future_skip_sent(pebble_future *f);
void pb_future_skip_sent_locked(pebble_future *f);
/* Stripe lock held: wait until no resolver is between winning f and
 * publishing its outcome (released while waiting). */
void pb_future_wait_settled_locked(pebble_future *f);
int pb_future_is_resolved(const pebble_future *f);
/* A thread is about to sleep on pw->page for f, and has woken: listed on
 * f's stripe meanwhile, so that f's settle wakes it (pw is the caller's;
 * its page is set before begin). */
void pb_future_page_wait_begin(pebble_future *f, pb_page_waiter *pw);
void pb_future_page_wait_end(pebble_future *f, pb_page_waiter *pw);
/* pool_processes.c: an application thread waits for f, a process pool
 * task's future, reading its worker's outcomes itself while it runs.
 * PEBBLE_OK once f is resolved, PEBBLE_ENOTREADY at deadline, anything
 * else when it could not (the usual wait then follows). */
int pb_processes_wait_direct(pebble_future *f, uint64_t deadline);

/* ---- dispatch.c ---- */
int pb_dispatch_start(pb_lib *lib, pb_dispatch **out);
/* Run f's callbacks on the callback thread (takes a reference). */
void pb_dispatch_post(pb_dispatch *d, pebble_future *f);
void pb_dispatch_stop(pb_dispatch *d);

/* ---- message.c: the worker message format ---- */
#define PB_MSG_MAGIC 0x50424c31u /* "PBL1" */
#define PB_MSG_VERSION 8u
enum pb_msg_type {
  PB_MSG_RESULT = 1,  /* payload: the result bytes */
  PB_MSG_FAILURE = 2, /* code: the task's code; payload: its message */
  PB_MSG_ERROR = 3,   /* code: a PEBBLE_E* status; payload: a message */
  PB_MSG_TASK = 4,    /* to a pool worker: function, ids, argument */
  PB_MSG_QUIT = 5,    /* to a pool worker: end now */
  PB_MSG_INIT_FAILED = 6, /* from a pool worker: payload: why; code:
                             PB_INIT_NOT_WORKER or 0 (the initializer) */
  PB_MSG_CONFIG = 7,  /* to a spawned worker: its settings */
  PB_MSG_RESULT_SHARED = 8, /* size: the result's; no payload: a sealed
                               memory file is attached (shared_result.c) */
  /* Tasks sent ahead to a busy worker (pool_processes.c): */
  PB_MSG_SKIP = 9,     /* to a pool worker: payload: a task's future id */
  PB_MSG_STARTED = 10, /* from a pool worker: it starts that task now */
  PB_MSG_SKIPPED = 11, /* from a pool worker: it skipped it, unstarted */
  PB_MSG_PAGE = 12,    /* from a spawned pool worker, asked for it by
                          CONFIG's code: no payload; its page's sealed
                          memory file is attached (worker_page.c) */
  PB_MSG_NUDGE = 13,   /* from a pool worker: no payload; look at the
                          outcome ring (worker_page.c) */
  PB_MSG_RESULT_SUMMED = 14 /* a result too large to go out in one write:
                               its bytes, then their pb_sum (8 bytes,
                               not counted in size), so that bytes
                               something else wrote between the writes
                               are found; read as PB_MSG_RESULT */
};
/* The checksum of a result's bytes, taken as they go out and as they
 * come in (message.c): not against forgery, against bytes something else
 * in a worker wrote on its channel in the middle of a result. */
typedef struct pb_sum {
  uint64_t a[4], c[4], total;
  unsigned char part[32]; /* bytes short of a whole turn */
  size_t part_len;
} pb_sum;
void pb_sum_init(pb_sum *s);
void pb_sum_add(pb_sum *s, const void *p, size_t n);
uint64_t pb_sum_end(pb_sum *s);
/* CONFIG code: make a page and send it (PB_MSG_PAGE) before anything
 * else. */
#define PB_CONFIG_PAGE 1
/* INIT_FAILED code: a spawned program used the library before calling
 * pebble_worker_main(); the text says so (worker.c). */
#define PB_INIT_NOT_WORKER 1
/* TASK code: sent ahead; answer STARTED or SKIPPED before anything else. */
#define PB_TASK_AHEAD 1
/* TASK code: send STARTED right before the task's code runs, so that the
 * parent counts the task's timeout from there (tasks with a timeout). */
#define PB_TASK_TELL_START 2
/* TASK code, with TELL_START: the STARTED notice also carries the
 * worker's clock (bk->now_ns) at the task's start, after the id, so the
 * deadline counts from the start itself, not from when the parent got
 * round to reading the notice.  A worker that does not know this flag
 * sends the id alone, and the parent counts from its reading. */
#define PB_TASK_TELL_START_AT 4
/* A task whose process has not said it starts is given this long on top
 * of its timeout, counted from its launch (job.c, pool_processes.c). */
#define PB_START_ALLOWANCE_NS ((uint64_t)10 * 1000 * 1000 * 1000)
/* A TASK payload starts with: fn address (0: by name), future id, seq,
 * name length, ordinal (the pool's number for the task on this worker,
 * increasing, for its page; 0: none); then the name, then the argument. */
#define PB_TASK_WORDS 5
#define PB_NAME_BYTES_MAX 64
/* A TASK payload under this many bytes is read into a buffer the worker
 * already has: reading it allocates nothing, so it cannot be what kills
 * a worker that dies before the task begins (pool_processes.c). */
#define PB_INBOX_SMALL_TASK 512

/* ---- worker.c ---- */
typedef struct pb_worker_config {
  size_t max_message;
  unsigned max_tasks;
  pebble_task_fn initializer;
  const void *init_arg;
  size_t init_arg_size;
  int by_name; /* spawned: find functions by registered name only */
  /* Shared with the pool (worker_page.c), or NULL; a forked worker's is
   * inherited, a spawned one makes its own. */
  pb_worker_page *page;
  unsigned chan_sent; /* messages sent on the channel before serving */
} pb_worker_config;
int pb_worker_serve(const pebble_backend *bk, pebble_bk_chan *chan,
                    const pb_worker_config *cfg);
/* Called when the library starts in a process: if it was spawned as a
 * worker and pebble_worker_main() was not called first, tell the parent
 * and stderr, and exit (never returns then). */
void pb_worker_trap(const pebble_backend *bk);
/* ---- remote.c ---- */
/* A worker program started through a launcher (PEBBLE_WORKER_CHANNEL is
 * "stdio"): the process stays as the remote supervisor and never returns;
 * its child returns PEBBLE_OK as the worker, with an ordinary channel. */
int pb_remote_supervise(void);
/* Set in such a worker: its parent is on another host (no shared memory,
 * no descriptor passing: results go through the channel). */
extern int pb_worker_remote;
typedef struct pb_msg_header {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  int32_t code;
  uint32_t tag; /* from a worker: pb_msg_tag of the task it answers */
  uint64_t size;
} pb_msg_header;
/* A worker's message names the task it answers (its future id; 0 for
 * INIT_FAILED), so that bytes something else wrote to the worker's
 * channel are refused at their header, not trusted for a size the worker
 * will never send.  Mixed so that a zero field never matches. */
static inline uint32_t pb_msg_tag(uint64_t future_id) {
  return (uint32_t)(future_id ^ (future_id >> 32)) ^ 0x9e3779b9u;
}
/* Check a received header from a worker whose current task is task_id;
 * PEBBLE_OK or PEBBLE_EPROTO/ETOOBIG with a message in msg. */
int pb_msg_check(const pb_msg_header *h, size_t max_size, uint64_t task_id,
                 char *msg, size_t msglen);
void pb_msg_fill(pb_msg_header *h, enum pb_msg_type type, int32_t code,
                 uint64_t size);

/* ---- manager.c: the supervising thread ---- */

/* Something the manager watches: a process's events and/or a deadline.
 * The handlers run on the manager thread. */
typedef struct pb_watch pb_watch;
struct pb_watch {
  void (*on_events)(pb_manager *m, pb_watch *w, unsigned events);
  void (*on_deadline)(pb_manager *m, pb_watch *w, uint64_t now);
  uint64_t deadline; /* when on_deadline is due; PEBBLE_BK_FOREVER: never */
  pb_watch *prev, *next;
  int active;
};

/* A command for the manager thread.  Posting a node that is already
 * queued does nothing, so a node can stand for "look at this again". */
typedef struct pb_cmd pb_cmd;
struct pb_cmd {
  void (*run)(pb_manager *m, pb_cmd *cmd);
  pb_cmd *next;
  atomic_int queued; /* written under the manager's lock */
};

int pb_manager_start(pb_lib *lib, pb_manager **out);
void pb_manager_post(pb_manager *m, pb_cmd *cmd);
/* pb_manager_post for a poster whose work the command finds through a
 * sequentially consistent atomic write made before the call (a pool's
 * inbox): while the command is queued, its run will see that write, so
 * nothing is done, without the manager's lock. */
void pb_manager_post_seen(pb_manager *m, pb_cmd *cmd);
void pb_manager_stop(pb_manager *m);
/* Count work the manager owns until it is cleaned up. */
void pb_manager_adopt(pb_manager *m, long delta);
/* Manager thread only (or a holder of the baton, below). */
void pb_manager_activate(pb_manager *m, pb_watch *w);
void pb_manager_deactivate(pb_manager *m, pb_watch *w);
pebble_bk_waitset *pb_manager_waitset(pb_manager *m);
/* The manager's baton: the manager thread holds it except while it waits
 * for events, so a thread that takes it may run the manager's handlers
 * meanwhile (they see no change of thread).  Taken with no other library
 * lock held; a change that needs the manager thread awake (a new
 * deadline) is posted to it. */
void pb_manager_enter(pb_manager *m);
void pb_manager_leave(pb_manager *m);

/* ---- channel.c: worker messages ---- */
/* Results shorter than this (with their NUL) need no memory of their own
 * on their way: a task's ctx and a channel's reader hold them. */
#define PB_CTX_SMALL 16
typedef struct pb_reader {
  unsigned char header_buf[sizeof(pb_msg_header)];
  size_t header_got;
  pb_msg_header header;
  char *payload; /* malloc'd (or mapped, or `notice`), NUL after the
                    payload once complete */
  int mapped;    /* payload is a result file's mapping */
  size_t payload_got;
  size_t payload_cap; /* bytes of payload the block has room for */
  uint64_t task_id;   /* set by the owner: the task an outcome answers */
  /* Or, when set, where to read that id as each header completes: an id
   * another thread may change (a pool worker's current task), read after
   * the bytes that answer it. */
  const atomic_uint_fast64_t *task_id_live;
  /* When set, bytes come from this page's outcome ring (worker_page.c),
   * not from the channel. */
  pb_worker_page *ring;
  /* Set by the owner: a header (but a NUDGE's) stops the step with
   * PB_READ_HEADER before it is checked, and the next step checks it
   * (header_unchecked), so that the owner can first take what the
   * outcome ring holds, which the header's task may follow. */
  int hold_headers, header_unchecked;
  /* Set by the owner of a channel's reader whose worker also has an
   * outcome ring: before each read of the channel the ring's tail is
   * taken, and kept in ring_seen once the read is done, so that the owner
   * knows which of the ring's messages were there before the channel was
   * last read (bytes the worker wrote on the channel before them were
   * read then). */
  pb_worker_page *ring_beside;
  uint64_t ring_seen;
  /* With a ring beside: bytes dropped as written by something else in
   * the worker (channel.c, drop_stray), counted for the owner. */
  size_t stray_dropped;
  /* Bytes of the worker's messages (but nudges) taken from the channel,
   * to compare with the count on its page (chan_bytes).  The owner sets
   * it to 0 where the worker starts counting (when it took its page). */
  uint64_t own_taken;
  int eof;
  unsigned char *buf; /* PB_READER_BUF bytes, malloc'd on first use */
  size_t buf_pos, buf_len;
  int drained; /* the last read found the channel empty */
  /* PB_MSG_RESULT_SUMMED: its checksum follows the payload; the one of
   * the bytes read is taken as they come. */
  int summed;
  size_t sum_got;
  unsigned char sum[sizeof(uint64_t)];
  pb_sum sum_run;
  /* A task notice's payload (an id and a time: one a task, read and
   * dropped at once) is read here rather than into a malloc'd block. */
  char notice[2 * sizeof(uint64_t) + 1];
  /* A small result's bytes, read here and lent to its outcome (valid
   * until the next step: pb_outcome_own or pb_ptask_keep_result). */
  char small[PB_CTX_SMALL];
} pb_reader;
#define PB_READER_BUF 4096
enum pb_read_result {
  PB_READ_AGAIN,   /* nothing more for now (or the budget is spent) */
  PB_READ_MESSAGE, /* a whole message: header and payload in the reader */
  PB_READ_EOF,     /* the worker closed its end */
  PB_READ_BAD,     /* bad message: status in *status, text in why */
  PB_READ_HEADER   /* hold_headers: a header came; the next step checks it */
};
/* Parent side: read what proc has, up to *budget bytes (decremented).
 * max_result bounds a result's size. */
enum pb_read_result pb_reader_step(pb_reader *r, const pebble_backend *bk,
                                   pebble_bk_proc *proc, size_t max_result,
                                   size_t *budget, int *status, char *why,
                                   size_t whylen);
/* If the worker's channel ended inside a message, say where, e.g. "its
 * message was cut short after 10 of 100 bytes", and return 1; else 0. */
int pb_reader_cut_short(const pb_reader *r, char *buf, size_t len);
/* Whether the reader's buffer holds, next and whole, a STARTED notice
 * that passes the checks its step will make; its task's id in *id.  The
 * reader does not move. */
int pb_reader_peek_started(const pb_reader *r, uint64_t *id);
/* Turn the message read into an outcome (takes the payload) and get
 * ready for the next one. */
void pb_reader_outcome(pb_reader *r, pb_outcome *o);
/* The start of a timed task from its STARTED notice (pb_reader holding
 * it): the time it carries if it has one between `handed_over` (when the
 * parent sent the task or started its process) and now, else now. */
uint64_t pb_started_at(const pb_reader *r, const pebble_backend *bk,
                       uint64_t handed_over);
void pb_reader_free(pb_reader *r);
/* How a process ended, for pebble_future_exit_info and messages. */
void pb_exit_info_fill(pebble_exit_info *info, const pebble_bk_exit *ex,
                       long pid, int killed_by_library);
/* "process 42 was killed by signal 11 (SIGSEGV)"; `what` names it. */
char *pb_exit_message(const pebble_exit_info *x, const char *what);
/* The same, and where its message was cut short if r was inside one. */
char *pb_exit_message_cut(const pebble_exit_info *x, const char *what,
                          const pb_reader *r, const pebble_backend *bk,
                          pebble_bk_proc *proc);
/* Child side: send one message (header and payload). */
int pb_chan_send(const pebble_backend *bk, pebble_bk_chan *chan,
                 const pb_msg_header *h, const void *payload);
/* Child side: the STARTED notice of task `id`, right before its code
 * runs; with_time adds this process's clock (PB_TASK_TELL_START_AT). */
int pb_send_started(const pebble_backend *bk, pebble_bk_chan *chan,
                    uint64_t id, int with_time);
/* Child side: send one message, then after_len bytes of `after` (whole
 * messages), in one write when they are small. */
int pb_chan_send_then(const pebble_backend *bk, pebble_bk_chan *chan,
                      const pb_msg_header *h, const void *payload,
                      const void *after, size_t after_len);
/* Child side: send a task's outcome as one message, then `after` (NULL,
 * 0: nothing) as pb_chan_send_then does. */
int pb_send_outcome(const pebble_backend *bk, pebble_bk_chan *chan,
                    pebble_ctx *ctx, int ret, const void *after,
                    size_t after_len);

/* ---- ctx.c ---- */
struct pebble_ctx {
  atomic_int *stop;  /* thread tasks: cooperative stop reason, else NULL */
  size_t max_message;
  void *result;      /* one byte longer than result_size, NUL: malloc'd,
                        or in a memory file when result_handle >= 0 */
  size_t result_size;
  intptr_t result_handle;
  int shared_ok;     /* a worker whose backend can pass the file on */
  int result_error;  /* ETOOBIG or ENOMEM from pebble_result_alloc */
  int result_type;   /* enum pb_value_type of the result */
  int has_message;
  char message[PB_MESSAGE_MAX];
  uint64_t future_id;
  uint64_t seq;
  /* A result of fewer than PB_CTX_SMALL bytes (with its NUL) is made
   * here, not malloc'd: most tasks return a number or a flag. */
  union {
    max_align_t align; /* as malloc's memory: tasks may store any type */
    unsigned char bytes[PB_CTX_SMALL];
  } small;
};
void pb_ctx_init(pebble_ctx *ctx, atomic_int *stop, size_t max_message,
                 uint64_t future_id, uint64_t seq);
void pb_ctx_free_result(pebble_ctx *ctx);
/* A small result (kept in ctx) copied to a malloc'd block, for a
 * caller that takes ctx->result over; out of memory, ctx->result_error
 * says so and there is no result. */
void pb_ctx_own_result(pebble_ctx *ctx);
/* Turn a task's return value and ctx into an outcome; takes the result
 * (a small one is borrowed from ctx: result_borrowed). */
void pb_ctx_outcome(pebble_ctx *ctx, int ret, pb_outcome *o);

/* ---- task.c ---- */
int pb_task_options_read(const pebble_task_options *in,
                         pebble_task_options *out, const char *fname);
/* What a pool needs from a task definition (binding referenced, seq
 * taken). */
typedef struct pb_task_view {
  pebble_task_fn fn;
  const pebble_task_options *opts;
  pb_binding *binding;
  uint64_t seq;
} pb_task_view;
int pb_task_view_get(pebble_task *task, pb_task_view *v);

/* ---- job.c: one-shot tasks ---- */
struct pb_job {
  pb_runner runner;
  pb_lib *lib;
  pb_manager *manager;
  pebble_kind kind;
  pebble_task_fn fn;
  void *arg;
  size_t arg_size;
  pebble_future *future; /* one internal reference */
  pebble_time_t timeout;
  pebble_time_t kill_grace;
  size_t max_message;
  atomic_int stop_reason; /* 0, PEBBLE_ECANCELED or PEBBLE_ETIMEDOUT */
  pb_watch watch;
  uint64_t task_deadline;
  uint64_t kill_deadline;
  /* Thread tasks. */
  pebble_bk_thread *thread;
  atomic_int finish_refs; /* creator and thread: both done -> join */
  pebble_ctx *ctx;
  pb_cmd cmd_watch, cmd_join;
  /* Process tasks. */
  uint64_t launched_at; /* bk->now_ns() before its process started */
  pb_cmd cmd_launch;
  pebble_bk_proc *proc;   /* set and cleared under the stripe lock */
  int reaped;             /* stripe lock */
  int killed_by_library;  /* stripe lock */
  int message_done;
  char *worker_failure; /* a spawned worker's INIT_FAILED text */
  pb_reader reader;
  /* Process tasks with a timeout: the child said its code starts, and
   * the deadline now counts from there (manager thread). */
  int code_started;
  /* Spawned process tasks: the worker gets settings and task as messages. */
  int spawn;
  int start_method;
  unsigned char *out;
  size_t out_size, out_done;
};

/* Start a job prepared by task.c (future, arg and options set).  On
 * failure the job is freed. */
int pb_job_launch(pb_job *job);

/* ---- values.c / registry.c ---- */
int pb_name_valid(const char *name);
int pb_registry_name_of(pebble_task_fn fn, char *buf, size_t len);

/* ---- spinning before sleeping ---- */
/* Waking a sleeping thread costs a system call and, on a virtual machine
 * whose other CPU is idle, tens of microseconds.  A thread about to sleep
 * for something that usually comes within microseconds (a worker between
 * tasks, a caller waiting for a short task) first watches for it this
 * long.  The time spent shows as CPU time; machines with one CPU never
 * spin. */
#define PB_SPIN_NS 50000u
/* The longest spin, PB_SPIN_NS unless PEBBLE_SPIN says otherwise; 0 when
 * spinning is off. */
uint64_t pb_spin_ns(void);
/* PEBBLE_EINVAL with a message if PEBBLE_SPIN is set to something else
 * than a number of microseconds (checked when the library starts). */
int pb_spin_setting_check(void);
int pb_spin_for_processes(void);
static inline int pb_spin_allowed(void) { return pb_spin_ns() > 0; }
static inline void pb_cpu_relax(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
/* How long spinning has lately been worth it for one kind of wait.  A
 * spin that sees its event grows the budget (up to pb_spin_ns()).  A spin
 * that times out and is followed by the event soon after it went to sleep
 * cuts it: the spin was too short, or, more likely, its CPU was the one
 * the event needed (a loaded or pinned machine); at nothing, only one
 * wait in 32 tries a full spin again.  A timed-out spin followed by a
 * long sleep (nothing to do) changes nothing. */
typedef struct pb_spin {
  atomic_uint budget_ns; /* UINT32_MAX: not set yet */
  atomic_uint skips;
} pb_spin;
#define PB_SPIN_INIT {UINT32_MAX, 0}
/* Watch ready(arg, turn) for up to the budget; 1 if it returned 1.  It
 * may return -1 to stop early when what it sees says the event is not
 * near (that is no verdict on spinning).  Else *gave_up is when a spin
 * timed out (0 if none did), for pb_spin_slept once the sleep that
 * follows is over. */
int pb_spin_wait(const pebble_backend *bk, pb_spin *spin,
                 int (*ready)(void *arg, unsigned turn), void *arg,
                 uint64_t *gave_up);
void pb_spin_slept(const pebble_backend *bk, pb_spin *spin,
                   uint64_t gave_up);

/* ---- small helpers ---- */
#if defined(__GNUC__)
#define PB_PREFETCH_WRITE(p) __builtin_prefetch((p), 1)
#define PB_PREFETCH_READ(p) __builtin_prefetch((p), 0)
#else
#define PB_PREFETCH_WRITE(p) ((void)(p))
#define PB_PREFETCH_READ(p) ((void)(p))
#endif
#define PB_CONTAINER(ptr, type, member)                                      \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
/* `us` microseconds after `base_ns`.  Times too large for the clock mean
 * "a very long time": they saturate to PEBBLE_BK_FOREVER, never wrap to
 * a time in the past.  Negative times (PEBBLE_FOREVER; callers reject
 * the others) are forever too. */
static inline uint64_t pb_time_after(uint64_t base_ns, pebble_time_t us) {
  if (us < 0 || (uint64_t)us >= (PEBBLE_BK_FOREVER - base_ns) / 1000u)
    return PEBBLE_BK_FOREVER;
  return base_ns + (uint64_t)us * 1000u;
}
static inline uint64_t pb_deadline_after(const pebble_backend *bk,
                                         pebble_time_t t) {
  if (t == PEBBLE_FOREVER)
    return PEBBLE_BK_FOREVER;
  return pb_time_after(bk->now_ns(), t);
}
char *pb_strdup(const char *s);
char *pb_format(const char *fmt, ...) PEBBLE_PRINTF(1, 2);

#endif /* PEBBLE_INTERNAL_H */
