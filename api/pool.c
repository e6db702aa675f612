/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c -- the part of thread and process pools that does not depend on
 * the kind of worker: options, the queue with its back-pressure, close,
 * stop, join, and statistics.  Every future a pool hands out resolves:
 * with its task's outcome, or cancelled by stop, or failed when the pool
 * breaks or cannot start workers.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

int pebble_pool_options_init(pebble_pool_options *o) {
  unsigned cpus;
  if (o == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_options_init: opts is NULL");
  memset(o, 0, sizeof *o);
  cpus = pb_online_cpus();
  o->struct_size = sizeof *o;
  o->workers = cpus > 0 ? cpus : 1;
  o->max_tasks = 0;
  o->task_timeout = PEBBLE_FOREVER;
  o->kill_grace = 0;
  o->max_queued = (size_t)1 << 24;
  o->start_eagerly = 0;
  o->max_abandoned = o->workers;
  o->max_message_size = pebble_max_message_size();
  o->launcher = NULL;
  o->launcher_heartbeat = PEBBLE_DEFAULT;
  o->launcher_start_timeout = PEBBLE_DEFAULT;
  return PEBBLE_OK;
}

#define POOL_OPTS_MIN                                                        \
  (offsetof(pebble_pool_options, workers) + sizeof(unsigned))

static int read_pool_options(const pebble_pool_options *in,
                             pebble_pool_options *out) {
  pebble_pool_options_init(out);
  if (in == NULL)
    return PEBBLE_OK;
  if (in->struct_size < POOL_OPTS_MIN || in->struct_size > 65536)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: options.struct_size is %zu; "
                    "initialise the options with pebble_pool_options_init()",
                    in->struct_size);
  memcpy(out, in,
         in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
  out->struct_size = sizeof *out;
  if (out->workers == 0)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_create: workers is 0");
  if (out->task_timeout < 0 && out->task_timeout != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: task_timeout %lld is negative",
                    (long long)out->task_timeout);
  if (out->kill_grace < 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: kill_grace %lld is negative",
                    (long long)out->kill_grace);
  if (out->max_queued == 0)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_create: max_queued is 0");
  if (out->max_message_size == 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: max_message_size is 0");
  if (out->start_method < PEBBLE_START_DEFAULT ||
      out->start_method > PEBBLE_START_FORKSERVER)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: start_method %d is unknown",
                    out->start_method);
  if (out->send_ahead < PEBBLE_SEND_AHEAD_AUTO ||
      out->send_ahead > PEBBLE_SEND_AHEAD_ALWAYS)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: send_ahead %d is unknown",
                    out->send_ahead);
  if (out->initializer_arg == NULL && out->initializer_arg_size > 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: initializer_arg is NULL but its "
                    "size is %zu",
                    out->initializer_arg_size);
  return PEBBLE_OK;
}

/* A whole number of seconds from 1 to max for the option `field`, or
 * PEBBLE_DEFAULT (*out = dflt), or PEBBLE_FOREVER where `forever` is
 * allowed (*out = 0). */
static int launch_seconds(pebble_time_t v, const char *field, long max,
                          int forever, long dflt, long *out) {
  if (v == PEBBLE_DEFAULT) {
    *out = dflt;
    return PEBBLE_OK;
  }
  if (forever && v == PEBBLE_FOREVER) {
    *out = 0;
    return PEBBLE_OK;
  }
  if (v < PEBBLE_SEC(1) || v > PEBBLE_SEC(max) || v % PEBBLE_SEC(1) != 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: %s is %lld us; it must be a whole "
                    "number of seconds from PEBBLE_SEC(1) to PEBBLE_SEC(%ld)"
                    "%s, or PEBBLE_DEFAULT",
                    field, (long long)v, max,
                    forever ? ", PEBBLE_FOREVER (no bound)" : "");
  *out = (long)(v / PEBBLE_SEC(1));
  return PEBBLE_OK;
}

/* The options of the launcher (docs/cluster.md): checked, the string
 * copied, and the launch the backend gets made.  Before the start method
 * is checked: a launcher makes PEBBLE_START_DEFAULT mean spawn. */
static int read_launch_options(pebble_pool *P, pebble_kind kind) {
  pebble_pool_options *o = &P->o;
  const pebble_backend *bk = P->lib->bk;
  const char *c;
  int any = o->launcher != NULL || o->launcher_heartbeat != PEBBLE_DEFAULT ||
            o->launcher_start_timeout != PEBBLE_DEFAULT;
  int rc;
  if (o->launcher != NULL) {
    for (c = o->launcher; *c == ' ' || *c == '\t' || *c == '\n'; c++)
      ;
    if (*c == '\0')
      return pb_error(PEBBLE_EINVAL,
                      "pebble_pool_create: launcher is an empty command "
                      "line (NULL: workers start on this host, or through "
                      "PEBBLE_LAUNCHER)");
  }
  if (!any)
    return PEBBLE_OK;
  if (kind != PEBBLE_PROCESS)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: %s is set for a thread pool (only "
                    "process pools start workers through a launcher)",
                    o->launcher != NULL ? "launcher"
                    : o->launcher_heartbeat != PEBBLE_DEFAULT
                        ? "launcher_heartbeat"
                        : "launcher_start_timeout");
  if (o->launcher != NULL && o->start_method == PEBBLE_START_DEFAULT)
    o->start_method = PEBBLE_START_SPAWN;
  if (pb_lib_method(P->lib, o->start_method) != PEBBLE_START_SPAWN)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: %s is set but the start method is "
                    "%s (a launcher starts workers by the spawn start "
                    "method only)",
                    o->launcher != NULL ? "launcher"
                    : o->launcher_heartbeat != PEBBLE_DEFAULT
                        ? "launcher_heartbeat"
                        : "launcher_start_timeout",
                    pb_lib_method_name(P->lib, o->start_method));
  memset(&P->launch_store, 0, sizeof P->launch_store);
  P->launch_store.struct_size = sizeof P->launch_store;
  if ((rc = launch_seconds(o->launcher_heartbeat, "launcher_heartbeat", 3600,
                           0, 0, &P->launch_store.heartbeat_s)) !=
          PEBBLE_OK ||
      (rc = launch_seconds(o->launcher_start_timeout,
                           "launcher_start_timeout", 86400, 1, -1,
                           &P->launch_store.start_timeout_s)) != PEBBLE_OK)
    return rc;
  if (!PB_BK_HAS(bk, proc_spawn_launched))
    return pb_error(PEBBLE_ENOTSUP,
                    "pebble_pool_create: backend '%s' cannot start workers "
                    "through a launcher (the launcher options need one that "
                    "can: posix)",
                    bk->name);
  if (o->launcher != NULL) {
    P->launcher = pb_strdup(o->launcher);
    if (P->launcher == NULL)
      return pb_error(PEBBLE_ENOMEM, "out of memory creating a pool");
    o->launcher = P->launcher;
  }
  P->launch_store.command = P->launcher;
  P->launch = &P->launch_store;
  return PEBBLE_OK;
}

