/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.h -- what the pool files share: the pool, its queued tasks and its
 * workers.  pool.c holds the kind-independent part (options, queue,
 * close/stop/join, statistics); pool_threads.c and pool_processes.c the
 * workers of each kind.
 */
#ifndef PEBBLE_POOL_H
#define PEBBLE_POOL_H

#include "internal.h"

typedef struct pb_ptask pb_ptask;

/* Outcome counters, by kind: the pool's and each thread worker's. */
enum { PB_COUNT_DONE, PB_COUNT_FAILED, PB_COUNT_TIMED_OUT, PB_COUNT_CANCELLED,
       PB_COUNTS };
typedef struct pb_pworker pb_pworker;

enum pb_pool_state { PB_POOL_OPEN, PB_POOL_CLOSED, PB_POOL_STOPPED, PB_POOL_BROKEN };

/* A scheduled task, from schedule until its worker is done with it.  It
 * lives in its future's block (one allocation per task); a small argument
 * follows it there, a large one has its own allocation, freed with the
 * task so that a future kept by the application does not keep it. */
struct pb_ptask {
  pb_runner runner;
  pebble_pool *pool;
  pebble_task_fn fn;
  pebble_time_t timeout;
  pb_ptask *next;        /* the queue */
  atomic_int stop_reason; /* thread pools: cooperative stop */
  unsigned char killed;  /* stripe lock */
  unsigned char ahead;   /* stripe lock: sent ahead to a busy worker and
                            not started yet (pool_processes.c) */
  /* Manager thread only (so one byte can hold both without a race; the
   * task must stay within its future's block): asked its worker to skip
   * it; times a worker died before any byte of it got through
   * (pool_processes.c, at most PB_REQUEUE_MAX). */
  unsigned char skip_sent : 1, requeued : 2;
  unsigned char arg_apart; /* the argument's copy is malloc'd; its
                              address is stored after the task */
  union {
    pb_pworker *worker; /* process pools: set/cleared under the stripe
                           lock while a worker runs it, or holds it sent
                           ahead */
    /* Thread pools: the worker that took it (set before it starts), so
     * that its outcome is counted in that worker's counters when the
     * worker itself resolves it (pb_threads_count_own). */
    _Atomic(pb_pworker *) thread_worker;
  };
  size_t arg_size;
};
/* The future a task lives behind, in the same block (its internal
 * reference), and the task's copy of its argument (pb_ptask_arg).  Not
 * stored: a trivial task then fits 176 bytes with its future. */
#define pb_ptask_future(t)                                                   \
  ((pebble_future *)(void *)((char *)(t) - PB_FUTURE_SPAN))
static inline unsigned char *pb_ptask_arg(pb_ptask *t) {
  unsigned char **apart = (unsigned char **)(void *)(t + 1);
  return t->arg_apart ? *apart : (unsigned char *)(t + 1);
}
/* Arguments up to this size travel in the future's block. */
#define PB_PTASK_INLINE_ARG 256

enum pb_worker_state {
  PB_W_STARTING, /* process: forked, initializer may still run */
  PB_W_IDLE,
  PB_W_BUSY,
  PB_W_QUITTING, /* process: told to quit, waiting for its exit */
  PB_W_SPARE,    /* process: started ahead, takes over a timed-out one */
  PB_W_EXITED    /* thread: out of its loop, waiting to be joined */
};

