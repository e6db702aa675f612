/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_processes.c -- the workers of a process pool.
 *
 * Everything here runs on the manager thread, except the worker's own
 * loop, which runs in the forked child.  Each worker has its own channel:
 * a worker killed at any moment, even halfway through a message, breaks
 * only its own channel and its own task.  The manager hands a task to an
 * idle worker, reads the outcome, enforces the deadline (kill, then
 * replace), and replaces workers that die.  Replacing workers that die
 * before doing any work backs off (10 ms doubling up to 1 s after three in
 * a row), so a broken environment cannot become a fork storm; tasks that
 * crash their worker are not throttled, since each crash consumes its
 * task.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/mman.h>
#endif

#include "pool.h"

#define PB_READ_SLICE ((size_t)16 << 20)
/* A task goes back to the queue when its worker dies before any byte of
 * it got through; after this many such workers in a row it fails. */
#define PB_REQUEUE_MAX 3
#define BACKOFF_AFTER 3
#define BACKOFF_MIN_NS ((uint64_t)10 * 1000 * 1000)
#define BACKOFF_MAX_NS ((uint64_t)1000 * 1000 * 1000)
/* A pool with no worker fails its queued tasks when the system refused
 * this many worker starts in a row (a moment without processes or memory
 * passes; a program that cannot start does not). */
#define START_TRIES 3

static void worker_events(pb_manager *m, pb_watch *ww, unsigned events);
static pb_ptask *detach_task(pebble_pool *P, pb_pworker *w, int *killed,
                             int exit_follows);
static void flush_out(pb_manager *m, pb_pworker *w);
static void worker_deadline(pb_manager *m, pb_watch *ww, uint64_t now);
static size_t send_ahead(pebble_pool *P, pb_pworker *w, unsigned upto);
static void read_worker(pb_manager *m, pb_pworker *w, size_t budget);

/* Tasks sent ahead.  A busy worker may hold a few tasks behind the one it
 * runs, so that it starts the next as soon as it has sent a result, with
 * no wait for the manager's turn (the chain worker -> manager -> worker
 * that otherwise costs every task two wake-ups).  Nothing can take such a
 * task back from a worker while it runs the one before, so it is done
 * only while the pool's recent tasks were short, for untimed tasks with
 * small arguments, never behind a task with a timeout, never beyond
 * max_tasks.  The task stays pending until the worker says it starts it
 * (STARTED); a cancel asks the worker to skip it (SKIP, answered
 * SKIPPED); if the worker dies first, the task goes back to the queue. */
#define PB_AHEAD_MAX 32u
#define PB_AHEAD_ARG_MAX 4096u
#define PB_AHEAD_SHORT_NS ((uint64_t)500 * 1000)
/* Up to PB_AHEAD_MAX tasks go ahead to a worker; more, up to
 * PB_AHEAD_MOST, while the pool's recent tasks are so short that as many
 * add up to at most PB_AHEAD_BUDGET_NS of work (or always, with
 * PEBBLE_SEND_AHEAD_ALWAYS: the application says its tasks are short).
 * A worker that holds a few hundred tasks of a few microseconds each
 * reads them in a few system calls and seldom runs dry (each time it
 * does, it sleeps, and the next task pays its wake-up); the work held
 * behind a task that turns out long stays within the budget. */
#define PB_AHEAD_MOST 512u
#define PB_AHEAD_BUDGET_NS ((uint64_t)2 * 1000 * 1000)

/* ================= the child ================= */

static int worker_child_main(void *arg, pebble_bk_chan *chan) {
  pb_pworker *w = arg;
  pebble_pool *P = w->pool;
  pb_worker_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.max_message = P->o.max_message_size;
  cfg.max_tasks = P->o.max_tasks;
  cfg.initializer = P->o.initializer;
  cfg.init_arg = P->init_arg;
  cfg.init_arg_size = P->o.initializer_arg_size;
  cfg.page = atomic_load(&w->page);
  return pb_worker_serve(P->lib->bk, chan, &cfg);
}

int pb_pool_uses_spawn(const pebble_pool *P) {
  return P->kind == PEBBLE_PROCESS && pb_lib_spawns(P->lib, P->o.start_method);
}

/* The settings a spawned worker cannot inherit; a worker on this host is
 * asked for its page (worker_page.c). */
static int config_message(pb_pworker *w) {
  pebble_pool *P = w->pool;
  pb_msg_header h;
  uint64_t head[3];
  char name[PB_NAME_BYTES_MAX];
  size_t nlen = 0, size;
  if (P->o.initializer != NULL) {
    if (pb_registry_name_of(P->o.initializer, name, sizeof name) != 0)
      return PEBBLE_ENOTFOUND; /* checked at creation */
    nlen = strlen(name);
  }
  head[0] = P->o.max_message_size;
  head[1] = P->o.max_tasks;
  head[2] = nlen;
  size = sizeof head + nlen + P->o.initializer_arg_size;
  w->out = malloc(sizeof h + size);
  if (w->out == NULL)
    return PEBBLE_ENOMEM;
  pb_msg_fill(&h, PB_MSG_CONFIG, w->remote ? 0 : PB_CONFIG_PAGE, size);
  memcpy(w->out, &h, sizeof h);
  memcpy(w->out + sizeof h, head, sizeof head);
  memcpy(w->out + sizeof h + sizeof head, name, nlen);
  if (P->o.initializer_arg_size > 0)
    memcpy(w->out + sizeof h + sizeof head + nlen, P->init_arg,
           P->o.initializer_arg_size);
  w->out_size = sizeof h + size;
  w->out_done = 0;
  return PEBBLE_OK;
}

/* ================= the manager's side ================= */

/* Set while an application thread reads a worker's outcomes in the
 * manager's place (pb_processes_wait_direct). */
static PB_TLS int reading_direct;
static PB_TLS int direct_kick; /* and the manager thread has work */

static void watch_worker(pb_manager *m, pb_pworker *w) {
  unsigned ev = PEBBLE_EV_EXIT;
  if (!w->reader.eof)
    ev |= PEBBLE_EV_READ;
  if (w->out != NULL)
    ev |= PEBBLE_EV_WRITE;
  w->pool->lib->bk->waitset_watch(pb_manager_waitset(m), w->proc, ev,
                                  &w->watch);
}

/* w's channel has given part of a message header. */
static int chan_part_header(const pb_pworker *w) {
  return w->reader.header_got > 0 &&
         w->reader.header_got < sizeof w->reader.header_buf;
}

/* Pool lock held: w may take a scheduler's task directly, so schedulers
 * look for a ready worker again (pb_processes_send_now clears the flag
 * when it finds none). */
static void mark_ready(pebble_pool *P, pb_pworker *w) {
  w->ready = 1;
  pb_flag_set(&P->may_be_ready, 1);
}

/* Call through start_worker_locked, which counts the worker alive. */
static int spawn_one(pb_manager *m, pebble_pool *P, int spare, int *err) {
  const pebble_backend *bk = P->lib->bk;
  pb_pworker *w = calloc(1, sizeof *w);
  int rc;
  *err = 0;
  if (w == NULL)
    return PEBBLE_ENOMEM;
  w->pool = P;
  /* Tasks may be queued while it initialises. */
  w->state = spare ? PB_W_SPARE : PB_W_IDLE;
  w->uncounted = spare;
  w->deadline = PEBBLE_BK_FOREVER;
  w->kill_deadline = PEBBLE_BK_FOREVER;
  w->watch.deadline = PEBBLE_BK_FOREVER;
  w->watch.on_events = worker_events;
  w->watch.on_deadline = worker_deadline;
  w->reader.task_id_live = &w->task_id;
  w->ring_reader.task_id_live = &w->task_id;
  if (pb_pool_uses_spawn(P)) {
    rc = pb_start_launched_worker(P->lib, P->o.start_method,
                                  P->o.worker_program, P->launch, &w->proc,
                                  err);
    if (rc == PEBBLE_OK)
      w->remote = PB_BK_HAS(bk, proc_remote) &&
                  bk->proc_remote(w->proc, NULL, 0, NULL) != PEBBLE_ENOTSUP;
    if (rc == PEBBLE_OK && (rc = config_message(w)) != PEBBLE_OK)
      bk->proc_destroy(w->proc);
  } else {
    atomic_init(&w->page, pb_page_new_inherited());
    w->ring_reader.ring = atomic_load(&w->page);
    w->reader.hold_headers = w->ring_reader.ring != NULL;
    w->reader.ring_beside = w->ring_reader.ring;
    rc = bk->proc_start(&w->proc, worker_child_main, w, err);
  }
  /* Watched before it counts as started: a worker nobody watches would
   * never be reaped, nor its task's future resolved. */
  if (rc == PEBBLE_OK &&
      (rc = bk->waitset_watch(pb_manager_waitset(m), w->proc, PEBBLE_EV_EXIT,
                              &w->watch)) != PEBBLE_OK) {
    free(w->out);
    bk->proc_destroy(w->proc); /* kills and reaps it */
  }
  if (rc != PEBBLE_OK) {
    pb_page_free(atomic_load(&w->page));
    free(w);
    pb_log(PEBBLE_LOG_ERROR, "pool %p: cannot start a worker process: %s",
           (void *)P, *err ? pb_sys_strerror(*err) : pebble_strerror(rc));
    return rc;
  }
  w->started_at = bk->now_ns();
  w->pid = bk->proc_pid(w->proc);
  w->remote = PB_BK_HAS(bk, proc_remote) &&
              bk->proc_remote(w->proc, NULL, 0, NULL) != PEBBLE_ENOTSUP;
  bk->mutex_lock(P->lock);
  w->next = P->workers;
  P->workers = w;
  if (spare)
    P->spare = w;
  else
    P->active++;
  if (!spare && w->out == NULL)
    mark_ready(P, w);
  bk->mutex_unlock(P->lock);
  flush_out(m, w); /* the spawned worker's settings, if any */
  pb_manager_activate(m, &w->watch);
  return PEBBLE_OK;
}