static void detach(pb_manager *m, pb_cmd *cmd);

static void pool_free(pebble_pool *P) {
  const pebble_backend *bk = P->lib->bk;
  pb_threads_free_spares(P);
  if (P->idle)
    bk->cond_destroy(P->idle);
  if (P->space)
    bk->cond_destroy(P->space);
  if (P->lock)
    bk->mutex_destroy(P->lock);
  free(P->init_arg);
  free(P->worker_program);
  free(P->launcher);
  free(P->broken_message);
  free(P);
}

/* A pool not made after all (before its locks): what it holds. */
static void pool_discard(pebble_pool *P) {
  free(P->init_arg);
  free(P->worker_program);
  free(P->launcher);
  free(P);
}

int pebble_pool_create(pebble_pool **pool, pebble_kind kind,
                       const pebble_pool_options *opts) {
  pebble_pool *P;
  pb_lib *L;
  const pebble_backend *bk;
  int rc;
  unsigned i;

  if (pool == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_create: pool is NULL");
  *pool = NULL;
  if (kind != PEBBLE_THREAD && kind != PEBBLE_PROCESS)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_create: kind %d is neither PEBBLE_THREAD "
                    "nor PEBBLE_PROCESS",
                    (int)kind);
  if ((rc = pb_lib_get(&L)) != PEBBLE_OK)
    return rc;
  bk = L->bk;
  if (!(bk->caps &
        (kind == PEBBLE_THREAD ? PEBBLE_CAP_THREADS : PEBBLE_CAP_PROCESSES)))
    return pb_error(PEBBLE_ENOTSUP,
                    "pebble_pool_create: backend '%s' cannot run %s",
                    bk->name, kind == PEBBLE_THREAD ? "threads" : "processes");
  P = calloc(1, sizeof *P);
  if (P == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a pool");
  if ((rc = read_pool_options(opts, &P->o)) != PEBBLE_OK) {
    free(P);
    return rc;
  }
  P->lib = L;
  P->gen = L->gen;
  P->kind = kind;
  P->task_ns = UINT64_MAX; /* not known yet: nothing is sent ahead */
  if (P->o.initializer_arg_size > 0) {
    P->init_arg = malloc(P->o.initializer_arg_size);
    if (P->init_arg == NULL) {
      free(P);
      return pb_error(PEBBLE_ENOMEM, "out of memory creating a pool");
    }
    memcpy(P->init_arg, P->o.initializer_arg, P->o.initializer_arg_size);
  }
  P->o.initializer_arg = P->init_arg;
  /* The strings kept: the pool's own copies. */
  if (P->o.worker_program != NULL) {
    if (*P->o.worker_program == '\0') {
      pool_discard(P);
      return pb_error(PEBBLE_EINVAL, "pebble_pool_create: worker_program is "
                                     "empty (NULL: this program itself)");
    }
    if ((P->worker_program = pb_strdup(P->o.worker_program)) == NULL) {
      pool_discard(P);
      return pb_error(PEBBLE_ENOMEM, "out of memory creating a pool");
    }
    P->o.worker_program = P->worker_program;
  }
  if ((rc = read_launch_options(P, kind)) != PEBBLE_OK) {
    pool_discard(P);
    return rc;
  }
  if (kind == PEBBLE_PROCESS && pb_pool_uses_spawn(P)) {
    char name[PB_NAME_BYTES_MAX];
    int method = pb_lib_method(P->lib, P->o.start_method);
    int bad = PEBBLE_OK;
    if (!pb_backend_can(bk, method))
      bad = pb_error(PEBBLE_ENOTSUP,
                    "pebble_pool_create: backend '%s' cannot start workers "
                    "by the %s start method",
                    bk->name, pb_start_method_name(method));
    else if (P->o.initializer != NULL &&
             pb_registry_name_of(P->o.initializer, name, sizeof name) != 0)
      bad = pb_error(PEBBLE_ENOTFOUND,
                    "pebble_pool_create: the initializer is not registered "
                    "(%s workers find it by name: pebble_register)",
                    pb_start_method_name(method));
    if (bad != PEBBLE_OK) {
      pool_discard(P);
      return bad;
    }
  }
  if (bk->mutex_create(&P->lock) != PEBBLE_OK ||
      bk->cond_create(&P->space) != PEBBLE_OK ||
      bk->cond_create(&P->idle) != PEBBLE_OK ||
      (P->manager = pb_lib_manager(L)) == NULL) {
    pool_free(P);
    return pb_error(PEBBLE_ESYSTEM, "cannot create the pool's locks or "
                                    "start the library's manager");
  }
  for (i = 0; i < PB_COUNTS; i++)
    atomic_init(&P->counts[i], 0);
  atomic_init(&P->restarts, 0);
  atomic_init(&P->remote_restarts, 0);
  atomic_init(&P->remote_lost, 0);
  atomic_init(&P->has_work, 0);
  atomic_init(&P->may_be_ready, 1);
  atomic_init(&P->active, 0);
  atomic_init(&P->sleepers, NULL);
  atomic_init(&P->spinning, 0);
  atomic_init(&P->inbox, NULL);
  atomic_init(&P->sent, 0);
  atomic_init(&P->taken, 0);
  atomic_init(&P->taken_seen, 0);
  atomic_init(&P->stash_busy, 0);
  atomic_init(&P->accepting, 1);
  atomic_init(&P->spin.budget_ns, UINT32_MAX);
  atomic_init(&P->spin.skips, 0);
  P->state = PB_POOL_OPEN;
  P->farewell.run = detach;
  P->watch.deadline = PEBBLE_BK_FOREVER;
  if (kind == PEBBLE_THREAD) {
    P->watch.on_deadline = pb_threads_deadline;
    P->kick.run = pb_threads_kick;
  } else {
    P->watch.on_deadline = pb_processes_deadline;
    P->kick.run = pb_processes_kick;
  }
  pb_lib_hold(L);
  pb_manager_adopt(P->manager, 1); /* until destroy detaches the pool */
  *pool = P;
  if (P->o.start_eagerly) {
    if (kind == PEBBLE_THREAD) {
      bk->mutex_lock(P->lock);
      for (i = 0, rc = PEBBLE_OK; i < P->o.workers && rc == PEBBLE_OK; i++)
        rc = pb_threads_spawn(P);
      bk->mutex_unlock(P->lock);
      if (rc != PEBBLE_OK) {
        pebble_pool_destroy(P);
        *pool = NULL;
        return pb_error(PEBBLE_ESYSTEM, "cannot start the pool's threads");
      }
    } else {
      pb_manager_post(P->manager, &P->kick);
    }
  }
  return PEBBLE_OK;
}

#define CHECK_POOL(P, fname)                                                 \
  do {                                                                       \
    int rc_;                                                                 \
    if ((P) == NULL)                                                         \
      return pb_error(PEBBLE_EINVAL, fname ": pool is NULL");                \
    if ((rc_ = pb_lib_check((P)->lib, (P)->gen)) != PEBBLE_OK)               \
      return rc_;                                                            \
  } while (0)

void pb_ptask_free(pb_ptask *t) {
  pebble_future *f = pb_ptask_future(t);
  /* A cancel reads the runner under the stripe lock: once it is cleared
   * there, nobody can reach t any more.  Cleared already means the task's
   * own side resolved the future, and a cancel will not look.  A resolver
   * that won the future reads the runner to count the outcome
   * (ptask_settled): it is not cleared under it (the task, finishing as a
   * cancel wins, would otherwise leave that cancel uncounted). */
  if (atomic_load(&f->runner) == &t->runner) {
    pb_stripe_lock(f);
    if (atomic_load(&f->runner) == &t->runner) {
      pb_future_wait_settled_locked(f);
      atomic_store(&f->runner, NULL);
    }
    pb_future_skip_sent_locked(f); /* gone: nothing left to skip */
    pb_stripe_unlock(f);
  }
  /* Every way out of a worker's hands clears it; a task that ends still
   * marked would leave pebble_future_wait_exit() waiting for nothing. */
  if (atomic_load_explicit(&f->exit_due, memory_order_relaxed)) {
    pb_stripe_lock(f);
    pb_future_exit_over_locked(f);
    pb_stripe_unlock(f);
  }
  if (t->arg_apart) {
    free(pb_ptask_arg(t));
    t->arg_apart = 0;
  }
  pb_future_put(f); /* the task's reference: may free the block */
}

/* A small result takes the place of t's argument, which the task no
 * longer needs once it has run: the future then holds its result in its
 * own allocation, and releasing it frees nothing more.  The result's own
 * memory goes back on the thread that made it (the manager thread for a
 * process task, the worker for a thread task), which gets it straight
 * back for the next result: freed by the application's thread instead,
 * each result cost its maker a malloc from a cold free list.  Most small
 * results had no memory of their own to begin with: they are borrowed
 * from the task's ctx or the channel's reader (result_borrowed). */
void pb_ptask_keep_result(pb_ptask *t, pb_outcome *o) {
  pebble_future *f = pb_ptask_future(t);
  size_t room;
  if (o->state != PEBBLE_DONE || o->result == NULL || o->result_mapped ||
      o->result_inline || t->arg_apart) {
    pb_outcome_own(o);
    return;
  }
  room = f->in_block ? PB_BLOCK_SIZE - PB_FUTURE_SPAN - sizeof *t
                     : t->arg_size;
  if (o->result_size >= room) { /* and its NUL */
    pb_outcome_own(o);
    return;
  }
  memcpy(pb_ptask_arg(t), o->result, o->result_size);
  pb_ptask_arg(t)[o->result_size] = '\0';
  if (!o->result_borrowed)
    pb_result_free(o->result, o->result_size, 0);
  o->result = pb_ptask_arg(t);
  o->result_borrowed = 0;
  o->result_inline = 1;
}

static int count_slot(int status) {
  switch (status) {
  case PEBBLE_OK:
    return PB_COUNT_DONE;
  case PEBBLE_ETIMEDOUT:
    return PB_COUNT_TIMED_OUT;
  case PEBBLE_ECANCELED:
    return PB_COUNT_CANCELLED;
  default:
    return PB_COUNT_FAILED;
  }
}

/* The runner's `settled`: count the outcome before the future's state is
 * published (future.c's settle), whoever resolves it. */
static void ptask_settled(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  int status = pb_ptask_future(t)->status;
  if (t->pool->kind == PEBBLE_THREAD && pb_threads_count_own(t, status))
    return;
  atomic_fetch_add(&t->pool->counts[count_slot(status)], 1);
}

void pb_worker_count(pb_pworker *w, int status) {
  pb_count_own(&w->counts[count_slot(status)]);
}

void pb_worker_fold_counts(pebble_pool *P, pb_pworker *w) {
  int slot;
  for (slot = 0; slot < PB_COUNTS; slot++)
    atomic_fetch_add(&P->counts[slot], atomic_exchange(&w->counts[slot], 0));
}

int pb_pool_resolve(pebble_pool *P, pebble_future *f, int state, int status,
                    char *message, int inline_callbacks) {
  pb_outcome o;
  memset(&o, 0, sizeof o);
  o.state = state;
  o.status = status;
  o.message = message;
  (void)P; /* counted as it settles (ptask_settled) */
  if (!pb_future_resolve(f, &o, inline_callbacks)) {
    pb_outcome_discard(&o);
    return 0;
  }
  return 1;
}

char *pb_pool_timeout_message(pebble_time_t us) {
  if (us % 1000 == 0)
    return pb_format("the task passed its timeout of %lld ms",
                     (long long)(us / 1000));
  return pb_format("the task passed its timeout of %lld us", (long long)us);
}

/* Only one thread at a time (the pool lock's holder) takes the stack, so
 * it can be taken whole and turned around.  The first look is
 * sequentially consistent: stop and break collect right after marking the
 * pool closed, and must see what a caller pushed before it saw that. */
void pb_pool_collect(pebble_pool *P) {
  pb_ptask *t, *next, *first = NULL, *last;
  size_t n = 0;
  if (atomic_load(&P->inbox) == NULL)
    return;
  t = atomic_exchange_explicit(&P->inbox, NULL, memory_order_acquire);
  last = t;
  for (; t != NULL; t = next, n++) {
    next = t->next;
    t->next = first;
    first = t;
    /* Its start is the next thing done. */
    PB_PREFETCH_WRITE(pb_ptask_future(t));
  }
  if (first == NULL)
    return;
  if (P->tail != NULL)
    P->tail->next = first;
  else
    P->head = first;
  P->tail = last;
  P->queued += n;
  pb_flag_set(&P->has_work, 1);
}

/* The inbox is read last and in sequentially consistent order: a worker
 * or join that saw the pool closed then sees any task scheduled by a
 * caller that saw it open (schedule_fast). */
int pb_pool_has_queued(pebble_pool *P) {
  return P->head != NULL || atomic_load(&P->inbox) != NULL;
}

/* Pool lock held: n more tasks left the queue (n < 0: came back to it;
 * the sum wraps as size_t arithmetic does, which is the subtraction). */
static void count_taken(pebble_pool *P, ptrdiff_t n) {
  atomic_store_explicit(
      &P->taken,
      atomic_load_explicit(&P->taken, memory_order_relaxed) + (size_t)n,
      memory_order_relaxed);
}

pb_ptask *pb_pool_unlink(pebble_pool *P) {
  pb_ptask *t;
  if (P->head == NULL)
    pb_pool_collect(P);
  if ((t = P->head) == NULL)
    return NULL;
  P->head = t->next;
  if (P->head == NULL) {
    P->tail = NULL;
    pb_flag_set(&P->has_work, 0);
  }
  P->queued--;
  count_taken(P, 1);
  if (P->space_waiters > 0) /* a futex call a task otherwise */
    P->lib->bk->cond_signal(P->space);
  return t;
}

pb_ptask *pb_pool_pop(pebble_pool *P) {
  pb_ptask *t;
  while ((t = pb_pool_unlink(P)) != NULL) {
    if (pb_future_start(pb_ptask_future(t)))
      return t;
    /* Cancelled while queued: it never starts (and was counted). */
    pb_ptask_free(t);
  }
  return NULL;
}

void pb_pool_requeue(pebble_pool *P, pb_ptask *first, pb_ptask *last,
                     size_t n) {
  if (first == NULL)
    return;
  last->next = P->head;
  P->head = first;
  if (P->tail == NULL)
    P->tail = last;
  P->queued += n;
  count_taken(P, -(ptrdiff_t)n); /* waiting again, as reserve counts */
  pb_flag_set(&P->has_work, 1);
}

static void queued_cancel_locked(pb_runner *r);
static int ptask_ended_locked(pb_runner *r);
static const pb_runner_ops ptask_runner_ops = {
    queued_cancel_locked, ptask_settled, ptask_ended_locked};

static int ptask_ended_locked(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  return t->pool->kind == PEBBLE_PROCESS && pb_processes_ended_locked(r);
}

/* Cancelling a queued task: mark it; its worker will skip it. */
static void queued_cancel_locked(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  atomic_store(&t->stop_reason, PEBBLE_ECANCELED);
  if (t->pool->kind == PEBBLE_PROCESS)
    pb_processes_cancel_locked(r);
  else
    pb_thread_ptask_runner.cancel_locked(r);
}

/* Resolve every queued task with the pool's failure (no lock held). */
void pb_pool_fail_list(pebble_pool *P, pb_ptask *list, int state, int status,
                       const char *why) {
  pb_ptask *t, *next;
  for (t = list; t != NULL; t = next) {
    next = t->next;
    pb_pool_resolve(P, pb_ptask_future(t), state, status, pb_strdup(why), 0);
    pb_ptask_free(t);
  }
}

static pb_ptask *take_queue(pebble_pool *P) {
  pb_ptask *list;
  pb_pool_collect(P);
  list = P->head;
  count_taken(P, P->queued);
  P->head = P->tail = NULL;
  pb_flag_set(&P->has_work, 0);
  P->queued = 0;
  P->lib->bk->cond_broadcast(P->space);
  return list;
}

void pb_pool_break(pebble_pool *P, const char *why) {
  pb_pool_break_with(P, why, pb_format("the pool's initializer failed: %s",
                                       why));
}

void pb_pool_break_with(pebble_pool *P, const char *why, char *msg) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *list = NULL;
  bk->mutex_lock(P->lock);
  if (P->state == PB_POOL_OPEN || P->state == PB_POOL_CLOSED) {
    P->state = PB_POOL_BROKEN;
    atomic_store(&P->accepting, 0);
    P->broken_status = PEBBLE_EBROKEN;
    P->broken_message = msg;
    msg = NULL;
    list = take_queue(P);
    pb_threads_wake_all(P);
  }
  bk->mutex_unlock(P->lock);
  pb_log(PEBBLE_LOG_ERROR, "pool %p broken: %s", (void *)P, why);
  pb_pool_fail_list(P, list, PEBBLE_FAILED, PEBBLE_EBROKEN,
             P->broken_message ? P->broken_message : why);
  free(msg);
  pb_manager_post(P->manager, &P->kick);
}