struct pb_pworker {
  pebble_pool *pool;
  pb_pworker *next; /* the pool's list (pool lock) */
  int state;        /* pool lock */
  pb_ptask *task;   /* the task it runs (pool lock) */
  /* Its future's id, or 0: set with `task`, before the task's bytes are
   * written; read without the lock by the manager's reader, which checks
   * each outcome's tag against it (read_worker). */
  atomic_uint_fast64_t task_id;
  uint64_t deadline; /* its task's deadline (pool lock) */
  unsigned tasks_run;
  int abandoned;    /* thread: its task timed out or was cancelled */
  pebble_bk_thread *thread;
  /* Process workers: the manager thread's own. */
  pebble_bk_proc *proc;
  pb_watch watch;
  pb_reader reader;
  unsigned char *out;  /* the task message being written */
  size_t out_size, out_done;
  uint64_t kill_deadline;
  uint64_t started_at;
  int killed;
  int uncounted; /* pool lock: not in active (a spare, or killed at its
                    task's deadline and already replaced) */
  int ready;         /* pool lock: idle, nothing pending: a scheduler may
                        send it a task (pb_processes_send_now) */
  int flush_pending; /* pool lock: out holds the rest of such a task */
  int task_unsent;   /* no byte of `task` was accepted by the worker's
                        channel yet: it has not started (set under the pool
                        lock; cleared by whoever writes it) */
  /* `task`'s message is small (PB_INBOX_SMALL_TASK): a worker that dies
   * before it begins it did not die of reading it (worker_exited). */
  int task_small;
  int closed;        /* pool lock: its channel refused a write: it is
                        ending, and takes no task */
  /* Tasks sent ahead, oldest first, linked by `next` (manager thread;
   * n_ahead also under the pool lock). */
  pb_ptask *ahead, *ahead_tail;
  unsigned n_ahead;
  /* The page it shares with the pool (worker_page.c): a forked worker's
   * is set before it is listed, a spawned one's when it arrives (manager
   * thread, pool lock); NULL: none, and nothing is sent ahead to it.  Its
   * skip epoch is bumped after each write that carried a SKIP request, so
   * that the worker looks at its channel for such requests only when one
   * may be there (worker.c).  out_has_skip: w->out holds one. */
  _Atomic(pb_worker_page *) page;
  int out_has_skip;
  /* Its outcome ring's reader (its `ring` set once the page is known),
   * the messages taken from its channel (shown on the page), a look at
   * the ring owed after a read that used up its turn, and `hold_feed`:
   * nothing new goes to it while a header from its channel waits for the
   * ring's messages (read_outcomes), `feed_owed` if something would have,
   * `chan_spoiled` once bytes something else wrote on its channel were
   * dropped there: it then gets nothing new, and ends once it holds no
   * task (all manager thread). */
  pb_reader ring_reader;
  uint64_t chan_taken;
  /* A STARTED notice taken with the result before it (read_outcomes):
   * its task's id, skipped when the reader comes to it; 0: none. */
  uint64_t notice_taken;
  int ring_owed, hold_feed, feed_owed, chan_spoiled;
  /* Application threads asleep on its page (pb_processes_wait_direct),
   * and `gone`: it exited meanwhile, and the last of them frees it and
   * its page (the manager's baton). */
  unsigned direct_waiters;
  int gone;
  /* Each task message to it carries the next ordinal (pool lock);
   * task_ordinal is the current task's, set with task_id (read by a
   * cancel under the task's stripe lock); ahead_ordinal the oldest task
   * sent ahead's (they are numbered one after the other). */
  uint64_t ordinals, ahead_ordinal;
  atomic_uint_fast64_t task_ordinal;
  uint64_t task_started; /* pool lock: when its current task started */
  long pid;              /* process workers: set before it is listed */
  int remote;            /* started through a launcher (set before it is
                            listed): nothing is sent ahead to it */
  int code_started;      /* manager thread: its timed task said it starts */
  /* Thread workers: outcomes of the tasks it ran (PB_COUNT_*), written by
   * it alone so that workers do not share a counter; added to the pool's
   * when it ends (pool lock). */
  atomic_uint_fast64_t counts[PB_COUNTS];
  /* Thread workers: the task it is resolving itself, while it does (only
   * it writes this; a resolver that sees its own task here is this
   * worker, as only the winner of a future counts its outcome). */
  _Atomic(pb_ptask *) resolving;
  /* Thread workers: each sleeps on a condition of its own, so that a
   * wake-up reaches one thread and never waits for another to run (a
   * shared condition's signal can wait for a thread it woke earlier to
   * get a CPU).  Listed in the pool's `sleepers` while asleep and not
   * signalled; `signalled` is set by whoever takes it off that list (pool
   * lock).  The condition outlives the thread (its record goes to the
   * pool's `spare_threads`, for the next thread, with the condition), so
   * a signal sent after the lock is let go never reaches freed memory: at
   * worst it wakes the record's next thread for nothing. */
  pebble_bk_cond *wake;
  pb_pworker *next_sleeper;
  int signalled;
};

/* Blocks and future ids a pool's stash takes at a time. */
#define PB_STASH 32u

/* One more on a counter that only one thread at a time writes (others
 * read it): no locked add, which would also wait for the writer's earlier
 * stores. */
static inline void pb_count_own(atomic_uint_fast64_t *c) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

/* A flag other threads read without the lock: stored only when it
 * changes, so that their copy of its cache line stays good. */
static inline void pb_flag_set(atomic_int *flag, int value) {
  if (atomic_load_explicit(flag, memory_order_relaxed) != value)
    atomic_store_explicit(flag, value, memory_order_relaxed);
}