/* Pool lock held; released while a worker starts, and taken again.  The
 * worker counts as alive from before the lock is released: a join must
 * not see none alive and let the pool be freed while one is starting. */
static int start_worker_locked(pb_manager *m, pebble_pool *P, int spare,
                               int *err) {
  const pebble_backend *bk = P->lib->bk;
  int rc;
  P->alive++;
  bk->mutex_unlock(P->lock);
  rc = spawn_one(m, P, spare, err);
  bk->mutex_lock(P->lock);
  if (rc != PEBBLE_OK) {
    P->alive--;
    bk->cond_broadcast(P->idle);
  }
  return rc;
}

/* `refusals`: the starts refused in a row, the last one with rc (and
 * err, its errno, or 0). */
static void fail_all_queued(pebble_pool *P, unsigned refusals, int rc,
                            int err) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t;
  int status = rc == PEBBLE_ENOMEM ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
  char *why = pb_format("the system refused a worker process for the pool "
                        "%u times in a row: %s (start method %s)",
                        refusals,
                        err ? pb_sys_strerror(err) : pebble_strerror(rc),
                        pb_lib_method_name(P->lib, P->o.start_method));
  for (;;) {
    bk->mutex_lock(P->lock);
    t = pb_pool_pop(P);
    bk->mutex_unlock(P->lock);
    if (t == NULL)
      break;
    {
      pb_outcome o;
      memset(&o, 0, sizeof o);
      o.state = PEBBLE_FAILED;
      o.status = status;
      o.message = pb_strdup(why);
      o.sys_errno = err;
      /* Counts as it settles. */
      if (!pb_future_resolve(pb_ptask_future(t), &o, 0))
        pb_outcome_discard(&o);
    }
    pb_ptask_free(t);
  }
  free(why);
}

static void schedule_respawn(pb_manager *m, pebble_pool *P, uint64_t now) {
  unsigned extra = P->crash_streak > BACKOFF_AFTER
                       ? P->crash_streak - BACKOFF_AFTER
                       : 0;
  uint64_t delay = BACKOFF_MIN_NS << (extra > 7 ? 7 : extra);
  if (delay > BACKOFF_MAX_NS)
    delay = BACKOFF_MAX_NS;
  P->respawn_at = now + delay;
  P->watch.deadline = P->respawn_at;
  pb_manager_activate(m, &P->watch);
  pb_log(PEBBLE_LOG_WARN,
         "pool %p: %u workers in a row died before doing any work; next "
         "start in %llu ms",
         (void *)P, P->crash_streak, (unsigned long long)(delay / 1000000));
}

/* One log line for a worker's end (manager thread): what it ran, how it
 * ended, whether it is replaced.  `label` names its task, or is NULL. */
static void log_worker_end(pebble_pool *P, const pebble_exit_info *info,
                           const char *label, int by_pebble, int quitting,
                           int replaced) {
  /* Deaths Pebble did not cause are news; its own kills were logged
   * when made, and retirements are routine. */
  int level = by_pebble || (quitting && label == NULL) ? PEBBLE_LOG_DEBUG
                                                       : PEBBLE_LOG_WARN;
  char how[128];
  if (!pb_log_wants(level))
    return;
  if (!info->status_known)
    snprintf(how, sizeof how, "ended (its exit status is unknown)");
  else if (info->signal != 0) {
    char crash[80];
    pb_crash_phrase(crash, sizeof crash, info->signal);
    snprintf(how, sizeof how, "%s%s%s", crash,
             info->core_dumped ? ", core dumped" : "",
             info->killed_by_library ? ", sent by Pebble" : "");
  }
  else
    snprintf(how, sizeof how, "exited with code %d", info->exit_code);
  pb_log(level, "pool %p: worker process %ld %s%s%s; %s", (void *)P,
         info->pid, how,
         label != NULL ? " running " : quitting ? "" : " while idle",
         label != NULL ? label : "",
         replaced ? "a new worker replaces it" : "not replaced");
}

/* Append the message that hands t to a worker to *buf (len bytes used of
 * cap; NULL and 0 to start a new block, which then has the message's
 * size): the block doubles when it is full, so that many messages cost a
 * few reallocations.  On failure nothing is appended, and *buf is kept. */
static int task_message_to(pebble_pool *P, pb_ptask *t, int32_t code,
                           uint64_t ordinal, unsigned char **buf,
                           size_t *len, size_t *cap) {
  pb_msg_header h;
  uint64_t head[PB_TASK_WORDS] = {0, 0, 0, 0, 0};
  char name[PB_NAME_BYTES_MAX];
  unsigned char *at;
  size_t size, need;
  if (pb_pool_uses_spawn(P)) {
    if (pb_registry_name_of(t->fn, name, sizeof name) != PEBBLE_OK)
      return PEBBLE_ENOTFOUND;
    head[3] = strlen(name);
  } else {
    memcpy(&head[0], &t->fn, sizeof t->fn < 8 ? sizeof t->fn : 8);
  }
  head[1] = pb_ptask_future(t)->id;
  head[2] = pb_future_seq_of(pb_ptask_future(t));
  head[4] = ordinal;
  size = sizeof head + (size_t)head[3] + t->arg_size;
  need = *len + sizeof h + size;
  if (need > *cap) {
    size_t grown = *cap > 0 && *cap * 2 > need ? *cap * 2 : need;
    unsigned char *more = realloc(*buf, grown);
    if (more == NULL)
      return PEBBLE_ENOMEM;
    *buf = more;
    *cap = grown;
  }
  at = *buf + *len;
  pb_msg_fill(&h, PB_MSG_TASK, code, size);
  memcpy(at, &h, sizeof h);
  memcpy(at + sizeof h, head, sizeof head);
  memcpy(at + sizeof h + sizeof head, name, (size_t)head[3]);
  memcpy(at + sizeof h + sizeof head + head[3], pb_ptask_arg(t), t->arg_size);
  *len = need;
  return PEBBLE_OK;
}

/* The message that hands t to a worker, malloc'd. */
static int task_message(pebble_pool *P, pb_ptask *t, int32_t code,
                        uint64_t ordinal, unsigned char **out,
                        size_t *out_size) {
  size_t cap = 0;
  *out = NULL;
  *out_size = 0;
  return task_message_to(P, t, code, ordinal, out, out_size, &cap);
}

/* Prepare the message that hands t to w (manager thread).  A task with a
 * timeout asks the worker to say when its code starts (read_worker): the
 * timeout counts from there, not from a start or an initializer that
 * runs first; until then the deadline has PB_START_ALLOWANCE_NS more. */
static int send_task(pb_pworker *w, pb_ptask *t, uint64_t ordinal) {
  const pebble_backend *bk = w->pool->lib->bk;
  int timed = t->timeout != PEBBLE_FOREVER;
  int rc = task_message(w->pool, t,
                        timed ? PB_TASK_TELL_START | PB_TASK_TELL_START_AT : 0,
                        ordinal, &w->out, &w->out_size);
  if (rc != PEBBLE_OK)
    return rc;
  w->task_small = w->out_size - sizeof(pb_msg_header) < PB_INBOX_SMALL_TASK;
  w->out_done = 0;
  w->code_started = 0;
  w->deadline = pb_deadline_after(bk, t->timeout);
  if (timed)
    w->deadline = w->deadline < PEBBLE_BK_FOREVER - PB_START_ALLOWANCE_NS
                      ? w->deadline + PB_START_ALLOWANCE_NS
                      : PEBBLE_BK_FOREVER;
  w->watch.deadline = w->deadline;
  return PEBBLE_OK;
}

/* t's first bytes reached w's channel (the caller holds the pool lock or
 * is the manager thread, which owns w once it has taken it over): t has
 * started.  Its future becomes RUNNING only now, so a task that goes back
 * to the queue unsent was never seen running; one whose worker died
 * before it began it (worker_exited) is RUNNING already, and stays so.
 * Cancelled before this, the task is stopped as a running one: its
 * worker may read it. */
static void task_begins(pb_pworker *w, pb_ptask *t) {
  pebble_future *f = pb_ptask_future(t);
  w->task_unsent = 0;
  pb_stripe_lock(f);
  t->worker = w;
  f->pid = (int32_t)w->pid;
  if (!pb_future_start(f) && atomic_load(&f->state) != PEBBLE_RUNNING)
    pb_processes_cancel_locked(&t->runner);
  pb_stripe_unlock(f);
}

/* A queued task still to hand out: PENDING, or RUNNING if its worker
 * died before it began it (worker_exited); else it was cancelled (and
 * counted) while queued. */
static int waits_for_worker(pb_ptask *t) {
  int state = atomic_load(&pb_ptask_future(t)->state);
  return state == PEBBLE_PENDING || state == PEBBLE_RUNNING;
}

/* t, just taken from the queue, goes to a worker if it still waits for
 * one (`ahead`: only a PENDING task goes ahead): from then on a process
 * holds it, and pebble_future_wait_exit() waits until that process is
 * known to end for it or not.  Looked at under t's stripe lock, which a
 * cancel holds as it resolves: a cancel either comes first, and t goes
 * nowhere, or finds the mark. */
static int claim_for_worker(pb_ptask *t, int ahead) {
  pebble_future *f = pb_ptask_future(t);
  int state, ok;
  pb_stripe_lock(f);
  state = atomic_load(&f->state);
  ok = ahead ? state == PEBBLE_PENDING : waits_for_worker(t);
  if (ok)
    pb_future_exit_due_locked(f);
  pb_stripe_unlock(f);
  return ok;
}

/* t left its worker's hands without that worker ending for it (done,
 * skipped, taken back, requeued, failed to send). */
static void unclaim(pb_ptask *t) {
  pebble_future *f = pb_ptask_future(t);
  pb_stripe_lock(f);
  pb_future_exit_over_locked(f);
  pb_stripe_unlock(f);
}

/* Pool lock held: w's channel refused a write, so it is ending; no task
 * goes to it any more, and its exit will tell the rest. */
static void mark_closed(pb_pworker *w) {
  w->closed = 1;
  w->ready = 0;
}

