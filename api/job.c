/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job.c -- one-shot tasks (pebble_run, pebble_task_launch): the life of a
 * thread task, the child of a process task, and what the manager thread
 * does for both.
 *
 * A thread task runs in a thread of its own; the manager only enforces
 * its deadline and joins the thread once it has returned.  A process task
 * is forked by the manager, which then reads its result, enforces its
 * deadline and reaps it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Read at most this much per wake-up, so one huge result cannot starve
 * other workers' events and deadlines. */
#define PB_READ_SLICE ((size_t)16 << 20)

static void job_free(pb_job *job) {
  if (job->ctx != NULL) {
    pb_ctx_free_result(job->ctx);
    free(job->ctx);
  }
  pb_reader_free(&job->reader);
  free(job->worker_failure);
  free(job->out);
  free(job->arg);
  pb_future_put(job->future);
  free(job);
}

/* Manager thread: the job is over; the future forgets it.  A resolver
 * that won the future reads the runner (job_settled) before it publishes
 * the outcome: wait for that before the job goes (a cancel racing a
 * launch that finds the future no longer pending). */
static void job_finish(pb_manager *m, pb_job *job) {
  pebble_future *f = job->future;
  pb_manager_deactivate(m, &job->watch);
  pb_stripe_lock(f);
  pb_future_wait_settled_locked(f);
  f->runner = NULL;
  pb_future_exit_over_locked(f); /* reaped (and recorded), or never ran */
  pb_stripe_unlock(f);
  job_free(job);
  pb_manager_adopt(m, -1);
}

/*
 * "Running" (what makes pebble_shutdown() answer busy) ends for a thread
 * task when its function returns, and for a process task when its future
 * resolves: a process can always be killed, so what is left of it (a
 * reap) finishes by itself.
 */
static void job_settled(pb_runner *runner) {
  pb_job *job = PB_CONTAINER(runner, pb_job, runner);
  if (job->kind == PEBBLE_PROCESS)
    atomic_fetch_sub(&job->lib->running, 1);
}

/* Resolve from the manager's side; 1 if this outcome won. */
static int resolve(pb_job *job, pb_outcome *o) {
  if (!pb_future_resolve(job->future, o, 0)) {
    pb_outcome_discard(o);
    return 0;
  }
  return 1;
}

static void resolve_failed(pb_job *job, int state, int status, char *message,
                           int sys_errno) {
  pb_outcome o;
  memset(&o, 0, sizeof o);
  o.state = state;
  o.status = status;
  o.message = message;
  o.sys_errno = sys_errno;
  resolve(job, &o);
}

static char *timeout_message(pebble_time_t us) {
  if (us % 1000000 == 0)
    return pb_format("the task passed its timeout of %lld s",
                     (long long)(us / 1000000));
  if (us % 1000 == 0)
    return pb_format("the task passed its timeout of %lld ms",
                     (long long)(us / 1000));
  return pb_format("the task passed its timeout of %lld us", (long long)us);
}

/* Resolve as timed out; 1 if that won over the task's own outcome. */
static int time_out(pb_job *job) {
  pb_outcome o;
  memset(&o, 0, sizeof o);
  o.state = PEBBLE_FAILED;
  o.status = PEBBLE_ETIMEDOUT;
  if (job->kind == PEBBLE_PROCESS && !job->code_started) {
    char *t = timeout_message(job->timeout);
    o.message = pb_format("%s; its process never started it (it was "
                          "given %llu s more from its launch to start)",
                          t ? t : "the task passed its timeout",
                          (unsigned long long)(PB_START_ALLOWANCE_NS /
                                               1000000000u));
    free(t);
  } else {
    o.message = timeout_message(job->timeout);
  }
  if (!resolve(job, &o))
    return 0;
  atomic_store(&job->stop_reason, PEBBLE_ETIMEDOUT);
  return 1;
}

#define JOB_OF(ptr, member) PB_CONTAINER(ptr, pb_job, member)

/* ================= thread tasks ================= */

/* Both the creator and the thread must be done before the join. */
static void thread_release(pb_job *job) {
  if (atomic_fetch_sub(&job->finish_refs, 1) == 1)
    pb_manager_post(job->manager, &job->cmd_join);
}

