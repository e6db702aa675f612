/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_threads.c -- the workers of a thread pool.
 *
 * Worker threads take tasks from the pool's queue.  A running thread
 * cannot be killed, so a task that times out or is cancelled is resolved
 * at once and flagged (pebble_should_stop); its thread is then
 * "abandoned": it no longer counts as a worker, and the pool may start a
 * replacement so the queue keeps moving.  At most max_abandoned such extra
 * threads exist at a time; beyond that the queue waits for an abandoned
 * thread to return, which then works again (or ends if the pool has
 * enough workers).  No thread is ever detached: the manager joins threads
 * that have ended, and join/destroy join the rest.
 *
 * The manager thread enforces deadlines: the pool has one watch whose
 * deadline is the nearest among its running tasks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

static void worker_main(void *arg);
static void worker_unwound(void *arg);

/* The outcome of t is counted by the thread that won its future: its
 * worker, if that worker is resolving t itself (then it alone writes its
 * counters: a resolver that lost waits for the winner to settle, and the
 * worker frees t, which waits for any settle, before its next task), else
 * the pool's counters.  No thread-local look-up. */
int pb_threads_count_own(pb_ptask *t, int status) {
  pb_pworker *w = atomic_load_explicit(&t->thread_worker,
                                       memory_order_relaxed);
  if (w == NULL ||
      atomic_load_explicit(&w->resolving, memory_order_relaxed) != t)
    return 0;
  pb_worker_count(w, status);
  return 1;
}

/* A running task was cancelled (stripe lock held): the manager moves its
 * thread to the abandoned ones. */
static void thread_cancel_locked(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  pb_manager_post(t->pool->manager, &t->pool->kick);
}
const pb_runner_ops pb_thread_ptask_runner = {thread_cancel_locked, NULL,
                                              NULL};

/* A record for a new thread: a joined thread's, or a new one with its
 * condition (pool lock held).  A reused record keeps its condition, which
 * a scheduler may still be signalling (pb_threads_take_sleeper). */
static pb_pworker *worker_record(pebble_pool *P) {
  pb_pworker *w = P->spare_threads;
  pebble_bk_cond *wake;
  if (w != NULL) {
    P->spare_threads = w->next;
    wake = w->wake;
  } else {
    if ((w = malloc(sizeof *w)) == NULL)
      return NULL;
    if (P->lib->bk->cond_create(&wake) != PEBBLE_OK) {
      free(w);
      return NULL;
    }
  }
  memset(w, 0, sizeof *w);
  w->wake = wake;
  return w;
}

static void worker_record_free(pebble_pool *P, pb_pworker *w) {
  P->lib->bk->cond_destroy(w->wake);
  free(w);
}

void pb_threads_free_spares(pebble_pool *P) {
  pb_pworker *w;
  while ((w = P->spare_threads) != NULL) {
    P->spare_threads = w->next;
    worker_record_free(P, w);
  }
}

/* Pool lock held.  PEBBLE_EBUSY when the cap on threads is reached.  A
 * thread on its way out (its last task done, its record about to be
 * handed in) is not counted: a worker at max_tasks whose replacement
 * were refused for it would work on past its limit. */
int pb_threads_spawn(pebble_pool *P) {
  pb_pworker *w;
  int rc;
  if (P->alive - P->leaving >= P->o.workers + P->o.max_abandoned)
    return PEBBLE_EBUSY;
  w = worker_record(P);
  if (w == NULL)
    return PEBBLE_ENOMEM;
  w->pool = P;
  w->state = PB_W_IDLE;
  w->deadline = PEBBLE_BK_FOREVER;
  rc = P->lib->bk->thread_create(&w->thread, worker_main, worker_unwound, w,
                                 0);
  if (rc != PEBBLE_OK) {
    w->next = P->spare_threads; /* never ran: nothing can signal it */
    P->spare_threads = w;
    pb_log(PEBBLE_LOG_ERROR, "pool %p: cannot start a thread: %s", (void *)P,
           pebble_strerror(rc));
    return PEBBLE_ESYSTEM;
  }
  w->next = P->workers;
  P->workers = w;
  P->alive++;
  P->active++;
  return PEBBLE_OK;
}