/* From the thread that schedules t, pool lock held, the queue empty: send
 * t straight to a worker that waits for work, without a turn of the
 * manager thread.  Only tasks without a timeout go this way (a deadline
 * is the manager's).  Returns 0 if no worker took t (t is then queued as
 * usual), 1 if sent, 2 if sent in part: the caller posts the kick, which
 * sends the rest.  The message is built before the worker is taken, and
 * nothing of t is touched after the send, since the manager may resolve
 * and free it as soon as the result is back.  A worker is `ready` only
 * while the manager has nothing pending for it.  A worker whose channel
 * refuses the write (killed from outside, its exit not seen yet) takes
 * nothing: t has not started and is queued for another worker. */
int pb_processes_send_now(pebble_pool *P, pb_ptask *t) {
  const pebble_backend *bk = P->lib->bk;
  pb_pworker *w;
  unsigned char *buf;
  size_t size, done = 0;
  int rc;
  if (t->timeout != PEBBLE_FOREVER)
    return 0;
  for (w = P->workers; w != NULL && !w->ready; w = w->next)
    ;
  if (w == NULL) {
    /* Tasks go through the manager until a worker is ready again. */
    pb_flag_set(&P->may_be_ready, 0);
    return 0;
  }
  if (task_message(P, t, 0, w->ordinals + 1, &buf, &size) != PEBBLE_OK)
    return 0;
  /* Before its answer can come. */
  atomic_store(&w->task_id, pb_ptask_future(t)->id);
  atomic_store(&w->task_ordinal, ++w->ordinals);
  rc = bk->proc_write(w->proc, buf, size, &done);
  if (done == 0 && rc != PEBBLE_OK && rc != PEBBLE_ENOTREADY) {
    atomic_store(&w->task_id, 0);
    mark_closed(w);
    free(buf);
    return 0;
  }
  w->ready = 0;
  w->task = t;
  /* Its scheduler has not returned it yet: no cancel can come first. */
  atomic_store_explicit(&pb_ptask_future(t)->exit_due, 1,
                        memory_order_relaxed);
  w->task_unsent = 1;
  w->task_small = size - sizeof(pb_msg_header) < PB_INBOX_SMALL_TASK;
  w->task_started = bk->now_ns();
  w->state = PB_W_BUSY;
  P->running++;
  if (done > 0)
    task_begins(w, t); /* not handed out yet: it cannot be cancelled */
  if (rc == PEBBLE_OK || rc == PEBBLE_ENOTREADY) {
    if (done < size) {
      w->out = buf; /* the manager reads it under the pool lock in the kick */
      w->out_size = size;
      w->out_done = done;
      w->flush_pending = 1;
      return 2;
    }
  } else {
    mark_closed(w); /* part went: t has started, and its exit will tell */
  }
  free(buf);
  return 1;
}

/* Manager thread.  A task waiting to be handed over is at the front of
 * w->out (hand_task and pb_processes_send_now give tasks only to workers
 * with nothing pending), so its first byte is the first one written. */
static void flush_out(pb_manager *m, pb_pworker *w) {
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  while (w->out != NULL) {
    size_t done = 0;
    int rc = bk->proc_write(w->proc, w->out + w->out_done,
                            w->out_size - w->out_done, &done);
    if (done > 0 && w->task_unsent)
      task_begins(w, w->task);
    if (rc == PEBBLE_ENOTREADY)
      break;
    if (done > 0 && w->out_has_skip) {
      pb_worker_page *page = atomic_load(&w->page);
      if (page != NULL) /* after the write: worker.c */
        atomic_fetch_add(&page->skip_epoch, 1);
    }
    if (rc != PEBBLE_OK) { /* the worker is gone: its exit will tell */
      free(w->out);
      w->out = NULL;
      w->out_has_skip = 0;
      bk->mutex_lock(P->lock);
      mark_closed(w);
      bk->mutex_unlock(P->lock);
      break;
    }
    w->out_done += done;
    if (w->out_done == w->out_size) {
      free(w->out);
      w->out = NULL;
      w->out_has_skip = 0;
    }
  }
  watch_worker(m, w);
}

static void quit_worker(pb_pworker *w) {
  pb_msg_header h;
  size_t done = 0;
  const pebble_backend *bk = w->pool->lib->bk;
  w->state = PB_W_QUITTING;
  w->ready = 0;
  pb_msg_fill(&h, PB_MSG_QUIT, 0, 0);
  if (bk->proc_write(w->proc, &h, sizeof h, &done) != PEBBLE_OK ||
      done != sizeof h)
    bk->proc_kill(w->proc, 1);
}

/* Append n bytes (malloc'd; taken, also on failure) to what goes to w
 * (pool lock: a scheduler may have left the rest of a task there). */
static int out_append(pb_pworker *w, unsigned char *buf, size_t n) {
  unsigned char *all;
  if (w->out == NULL) {
    w->out = buf;
    w->out_size = n;
    w->out_done = 0;
    return PEBBLE_OK;
  }
  all = realloc(w->out, w->out_size + n);
  if (all == NULL) {
    free(buf);
    return PEBBLE_ENOMEM;
  }
  memcpy(all + w->out_size, buf, n);
  free(buf);
  w->out = all;
  w->out_size += n;
  return PEBBLE_OK;
}

/* Ask w to skip t, a task sent ahead (pool lock).  Out of memory, the
 * request is not sent: the task then starts and is stopped as a running
 * one when its STARTED arrives. */
static void ask_skip(pb_pworker *w, pb_ptask *t) {
  pb_msg_header h;
  uint64_t id = pb_ptask_future(t)->id;
  unsigned char *buf = malloc(sizeof h + sizeof id);
  if (buf == NULL)
    return;
  pb_msg_fill(&h, PB_MSG_SKIP, 0, sizeof id);
  memcpy(buf, &h, sizeof h);
  memcpy(buf + sizeof h, &id, sizeof id);
  if (out_append(w, buf, sizeof h + sizeof id) == PEBBLE_OK) {
    w->out_has_skip = 1;
    t->skip_sent = 1;
    w->flush_pending = 1;
  }
}

/* How many tasks may wait ahead on one worker (pool lock). */
static unsigned ahead_cap(const pebble_pool *P) {
  uint64_t n;
  if (P->o.send_ahead == PEBBLE_SEND_AHEAD_ALWAYS || P->task_ns == 0)
    return PB_AHEAD_MOST;
  if (P->task_ns == UINT64_MAX)
    return PB_AHEAD_MAX;
  n = PB_AHEAD_BUDGET_NS / P->task_ns;
  return n <= PB_AHEAD_MAX ? PB_AHEAD_MAX
                           : n >= PB_AHEAD_MOST ? PB_AHEAD_MOST : (unsigned)n;
}

/* May another task go to w, busy, behind what it has (pool lock)? */
static int may_send_ahead(const pebble_pool *P, const pb_pworker *w,
                          uint64_t now) {
  const pb_ptask *last = w->ahead_tail != NULL ? w->ahead_tail : w->task;
  unsigned in_flight = (w->task != NULL) + w->n_ahead;
  if (P->o.send_ahead == PEBBLE_SEND_AHEAD_NEVER ||
      !PB_BK_HAS(P->lib->bk, chan_read_ready) || last == NULL ||
      w->state != PB_W_BUSY || w->killed || w->closed || w->uncounted ||
      w->hold_feed ||
      w->n_ahead >= ahead_cap(P) || last->timeout != PEBBLE_FOREVER)
    return 0;
  /* Without a page, a cancel of the task it runs could kill the one it
   * starts next (worker_page.c). */
  if (atomic_load(&w->page) == NULL)
    return 0;
  /* A remote worker's skip requests cross a relay (docs/cluster.md): a
   * cancel could return before its request reached the worker, which
   * would start the cancelled task. */
  if (w->remote)
    return 0;
  if (P->o.max_tasks > 0 && w->tasks_run + in_flight >= P->o.max_tasks)
    return 0; /* it will quit before it gets there */
  if (P->o.send_ahead == PEBBLE_SEND_AHEAD_ALWAYS)
    return 1;
  if (P->task_ns > PB_AHEAD_SHORT_NS)
    return 0; /* recent tasks were long: little to gain, much to wait */
  if (w->task != NULL && now - w->task_started > PB_AHEAD_SHORT_NS)
    return 0; /* this one runs long: keep the queue for the others */
  return 1;
}

/* Send queued tasks ahead to w until it holds `upto` (pool lock held;
 * manager thread).  Appends to w->out and sets flush_pending: the caller
 * flushes.  Returns how many went. */
static size_t send_ahead(pebble_pool *P, pb_pworker *w, unsigned upto) {
  const pebble_backend *bk = P->lib->bk;
  uint64_t now = 0;
  size_t n = 0;
  /* The messages go straight to the end of w->out, which grows by
   * doubling (its capacity is known here only: it is its size outside). */
  size_t cap = w->out_size;
  pb_pool_collect(P); /* what schedulers left without the lock */
  while (w->n_ahead < upto && P->head != NULL) {
    pb_ptask *t = P->head;
    int cancelled, state = atomic_load(&pb_ptask_future(t)->state);
    if (now == 0)
      now = bk->now_ns();
    /* A task whose worker died before it began it is RUNNING: it goes
     * to an idle worker, as it did the first time. */
    if (!may_send_ahead(P, w, now) || t->timeout != PEBBLE_FOREVER ||
        t->arg_size > PB_AHEAD_ARG_MAX || state == PEBBLE_RUNNING)
      break;
    t = pb_pool_unlink(P);
    if (state != PEBBLE_PENDING || !claim_for_worker(t, 1)) {
      pb_ptask_free(t); /* cancelled while queued (and counted) */
      continue;
    }
    /* A cancel from here on finds it sent ahead, or is seen below. */
    if (w->out == NULL)
      w->out_done = w->out_size = cap = 0;
    if (task_message_to(P, t, PB_TASK_AHEAD, w->ordinals + 1, &w->out,
                        &w->out_size, &cap) != PEBBLE_OK) {
      t->next = NULL; /* it waits for an idle worker instead */
      unclaim(t);
      pb_pool_requeue(P, t, t, 1);
      break;
    }
    w->ordinals++;
    t->next = NULL;
    if (w->ahead_tail != NULL) {
      w->ahead_tail->next = t;
    } else {
      w->ahead = t;
      w->ahead_ordinal = w->ordinals;
    }
    w->ahead_tail = t;
    w->n_ahead++;
    P->ahead++;
    pb_count_own(&P->sent_ahead); /* written under the pool lock only */
    n++;
    w->flush_pending = 1;
    pb_stripe_lock(pb_ptask_future(t));
    t->worker = w;
    t->ahead = 1;
    cancelled = atomic_load(&t->stop_reason) != 0;
    pb_stripe_unlock(pb_ptask_future(t));
    if (cancelled) { /* as it went: its cancel saw no worker to ask */
      ask_skip(w, t);
      cap = w->out_size; /* out_append reallocated it to that size */
    }
  }
  return n;
}