struct pebble_pool {
  /* Set at creation or changed rarely; read by everyone. */
  pb_lib *lib;
  uint64_t gen;
  pebble_kind kind;
  pebble_pool_options o;
  void *init_arg;
  /* The pool's copies of the options' strings (o points at them), and
   * the launch the backend gets for each worker (NULL: no option of the
   * launcher's was set, the backend's own choice). */
  char *worker_program, *launcher;
  pebble_bk_launch launch_store;
  const pebble_bk_launch *launch;
  pb_manager *manager;
  pebble_bk_mutex *lock;
  pebble_bk_cond *space; /* schedulers wait for room */
  pebble_bk_cond *idle;  /* join waits for workers to end */
  int state;
  int broken_status;
  char *broken_message;
  pb_pworker *workers;
  /* Thread pools: records of joined threads, kept for the next thread
   * (pb_pworker.wake) and freed with the pool. */
  pb_pworker *spare_threads;
  unsigned alive;     /* threads not joined / processes not reaped */
  /* Thread pools: of those, threads done with their last task and on
   * their way out (pool lock); they hold no place under the cap. */
  unsigned leaving;
  unsigned abandoned;
  /* Workers that take tasks (not abandoned, quitting): written under the
   * pool lock, read without it by a thread pool's scheduler. */
  atomic_uint active;
  atomic_int accepting; /* state is OPEN, readable without the lock */
  char gap_schedulers[PB_LINE_GAP];

  /* Schedulers mostly go without the pool lock: a task goes on this
   * stack (newest first), and a worker (a process pool's manager) holding
   * the lock moves the stack to the queue in order (pb_pool_collect).  A
   * process pool takes this way only for a task that would wait behind
   * others anyway; one that finds the queue empty takes the lock to go
   * straight to an idle worker.  `sent` counts the tasks ever admitted,
   * `taken` those ever taken off the queue or handed over at once, less
   * those put back (pool lock), so sent - taken is what waits (the
   * max_queued bound, both kinds); `taken_seen` is a scheduler's recent
   * look at `taken`, enough to know the queue is far from full. */
  _Atomic(pb_ptask *) inbox;
  atomic_size_t sent, taken_seen;
  /* The schedulers' stash (both kinds): blocks taken from the library's
   * PB_STASH at a time (under one lock), handed out stash[stash_at] to
   * stash[stash_n - 1], and future ids taken PB_STASH at a time, id_next
   * up to id_end; so that most tasks take neither the blocks' lock nor
   * the library's id counter.  Held by the scheduler that set stash_busy;
   * another finding it set takes the library's way.  Destroy gives back
   * what is left. */
  atomic_int stash_busy;
  unsigned stash_at, stash_n;
  uint64_t id_next, id_end;
  void *stash[PB_STASH];
  char gap_workers[PB_LINE_GAP];

  /* The queue and the workers' states (pool lock unless said). */
  pb_ptask *head, *tail;
  size_t queued;
  unsigned space_waiters; /* schedulers waiting on `space` for room */
  atomic_size_t taken;
  pb_spin spin;   /* how long a thread worker's watch has lately been
                     worth it */
  unsigned running;
  char gap_flags[PB_LINE_GAP];

  /* Read without the lock for every task (by schedulers, and by a thread
   * worker watching for work), so kept apart from the queue's fields,
   * which change with every task; the first two are stored only when they
   * change (pb_flag_set). */
  atomic_int has_work; /* the queue is not empty: written under the pool
                          lock */
  /* Process pools: a worker may be `ready` for a task sent straight from
   * the scheduling thread (pb_processes_send_now).  Written under the
   * pool lock: set as a worker becomes ready, cleared when a look at the
   * workers found none. */
  atomic_int may_be_ready;
  /* Thread pools: the workers asleep that no signal was sent to yet, the
   * last to sleep first (changed under the pool lock, looked at without
   * it by schedulers); a worker watching for work before sleeping: 1, or
   * 2 once a new task counts on it (set under the pool lock, claimed
   * without it). */
  _Atomic(pb_pworker *) sleepers;
  atomic_int spinning;
  char gap_counters[PB_LINE_GAP];

  /* Outcomes (PB_COUNT_*); a thread worker counts its own tasks'
   * (pb_pworker). */
  atomic_uint_fast64_t counts[PB_COUNTS], restarts;
  atomic_uint_fast64_t sent_ahead;
  /* Workers started through a launcher: replaced; lost without their
   * remote side's report (pebble_pool_stats). */
  atomic_uint_fast64_t remote_restarts, remote_lost;
  /* Manager side. */
  pb_watch watch;     /* thread pools: the nearest task deadline;
                         process pools: a delayed respawn */
  pb_cmd farewell;    /* destroy's last command: forget the pool */
  unsigned crash_streak;
  unsigned start_refusals; /* process pools: worker starts refused in a row */
  uint64_t respawn_at;
  pb_pworker *spare;  /* process pools with timed tasks (pool lock) */
  size_t ahead;       /* process pools: tasks sent ahead (pool lock) */
  uint64_t task_ns;   /* process pools: recent time per task (pool lock) */
  atomic_int skips_wanted; /* a task sent ahead was cancelled */
  int sync_done;      /* pb_pool_sync */
  char gap_kick[PB_LINE_GAP];