/* Why the pool broke (its message may have found no memory). */
static const char *broken_why(const pebble_pool *P) {
  return P->broken_message ? P->broken_message
                           : "the pool's initializer failed";
}

/* Count one more task in, unless the queue may be full.
 * The count comes first, so schedulers racing for the last places cannot
 * all take them. */
static int reserve(pebble_pool *P) {
  size_t before = atomic_fetch_add(&P->sent, 1), taken;
  taken = atomic_load_explicit(&P->taken_seen, memory_order_relaxed);
  if (before < taken || before - taken < P->o.max_queued)
    return 1;
  taken = atomic_load(&P->taken);
  atomic_store_explicit(&P->taken_seen, taken, memory_order_relaxed);
  if (before < taken || before - taken < P->o.max_queued)
    return 1;
  atomic_fetch_sub(&P->sent, 1);
  return 0;
}

static int queue_full(pebble_pool *P) {
  size_t taken = atomic_load(&P->taken);
  return atomic_load(&P->sent) - taken >= P->o.max_queued;
}

/* Pool lock held: t joins the queue, behind what waits in the inbox. */
static void append_locked(pebble_pool *P, pb_ptask *t) {
  pb_pool_collect(P);
  t->next = NULL;
  if (P->tail != NULL)
    P->tail->next = t;
  else
    P->head = t;
  P->tail = t;
  P->queued++;
  pb_flag_set(&P->has_work, 1);
}