/* Send what the pool lock's holders left in w->out (pool lock held;
 * released while writing). */
static void flush_pending(pb_manager *m, pebble_pool *P, pb_pworker *w) {
  if (!w->flush_pending)
    return;
  w->flush_pending = 0;
  P->lib->bk->mutex_unlock(P->lock);
  flush_out(m, w);
  P->lib->bk->mutex_lock(P->lock);
}

/* The worker starts, or skipped, the oldest task sent ahead to it (pool
 * lock held; `now`: when the notice was read): it leaves the list. */
static pb_ptask *notice_locked(pb_pworker *w, int started, uint64_t now) {
  pebble_pool *P = w->pool;
  pb_ptask *t = w->ahead;
  w->ahead = t->next;
  if (w->ahead == NULL)
    w->ahead_tail = NULL;
  w->n_ahead--;
  P->ahead--;
  if (started) {
    w->task = t;
    atomic_store(&w->task_id, pb_ptask_future(t)->id);
    atomic_store(&w->task_ordinal, w->ahead_ordinal);
    w->task_started = now;
    P->running++;
  }
  w->ahead_ordinal++;
  t->next = NULL;
  return t;
}

/* The rest of a notice, without the pool lock: t's future starts, or t
 * waits again (or ends, if it was cancelled). */
static void notice_after(pb_manager *m, pb_pworker *w, pb_ptask *t,
                         int started) {
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  pb_stripe_lock(pb_ptask_future(t));
  t->ahead = 0;
  if (started)
    pb_ptask_future(t)->pid = (int32_t)w->pid;
  if (!started) {
    t->worker = NULL;
    pb_future_exit_over_locked(pb_ptask_future(t)); /* it never ran */
  } else if (!pb_future_start(pb_ptask_future(t)))
    pb_processes_cancel_locked(&t->runner); /* cancelled as it started */
  pb_stripe_unlock(pb_ptask_future(t));
  if (started)
    return;
  if (atomic_load(&pb_ptask_future(t)->state) == PEBBLE_PENDING) {
    /* Skipped though not cancelled: it never started, so it waits again. */
    bk->mutex_lock(P->lock);
    pb_pool_requeue(P, t, t, 1);
    bk->mutex_unlock(P->lock);
    pb_manager_post(m, &P->kick);
  } else {
    pb_ptask_free(t); /* cancelled (and counted) before it started */
  }
}

/* The worker says it starts, or skipped, the oldest task sent ahead to it
 * (manager thread; `now`: when the notice was read).  Returns PEBBLE_OK,
 * or PEBBLE_EPROTO if it names another task. */
static int task_notice(pb_manager *m, pb_pworker *w, int started,
                       uint64_t id, uint64_t now) {
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t = w->ahead;
  if (t == NULL || pb_ptask_future(t)->id != id || w->task != NULL)
    return PEBBLE_EPROTO;
  bk->mutex_lock(P->lock);
  notice_locked(w, started, now);
  bk->mutex_unlock(P->lock);
  notice_after(m, w, t, started);
  return PEBBLE_OK;
}

/* The worker is gone: the tasks sent ahead to it never started.  They go
 * back to the queue, or end with the pool if it was stopped or broke
 * (manager thread, no lock held). */
static void take_back_ahead(pebble_pool *P, pb_pworker *w) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t, *first = w->ahead, *last = w->ahead_tail;
  size_t n = w->n_ahead;
  int ending;
  if (first == NULL)
    return;
  for (t = first; t != NULL; t = t->next) {
    pb_stripe_lock(pb_ptask_future(t));
    t->worker = NULL;
    t->ahead = 0;
    pb_future_exit_over_locked(pb_ptask_future(t)); /* it never started */
    pb_stripe_unlock(pb_ptask_future(t));
  }
  bk->mutex_lock(P->lock);
  w->ahead = w->ahead_tail = NULL;
  w->n_ahead = 0;
  P->ahead -= n;
  ending = P->state == PB_POOL_STOPPED || P->state == PB_POOL_BROKEN;
  if (!ending)
    pb_pool_requeue(P, first, last, n);
  bk->mutex_unlock(P->lock);
  if (!ending)
    return;
  if (P->state == PB_POOL_BROKEN)
    pb_pool_fail_list(P, first, PEBBLE_FAILED, PEBBLE_EBROKEN,
                      P->broken_message ? P->broken_message
                                        : "the pool is broken");
  else
    pb_pool_fail_list(P, first, PEBBLE_CANCELLED, PEBBLE_ECANCELED,
                      "the task was cancelled: its pool was stopped");
}

/* Give w the next queued task if it is idle (pool lock held; released
 * and taken again while sending).  Returns 1 if w got a task. */
static int hand_task(pb_manager *m, pebble_pool *P, pb_pworker *w) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t;
  int rc;
  if (w->hold_feed) {
    w->feed_owed = 1; /* a header from it waits to be found good */
    return 0;
  }
  if (w->state != PB_W_IDLE || w->killed || w->closed || w->out != NULL)
    return 0; /* busy, ending, or its settings are still on their way */
  pb_pool_collect(P); /* what schedulers left without the lock */
  /* Before a task with a timeout goes out, the pool starts one worker
   * ahead (if it has none), so the task after a timeout does not wait for
   * a start.  It starts now, before the task's clock runs, rather than at
   * a deadline, where it would compete with the thread waiting for the
   * timed-out future.  Closing the pool lets it go. */
  if (P->head != NULL && P->head->timeout != PEBBLE_FOREVER &&
      P->spare == NULL && P->state == PB_POOL_OPEN && P->active > 0 &&
      (P->respawn_at == 0 || bk->now_ns() >= P->respawn_at)) {
    int err;
    if (start_worker_locked(m, P, 1, &err) != PEBBLE_OK) {
      bk->mutex_unlock(P->lock); /* schedule_respawn logs */
      P->crash_streak++;
      schedule_respawn(m, P, bk->now_ns());
      bk->mutex_lock(P->lock);
    }
    if (w->state != PB_W_IDLE || w->killed || w->closed)
      return 0;
  }
  /* Not started yet: that is when its first byte reaches the worker
   * (task_begins, from flush_out). */
  while ((t = pb_pool_unlink(P)) != NULL && !claim_for_worker(t, 0))
    pb_ptask_free(t); /* cancelled while queued (and counted) */
  if (t == NULL) {
    /* Closed and nothing left (cancelled tasks, dropped just now, are
     * nothing): let it go; nothing else would tell it so. */
    if (P->state == PB_POOL_CLOSED)
      quit_worker(w);
    return 0;
  }
  w->task = t;
  atomic_store(&w->task_id, pb_ptask_future(t)->id);
  atomic_store(&w->task_ordinal, ++w->ordinals);
  w->task_unsent = 1;
  w->task_started = bk->now_ns();
  w->state = PB_W_BUSY;
  w->ready = 0;
  P->running++;
  bk->mutex_unlock(P->lock);
  if ((rc = send_task(w, t, atomic_load(&w->task_ordinal))) == PEBBLE_OK) {
    flush_out(m, w);
  } else { /* cannot send: fail the task, keep the worker */
    int killed;
    detach_task(P, w, &killed, 0);
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, rc,
                    rc == PEBBLE_ENOTFOUND
                        ? pb_strdup("the task function is not registered: "
                                    "spawned workers find tasks by name "
                                    "(pebble_register)")
                        : pb_strdup("out of memory sending the task"),
                    0);
    pb_ptask_free(t);
    w->state = PB_W_IDLE;
    pb_manager_post(m, &P->kick); /* the next queued task: try again */
  }
  bk->mutex_lock(P->lock);
  return rc == PEBBLE_OK;
}