pebble_bk_cond *pb_threads_take_sleeper(pebble_pool *P) {
  pb_pworker *w = atomic_load_explicit(&P->sleepers, memory_order_relaxed);
  if (w == NULL)
    return NULL;
  atomic_store(&P->sleepers, w->next_sleeper);
  w->signalled = 1;
  return w->wake;
}

void pb_threads_wake_all(pebble_pool *P) {
  pebble_bk_cond *wake;
  while ((wake = pb_threads_take_sleeper(P)) != NULL)
    P->lib->bk->cond_signal(wake);
}

/* Pool lock held: w woke without a signal (or found work before it
 * slept): off the list, unless a waker took it off already. */
static void unlist_sleeper(pebble_pool *P, pb_pworker *w) {
  pb_pworker *at, *before = NULL;
  if (w->signalled)
    return;
  for (at = atomic_load_explicit(&P->sleepers, memory_order_relaxed);
       at != w; at = at->next_sleeper)
    before = at; /* listed until it is taken off: at never runs out */
  if (before != NULL)
    before->next_sleeper = w->next_sleeper;
  else
    atomic_store(&P->sleepers, w->next_sleeper);
}

/* Pool lock held: w's task t timed out or was cancelled. */
static void abandon(pebble_pool *P, pb_pworker *w) {
  if (w->abandoned)
    return;
  w->abandoned = 1;
  P->abandoned++;
  P->active--;
  if (pb_pool_has_queued(P) && P->state != PB_POOL_STOPPED &&
      P->state != PB_POOL_BROKEN)
    pb_threads_spawn(P); /* refused past the cap: the queue then waits */
}

/* The worker leaves (pool lock held). */
static void worker_exit(pebble_pool *P, pb_pworker *w, int counted) {
  if (counted)
    P->active--;
  w->state = PB_W_EXITED;
  pb_worker_fold_counts(P, w);
  P->alive--;
  P->lib->bk->cond_broadcast(P->idle);
}

/* role: this thread's pb_role (its address looked up once a thread). */
static void run_task(pb_pworker *w, pb_thread_role *role, pb_ptask *t) {
  pebble_future *f = pb_ptask_future(t);
  pebble_ctx ctx;
  pb_outcome o;
  int ret;
  pb_ctx_init(&ctx, &t->stop_reason, w->pool->o.max_message_size, f->id,
              pb_future_seq_of(f));
  role->running_future = f;
  ret = t->fn(&ctx, pb_ptask_arg(t), t->arg_size);
  role->running_future = NULL;
  pb_ctx_outcome(&ctx, ret, &o);
  pb_ptask_keep_result(t, &o);
  /* Counted in w's counters as it settles (pb_threads_count_own). */
  atomic_store_explicit(&w->resolving, t, memory_order_relaxed);
  if (!pb_future_resolve(f, &o, 1))
    pb_outcome_discard(&o); /* late: timed out or cancelled meanwhile */
  atomic_store_explicit(&w->resolving, NULL, memory_order_relaxed);
}

static int has_work(void *pool, unsigned turn) {
  pebble_pool *P = pool;
  (void)turn;
  return atomic_load_explicit(&P->has_work, memory_order_relaxed) ||
         atomic_load_explicit(&P->inbox, memory_order_relaxed) != NULL;
}