/* The common case needs no pool lock: the pool is open, the queue has
 * room, and a thread pool's workers are started (a process pool's queue
 * is not empty); t then goes on the inbox.  0 sends the caller to the
 * locked path, which knows what to do in the other cases. */
static int schedule_fast(pebble_pool *P, pb_ptask *t) {
  pb_ptask *top;
  if (!atomic_load_explicit(&P->accepting, memory_order_relaxed))
    return 0;
  /* A thread pool's locked path starts missing workers; a process pool's
   * gives a task that finds the queue empty straight to an idle worker,
   * so only a task that would wait behind others, or that no idle worker
   * waits for, skips it.  A stale `may_be_ready` costs no task: the
   * manager hands what it collects to a worker that is idle. */
  if (P->kind == PEBBLE_THREAD
          ? atomic_load_explicit(&P->active, memory_order_relaxed) <
                P->o.workers
          : !atomic_load_explicit(&P->has_work, memory_order_relaxed) &&
                atomic_load_explicit(&P->may_be_ready, memory_order_relaxed))
    return 0;
  if (!reserve(P))
    return 0;
  top = atomic_load_explicit(&P->inbox, memory_order_relaxed);
  do
    t->next = top;
  while (!atomic_compare_exchange_weak_explicit(
      &P->inbox, &top, t, memory_order_seq_cst, memory_order_relaxed));
  return 1;
}