void pb_processes_kick(pb_manager *m, pb_cmd *cmd) {
  pebble_pool *P = PB_CONTAINER(cmd, pebble_pool, kick);
  const pebble_backend *bk = P->lib->bk;
  uint64_t now = bk->now_ns();
  pb_pworker *w;
  unsigned desired;
  int ending, rc, skips;

  bk->mutex_lock(P->lock);
  pb_pool_collect(P); /* what schedulers left without the lock */
  ending = P->state == PB_POOL_STOPPED || P->state == PB_POOL_BROKEN;
  if (ending) {
    P->spare = NULL;
    for (w = P->workers; w != NULL; w = w->next)
      if (!w->killed) {
        bk->proc_kill(w->proc, 1);
        w->killed = 1;
        w->ready = 0;
        if (w->state != PB_W_BUSY)
          w->state = PB_W_QUITTING;
      }
    bk->mutex_unlock(P->lock);
    return;
  }
  /* Start workers: all of them if eager, else as many as the work needs. */
  desired = P->o.workers;
  if (!P->o.start_eagerly || P->state != PB_POOL_OPEN) {
    size_t want = P->queued + P->running + P->ahead;
    desired = want < P->o.workers ? (unsigned)want : P->o.workers;
  }
  /* The state is read again each turn: a stop may come while a worker
   * starts, and the kick it posts ends whatever was started. */
  while (P->active < desired && now >= P->respawn_at &&
         (P->state == PB_POOL_OPEN || P->state == PB_POOL_CLOSED)) {
    int err;
    if ((rc = start_worker_locked(m, P, 0, &err)) != PEBBLE_OK) {
      P->crash_streak++;
      /* The queued tasks wait for the next tries (after the back-off) while
       * a worker may still come; then they fail with the reason. */
      if (++P->start_refusals >= START_TRIES && P->active == 0) {
        /* More than START_TRIES when a worker was still alive for the
         * first ones. */
        unsigned refusals = P->start_refusals;
        P->start_refusals = 0;
        bk->mutex_unlock(P->lock);
        fail_all_queued(P, refusals, rc, err);
        bk->mutex_lock(P->lock);
      }
      bk->mutex_unlock(P->lock);
      schedule_respawn(m, P, now);
      bk->mutex_lock(P->lock);
      break;
    }
    P->start_refusals = 0;
  }
  /* Ask workers to skip the cancelled tasks sent ahead to them. */
  skips = atomic_exchange(&P->skips_wanted, 0);
  if (skips)
    for (w = P->workers; w != NULL; w = w->next) {
      pb_ptask *t;
      for (t = w->ahead; t != NULL && !w->killed; t = t->next)
        if (!t->skip_sent && atomic_load(&t->stop_reason) != 0)
          ask_skip(w, t);
    }
  /* Hand queued tasks to idle workers ("pending": a task a scheduler sent
   * in part, or skip requests). */
  for (w = P->workers; w != NULL; w = w->next) {
    flush_pending(m, P, w);
    hand_task(m, P, w);
  }
  /* Then send ahead to busy workers, one more each in turn. */
  if (P->head != NULL &&
      (P->state == PB_POOL_OPEN || P->state == PB_POOL_CLOSED)) {
    unsigned level, cap = ahead_cap(P);
    for (level = 1; level <= cap && P->head != NULL; level++)
      for (w = P->workers; w != NULL && P->head != NULL; w = w->next)
        send_ahead(P, w, level);
    for (w = P->workers; w != NULL; w = w->next)
      flush_pending(m, P, w);
  }
  /* Written (or queued behind what the worker has yet to read): the
   * cancels waiting for that may return. */
  if (skips)
    for (w = P->workers; w != NULL; w = w->next) {
      pb_ptask *t;
      for (t = w->ahead; t != NULL; t = t->next)
        if (t->skip_sent)
          pb_future_skip_sent(pb_ptask_future(t));
    }
  if (P->spare != NULL && P->state != PB_POOL_OPEN) {
    w = P->spare; /* no task will time out any more */
    P->spare = NULL;
    quit_worker(w);
  }
  bk->mutex_unlock(P->lock);
  /* Rings whose reading ran out of turn (only this thread takes workers
   * off the list). */
  for (w = P->workers; w != NULL; w = w->next)
    if (w->ring_owed) {
      w->ring_owed = 0;
      read_worker(m, w, PB_READ_SLICE);
    }
}

void pb_processes_deadline(pb_manager *m, pb_watch *ww, uint64_t now) {
  pebble_pool *P = PB_CONTAINER(ww, pebble_pool, watch);
  (void)now;
  ww->deadline = PEBBLE_BK_FOREVER; /* the respawn delay is over */
  pb_processes_kick(m, &P->kick);
}

/* Whether w may be killed to stop t, the task it runs as the pool sees
 * it (t's stripe lock): with a page, only once claimed, which fails when
 * the worker has finished t already, perhaps to start a task sent ahead
 * (worker_page.c). */
static int may_kill_for(pb_pworker *w) {
  pb_worker_page *page = atomic_load(&w->page);
  return page == NULL || pb_page_claim(page, atomic_load(&w->task_ordinal));
}

/* A cancel is about to resolve the future of t, which its worker runs as
 * far as the pool knows (t's stripe lock).  If the worker's page says t
 * has ended, the cancel leaves the future to t's outcome, on its way.
 * Otherwise the page is claimed and the worker killed now, before the
 * future resolves, whoever resolves it: a claimed worker starts nothing
 * more, so it must not be left waiting for work. */
int pb_processes_ended_locked(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  pb_worker_page *page;
  if (t->worker == NULL || t->ahead || t->killed ||
      (page = atomic_load(&t->worker->page)) == NULL)
    return 0;
  if (!pb_page_claim(page, atomic_load(&t->worker->task_ordinal)))
    return 1;
  t->pool->lib->bk->proc_kill(t->worker->proc, 1);
  t->killed = 1;
  return 0;
}

/* A task that ended before its cancel came is left alone: its outcome
 * (on its way) is dropped if the future resolved as cancelled. */
void pb_processes_cancel_locked(pb_runner *r) {
  pb_ptask *t = PB_CONTAINER(r, pb_ptask, runner);
  if (t->worker != NULL && !t->killed) {
    if (t->ahead) { /* not started: its worker is asked to skip it */
      pb_ptask_future(t)->skip_wait = 1; /* the cancel waits for the request */
      atomic_store(&t->pool->skips_wanted, 1);
      pb_manager_post(t->pool->manager, &t->pool->kick);
      return;
    }
    if (!may_kill_for(t->worker))
      return;
    t->pool->lib->bk->proc_kill(t->worker->proc, 1);
    t->killed = 1;
  }
}

/* The worker's task is over (manager thread, pool lock held; t's stripe
 * lock is taken inside it, the order send_ahead takes them in too);
 * returns the task.  Once t->worker is cleared no cancel kills for t, so
 * *killed says whether one did. */
static pb_ptask *detach_task_locked(pebble_pool *P, pb_pworker *w,
                                    int *killed, int exit_follows) {
  pb_ptask *t = w->task;
  w->task = NULL;
  atomic_store(&w->task_id, 0);
  w->task_unsent = 0;
  if (t != NULL) {
    P->running--;
    pb_stripe_lock(pb_ptask_future(t));
    t->worker = NULL;
    *killed = t->killed;
    /* The worker's exit, when it follows, records its end first. */
    if (!exit_follows)
      pb_future_exit_over_locked(pb_ptask_future(t));
    pb_stripe_unlock(pb_ptask_future(t));
  }
  w->deadline = PEBBLE_BK_FOREVER;
  w->watch.deadline = w->kill_deadline;
  return t;
}

/* The same, no lock held. */
static pb_ptask *detach_task(pebble_pool *P, pb_pworker *w, int *killed,
                             int exit_follows) {
  const pebble_backend *bk = P->lib->bk;
  pb_ptask *t;
  bk->mutex_lock(P->lock);
  t = detach_task_locked(P, w, killed, exit_follows);
  bk->mutex_unlock(P->lock);
  return t;
}

/* Nothing more will be written to w. */
static void drop_out(pb_pworker *w) {
  free(w->out);
  w->out = NULL;
  w->out_has_skip = 0;
}

static void kill_worker(pb_pworker *w, int force) {
  const pebble_backend *bk = w->pool->lib->bk;
  bk->mutex_lock(w->pool->lock);
  w->ready = 0;
  bk->mutex_unlock(w->pool->lock);
  bk->proc_kill(w->proc, force);
  w->killed = 1;
}

/* w has answered (pool lock held; released and taken again while
 * sending): if nothing of its own is left it is idle, or quits when it
 * has run max_tasks; then it takes the next queued task, and more go
 * ahead behind whatever it has.  Returns 1 if it got work. */
static int feed_worker(pb_manager *m, pebble_pool *P, pb_pworker *w) {
  int fed = 0;
  unsigned cap;
  if (w->state == PB_W_BUSY && w->task == NULL && w->n_ahead == 0)
    w->state = P->o.max_tasks > 0 && w->tasks_run >= P->o.max_tasks
                   ? PB_W_QUITTING /* it ends by itself */
                   : PB_W_IDLE;
  if (w->hold_feed) {
    w->feed_owed = 1; /* fed once the held header is taken */
    return 1;
  }
  if (reading_direct) {
    /* An application thread reads (pb_processes_wait_direct): it only
     * lets an idle worker take a scheduler's next task.  Anything more
     * (a queued task, a spare worker to start, a quit) is the manager
     * thread's: a worker forked by this thread would die with it. */
    int queued = pb_pool_has_queued(P);
    if (w->state == PB_W_IDLE && P->state == PB_POOL_OPEN && !queued) {
      /* Not with stray bytes on its channel (read_outcomes ends it). */
      if (!w->killed && !w->closed && w->out == NULL && !chan_part_header(w))
        mark_ready(P, w);
    } else if (w->state != PB_W_BUSY || queued) {
      direct_kick = 1; /* posted once the pool lock is let go */
    }
    return 1;
  }
  if (P->state == PB_POOL_OPEN || P->state == PB_POOL_CLOSED) {
    fed = hand_task(m, P, w);
    /* Topped up when half gone, so that tasks go out several a write. */
    cap = ahead_cap(P);
    if (w->n_ahead <= cap / 2 && send_ahead(P, w, cap) > 0)
      fed = 1;
    flush_pending(m, P, w);
  }
  if (!fed && w->state == PB_W_IDLE && !w->killed && !w->closed &&
      w->out == NULL) {
    mark_ready(P, w);
  }
  return fed;
}

/* Bytes of w's outcome ring not read, or read and not yet taken apart. */
static int ring_has_more(pb_pworker *w) {
  pb_reader *r = &w->ring_reader;
  return r->ring != NULL && !r->eof &&
         (r->buf_pos < r->buf_len || r->header_got > 0 ||
          pb_ring_pending(r->ring));
}

/* Where in w's ring the message its ring reader holds ends. */
static uint64_t ring_message_end(pb_pworker *w) {
  pb_reader *r = &w->ring_reader;
  return atomic_load_explicit(&r->ring->ring_head, memory_order_relaxed) -
         (r->buf_len - r->buf_pos);
}

/* A message taken from the channel: counted on the page, so that the
 * worker knows when the ring may carry its messages again. */