static void thread_main(void *arg) {
  pb_job *job = arg;
  pebble_future *f = job->future;
  pb_outcome o;
  int ret;

  if (pb_future_start(f)) { /* else cancelled before it started */
    if (job->timeout != PEBBLE_FOREVER) {
      job->task_deadline = pb_deadline_after(job->lib->bk, job->timeout);
      pb_manager_post(job->manager, &job->cmd_watch);
    }
    pb_role.running_future = f;
    ret = job->fn(job->ctx, job->arg, job->arg_size);
    pb_role.running_future = NULL;
    atomic_fetch_sub(&job->lib->running, 1);
    pb_ctx_outcome(job->ctx, ret, &o);
    pb_outcome_own(&o); /* the job's ctx goes with the job */
    /* Losing means a timeout or a cancel came first: the late result is
     * discarded. */
    if (!pb_future_resolve(f, &o, 1))
      pb_outcome_discard(&o);
  } else {
    atomic_fetch_sub(&job->lib->running, 1);
  }
  thread_release(job);
}

/* The task left its thread without returning (pthread_exit). */
static void thread_unwound(void *arg) {
  pb_job *job = arg;
  pb_role.running_future = NULL;
  pb_role.callbacks = 0;
  atomic_fetch_sub(&job->lib->running, 1);
  resolve_failed(job, PEBBLE_FAILED, PEBBLE_ETASK,
                 pb_strdup("the thread task ended its thread without "
                           "returning (pthread_exit)"),
                 0);
  thread_release(job);
}

static void thread_watch(pb_manager *m, pb_cmd *cmd) {
  pb_job *job = JOB_OF(cmd, cmd_watch);
  job->watch.deadline = job->task_deadline;
  pb_manager_activate(m, &job->watch);
}

static void thread_deadline(pb_manager *m, pb_watch *w, uint64_t now) {
  pb_job *job = JOB_OF(w, watch);
  (void)m;
  (void)now;
  w->deadline = PEBBLE_BK_FOREVER;
  time_out(job); /* the thread sees it through pebble_should_stop */
}

static void thread_join(pb_manager *m, pb_cmd *cmd) {
  pb_job *job = JOB_OF(cmd, cmd_join);
  job->lib->bk->thread_join(job->thread);
  job->thread = NULL;
  job_finish(m, job);
}

/* ================= process tasks ================= */

/* Runs in the forked child. */
static int child_main(void *arg, pebble_bk_chan *chan) {
  pb_job *job = arg;
  pebble_ctx ctx;
  int ret;
  /* This process is a copy of the manager thread: reset its role. */
  memset(&pb_role, 0, sizeof pb_role);
  pb_ctx_init(&ctx, NULL, job->max_message, job->future->id,
              pb_future_seq_of(job->future));
  ctx.shared_ok = PB_BK_HAS(job->lib->bk, chan_send_handle);
  /* The task's timeout counts from the time this notice carries. */
  if (job->timeout != PEBBLE_FOREVER &&
      pb_send_started(job->lib->bk, chan, job->future->id, 1) != PEBBLE_OK)
    return 3;
  ret = job->fn(&ctx, job->arg, job->arg_size);
  ret = pb_send_outcome(job->lib->bk, chan, &ctx, ret, NULL, 0) == PEBBLE_OK ? 0 : 3;
  pb_ctx_free_result(&ctx);
  return ret;
}

static void kill_job(pb_job *job, int force) {
  pb_stripe_lock(job->future);
  if (job->proc != NULL && !job->reaped) {
    job->lib->bk->proc_kill(job->proc, force);
    job->killed_by_library = 1;
  }
  pb_stripe_unlock(job->future);
}

static void job_cancel_locked(pb_runner *runner) {
  pb_job *job = JOB_OF(runner, runner);
  atomic_store(&job->stop_reason, PEBBLE_ECANCELED);
  if (job->proc != NULL && !job->reaped) {
    job->lib->bk->proc_kill(job->proc, 1);
    job->killed_by_library = 1;
  }
}

static void update_deadline(pb_job *job) {
  job->watch.deadline = job->task_deadline < job->kill_deadline
                            ? job->task_deadline
                            : job->kill_deadline;
}

