/*
 * manager.c -- the library thread that supervises work.
 *
 * One thread per library state.  It forks process tasks (parent-death
 * signals follow the forking thread, so it must be a thread that lives as
 * long as the workers), reads their results, enforces deadlines, kills
 * and reaps processes, and joins finished task threads.  It waits on one
 * backend waitset with the nearest deadline as its timeout: no polling.
 * Other threads talk to it through a command queue and a wake-up.
 * It never runs user callbacks: outcomes go to the callback thread.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PB_EVENTS_MAX 64
/* Read at most this much per wake-up, so one huge result cannot starve
 * other workers' events and deadlines. */
#define PB_READ_SLICE (16u << 20)

struct pb_manager {
  pb_lib *lib;
  const pebble_backend *bk;
  pebble_bk_waitset *ws;
  pebble_bk_mutex *lock; /* guards the command queue and stop */
  pb_job *cmd_head, *cmd_tail;
  int stop;
  atomic_long jobs; /* jobs not yet freed */
  pebble_bk_thread *thread;
  pb_job *active; /* manager thread only */
};

/* ---- the active list (manager thread only) ---- */

static int is_active(pb_manager *m, pb_job *job) {
  return job->prev != NULL || m->active == job;
}

static void activate(pb_manager *m, pb_job *job) {
  if (is_active(m, job))
    return;
  job->prev = NULL;
  job->next = m->active;
  if (m->active != NULL)
    m->active->prev = job;
  m->active = job;
}

static void deactivate(pb_manager *m, pb_job *job) {
  if (!is_active(m, job))
    return;
  if (job->prev != NULL)
    job->prev->next = job->next;
  else
    m->active = job->next;
  if (job->next != NULL)
    job->next->prev = job->prev;
  job->prev = job->next = NULL;
}

/* Drop the job: the future forgets it, its reference goes. */
static void finish(pb_manager *m, pb_job *job) {
  pebble_future *f = job->future;
  if (job->kind == PEBBLE_PROCESS) /* thread jobs count down themselves */
    atomic_fetch_sub(&m->lib->running, 1);
  deactivate(m, job);
  pb_stripe_lock(f);
  f->job = NULL;
  pb_stripe_unlock(f);
  pb_job_free(job);
  atomic_fetch_sub(&m->jobs, 1);
}

static void resolve_failed(pb_job *job, int status, char *message,
                           int sys_errno) {
  pb_outcome o;
  memset(&o, 0, sizeof o);
  o.state = PEBBLE_FAILED;
  o.status = status;
  o.message = message;
  o.sys_errno = sys_errno;
  if (!pb_future_resolve(job->future, &o, 0))
    pb_outcome_discard(&o);
}

/* Kill a process job's group, unless already reaped (stripe lock). */
static void kill_job(pb_manager *m, pb_job *job, int force) {
  pb_stripe_lock(job->future);
  if (job->proc != NULL && !job->reaped) {
    m->bk->proc_kill(job->proc, force);
    job->killed_by_library = 1;
  }
  pb_stripe_unlock(job->future);
}

/* ---- process jobs ---- */

static void start_process(pb_manager *m, pb_job *job) {
  pebble_future *f = job->future;
  pebble_bk_proc *proc = NULL;
  int rc, err = 0, cancelled;

  if (!pb_future_start(f)) { /* cancelled while queued: never starts */
    finish(m, job);
    return;
  }
  rc = m->bk->proc_start(&proc, pb_job_child_main, job, &err);
  if (rc != PEBBLE_OK) {
    pb_log(PEBBLE_LOG_WARN, "cannot start a process: %s",
           err ? strerror(err) : pebble_strerror(rc));
    resolve_failed(job,
                   rc == PEBBLE_ESYSTEM || err ? PEBBLE_ESYSTEM : rc,
                   pb_format("the system refused a process for the task: %s",
                             err ? strerror(err) : pebble_strerror(rc)),
                   err);
    finish(m, job);
    return;
  }
  job->deadline = pb_deadline_after(m->bk, job->timeout);
  pb_stripe_lock(f);
  job->proc = proc;
  cancelled = atomic_load(&f->state) == PEBBLE_CANCELLED;
  if (cancelled) { /* cancel came between start and now */
    m->bk->proc_kill(proc, 1);
    job->killed_by_library = 1;
  }
  pb_stripe_unlock(f);
  m->bk->waitset_watch(m->ws, proc, PEBBLE_EV_READ | PEBBLE_EV_EXIT, job);
  activate(m, job);
}