static void chan_taken(pb_pworker *w) {
  pb_worker_page *page = atomic_load(&w->page);
  w->chan_taken++;
  if (page != NULL)
    atomic_store_explicit(&page->chan_taken, w->chan_taken,
                          memory_order_release);
}

static void read_outcomes(pb_manager *m, pb_pworker *w, size_t budget) {
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  char why[256];
  int status = PEBBLE_OK, killed = 0, fed;
  /* With a ring (worker_page.c) the channel is read first, so that bytes
   * something else in the worker wrote there stop the worker before the
   * ring's outcomes give it more work (which would then fail for them);
   * then the ring, and the channel again each time the ring is empty.  A
   * header from the channel (but a nudge's) is checked once the ring is
   * empty: the ring holds what was sent before it, and its task follows
   * theirs.  Meanwhile the worker gets nothing new (hold_feed). */
  int chan_look = 1, chan_eof = 0;
  uint64_t looked_for = 0; /* the ring message the channel was read for */
  enum pb_read_result res;
  pb_reader *r;
  pb_outcome o;
  pb_ptask *t, *next;
  uint64_t next_id;
  /* When the messages of the current read came: the clock is read once a
   * read, not twice a task (a task's start and end, for task_ns); here
   * too, for bytes an earlier call left in the reader's buffer. */
  uint64_t now = bk->now_ns();

  for (;;) {
    pb_worker_page *ring = w->ring_reader.eof ? NULL : w->ring_reader.ring;
    /* What was read so far is settled: its waiters wake before the next
     * read, so that none waits for more than the bytes one read brings. */
    if (w->reader.buf_pos >= w->reader.buf_len &&
        w->ring_reader.buf_pos >= w->ring_reader.buf_len) {
      pb_future_flush_wakes();
      pb_future_defer_wakes();
      now = bk->now_ns();
    }
    /* An outcome must answer the task the worker runs now: each reader
     * checks each header against w->task_id, without the pool lock. */
    r = NULL;
    if (chan_look || ring == NULL) {
      chan_look = 0;
      r = &w->reader;
      res = pb_reader_step(r, bk, w->proc, P->o.max_message_size, &budget,
                           &status, why, sizeof why);
      if (r->stray_dropped > 0 && !w->chan_spoiled) {
        /* Bytes something else in the worker wrote, dropped (channel.c,
         * drop_stray: before one of its own headers, or with none of its
         * own among them): its own messages are read on, so that the
         * tasks it holds keep their results, but it gets nothing new and
         * ends once it holds no task. */
        pb_log(PEBBLE_LOG_WARN,
               "pool worker %ld: %zu bytes on its channel were not its "
               "own (something else in the worker process wrote to its "
               "channel): it ends once its tasks are done",
               bk->proc_pid(w->proc), r->stray_dropped);
        w->chan_spoiled = 1;
        w->hold_feed = 1;
        bk->mutex_lock(P->lock);
        w->ready = 0;
        bk->mutex_unlock(P->lock);
      }
      if (res == PB_READ_HEADER) {
        /* Nothing new for it, from here or a scheduler, until the header
         * is found good. */
        w->hold_feed = 1;
        bk->mutex_lock(P->lock);
        w->ready = 0;
        bk->mutex_unlock(P->lock);
        r = NULL;
      } else if (res == PB_READ_MESSAGE) {
        w->hold_feed = w->chan_spoiled;
        if (w->feed_owed) {
          w->feed_owed = 0;
          pb_manager_post(m, &P->kick); /* what it did not get meanwhile */
        }
        if (r->header.type == PB_MSG_NUDGE) {
          pb_reader_outcome(r, &o);
          chan_look = 1;
          continue;
        }
        chan_taken(w);
        chan_look = 1; /* more may follow it there */
      } else if (res == PB_READ_EOF && ring != NULL) {
        chan_eof = 1; /* the ring's whole messages first */
        r = NULL;
      } else if (res == PB_READ_AGAIN && ring != NULL) {
        if (chan_part_header(w) && !w->hold_feed) {
          /* A worker writes a header whole: part of one is either the
           * rest on its way or bytes something else in the worker wrote.
           * Nothing new for it until it is known which (the header whole,
           * or the worker's ring empty and no task of its own left). */
          w->hold_feed = 1;
          bk->mutex_lock(P->lock);
          w->ready = 0;
          bk->mutex_unlock(P->lock);
        }
        r = NULL;
      }
    }
    if (r == NULL) {
      res = pb_reader_step(&w->ring_reader, bk, w->proc,
                           P->o.max_message_size, &budget, &status, why,
                           sizeof why);
      if (res == PB_READ_MESSAGE || res == PB_READ_BAD) {
        r = &w->ring_reader;
      } else if (budget == 0 && ring_has_more(w)) {
        /* Its turn is over; the pool's next kick reads on (no event
         * would come for bytes already in the ring). */
        w->ring_owed = 1;
        pb_manager_post(m, &P->kick);
        return;
      } else if (w->reader.header_unchecked) {
        chan_look = 1; /* the ring is empty: the header's turn */
        continue;
      } else if (chan_eof) {
        watch_worker(m, w);
        return;
      } else if ((chan_part_header(w) || w->chan_spoiled) &&
                 w->task == NULL && w->n_ahead == 0) {
        /* Part of a header on the channel (or stray bytes dropped there:
         * chan_spoiled), the ring empty and no task left on the worker: it
         * writes a header whole, so these are bytes something else in it
         * wrote.  They end the worker now, before it is given another task
         * (it got none since they came: hold_feed), rather than spoil its
         * next message on the channel. */
        status = PEBBLE_EPROTO;
        if (w->chan_spoiled)
          snprintf(why, sizeof why,
                   "the worker's channel held %zu bytes that were not its "
                   "own: it has no task left, and ends",
                   w->reader.stray_dropped);
        else
          snprintf(why, sizeof why,
                   "the worker's channel holds %zu bytes that are not a "
                   "whole message header",
                   w->reader.header_got);
        goto bad;
      } else {
        if (budget > 0) {
          /* Nothing anywhere: a nudge for the next message in the ring,
           * then a last look (the worker's store and this one's come in
           * one order with the two loads). */
          atomic_store(&ring->want_nudge, 1);
          if (pb_ring_pending(ring))
            continue;
        }
        return;
      }
    }
    switch (res) {
    case PB_READ_AGAIN:
    case PB_READ_HEADER: /* not without a ring */
      return;
    case PB_READ_EOF:
      watch_worker(m, w);
      return;
    case PB_READ_BAD:
    bad:
      pb_log(PEBBLE_LOG_WARN, "pool worker %ld: %s", bk->proc_pid(w->proc),
             why);
      kill_worker(w, 1);
      drop_out(w);
      t = detach_task(P, w, &killed, 0);
      if (t != NULL) {
        pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, status,
                        pb_strdup(why), 0);
        pb_ptask_free(t);
      }
      w->reader.eof = 1; /* read nothing more from it */
      w->ring_reader.eof = 1;
      w->hold_feed = w->feed_owed = 0;
      watch_worker(m, w);
      return;
    case PB_READ_MESSAGE:
      if (r == &w->ring_reader && r->header.type != PB_MSG_STARTED &&
          !w->hold_feed && !chan_eof && !w->reader.eof &&
          ring_message_end(w) > w->reader.ring_seen &&
          ring_message_end(w) != looked_for) {
        /* The worker may have put this outcome in the ring after the
         * channel was last read, and its task may have written bytes
         * there before it returned: the channel is read once more, before
         * the worker can be given more work (hold_feed if part of a header
         * is there), then this message is taken (the ring reader still
         * holds it whole, and gives it again). */
        looked_for = ring_message_end(w);
        w->reader.drained = 0;
        if (budget < sizeof(pb_msg_header))
          budget = sizeof(pb_msg_header);
        chan_look = 1;
        continue;
      }
      if (r->header.type == PB_MSG_STARTED ||
          r->header.type == PB_MSG_SKIPPED) {
        int started = r->header.type == PB_MSG_STARTED;
        int timed = started && w->task != NULL &&
                    w->task->timeout != PEBBLE_FOREVER && !w->code_started;
        uint64_t id,
            at = timed ? pb_started_at(r, bk, w->task_started) : 0;
        memcpy(&id, r->payload, sizeof id);
        pb_reader_outcome(r, &o);
        pb_outcome_discard(&o);
        if (started && w->notice_taken != 0 && id == w->notice_taken) {
          w->notice_taken = 0; /* taken with the result before it */
          continue;
        }
        if (timed && pb_ptask_future(w->task)->id == id) {
          /* Its code started (send_task): the timeout counts from the
           * time the notice carries. */
          w->code_started = 1;
          w->deadline = pb_time_after(at, w->task->timeout);
          w->watch.deadline = w->deadline < w->kill_deadline
                                  ? w->deadline
                                  : w->kill_deadline;
          continue;
        }
        if (task_notice(m, w, started, id, now) != PEBBLE_OK) {
          status = PEBBLE_EPROTO;
          snprintf(why, sizeof why,
                   "the worker answered for task %llu, which it was not "
                   "sent ahead",
                   (unsigned long long)id);
          goto bad;
        }
        if (!started) {
          bk->mutex_lock(P->lock);
          fed = feed_worker(m, P, w) || w->state == PB_W_BUSY;
          bk->mutex_unlock(P->lock);
          if (!fed)
            pb_manager_post(m, &P->kick);
        }
        continue;
      }
      if (r->header.type == PB_MSG_PAGE) {
        pb_worker_page *page = NULL;
        intptr_t handle;
        pb_reader_outcome(r, &o);
        pb_outcome_discard(&o);
        status = PEBBLE_EPROTO;
        if (atomic_load(&w->page) != NULL || r != &w->reader) {
          snprintf(why, sizeof why,
                   r != &w->reader
                       ? "the worker sent a page through its outcome ring"
                       : "the worker sent a second page");
          goto bad;
        }
        if (!PB_BK_HAS(bk, proc_take_handle) ||
            bk->proc_take_handle(w->proc, &handle) != PEBBLE_OK) {
          snprintf(why, sizeof why,
                   "the worker said it sends its page, but no file came "
                   "with it");
          goto bad;
        }
        if ((status = pb_page_map_file(handle, &page, why, sizeof why)) !=
            PEBBLE_OK) {
          /* Not one that is safe to map: nothing goes ahead to it. */
          pb_log(PEBBLE_LOG_WARN, "pool worker %ld: %s", w->pid, why);
          continue;
        }
        bk->mutex_lock(P->lock);
        atomic_store(&w->page, page);
        bk->mutex_unlock(P->lock);
        /* Its ring from now on, once it sees this message taken. */
        w->ring_reader.ring = page;
        w->reader.hold_headers = 1;
        w->reader.ring_beside = page;
        w->reader.own_taken = 0; /* the worker counts from here on */
        atomic_store_explicit(&page->chan_taken, w->chan_taken,
                              memory_order_release);
        pb_manager_post(m, &P->kick); /* queued tasks may go ahead now */
        continue;
      }
      if (r->header.type == PB_MSG_INIT_FAILED) {
        int not_worker = r->header.code == PB_INIT_NOT_WORKER;
        char *text = r->payload;
        r->payload = NULL;
        pb_reader_free(r);
        /* No scheduler may send it a task from now on (it would die with
         * the worker, as a crash); one handed to it already fails like the
         * queued ones. */
        bk->mutex_lock(P->lock);
        w->ready = 0;
        bk->mutex_unlock(P->lock);
        drop_out(w);
        t = detach_task(P, w, &killed, 0);
        /* Broken before any of its futures says so: a task scheduled
         * after that is refused. */
        if (not_worker) /* the program, not an initializer */
          pb_pool_break_with(P, text, pb_strdup(text));
        else
          pb_pool_break(P, text);
        if (t != NULL) {
          pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED,
                          PEBBLE_EBROKEN,
                          not_worker
                              ? pb_strdup(text)
                              : pb_format("the pool's initializer failed: %s",
                                          text),
                          0);
          pb_ptask_free(t);
        }
        free(text);
        continue;
      }
      pb_reader_outcome(r, &o);
      /* One hold of the pool lock takes the task off the worker and
       * gives the worker its next (the scheduling thread wants the lock
       * for every task too). */
      bk->mutex_lock(P->lock);
      t = detach_task_locked(P, w, &killed, 0);
      if (t == NULL) { /* nothing was asked of it */
        bk->mutex_unlock(P->lock);
        pb_outcome_discard(&o);
        kill_worker(w, 1);
        continue;
      }
      P->crash_streak = 0;
      w->tasks_run++;
      /* The next task sent ahead says it starts in the notice that left
       * with this result: taken in this hold of the lock too, if it is
       * there whole (the reader checks it again when it comes to it).
       * Not from a channel whose headers wait for the ring's. */
      next = NULL;
      if (w->ahead != NULL && w->task == NULL &&
          (r == &w->ring_reader || !r->hold_headers) &&
          pb_reader_peek_started(r, &next_id) &&
          pb_ptask_future(w->ahead)->id == next_id) {
        next = notice_locked(w, 1, now);
        w->notice_taken = next_id;
      }
      /* The worker gets its next task before this one's future resolves:
       * it works while the result is delivered.  Not if a cancel or a
       * timeout killed it after it sent this result: the kill is on its
       * way, and a task handed to it now would die with it. */
      if (killed)
        w->killed = 1;
      {
        uint64_t took = now > w->task_started ? now - w->task_started : 0;
        P->task_ns = P->task_ns == UINT64_MAX
                         ? took
                         : P->task_ns - P->task_ns / 4 + took / 4;
      }
      /* Read under the lock: once ready, a scheduler may make it busy. */
      fed = feed_worker(m, P, w) || w->state == PB_W_BUSY;
      bk->mutex_unlock(P->lock);
      pb_ptask_keep_result(t, &o);
      /* Counts as it settles. */
      if (!pb_future_resolve(pb_ptask_future(t), &o, 0))
        pb_outcome_discard(&o);
      pb_ptask_free(t);
      if (next != NULL)
        notice_after(m, w, next, 1);
      if (!fed)
        pb_manager_post(m, &P->kick);
      continue;
    }
  }
}