  /* "Look at this pool again": a scheduler reads whether it is posted for
   * every task, apart from what the manager writes for every task. */
  pb_cmd kick;
  char gap_end[PB_LINE_GAP];
};

/* pool.c */
/* Schedule with resolved options; takes the binding reference. */
int pb_pool_schedule_internal(pebble_pool *P, pebble_task_fn fn,
                              const void *arg, size_t arg_size,
                              const pebble_task_options *o,
                              pb_binding *binding, uint64_t seq,
                              pebble_future **future);
/* Outcomes are counted as their futures settle, before any waiter can
 * see them (the task's runner's `settled`), so that a statistics call
 * made after a waiter saw a future resolved counts it.  Nothing else
 * counts them. */
/* A thread worker counts an outcome of its own task. */
void pb_worker_count(pb_pworker *w, int status);
/* Pool lock held: a thread worker ends; its counts go to the pool's. */
void pb_worker_fold_counts(pebble_pool *P, pb_pworker *w);
/* Resolve f as failed/cancelled from the pool's side; counts it. */
int pb_pool_resolve(pebble_pool *P, pebble_future *f, int state, int status,
                    char *message, int inline_callbacks);
void pb_ptask_free(pb_ptask *t);
/* Before its future resolves (on the thread that read or made the
 * outcome): a small result moves into the place of t's argument; a
 * borrowed one that cannot gets memory of its own (pb_outcome_own). */
void pb_ptask_keep_result(pb_ptask *t, pb_outcome *o);
/* Move tasks scheduled without the lock to the queue (pool lock). */
void pb_pool_collect(pebble_pool *P);
/* Some task waits in the queue or the inbox (pool lock). */
int pb_pool_has_queued(pebble_pool *P);
/* Take the first queued task that has not been cancelled (pool lock). */
pb_ptask *pb_pool_pop(pebble_pool *P);
/* Take the first queued task, cancelled or not (pool lock). */
pb_ptask *pb_pool_unlink(pebble_pool *P);
/* Put tasks (linked by next, first to last) back at the queue's front
 * (pool lock). */
void pb_pool_requeue(pebble_pool *P, pb_ptask *first, pb_ptask *last,
                     size_t n);
/* Resolve tasks linked by next with that outcome and free them (no lock). */
void pb_pool_fail_list(pebble_pool *P, pb_ptask *list, int state, int status,
                       const char *why);
/* The initializer failed: refuse new work, fail what waits (no lock). */
void pb_pool_break(pebble_pool *P, const char *why);
/* The same with the message futures get (malloc'd, taken). */
void pb_pool_break_with(pebble_pool *P, const char *why, char *msg);
char *pb_pool_timeout_message(pebble_time_t us);

/* pool_threads.c */
extern const pb_runner_ops pb_thread_ptask_runner;
/* If this thread is the worker running t, count t's outcome in its own
 * counters and return 1; else 0 (the pool's counters take it). */
int pb_threads_count_own(pb_ptask *t, int status);
int pb_threads_spawn(pebble_pool *P); /* pool lock held */
/* Pool lock held: take the sleeper that slept last off the list and
 * return its condition, to be signalled once the lock is let go (it
 * lasts as long as the pool; the record is not to be read then), or
 * NULL if none sleeps. */
pebble_bk_cond *pb_threads_take_sleeper(pebble_pool *P);
/* Pool lock held: wake every sleeper (close, stop, break). */
void pb_threads_wake_all(pebble_pool *P);
/* The records of joined threads (pool destroy; no thread is left). */
void pb_threads_free_spares(pebble_pool *P);
void pb_threads_deadline(pb_manager *m, pb_watch *w, uint64_t now);
void pb_threads_kick(pb_manager *m, pb_cmd *cmd);
/* Join and free exited worker threads (no lock held). */
void pb_threads_reap(pebble_pool *P);

/* pool_processes.c */
int pb_pool_uses_spawn(const pebble_pool *P);
void pb_processes_kick(pb_manager *m, pb_cmd *cmd);
void pb_processes_deadline(pb_manager *m, pb_watch *w, uint64_t now);
void pb_processes_cancel_locked(pb_runner *r);
int pb_processes_ended_locked(pb_runner *r);
/* Pool lock held: 0 no idle worker took t, 1 sent, 2 post the kick. */
int pb_processes_send_now(pebble_pool *P, pb_ptask *t);

#endif /* PEBBLE_POOL_H */