static void deliver(pb_job *job) {
  pb_outcome o;
  memset(&o, 0, sizeof o);
  switch (job->header.type) {
  case PB_MSG_RESULT:
    o.state = PEBBLE_DONE;
    o.status = PEBBLE_OK;
    o.result = job->payload;
    o.result_size = (size_t)job->header.size;
    break;
  case PB_MSG_FAILURE:
    o.state = PEBBLE_FAILED;
    o.status = PEBBLE_ETASK;
    o.task_code = job->header.code;
    o.message = job->payload;
    break;
  default: /* PB_MSG_ERROR: a library error inside the worker */
    o.state = PEBBLE_FAILED;
    o.status = job->header.code;
    o.message = job->payload;
    break;
  }
  job->payload = NULL;
  job->deadline = PEBBLE_BK_FOREVER;
  if (!pb_future_resolve(job->future, &o, 0))
    pb_outcome_discard(&o);
}

static void protocol_error(pb_manager *m, pb_job *job, int status,
                           const char *why) {
  pb_log(PEBBLE_LOG_WARN, "worker %ld: %s", m->bk->proc_pid(job->proc), why);
  kill_job(m, job, 1);
  job->message_done = 1; /* ignore whatever else it sends */
  resolve_failed(job, status, pb_strdup(why), 0);
}

/* Read what the channel has, up to `limit` bytes. */
static void read_channel(pb_manager *m, pb_job *job, size_t limit) {
  size_t total = 0;
  while (!job->eof && total < limit) {
    unsigned char scratch[4096];
    void *buf;
    size_t want, got = 0;
    int rc;

    if (job->message_done) {
      buf = scratch; /* after the message: drained and ignored */
      want = sizeof scratch;
    } else if (job->header_got < sizeof job->header_buf) {
      buf = job->header_buf + job->header_got;
      want = sizeof job->header_buf - job->header_got;
    } else {
      buf = job->payload + job->payload_got;
      want = (size_t)job->header.size - job->payload_got;
    }
    if (want > 0) {
      rc = m->bk->proc_read(job->proc, buf, want, &got);
      if (rc == PEBBLE_ENOTREADY)
        return;
      if (rc != PEBBLE_OK || got == 0) {
        job->eof = 1;
        break;
      }
    }
    total += got;
    if (job->message_done)
      continue;
    if (job->header_got < sizeof job->header_buf) {
      char why[256];
      job->header_got += got;
      if (job->header_got < sizeof job->header_buf)
        continue;
      memcpy(&job->header, job->header_buf, sizeof job->header);
      rc = pb_msg_check(&job->header, job->max_message, why, sizeof why);
      if (rc != PEBBLE_OK) {
        protocol_error(m, job, rc, why);
        continue;
      }
      job->payload = malloc((size_t)job->header.size + 1);
      if (job->payload == NULL) {
        protocol_error(m, job, PEBBLE_ENOMEM,
                       "out of memory for the task's result");
        continue;
      }
      job->payload[job->header.size] = '\0';
    } else {
      job->payload_got += got;
    }
    if (job->payload_got == job->header.size) {
      job->message_done = 1;
      deliver(job);
    }
  }
  if (job->eof)
    m->bk->waitset_watch(m->ws, job->proc, PEBBLE_EV_EXIT, job);
}

static void describe_exit(char *buf, size_t len, const pebble_exit_info *x) {
  if (!x->status_known)
    snprintf(buf, len,
             "process %ld ended before returning a result; its exit status "
             "is unknown (reaped elsewhere, or SIGCHLD is ignored)",
             x->pid);
  else if (x->signal != 0)
    snprintf(buf, len, "process %ld was killed by signal %d (%s)%s%s", x->pid,
             x->signal, pebble_signal_name(x->signal),
             x->core_dumped ? ", core dumped" : "",
             x->killed_by_library ? ", sent by Pebble" : "");
  else
    snprintf(buf, len,
             "process %ld exited with code %d before returning a result",
             x->pid, x->exit_code);
}