/* A spawned worker gets a one-task CONFIG, then the task itself by name. */
static int spawn_messages(pb_job *job) {
  pb_msg_header h;
  uint64_t conf[3], head[PB_TASK_WORDS];
  char name[PB_NAME_BYTES_MAX];
  size_t size, task_size;
  unsigned char *p;
  if (pb_registry_name_of(job->fn, name, sizeof name) != PEBBLE_OK)
    return PEBBLE_ENOTFOUND; /* checked at launch */
  conf[0] = job->max_message;
  conf[1] = 1; /* one task, then the worker exits */
  conf[2] = 0; /* no initializer */
  head[0] = 0; /* by name */
  head[1] = job->future->id;
  head[2] = pb_future_seq_of(job->future);
  head[3] = strlen(name);
  head[4] = 0; /* no page: one task */
  task_size = sizeof head + (size_t)head[3] + job->arg_size;
  size = 2 * sizeof h + sizeof conf + task_size;
  job->out = p = malloc(size);
  if (p == NULL)
    return PEBBLE_ENOMEM;
  pb_msg_fill(&h, PB_MSG_CONFIG, 0, sizeof conf);
  memcpy(p, &h, sizeof h);
  memcpy(p += sizeof h, conf, sizeof conf);
  pb_msg_fill(&h, PB_MSG_TASK,
              job->timeout != PEBBLE_FOREVER
                  ? PB_TASK_TELL_START | PB_TASK_TELL_START_AT
                  : 0,
              task_size);
  memcpy(p += sizeof conf, &h, sizeof h);
  memcpy(p += sizeof h, head, sizeof head);
  memcpy(p += sizeof head, name, (size_t)head[3]);
  memcpy(p + head[3], job->arg, job->arg_size);
  job->out_size = size;
  job->out_done = 0;
  return PEBBLE_OK;
}

/* Write what is pending and watch for what is needed next. */
static void flush_out(pb_manager *m, pb_job *job) {
  const pebble_backend *bk = job->lib->bk;
  unsigned ev = PEBBLE_EV_EXIT;
  while (job->out != NULL) {
    size_t done = 0;
    int rc = bk->proc_write(job->proc, job->out + job->out_done,
                            job->out_size - job->out_done, &done);
    if (rc == PEBBLE_ENOTREADY)
      break;
    job->out_done += done;
    if (rc != PEBBLE_OK || job->out_done == job->out_size) {
      free(job->out); /* sent, or the worker is gone: its exit will say */
      job->out = NULL;
    }
  }
  if (job->out != NULL)
    ev |= PEBBLE_EV_WRITE;
  if (!job->message_done && !job->reader.eof)
    ev |= PEBBLE_EV_READ;
  bk->waitset_watch(pb_manager_waitset(m), job->proc, ev, &job->watch);
}

static void process_launch(pb_manager *m, pb_cmd *cmd) {
  pb_job *job = JOB_OF(cmd, cmd_launch);
  const pebble_backend *bk = job->lib->bk;
  pebble_future *f = job->future;
  pebble_bk_proc *proc = NULL;
  int rc, err = 0;

  if (!pb_future_start(f)) { /* cancelled while queued: never starts */
    job_finish(m, job);
    return;
  }
  job->launched_at = bk->now_ns(); /* the earliest its code can start */
  if (job->spawn) {
    rc = pb_start_named_worker(job->lib, job->start_method, NULL, &proc,
                               &err);
    if (rc == PEBBLE_OK && (rc = spawn_messages(job)) != PEBBLE_OK)
      bk->proc_destroy(proc);
  } else {
    rc = bk->proc_start(&proc, child_main, job, &err);
  }
  /* Watched before it counts as started: a process nobody watches would
   * never be reaped, nor its future resolved. */
  if (rc == PEBBLE_OK &&
      (rc = bk->waitset_watch(pb_manager_waitset(m), proc, PEBBLE_EV_EXIT,
                              &job->watch)) != PEBBLE_OK)
    bk->proc_destroy(proc); /* kills and reaps it */
  if (rc != PEBBLE_OK) {
    const char *why = err ? pb_sys_strerror(err) : pebble_strerror(rc);
    int method = pb_lib_method(job->lib, job->start_method);
    pb_log(PEBBLE_LOG_WARN, "cannot start a process: %s", why);
    /* The method named: a forkserver's refusal (ended, hung) reads as a
     * system error's text otherwise. */
    resolve_failed(job, PEBBLE_FAILED,
                   rc == PEBBLE_ENOMEM ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM,
                   pb_format("the system refused a process for the task: %s "
                             "(start method %s)",
                             why, pb_start_method_name(method)),
                   err);
    job_finish(m, job);
    return;
  }
  /* Until the child says the task's code starts, its start may take
   * PB_START_ALLOWANCE_NS on top of the timeout (read_result). */
  job->task_deadline = pb_deadline_after(bk, job->timeout);
  if (job->task_deadline != PEBBLE_BK_FOREVER)
    job->task_deadline = job->task_deadline < PEBBLE_BK_FOREVER -
                                                   PB_START_ALLOWANCE_NS
                             ? job->task_deadline + PB_START_ALLOWANCE_NS
                             : PEBBLE_BK_FOREVER;
  job->reader.task_id = f->id; /* what its outcome must answer */
  pb_stripe_lock(f);
  job->proc = proc;
  f->pid = (int32_t)bk->proc_pid(proc);
  if (atomic_load(&f->state) == PEBBLE_CANCELLED && !job->killed_by_library) {
    /* Cancelled between its start and now: kill what just started. */
    job->lib->bk->proc_kill(proc, 1);
    job->killed_by_library = 1;
  }
  pb_stripe_unlock(f);
  update_deadline(job);
  pb_manager_activate(m, &job->watch);
  flush_out(m, job); /* also sets the watch */
}