/* After schedule_fast: a worker must come for t.  The checks are read in
 * sequentially consistent order after the push, and a worker going to
 * sleep lists itself before looking at the inbox, so either that worker
 * sees t or this sees the worker. */
static void wake_for_fast(pebble_pool *P) {
  const pebble_backend *bk = P->lib->bk;
  int spinning = 1;
  pebble_bk_cond *sleeper;
  if (atomic_load(&P->spinning) == 1 &&
      atomic_compare_exchange_strong(&P->spinning, &spinning, 2))
    return; /* the watching worker takes it */
  if (atomic_load(&P->sleepers) == NULL)
    return; /* every worker is busy: the first back takes it */
  bk->mutex_lock(P->lock);
  sleeper = pb_threads_take_sleeper(P);
  bk->mutex_unlock(P->lock);
  if (sleeper != NULL) /* after the unlock: it then finds the lock free */
    bk->cond_signal(sleeper);
}

/* The pool closed while t went on the inbox: if no worker has taken t
 * yet, take it back and refuse it (as the locked path would have); else
 * it was in time.  Workers and join look at the inbox after they see the
 * pool closed, so t is never left behind either way. */
static int retract(pebble_pool *P, pb_ptask *t) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *prev = NULL, *at;
  int rc = PEBBLE_OK;
  bk->mutex_lock(P->lock);
  pb_pool_collect(P);
  for (at = P->head; at != NULL && at != t; at = at->next)
    prev = at;
  if (at == t) {
    if (prev != NULL)
      prev->next = t->next;
    else
      P->head = t->next;
    if (P->tail == t)
      P->tail = prev;
    if (P->head == NULL)
      pb_flag_set(&P->has_work, 0);
    P->queued--;
    count_taken(P, 1);
    bk->cond_broadcast(P->idle); /* join may wait for the queue */
    if (P->state == PB_POOL_BROKEN)
      rc = pb_error(PEBBLE_EBROKEN, "%s", broken_why(P));
    else
      rc = pb_error(PEBBLE_ECLOSED, "the pool is %s",
                    P->state == PB_POOL_STOPPED ? "stopped" : "closed");
  }
  bk->mutex_unlock(P->lock);
  return rc;
}

/* Pool lock held, a task just placed: a scheduler woken for room that
 * is left (its task went straight to a worker, or more than one place came
 * free) hands the wake-up on to the next one waiting, if any, else that
 * one would sleep while the queue has room. */
static void pass_room_on(pebble_pool *P) {
  if (P->space_waiters > 0 && !queue_full(P))
    P->lib->bk->cond_signal(P->space);
}

/* A block for a new task and its future's id, from the pool's stash (see
 * pool.h), refilled when empty; NULL (and id 0) when another scheduler
 * holds the stash or there is no memory: the caller then takes the
 * library's way, which says which. */
static void *stash_take(pebble_pool *P, uint64_t *id) {
  void *block = NULL;
  *id = 0;
  if (atomic_exchange_explicit(&P->stash_busy, 1, memory_order_acquire))
    return NULL;
  if (P->stash_at == P->stash_n) {
    P->stash_at = 0;
    P->stash_n = (unsigned)pb_blocks_get_some(&P->lib->blocks, P->lib->bk,
                                              P->stash, PB_STASH);
  }
  if (P->stash_at < P->stash_n) {
    block = P->stash[P->stash_at++];
    if (P->id_next == P->id_end) {
      P->id_next = atomic_fetch_add(&P->lib->next_id, PB_STASH);
      P->id_end = P->id_next + PB_STASH;
    }
    *id = P->id_next++;
  }
  atomic_store_explicit(&P->stash_busy, 0, memory_order_release);
  return block;
}

/* Destroy: the stash's blocks go back to the library. */
static void stash_drain(pebble_pool *P) {
  while (P->stash_at < P->stash_n)
    pb_blocks_put(&P->lib->blocks, P->lib->bk, P->stash[P->stash_at++]);
  P->stash_at = P->stash_n = 0;
}