static void process_exited(pb_manager *m, pb_job *job) {
  pebble_future *f = job->future;
  pebble_bk_exit ex;
  pebble_exit_info info;
  pebble_bk_proc *proc = job->proc;
  char why[256];

  /* A result fully sent before the exit counts: read it all first. */
  read_channel(m, job, SIZE_MAX);
  memset(&ex, 0, sizeof ex);
  memset(&info, 0, sizeof info);
  pb_stripe_lock(f);
  if (m->bk->proc_reap(proc, &ex) != PEBBLE_OK)
    ex.status_known = 0;
  job->reaped = 1;
  info.killed_by_library = job->killed_by_library;
  job->proc = NULL;
  pb_stripe_unlock(f);

  info.struct_size = sizeof info;
  info.pid = m->bk->proc_pid(proc);
  info.status_known = ex.status_known;
  info.exited = ex.exited;
  info.exit_code = ex.exit_code;
  info.signal = ex.signal;
  info.core_dumped = ex.core_dumped;
  pb_future_set_exit(f, &info);
  if (!job->message_done) {
    describe_exit(why, sizeof why, &info);
    resolve_failed(job, PEBBLE_EDIED, pb_strdup(why), 0);
  }
  m->bk->waitset_watch(m->ws, proc, 0, NULL);
  m->bk->proc_destroy(proc);
  finish(m, job);
}

/* ---- deadlines ---- */

static void format_duration(char *buf, size_t len, pebble_time_t us) {
  if (us % 1000000 == 0)
    snprintf(buf, len, "%lld s", (long long)(us / 1000000));
  else if (us % 1000 == 0)
    snprintf(buf, len, "%lld ms", (long long)(us / 1000));
  else
    snprintf(buf, len, "%lld us", (long long)us);
}

static void deadline_passed(pb_manager *m, pb_job *job, uint64_t now) {
  pb_outcome o;
  char t[48];
  job->deadline = PEBBLE_BK_FOREVER;
  memset(&o, 0, sizeof o);
  o.state = PEBBLE_FAILED;
  o.status = PEBBLE_ETIMEDOUT;
  format_duration(t, sizeof t, job->timeout);
  o.message = pb_format("the task passed its timeout of %s", t);
  if (!pb_future_resolve(job->future, &o, 0)) {
    pb_outcome_discard(&o);
    return;
  }
  atomic_store(&job->stop_reason, PEBBLE_ETIMEDOUT);
  if (job->kind == PEBBLE_PROCESS) {
    kill_job(m, job, job->kill_grace == 0);
    if (job->kill_grace > 0)
      job->kill_deadline = now + (uint64_t)job->kill_grace * 1000u;
  }
}

/* Handle passed deadlines; return the nearest one still ahead. */
static uint64_t expire(pb_manager *m) {
  uint64_t now = m->bk->now_ns(), next = PEBBLE_BK_FOREVER;
  pb_job *job, *following;
  for (job = m->active; job != NULL; job = following) {
    following = job->next;
    if (job->deadline != PEBBLE_BK_FOREVER && job->deadline <= now)
      deadline_passed(m, job, now);
    if (job->kill_deadline != PEBBLE_BK_FOREVER && job->kill_deadline <= now) {
      job->kill_deadline = PEBBLE_BK_FOREVER;
      kill_job(m, job, 1);
    }
    if (job->deadline < next)
      next = job->deadline;
    if (job->kill_deadline < next)
      next = job->kill_deadline;
  }
  return next;
}

/* ---- commands ---- */