/* The outcomes a worker sent, a read's worth at a time: the futures of one
 * read wake their waiters together (an application that waits for each
 * result in turn would otherwise be woken, and wake, once a task). */
static void read_worker(pb_manager *m, pb_pworker *w, size_t budget) {
  pb_future_defer_wakes();
  read_outcomes(m, w, budget);
  pb_future_flush_wakes();
}

/* The outcomes of w read by an application thread that holds the
 * manager's baton (pb_processes_wait_direct), with what the manager
 * thread must then do posted to it. */
static void read_direct(pb_manager *m, pb_pworker *w) {
  uint64_t deadline = w->watch.deadline;
  reading_direct = 1;
  direct_kick = 0;
  read_worker(m, w, PB_READ_SLICE);
  reading_direct = 0;
  /* A task's clock that started (its notice read here), or work for the
   * manager: it may sleep with a later deadline, or none. */
  if (direct_kick || w->watch.deadline != deadline)
    pb_manager_post(m, &w->pool->kick);
}

/* A round trip through the manager thread wakes three threads (the
 * worker, the manager, the waiting caller); on a machine whose idle CPUs
 * are slow to wake that is several times the two of a pipe ping-pong.  So
 * a thread that waits for a running task's future takes the manager's
 * baton and reads the worker's outcomes itself, and sleeps on the
 * worker's page, where the worker's next message wakes it instead of the
 * manager (worker_page.c).  The manager thread meanwhile sleeps as usual:
 * exits, deadlines and the channel stay its own, and whatever settles the
 * future (the manager, a cancel) wakes the sleeper through its stripe
 * (pb_future_page_wait_begin).  The baton keeps the worker from being
 * freed while it is read; a worker that exits while threads sleep on its
 * page is freed by the last of them. */
int pb_processes_wait_direct(pebble_future *f, uint64_t deadline) {
  pb_lib *L = f->lib;
  const pebble_backend *bk = L->bk;
  pb_manager *m = atomic_load(&L->manager);
  pb_page_waiter pw;
  int rc = PEBBLE_ENOTSUP;
  if (m == NULL || !pb_page_can_sleep())
    return PEBBLE_ENOTSUP;
  pb_manager_enter(m);
  for (;;) {
    pb_runner *runner;
    pb_pworker *w = NULL;
    pb_worker_page *page;
    uint64_t now;
    unsigned seen;
    pb_stripe_lock(f);
    runner = atomic_load(&f->runner);
    if (pb_future_is_resolved(f))
      rc = PEBBLE_OK;
    else if (runner != NULL && atomic_load(&f->state) == PEBBLE_RUNNING &&
             PB_CONTAINER(runner, pb_ptask, runner)->timeout ==
                 PEBBLE_FOREVER)
      w = PB_CONTAINER(runner, pb_ptask, runner)->worker;
    pb_stripe_unlock(f);
    /* No worker with a ring to read (not started, a launched worker, one
     * whose channel ended), or a task with a timeout: the manager's.  A
     * timed task's start notice moves its deadline, which wakes the
     * manager anyway, and its timeout is met by the manager, which then
     * starts a replacement while it holds the baton: a waiter woken on
     * the page would wait for that fork before it returns. */
    if (rc == PEBBLE_OK || w == NULL)
      break;
    page = w->ring_reader.ring;
    if (page == NULL || w->ring_reader.eof || w->reader.eof)
      break;
    now = bk->now_ns();
    if (now >= deadline) {
      rc = PEBBLE_ENOTREADY;
      break;
    }
    /* Listed where a settle looks, then armed, then a look at the ring:
     * a message put there from here on wakes this thread.  Nothing more
     * before it sleeps: the worker it has just woken with a task gets a
     * CPU sooner, often this one (the channel is the manager's to watch
     * meanwhile, and is read below once the thread is awake). */
    pw.page = page;
    pb_future_page_wait_begin(f, &pw);
    w->direct_waiters++;
    seen = pb_page_waiter_arm(page);
    if (!ring_has_more(w) && !pb_future_is_resolved(f)) {
      pb_manager_leave(m);
      pb_page_sleep(page, seen,
                    deadline == PEBBLE_BK_FOREVER ? UINT64_MAX
                                                  : deadline - now);
      pb_manager_enter(m);
    }
    pb_future_page_wait_end(f, &pw);
    if (--w->direct_waiters == 0) {
      if (w->gone) { /* it exited meanwhile: the last sleeper frees it */
        pb_page_free(atomic_load(&w->page));
        free(w);
        continue;
      }
      /* No sleeper left: the worker nudges the pool again. */
      pb_page_waiter_disarm(page);
    } else if (w->gone) {
      continue;
    }
    /* Read what came (what came while armed woke nobody else), whatever
     * became of f. */
    if (!w->ring_reader.eof && !w->reader.eof)
      read_direct(m, w);
    if (pb_future_is_resolved(f)) {
      rc = PEBBLE_OK;
      break;
    }
  }
  pb_manager_leave(m);
  return rc;
}

/* t's worker was killed because the pool stopped or broke: t ends the
 * way stop and a broken pool promise (no lock held; frees t).  A pool
 * that broke and was then stopped is broken: its message stays. */
static void end_with_pool(pebble_pool *P, pb_ptask *t, int broken) {
  if (broken)
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, PEBBLE_EBROKEN,
                    pb_strdup(P->broken_message ? P->broken_message
                                                : "the pool is broken"),
                    0);
  else
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_CANCELLED, PEBBLE_ECANCELED,
                    pb_strdup("the task was cancelled: its pool was "
                              "stopped"),
                    0);
  pb_ptask_free(t);
}