static void worker_main(void *arg) {
  pb_pworker *w = arg;
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  int counted = 1, kick, spun = 0, nothing_to_fault = 0;
  int leaving = 0; /* counted in P->leaving */
  uint64_t gave_up = 0; /* when this worker's last spin timed out */
  pb_ptask *finished = NULL; /* freed once the pool lock is released */

  pb_thread_role *role = &pb_role;
  role->pool = P;
  if (P->o.initializer != NULL) {
    pebble_ctx ctx;
    int ret;
    pb_ctx_init(&ctx, NULL, P->o.max_message_size, 0, 0);
    ret = P->o.initializer(&ctx, P->init_arg, P->o.initializer_arg_size);
    pb_ctx_free_result(&ctx);
    if (ret != 0) {
      if (!ctx.has_message)
        snprintf(ctx.message, sizeof ctx.message, "it returned %d", ret);
      pb_pool_break(P, ctx.message);
    }
  }
  bk->mutex_lock(P->lock);
  for (;;) {
    pb_ptask *t;
    if (P->state == PB_POOL_STOPPED || P->state == PB_POOL_BROKEN)
      break;
    t = pb_pool_pop(P);
    if (t == NULL) {
      if (P->state != PB_POOL_OPEN) {
        /* A task scheduled by a caller that saw the pool open is in the
         * inbox by now (schedule_fast): look once more. */
        if (pb_pool_has_queued(P))
          continue;
        break;
      }
      if (finished != NULL) {
        bk->mutex_unlock(P->lock);
        pb_ptask_free(finished);
        finished = NULL;
        bk->mutex_lock(P->lock);
        continue;
      }
      if (!nothing_to_fault &&
          atomic_load_explicit(&P->lib->blocks.fault_wanted,
                               memory_order_relaxed)) {
        /* The scheduler is cutting blocks from fresh memory: fault its
         * next pages in meanwhile, rather than wait for it.  The lock was
         * let go: the pool is looked at again (a close or a stop may have
         * come), and once there is nothing to fault in, the worker spins
         * and sleeps. */
        bk->mutex_unlock(P->lock);
        nothing_to_fault = !pb_blocks_prefault(&P->lib->blocks, bk);
        bk->mutex_lock(P->lock);
        continue;
      }
      if (!spun && atomic_load(&P->spinning) == 0 && pb_spin_allowed()) {
        /* One worker at a time watches for the next task before
         * sleeping: a task scheduled meanwhile needs no wake-up. */
        atomic_store(&P->spinning, 1);
        bk->mutex_unlock(P->lock);
        pb_spin_wait(bk, &P->spin, has_work, P, &gave_up);
        bk->mutex_lock(P->lock);
        atomic_store(&P->spinning, 0);
        spun = 1;
        continue;
      }
      /* Listed before the inbox is looked at (both sequentially
       * consistent): a caller scheduling without the lock then either
       * sees this worker and wakes it, or its task is seen here
       * (wake_for_fast). */
      w->signalled = 0;
      w->next_sleeper = atomic_load_explicit(&P->sleepers,
                                             memory_order_relaxed);
      atomic_store(&P->sleepers, w);
      if (atomic_load(&P->inbox) == NULL)
        bk->cond_wait(w->wake, P->lock, PEBBLE_BK_FOREVER);
      unlist_sleeper(P, w);
      continue;
    }
    if (gave_up != 0) {
      pb_spin_slept(bk, &P->spin, gave_up);
      gave_up = 0;
    }
    spun = nothing_to_fault = 0;
    w->task = t;
    atomic_store_explicit(&t->thread_worker, w, memory_order_relaxed);
    w->state = PB_W_BUSY;
    P->running++;
    kick = 0;
    if (t->timeout != PEBBLE_FOREVER) {
      w->deadline = pb_deadline_after(bk, t->timeout);
      kick = w->deadline < P->watch.deadline; /* the manager must know */
    }
    bk->mutex_unlock(P->lock);
    if (finished != NULL) {
      pb_ptask_free(finished);
      finished = NULL;
    }
    if (kick)
      pb_manager_post(P->manager, &P->kick);
    run_task(w, role, t);
    bk->mutex_lock(P->lock);
    w->task = NULL;
    w->state = PB_W_IDLE;
    w->deadline = PEBBLE_BK_FOREVER;
    P->running--;
    w->tasks_run++;
    finished = t;
    if (w->abandoned) {
      /* Back from an abandoned task: work again only if needed. */
      w->abandoned = 0;
      P->abandoned--;
      if (P->active >= P->o.workers) {
        counted = 0;
        break;
      }
      P->active++;
    }
    if (P->o.max_tasks > 0 && w->tasks_run >= P->o.max_tasks) {
      /* Counted as leaving before it asks for its replacement, or the
       * cap on threads would count it against the thread replacing it. */
      P->active--;
      P->leaving++;
      leaving = 1;
      if ((P->state == PB_POOL_OPEN || pb_pool_has_queued(P)) &&
          pb_threads_spawn(P) != PEBBLE_OK && P->active == 0) {
        /* No replacement and no other worker: this one works on past
         * its limit rather than leave the queue to nobody. */
        P->leaving--;
        leaving = 0;
        P->active++;
        w->tasks_run = 0;
        continue;
      }
      counted = 0;
      atomic_fetch_add(&P->restarts, 1);
      break;
    }
  }
  if (finished != NULL) {
    if (!leaving)
      P->leaving++;
    leaving = 1;
    bk->mutex_unlock(P->lock);
    pb_ptask_free(finished);
    bk->mutex_lock(P->lock);
  }
  if (leaving)
    P->leaving--;
  /* Ask to be joined while the pool surely exists: once alive drops and
   * the lock is released, destroy may free it. */
  pb_manager_post(P->manager, &P->kick);
  worker_exit(P, w, counted);
  bk->mutex_unlock(P->lock);
}