void pb_manager_post(pb_manager *m, pb_job *job, enum pb_cmd cmd) {
  m->bk->mutex_lock(m->lock);
  if (job->cmd != PB_CMD_NONE) {
    /* Already queued: only WATCH can be pending when DONE arrives. */
    job->cmd = PB_CMD_BOTH;
  } else {
    job->cmd = cmd;
    job->cmd_next = NULL;
    if (m->cmd_tail != NULL)
      m->cmd_tail->cmd_next = job;
    else
      m->cmd_head = job;
    m->cmd_tail = job;
  }
  m->bk->mutex_unlock(m->lock);
  m->bk->waitset_wake(m->ws);
}

static void join_thread(pb_manager *m, pb_job *job) {
  m->bk->thread_join(job->thread);
  job->thread = NULL;
  finish(m, job);
}

static int run_commands(pb_manager *m) {
  pb_job *job, *next;
  int stop;
  m->bk->mutex_lock(m->lock);
  job = m->cmd_head;
  m->cmd_head = m->cmd_tail = NULL;
  stop = m->stop;
  /* Snapshot each command while still holding the lock. */
  for (next = job; next != NULL; next = next->cmd_next) {
    next->taken_cmd = next->cmd;
    next->taken_next = next->cmd_next; /* posters may reuse cmd_next */
    next->cmd = PB_CMD_NONE;
  }
  m->bk->mutex_unlock(m->lock);
  for (; job != NULL; job = next) {
    next = job->taken_next;
    switch (job->taken_cmd) {
    case PB_CMD_LAUNCH:
      start_process(m, job);
      break;
    case PB_CMD_WATCH:
      activate(m, job);
      break;
    case PB_CMD_THREAD_DONE:
    case PB_CMD_BOTH:
      join_thread(m, job);
      break;
    default:
      break;
    }
  }
  return stop;
}

static void manager_main(void *arg) {
  pb_manager *m = arg;
  pebble_wait_event events[PB_EVENTS_MAX];
  pb_role.library_thread = 1;
  for (;;) {
    size_t n = 0, i;
    uint64_t next;
    int stop = run_commands(m);
    next = expire(m);
    if (stop && m->active == NULL && atomic_load(&m->jobs) == 0)
      break;
    m->bk->waitset_wait(m->ws, next, events, PB_EVENTS_MAX, &n);
    for (i = 0; i < n; i++) {
      pb_job *job = events[i].tag;
      if (job == NULL || job->proc == NULL)
        continue;
      if (events[i].events & PEBBLE_EV_READ)
        read_channel(m, job, PB_READ_SLICE);
      if (events[i].events & PEBBLE_EV_EXIT)
        process_exited(m, job);
    }
  }
}

int pb_manager_start(pb_lib *lib, pb_manager **out) {
  const pebble_backend *bk = lib->bk;
  pb_manager *m = calloc(1, sizeof *m);
  int rc;
  if (m == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory starting the manager");
  m->lib = lib;
  m->bk = bk;
  atomic_init(&m->jobs, 0);
  rc = bk->mutex_create(&m->lock);
  if (rc == PEBBLE_OK && (rc = bk->waitset_create(&m->ws)) != PEBBLE_OK)
    bk->mutex_destroy(m->lock);
  if (rc == PEBBLE_OK &&
      (rc = bk->thread_create(&m->thread, manager_main, NULL, m,
                              PEBBLE_BK_THREAD_INTERNAL)) != PEBBLE_OK) {
    bk->waitset_destroy(m->ws);
    bk->mutex_destroy(m->lock);
  }
  if (rc != PEBBLE_OK) {
    free(m);
    return pb_error(PEBBLE_ESYSTEM, "cannot start the library's manager "
                                    "thread: %s",
                    pebble_strerror(rc));
  }
  *out = m;
  return PEBBLE_OK;
}

void pb_manager_adopt(pb_manager *m, long delta) {
  atomic_fetch_add(&m->jobs, delta);
}

long pb_manager_jobs(pb_manager *m) { return atomic_load(&m->jobs); }

void pb_manager_stop(pb_manager *m) {
  m->bk->mutex_lock(m->lock);
  m->stop = 1;
  m->bk->mutex_unlock(m->lock);
  m->bk->waitset_wake(m->ws);
  m->bk->thread_join(m->thread);
  m->bk->waitset_destroy(m->ws);
  m->bk->mutex_destroy(m->lock);
  free(m);
}