int pb_pool_schedule_internal(pebble_pool *P, pebble_task_fn fn, const void *arg,
                    size_t arg_size, const pebble_task_options *o,
                    pb_binding *binding, uint64_t seq,
                    pebble_future **future) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t;
  pebble_future *f;
  void *block, *stashed;
  uint64_t deadline, id = 0;
  size_t extra;
  int rc = PEBBLE_OK, wake, inline_arg, sent, timed_out;
  pebble_bk_cond *sleeper = NULL;

  if (arg_size > P->o.max_message_size || arg_size > o->max_message_size) {
    pb_binding_unref(binding);
    return pb_error(PEBBLE_ETOOBIG,
                    "argument of %zu bytes is larger than the maximum "
                    "message size",
                    arg_size);
  }
  if (pb_pool_uses_spawn(P)) {
    char name[PB_NAME_BYTES_MAX];
    if (pb_registry_name_of(fn, name, sizeof name) != PEBBLE_OK) {
      pb_binding_unref(binding);
      return pb_error(PEBBLE_ENOTFOUND,
                      "the task function is not registered: spawned "
                      "workers find tasks by name (pebble_register)");
    }
  }
  /* A future, its task and an argument of a few words share one block:
   * a field added to either must not cost every task a second malloc. */
  _Static_assert(PB_FUTURE_SPAN + sizeof(pb_ptask) + 16 <= PB_BLOCK_SIZE,
                 "a pool task and a 16-byte argument no longer fit the "
                 "future's block");
  inline_arg = arg_size <= PB_PTASK_INLINE_ARG;
  extra = sizeof *t + (inline_arg ? arg_size : sizeof(unsigned char *));
  stashed = PB_FUTURE_SPAN + extra <= PB_BLOCK_SIZE ? stash_take(P, &id)
                                                    : NULL;
  if ((rc = pb_future_new_in(P->lib, stashed, id, o->name, seq, binding,
                             extra, &f, &block)) != PEBBLE_OK) {
    pb_binding_unref(binding);
    return rc;
  }
  t = block;
  if (!inline_arg) {
    unsigned char *copy = malloc(arg_size);
    if (copy == NULL) {
      pb_future_put(f);
      return pb_error(PEBBLE_ENOMEM, "out of memory scheduling a task");
    }
    memcpy(t + 1, &copy, sizeof copy);
    t->arg_apart = 1;
  }
  f->process = P->kind == PEBBLE_PROCESS;
  t->runner.ops = &ptask_runner_ops;
  f->owner = P;
  t->pool = P;
  t->fn = fn;
  t->timeout = o->timeout == PEBBLE_DEFAULT ? P->o.task_timeout : o->timeout;
  t->arg_size = arg_size;
  atomic_init(&t->stop_reason, 0);
  if (arg_size > 0)
    memcpy(pb_ptask_arg(t), arg, arg_size);
  /* f is published by the inbox's exchange or the pool lock below. */
  atomic_store_explicit(&f->runner, &t->runner, memory_order_relaxed);

  pb_future_ref_new(f); /* the caller's, taken before the lock */
  if (schedule_fast(P, t)) {
    if (!atomic_load(&P->accepting) && (rc = retract(P, t)) != PEBBLE_OK) {
      f->runner = NULL;
      pebble_future_release(f);
      pb_ptask_free(t);
      return rc;
    }
    if (P->kind == PEBBLE_THREAD)
      wake_for_fast(P);
    else /* it collects the inbox, which the push wrote */
      pb_manager_post_seen(P->manager, &P->kick);
    *future = f;
    return PEBBLE_OK;
  }
  deadline = pb_deadline_after(bk, o->queue_wait);
  bk->mutex_lock(P->lock);
  for (;;) {
    if (P->state == PB_POOL_BROKEN) {
      rc = pb_error(PEBBLE_EBROKEN, "%s", broken_why(P));
      break;
    }
    if (P->state != PB_POOL_OPEN) {
      rc = pb_error(PEBBLE_ECLOSED, "the pool is %s",
                    P->state == PB_POOL_CLOSED ? "closed" : "stopped");
      break;
    }
    if (reserve(P))
      break;
    if (o->queue_wait == PEBBLE_NOWAIT) {
      rc = pb_error(PEBBLE_EWOULDBLOCK,
                    "the pool's queue is full (%zu tasks)", P->o.max_queued);
      break;
    }
    P->space_waiters++; /* pb_pool_unlink signals only while one waits */
    timed_out = bk->cond_wait(P->space, P->lock, deadline) == PEBBLE_ENOTREADY;
    P->space_waiters--;
    if (timed_out && queue_full(P) && P->state == PB_POOL_OPEN) {
      rc = pb_error(PEBBLE_EWOULDBLOCK,
                    "the pool's queue is full (%zu tasks)", P->o.max_queued);
      break;
    }
  }
  if (rc != PEBBLE_OK) {
    bk->mutex_unlock(P->lock);
    f->runner = NULL;
    pebble_future_release(f);
    pb_ptask_free(t);
    return rc;
  }
  /* A process task finding the queue empty goes straight to an idle
   * worker if there is one (after the tasks scheduled before it without
   * the lock, which the collect puts in the queue). */
  if (P->kind == PEBBLE_PROCESS)
    pb_pool_collect(P);
  if (P->kind == PEBBLE_PROCESS && P->head == NULL &&
      (sent = pb_processes_send_now(P, t)) != 0) {
    count_taken(P, 1); /* reserved, and taken at once */
    pass_room_on(P); /* this task took no place in the queue */
    bk->mutex_unlock(P->lock);
    if (sent == 2)
      pb_manager_post(P->manager, &P->kick);
    *future = f;
    return PEBBLE_OK;
  }
  append_locked(P, t);
  pass_room_on(P);
  wake = 1;
  if (P->kind == PEBBLE_THREAD) {
    int spinning = 1;
    wake = 0;
    /* A spinning worker takes the first task that comes without being
     * woken; then one signal per sleeper: a worker already signalled and
     * not yet running needs no second futex call. */
    if (atomic_compare_exchange_strong(&P->spinning, &spinning, 2)) {
      /* claimed */
    } else if ((sleeper = pb_threads_take_sleeper(P)) != NULL) {
      /* signalled after the unlock */
    } else if (P->active < P->o.workers && pb_threads_spawn(P) != PEBBLE_OK &&
             P->active == 0) {
      /* No thread at all and none can be made: fail what waits. */
      pb_ptask *list = take_queue(P);
      bk->mutex_unlock(P->lock);
      pb_pool_fail_list(P, list, PEBBLE_FAILED, PEBBLE_ESYSTEM,
                 "the system refused a thread for the pool");
      *future = f;
      return PEBBLE_OK;
    }
  }
  bk->mutex_unlock(P->lock);
  if (sleeper != NULL)
    bk->cond_signal(sleeper);
  if (wake)
    pb_manager_post(P->manager, &P->kick);
  *future = f;
  return PEBBLE_OK;
}