/* The task ended its thread (pthread_exit): fail it, replace the thread. */
static void worker_unwound(void *arg) {
  pb_pworker *w = arg;
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t;
  pb_role.running_future = NULL;
  pb_role.callbacks = 0;
  bk->mutex_lock(P->lock);
  t = w->task;
  bk->mutex_unlock(P->lock);
  if (t != NULL)
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, PEBBLE_ETASK,
                    pb_strdup("the thread task ended its thread without "
                              "returning (pthread_exit)"),
                    0);
  bk->mutex_lock(P->lock);
  if (t != NULL) {
    w->task = NULL;
    P->running--;
    pb_ptask_free(t);
  }
  if (w->abandoned) {
    P->abandoned--;
    worker_exit(P, w, 0);
  } else {
    worker_exit(P, w, 1);
  }
  atomic_fetch_add(&P->restarts, 1);
  if (P->state == PB_POOL_OPEN || pb_pool_has_queued(P))
    pb_threads_spawn(P);
  pb_manager_post(P->manager, &P->kick); /* before the lock goes */
  bk->mutex_unlock(P->lock);
}

void pb_threads_reap(pebble_pool *P) {
  const pebble_backend *bk = P->lib->bk;
  pb_pworker *gone = NULL, **pp, *w;
  bk->mutex_lock(P->lock);
  for (pp = &P->workers; (w = *pp) != NULL;) {
    if (w->state == PB_W_EXITED) {
      *pp = w->next;
      w->next = gone;
      gone = w;
    } else {
      pp = &w->next;
    }
  }
  bk->mutex_unlock(P->lock);
  if (gone == NULL)
    return;
  for (w = gone; w != NULL; w = w->next)
    bk->thread_join(w->thread);
  /* Kept, not freed: a scheduler may still signal the condition of a
   * record it took off the sleepers before its thread ended
   * (pb_pworker.wake). */
  bk->mutex_lock(P->lock);
  while ((w = gone) != NULL) {
    gone = w->next;
    w->next = P->spare_threads;
    P->spare_threads = w;
  }
  bk->mutex_unlock(P->lock);
}

/* Manager thread: time out due tasks, abandon cancelled ones, and set the
 * pool's watch to the nearest deadline left. */
static void scan(pb_manager *m, pebble_pool *P) {
  const pebble_backend *bk = P->lib->bk;
  uint64_t now, next;
  pb_pworker *w;
again:
  now = bk->now_ns();
  next = PEBBLE_BK_FOREVER;
  bk->mutex_lock(P->lock);
  for (w = P->workers; w != NULL; w = w->next) {
    pb_ptask *t = w->task;
    if (t == NULL || w->abandoned)
      continue;
    if (atomic_load(&t->stop_reason) != 0) {
      abandon(P, w); /* cancelled: its future is resolved already */
      continue;
    }
    if (w->deadline <= now) {
      pebble_future *f = pb_ptask_future(t);
      w->deadline = PEBBLE_BK_FOREVER;
      pb_future_hold(f);
      bk->mutex_unlock(P->lock);
      if (pb_pool_resolve(P, f, PEBBLE_FAILED, PEBBLE_ETIMEDOUT,
                          pb_pool_timeout_message(t->timeout), 0)) {
        atomic_store(&t->stop_reason, PEBBLE_ETIMEDOUT);
      }
      pb_future_put(f);
      goto again; /* the list may have changed meanwhile */
    }
    if (w->deadline < next)
      next = w->deadline;
  }
  P->watch.deadline = next;
  bk->mutex_unlock(P->lock);
  pb_manager_activate(m, &P->watch);
}

void pb_threads_deadline(pb_manager *m, pb_watch *w, uint64_t now) {
  (void)now;
  scan(m, PB_CONTAINER(w, pebble_pool, watch));
}

void pb_threads_kick(pb_manager *m, pb_cmd *cmd) {
  pebble_pool *P = PB_CONTAINER(cmd, pebble_pool, kick);
  scan(m, P);
  pb_threads_reap(P);
}