static void read_result(pb_manager *m, pb_job *job, size_t budget) {
  const pebble_backend *bk = job->lib->bk;
  char why[256];
  int status = PEBBLE_OK;
  pb_outcome o;

  if (job->message_done || job->reader.eof)
    return;
again:
  switch (pb_reader_step(&job->reader, bk, job->proc, job->max_message,
                         &budget, &status, why, sizeof why)) {
  case PB_READ_AGAIN:
  case PB_READ_HEADER: /* not asked for (hold_headers) */
    return;
  case PB_READ_MESSAGE:
    if (job->reader.header.type == PB_MSG_INIT_FAILED) {
      /* A spawned program that cannot serve (it did not call
       * pebble_worker_main(), worker.c): it exits at once, and its exit
       * resolves the future with this reason and how it ended. */
      pb_reader_outcome(&job->reader, &o);
      free(job->worker_failure);
      job->worker_failure = o.message;
      o.message = NULL;
      pb_outcome_discard(&o);
      bk->waitset_watch(pb_manager_waitset(m), job->proc, PEBBLE_EV_EXIT,
                        &job->watch);
      return;
    }
    if (job->reader.header.type == PB_MSG_STARTED ||
        job->reader.header.type == PB_MSG_SKIPPED) {
      /* The task's code started: its timeout counts from then (the
       * time the notice carries, not when it is read). */
      int type = job->reader.header.type;
      uint64_t started = pb_started_at(&job->reader, bk, job->launched_at);
      pb_reader_outcome(&job->reader, &o);
      pb_outcome_discard(&o);
      if (type == PB_MSG_SKIPPED || job->code_started) {
        status = PEBBLE_EPROTO;
        snprintf(why, sizeof why,
                 "the worker sent a task notice it was not asked for");
        goto bad;
      }
      job->code_started = 1;
      if (job->task_deadline != PEBBLE_BK_FOREVER) {
        job->task_deadline = pb_time_after(started, job->timeout);
        update_deadline(job);
      }
      goto again;
    }
    job->message_done = 1;
    job->task_deadline = PEBBLE_BK_FOREVER;
    update_deadline(job);
    pb_reader_outcome(&job->reader, &o);
    pb_outcome_own(&o); /* out of the reader, which the job frees */
    resolve(job, &o);
    /* The child exits right after its message; only its exit matters. */
    bk->waitset_watch(pb_manager_waitset(m), job->proc, PEBBLE_EV_EXIT,
                      &job->watch);
    return;
  case PB_READ_EOF:
    bk->waitset_watch(pb_manager_waitset(m), job->proc, PEBBLE_EV_EXIT,
                      &job->watch);
    return;
  case PB_READ_BAD:
  bad:
    pb_log(PEBBLE_LOG_WARN, "worker %ld: %s", bk->proc_pid(job->proc), why);
    kill_job(job, 1);
    job->message_done = 1;
    resolve_failed(job, PEBBLE_FAILED, status, pb_strdup(why), 0);
    bk->waitset_watch(pb_manager_waitset(m), job->proc, PEBBLE_EV_EXIT,
                      &job->watch);
    return;
  }
}

static void process_exited(pb_manager *m, pb_job *job) {
  const pebble_backend *bk = job->lib->bk;
  pebble_future *f = job->future;
  pebble_bk_proc *proc = job->proc;
  pebble_bk_exit ex;
  pebble_exit_info info;

  /* A result sent in full before the exit counts: read all of it. */
  read_result(m, job, SIZE_MAX);
  int killed;

  memset(&ex, 0, sizeof ex);
  pb_stripe_lock(f);
  if (bk->proc_reap(proc, &ex) != PEBBLE_OK)
    ex.status_known = 0;
  job->reaped = 1;
  job->proc = NULL;
  killed = job->killed_by_library;
  pb_stripe_unlock(f);

  pb_exit_info_fill(&info, &ex, bk->proc_pid(proc), killed);
  pb_future_set_exit(f, &info);
  if (!job->message_done) {
    char *how = pb_exit_message_cut(&info, "process", &job->reader, bk,
                                    proc);
    if (job->worker_failure != NULL && how != NULL) {
      char *both = pb_format("%s; %s", job->worker_failure, how);
      free(how);
      how = both;
    }
    if (!pb_future_is_resolved(f) && pb_log_wants(PEBBLE_LOG_WARN)) {
      char label[PB_LABEL_MAX];
      pb_log(PEBBLE_LOG_WARN, "%s: %s", pb_task_label(f, label, sizeof label),
             how ? how : "its process died");
    }
    resolve_failed(job, PEBBLE_FAILED, PEBBLE_EDIED, how, 0);
  }
  bk->waitset_watch(pb_manager_waitset(m), proc, 0, NULL);
  bk->proc_destroy(proc);
  job_finish(m, job);
}