/* What pebble_task_options_init() gives, but for the message size limit,
 * which NULL options take from the library when they are used. */
static const pebble_task_options task_defaults = {
    .struct_size = sizeof(pebble_task_options),
    .timeout = PEBBLE_DEFAULT,
    .max_message_size = SIZE_MAX,
    .queue_wait = PEBBLE_FOREVER,
    .start_method = PEBBLE_START_DEFAULT};

int pebble_pool_schedule(pebble_pool *P, pebble_task_fn fn, const void *arg,
                         size_t arg_size, const pebble_task_options *opts,
                         pebble_future **future) {
  pebble_task_options o;
  pb_binding *b = NULL;
  int rc;
  if (future == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_schedule: future is NULL");
  *future = NULL;
  CHECK_POOL(P, "pebble_pool_schedule");
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_schedule: fn is NULL");
  if (arg == NULL && arg_size > 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_schedule: arg is NULL but arg_size is %zu",
                    arg_size);
  if (opts == NULL) {
    /* The defaults are read in place, not copied into each call: only
     * the message size limit is the library's of the moment. */
    if (arg_size > pebble_max_message_size()) {
      return pb_error(PEBBLE_ETOOBIG,
                      "argument of %zu bytes is larger than the maximum "
                      "message size",
                      arg_size);
    }
    return pb_pool_schedule_internal(P, fn, arg, arg_size, &task_defaults,
                                     NULL, 0, future);
  }
  if ((rc = pb_task_options_read(opts, &o, "pebble_pool_schedule")) != 0)
    return rc;
  if (o.callback != NULL &&
      (b = pb_binding_new(o.callback, o.callback_data, NULL)) == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory scheduling a task");
  return pb_pool_schedule_internal(P, fn, arg, arg_size, &o, b, 0, future);
}

int pebble_pool_schedule_task(pebble_pool *P, pebble_task *task,
                              const void *arg, size_t arg_size,
                              pebble_future **future) {
  pb_task_view v;
  int rc;
  if (future == NULL)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_schedule_task: future is NULL");
  *future = NULL;
  CHECK_POOL(P, "pebble_pool_schedule_task");
  if (arg == NULL && arg_size > 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_schedule_task: arg is NULL but arg_size is "
                    "%zu",
                    arg_size);
  if ((rc = pb_task_view_get(task, &v)) != PEBBLE_OK)
    return rc;
  return pb_pool_schedule_internal(P, v.fn, arg, arg_size, v.opts, v.binding,
                                   v.seq, future);
}

int pebble_pool_close(pebble_pool *P) {
  CHECK_POOL(P, "pebble_pool_close");
  P->lib->bk->mutex_lock(P->lock);
  if (P->state == PB_POOL_OPEN)
    P->state = PB_POOL_CLOSED;
  atomic_store(&P->accepting, 0);
  pb_threads_wake_all(P);
  P->lib->bk->cond_broadcast(P->space);
  P->lib->bk->mutex_unlock(P->lock);
  pb_manager_post(P->manager, &P->kick);
  return PEBBLE_OK;
}

/* Out of memory for the list of running tasks: cancel them one at a
 * time, looking again after each (no new task starts once stopped). */
static void cancel_running_one_by_one(pebble_pool *P) {
  const pebble_backend *bk = P->lib->bk;
  for (;;) {
    pebble_future *f = NULL;
    pb_pworker *w;
    bk->mutex_lock(P->lock);
    for (w = P->workers; w != NULL && f == NULL; w = w->next)
      if (w->task != NULL && !pb_future_is_resolved(pb_ptask_future(w->task))) {
        f = pb_ptask_future(w->task);
        pb_future_hold(f);
      }
    bk->mutex_unlock(P->lock);
    if (f == NULL)
      return;
    pebble_future_cancel(f); /* resolves it, or waits for who does */
    pb_future_put(f);
  }
}

int pebble_pool_stop(pebble_pool *P) {
  const pebble_backend *bk;
  pb_ptask *list = NULL;
  pebble_future **running = NULL;
  size_t n = 0, i;
  pb_pworker *w;

  CHECK_POOL(P, "pebble_pool_stop");
  bk = P->lib->bk;
  bk->mutex_lock(P->lock);
  if (P->state != PB_POOL_STOPPED) {
    P->state = PB_POOL_STOPPED;
    atomic_store(&P->accepting, 0);
    list = take_queue(P);
  }
  /* Collect the running tasks to cancel them without the pool lock. */
  for (w = P->workers; w != NULL; w = w->next)
    if (w->task != NULL)
      n++;
  if (n > 0 && (running = malloc(n * sizeof *running)) != NULL) {
    n = 0;
    for (w = P->workers; w != NULL; w = w->next)
      if (w->task != NULL) {
        pb_future_hold(pb_ptask_future(w->task));
        running[n++] = pb_ptask_future(w->task);
      }
  } else {
    n = 0;
  }
  pb_threads_wake_all(P);
  bk->mutex_unlock(P->lock);

  pb_pool_fail_list(P, list, PEBBLE_CANCELLED, PEBBLE_ECANCELED,
             "the task was cancelled: its pool was stopped");
  for (i = 0; i < n; i++) {
    pebble_future_cancel(running[i]); /* kills or flags; counts it */
    pb_future_put(running[i]);
  }
  if (running == NULL)
    cancel_running_one_by_one(P);
  free(running);
  pb_manager_post(P->manager, &P->kick);
  return PEBBLE_OK;
}

int pebble_pool_join(pebble_pool *P, pebble_time_t timeout) {
  const pebble_backend *bk;
  uint64_t deadline;
  int rc = PEBBLE_OK;

  CHECK_POOL(P, "pebble_pool_join");
  if (timeout < 0 && timeout != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_join: timeout is negative");
  if (pb_role.pool == P || pb_role.callback_owner == P ||
      pb_role.library_thread)
    return pb_error(PEBBLE_EDEADLK,
                    "pebble_pool_join: called from a task or a callback of "
                    "this pool, which the join would wait for");
  bk = P->lib->bk;
  deadline = pb_deadline_after(bk, timeout);
  bk->mutex_lock(P->lock);
  if (P->state == PB_POOL_OPEN) {
    bk->mutex_unlock(P->lock);
    return pb_error(PEBBLE_ESTATE, "pebble_pool_join: the pool is still "
                                   "open; close or stop it first");
  }
  while (P->alive > 0 || pb_pool_has_queued(P)) {
    if (timeout == PEBBLE_NOWAIT ||
        (bk->cond_wait(P->idle, P->lock, deadline) == PEBBLE_ENOTREADY &&
         (P->alive > 0 || pb_pool_has_queued(P)))) {
      rc = pb_error(PEBBLE_ENOTREADY,
                    "pebble_pool_join: %u workers are still busy", P->alive);
      break;
    }
  }
  bk->mutex_unlock(P->lock);
  if (P->kind == PEBBLE_THREAD)
    pb_threads_reap(P);
  return rc;
}

/* Runs on the manager thread: forget the pool, then tell destroy. */
static void detach(pb_manager *m, pb_cmd *cmd) {
  pebble_pool *P = PB_CONTAINER(cmd, pebble_pool, farewell);
  pb_manager_deactivate(m, &P->watch);
  P->lib->bk->mutex_lock(P->lock);
  P->sync_done = 1;
  P->lib->bk->cond_broadcast(P->idle);
  P->lib->bk->mutex_unlock(P->lock);
}

int pebble_pool_destroy(pebble_pool *P) {
  const pebble_backend *bk;
  int rc;
  if (P == NULL)
    return PEBBLE_OK;
  CHECK_POOL(P, "pebble_pool_destroy");
  if (pb_role.pool == P || pb_role.callback_owner == P ||
      pb_role.library_thread)
    return pb_error(PEBBLE_EDEADLK,
                    "pebble_pool_destroy: called from a task or a callback "
                    "of this pool");
  bk = P->lib->bk;
  pebble_pool_stop(P);
  rc = pebble_pool_join(P, PEBBLE_FOREVER);
  if (rc != PEBBLE_OK)
    return rc;
  /* The manager may still hold the kick command or the watch: hand it a
   * last command, run after anything queued before, and wait for it. */
  pb_manager_post(P->manager, &P->farewell);
  bk->mutex_lock(P->lock);
  while (!P->sync_done)
    bk->cond_wait(P->idle, P->lock, PEBBLE_BK_FOREVER);
  bk->mutex_unlock(P->lock);
  pb_manager_adopt(P->manager, -1);
  /* The pool's burst of tasks is over: give back its spare blocks. */
  stash_drain(P);
  pb_blocks_trim(&P->lib->blocks, bk);
  pb_lib_drop(P->lib);
  pool_free(P);
  return PEBBLE_OK;
}

int pebble_pool_stats_get(pebble_pool *P, pebble_pool_stats *stats) {
  pebble_pool_stats s;
  uint64_t counts[PB_COUNTS];
  pb_pworker *w;
  size_t n;
  int slot;
  CHECK_POOL(P, "pebble_pool_stats_get");
  if (stats == NULL || stats->struct_size == 0)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_stats_get: stats is NULL or "
                                   "its struct_size is not set");
  memset(&s, 0, sizeof s);
  P->lib->bk->mutex_lock(P->lock);
  /* Under the lock: an ending worker moves its counts to the pool's. */
  for (slot = 0; slot < PB_COUNTS; slot++) {
    counts[slot] = atomic_load(&P->counts[slot]);
    for (w = P->workers; w != NULL; w = w->next)
      counts[slot] += atomic_load(&w->counts[slot]);
  }
  s.workers_alive = P->alive;
  s.workers_abandoned = P->abandoned;
  {
    /* Admitted and not taken (in the queue or the inbox), and a process
     * pool's tasks sent ahead, which have not started either. */
    size_t taken = atomic_load(&P->taken); /* first: sent is never less */
    s.queued = atomic_load(&P->sent) - taken + P->ahead;
  }
  s.running = P->running;
  P->lib->bk->mutex_unlock(P->lock);
  s.done = counts[PB_COUNT_DONE];
  s.failed = counts[PB_COUNT_FAILED];
  s.timed_out = counts[PB_COUNT_TIMED_OUT];
  s.cancelled = counts[PB_COUNT_CANCELLED];
  s.worker_restarts = atomic_load(&P->restarts);
  s.sent_ahead = atomic_load(&P->sent_ahead);
  s.remote_restarts = atomic_load(&P->remote_restarts);
  s.remote_lost = atomic_load(&P->remote_lost);
  n = stats->struct_size < sizeof s ? stats->struct_size : sizeof s;
  s.struct_size = stats->struct_size;
  memcpy(stats, &s, n);
  return PEBBLE_OK;
}

/* ---- observing a pool ---- */

int pebble_pool_state_get(pebble_pool *P, pebble_pool_state *state) {
  int st;
  if (state != NULL)
    *state = PEBBLE_POOL_OPEN;
  CHECK_POOL(P, "pebble_pool_state_get");
  if (state == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_state_get: state is NULL");
  P->lib->bk->mutex_lock(P->lock);
  st = P->state;
  P->lib->bk->mutex_unlock(P->lock);
  switch (st) {
  case PB_POOL_CLOSED:
    *state = PEBBLE_POOL_CLOSED;
    break;
  case PB_POOL_STOPPED:
    *state = PEBBLE_POOL_STOPPED;
    break;
  case PB_POOL_BROKEN:
    *state = PEBBLE_POOL_BROKEN;
    break;
  default:
    *state = PEBBLE_POOL_OPEN;
    break;
  }
  return PEBBLE_OK;
}

int pebble_pool_worker_pids(pebble_pool *P, long *pids, size_t cap,
                            size_t *count) {
  pb_pworker *w;
  size_t n = 0;
  if (count != NULL)
    *count = 0;
  CHECK_POOL(P, "pebble_pool_worker_pids");
  if (count == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_worker_pids: count is NULL");
  if (pids == NULL && cap > 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_worker_pids: pids is NULL but cap is %zu",
                    cap);
  if (P->kind != PEBBLE_PROCESS)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_pool_worker_pids: a thread pool's workers are "
                    "threads of this process");
  P->lib->bk->mutex_lock(P->lock);
  for (w = P->workers; w != NULL; w = w->next, n++)
    if (n < cap)
      pids[n] = w->pid;
  P->lib->bk->mutex_unlock(P->lock);
  *count = n;
  return PEBBLE_OK;
}