static void worker_exited(pb_manager *m, pb_pworker *w) {
  pebble_pool *P = w->pool;
  const pebble_backend *bk = P->lib->bk;
  pebble_bk_exit ex;
  pebble_exit_info info;
  pb_ptask *t;
  pb_pworker **pp;
  int killed = 0, counted, replace, unsent, unbegun = 0, small, ending,
      broken;
  uint64_t now = bk->now_ns(), ordinal;
  pb_worker_page *page = atomic_load(&w->page);
  char label_buf[PB_LABEL_MAX];
  const char *label = NULL;

  if (!w->reader.eof || ring_has_more(w))
    read_worker(m, w, SIZE_MAX); /* an outcome sent in full counts */
  bk->mutex_lock(P->lock);
  w->ready = 0; /* a task sent to it from now on would be lost */
  unsent = w->task_unsent;
  small = w->task_small;
  ordinal = atomic_load(&w->task_ordinal);
  bk->mutex_unlock(P->lock);
  drop_out(w);
  t = detach_task(P, w, &killed, 1); /* unclaimed below */
  take_back_ahead(P, w);
  /* Its channel took the task, but the worker died before it began it
   * (its page says so, and the worker can no longer write it): neither
   * the task's code nor the reading of its small message killed it, so
   * the task is run again, as one that never got through would be.  A
   * large message is not: reading it may be what killed the worker. */
  if (t != NULL && !unsent && !killed && !w->killed && small &&
      page != NULL && !w->remote &&
      atomic_load(&pb_ptask_future(t)->state) == PEBBLE_RUNNING &&
      !pb_page_began(page, ordinal))
    unbegun = 1;
  memset(&ex, 0, sizeof ex);
  if (bk->proc_reap(w->proc, &ex) != PEBBLE_OK)
    ex.status_known = 0;
  pb_exit_info_fill(&info, &ex, bk->proc_pid(w->proc), killed || w->killed);
  if (w->remote && !killed && !w->killed) {
    /* No report from the remote side, and not the pool's own doing: the
     * launcher died or failed, or its link went silent. */
    int where = bk->proc_remote(w->proc, NULL, 0, NULL);
    if (where == PEBBLE_ENOTREADY || where == PEBBLE_ETIMEDOUT)
      atomic_fetch_add(&P->remote_lost, 1);
  }
  bk->mutex_lock(P->lock);
  ending = P->state == PB_POOL_STOPPED || P->state == PB_POOL_BROKEN;
  broken = P->broken_message != NULL;
  if (t != NULL && (unsent || unbegun) && !ending &&
      t->requeued < PB_REQUEUE_MAX) {
    /* None of it reached the worker, or the worker never began it: it
     * waits for another (PENDING, or RUNNING still: no future goes back
     * to PENDING), and no process runs it meanwhile. */
    if (unbegun) {
      pb_stripe_lock(pb_ptask_future(t));
      pb_ptask_future(t)->pid = 0;
      pb_stripe_unlock(pb_ptask_future(t));
    }
    t->requeued++;
    t->next = NULL;
    unclaim(t); /* the next worker's claim is its own */
    pb_pool_requeue(P, t, t, 1);
    t = NULL;
  }
  bk->mutex_unlock(P->lock);
  /* The log names the task a worker died running, not one it never got. */
  if (t != NULL && !unsent && !unbegun && pb_log_wants(PEBBLE_LOG_WARN))
    label = pb_task_label(pb_ptask_future(t), label_buf, sizeof label_buf);
  if (t == NULL || unsent || unbegun) {
    if (w->tasks_run == 0 && !w->killed && w->state != PB_W_QUITTING)
      P->crash_streak++; /* died before doing anything: the environment */
  }
  if (t != NULL && ending && (unsent || killed || w->killed)) {
    /* Pebble ended it for the pool's stop or break: the task ends as
     * they promise, not as a crash. */
    if (!unsent)
      pb_future_set_exit(pb_ptask_future(t), &info);
    unclaim(t);
    end_with_pool(P, t, broken);
  } else if (t != NULL && killed) {
    /* Killed for its cancel, which claims the worker before it resolves
     * the future (pb_processes_ended_locked): the exit may come first. */
    pb_future_set_exit(pb_ptask_future(t), &info);
    unclaim(t);
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_CANCELLED, PEBBLE_ECANCELED,
                    pb_strdup("the task was cancelled"), 0);
    pb_ptask_free(t);
  } else if (t != NULL) {
    char *why = pb_exit_message_cut(&info, "worker process", &w->reader,
                                    bk, w->proc);
    if ((unsent || unbegun) && why != NULL) {
      char *more = pb_format("%s; none of the %u workers it was given to "
                             "began the task",
                             why, (unsigned)t->requeued + 1);
      free(why);
      why = more;
    }
    pb_future_set_exit(pb_ptask_future(t), &info);
    unclaim(t);
    pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, PEBBLE_EDIED, why, 0);
    pb_ptask_free(t);
  }
  bk->waitset_watch(pb_manager_waitset(m), w->proc, 0, NULL);
  pb_manager_deactivate(m, &w->watch);
  bk->proc_destroy(w->proc);
  pb_reader_free(&w->reader);
  pb_reader_free(&w->ring_reader);

  /* Queued before join can return, so it runs before destroy's last
   * command. */
  pb_manager_post(m, &P->kick);
  bk->mutex_lock(P->lock);
  for (pp = &P->workers; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  counted = !w->uncounted;
  P->active -= counted;
  if (P->spare == w)
    P->spare = NULL;
  P->alive--;
  replace = P->state == PB_POOL_OPEN || pb_pool_has_queued(P);
  if (!counted)
    ; /* a spare, or replaced (and counted) at its task's deadline */
  else if (replace && (w->state != PB_W_QUITTING || P->o.max_tasks > 0)) {
    atomic_fetch_add(&P->restarts, 1);
    if (w->remote)
      atomic_fetch_add(&P->remote_restarts, 1);
  }
  bk->cond_broadcast(P->idle);
  bk->mutex_unlock(P->lock);
  log_worker_end(P, &info, label, info.killed_by_library,
                 w->state == PB_W_QUITTING, replace);
  if (w->direct_waiters > 0) {
    /* They sleep on its page: woken, the last one frees both. */
    w->gone = 1;
    pb_page_wake(atomic_load(&w->page));
  } else {
    pb_page_free(atomic_load(&w->page));
    free(w);
  }
  if (replace && P->crash_streak >= BACKOFF_AFTER)
    schedule_respawn(m, P, now);
}

static void worker_events(pb_manager *m, pb_watch *ww, unsigned events) {
  pb_pworker *w = PB_CONTAINER(ww, pb_pworker, watch);
  if (events & PEBBLE_EV_WRITE) {
    pebble_pool *P = w->pool;
    int idle;
    flush_out(m, w);
    /* All out: an idle worker that waited for it may take a task now. */
    P->lib->bk->mutex_lock(P->lock);
    idle = w->out == NULL && w->state == PB_W_IDLE;
    P->lib->bk->mutex_unlock(P->lock);
    if (idle)
      pb_manager_post(m, &P->kick);
  }
  if ((events & PEBBLE_EV_READ) && !w->reader.eof)
    read_worker(m, w, PB_READ_SLICE);
  if (events & PEBBLE_EV_EXIT)
    worker_exited(m, w); /* frees w */
}

/* A timed task whose worker never said its code starts (send_task). */
static char *never_started_message(pebble_time_t timeout) {
  char *t = pb_pool_timeout_message(timeout);
  char *m = pb_format("%s; its worker never started it (it was given %llu s "
                      "more to get to it)",
                      t ? t : "the task passed its timeout",
                      (unsigned long long)(PB_START_ALLOWANCE_NS /
                                           1000000000u));
  free(t);
  return m;
}

static void worker_deadline(pb_manager *m, pb_watch *ww, uint64_t now) {
  pb_pworker *w = PB_CONTAINER(ww, pb_pworker, watch);
  pebble_pool *P = w->pool;
  if (w->deadline <= now) {
    pb_ptask *t;
    w->deadline = PEBBLE_BK_FOREVER;
    P->lib->bk->mutex_lock(P->lock);
    t = w->task;
    P->lib->bk->mutex_unlock(P->lock);
    /* Ended as its deadline came: the result on its way stands, and the
     * worker lives (worker_page.c). */
    if (t != NULL && !may_kill_for(w))
      t = NULL;
    if (t != NULL &&
        pb_pool_resolve(P, pb_ptask_future(t), PEBBLE_FAILED, PEBBLE_ETIMEDOUT,
                        w->code_started ? pb_pool_timeout_message(t->timeout)
                                        : never_started_message(t->timeout),
                        0)) {
      /* Resolved at the deadline; the worker is killed and replaced. */
      if (pb_log_wants(PEBBLE_LOG_WARN)) {
        char label[PB_LABEL_MAX], *why = pb_pool_timeout_message(t->timeout);
        pb_log(PEBBLE_LOG_WARN, "pool %p: %s: %s; killing worker process %ld",
               (void *)P,
               pb_task_label(pb_ptask_future(t), label, sizeof label),
               why ? why : "timed out", P->lib->bk->proc_pid(w->proc));
        free(why);
      }
      kill_worker(w, P->o.kill_grace == 0);
      if (P->o.kill_grace > 0)
        w->kill_deadline = pb_time_after(now, P->o.kill_grace);
      /* Replaced now rather than after its exit and reap: by the spare
       * if there is one, else by a worker started right away. */
      P->lib->bk->mutex_lock(P->lock);
      if (!w->uncounted) {
        w->uncounted = 1;
        P->active--;
        atomic_fetch_add(&P->restarts, 1);
        if (w->remote)
          atomic_fetch_add(&P->remote_restarts, 1);
        if (P->spare != NULL) {
          P->spare->state = PB_W_IDLE;
          P->spare->uncounted = 0;
          if (P->spare->out == NULL)
            mark_ready(P, P->spare);
          P->spare = NULL;
          P->active++;
        }
      }
      P->lib->bk->mutex_unlock(P->lock);
      pb_manager_post(m, &P->kick);
    }
  }
  if (w->kill_deadline <= now) {
    w->kill_deadline = PEBBLE_BK_FOREVER;
    kill_worker(w, 1);
  }
  ww->deadline = w->deadline < w->kill_deadline ? w->deadline
                                                 : w->kill_deadline;
}