static void process_events(pb_manager *m, pb_watch *w, unsigned events) {
  pb_job *job = JOB_OF(w, watch);
  if (job->proc == NULL)
    return;
  if (events & PEBBLE_EV_WRITE)
    flush_out(m, job);
  if (events & PEBBLE_EV_READ)
    read_result(m, job, PB_READ_SLICE);
  if (events & PEBBLE_EV_EXIT)
    process_exited(m, job); /* frees the job */
}

static void process_deadline(pb_manager *m, pb_watch *w, uint64_t now) {
  pb_job *job = JOB_OF(w, watch);
  (void)m;
  if (job->task_deadline <= now) {
    job->task_deadline = PEBBLE_BK_FOREVER;
    if (time_out(job)) {
      if (pb_log_wants(PEBBLE_LOG_WARN)) {
        char label[PB_LABEL_MAX];
        pb_future_rare *r = pb_future_rare_of(job->future);
        pb_log(PEBBLE_LOG_WARN, "%s: %s; killing process %ld",
               pb_task_label(job->future, label, sizeof label),
               r != NULL && r->message != NULL ? r->message : "timed out",
               job->proc != NULL ? job->lib->bk->proc_pid(job->proc) : 0L);
      }
      /* The future already resolved: a grace only delays the SIGKILL. */
      kill_job(job, job->kill_grace == 0);
      if (job->kill_grace > 0)
        job->kill_deadline = pb_time_after(now, job->kill_grace);
    }
  }
  if (job->kill_deadline <= now) {
    job->kill_deadline = PEBBLE_BK_FOREVER;
    kill_job(job, 1);
  }
  update_deadline(job);
}

/* ================= launching ================= */

static const pb_runner_ops job_runner_ops = {job_cancel_locked, job_settled,
                                             NULL};

int pb_job_launch(pb_job *job) {
  pb_lib *L = job->lib;
  int rc;

  job->runner.ops = &job_runner_ops;
  job->watch.deadline = PEBBLE_BK_FOREVER;
  job->task_deadline = PEBBLE_BK_FOREVER;
  job->kill_deadline = PEBBLE_BK_FOREVER;
  pb_manager_adopt(job->manager, 1);
  atomic_fetch_add(&L->running, 1);
  pb_future_track(job->future); /* shutdown waits for it and callbacks */
  if (job->kind == PEBBLE_PROCESS) {
    /* Until job_finish: from here a process may start for the task, and
     * only the reap (or its never starting) settles that.  No other
     * thread has seen the future yet. */
    atomic_init(&job->future->exit_due, 1);
    job->watch.on_events = process_events;
    job->watch.on_deadline = process_deadline;
    job->cmd_launch.run = process_launch;
    pb_manager_post(job->manager, &job->cmd_launch);
    return PEBBLE_OK;
  }
  job->watch.on_deadline = thread_deadline;
  job->cmd_watch.run = thread_watch;
  job->cmd_join.run = thread_join;
  pb_ctx_init(job->ctx, &job->stop_reason, job->max_message,
              job->future->id, pb_future_seq_of(job->future));
  atomic_init(&job->finish_refs, 2);
  rc = L->bk->thread_create(&job->thread, thread_main, thread_unwound, job, 0);
  if (rc != PEBBLE_OK) {
    atomic_fetch_sub(&L->running, 1);
    pb_future_untrack(job->future); /* never started, never resolves */
    pb_manager_adopt(job->manager, -1);
    pb_stripe_lock(job->future);
    job->future->runner = NULL;
    pb_stripe_unlock(job->future);
    job_free(job);
    return pb_error(PEBBLE_ESYSTEM, "cannot create a thread for the task: %s",
                    pebble_strerror(rc));
  }
  thread_release(job);
  return PEBBLE_OK;
}
