/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task.c -- launching work: pebble_run, task definitions, and the life of
 * a thread task and of a process task's child.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct pebble_task {
  pb_lib *lib;
  uint64_t gen;
  pebble_kind kind;
  pebble_task_fn fn;
  pebble_task_options opts;
  char *name;
  atomic_uint_fast64_t next_seq;
  pebble_bk_mutex *lock; /* guards binding */
  pb_binding *binding;
};

/* ---- options ---- */

int pebble_task_options_init(pebble_task_options *opts) {
  if (opts == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_task_options_init: opts is NULL");
  memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->timeout = PEBBLE_DEFAULT;
  opts->kill_grace = 0;
  opts->max_message_size = pebble_max_message_size();
  opts->queue_wait = PEBBLE_FOREVER;
  return PEBBLE_OK;
}

#define OPTS_MIN_SIZE                                                        \
  (offsetof(pebble_task_options, timeout) + sizeof(pebble_time_t))

int pb_task_options_read(const pebble_task_options *in,
                        pebble_task_options *out, const char *fname) {
  pebble_task_options_init(out);
  if (in == NULL)
    return PEBBLE_OK;
  if (in->struct_size < OPTS_MIN_SIZE || in->struct_size > 65536)
    return pb_error(PEBBLE_EINVAL,
                    "%s: options.struct_size is %zu; initialise the options "
                    "with pebble_task_options_init()",
                    fname, in->struct_size);
  memcpy(out, in,
         in->struct_size < sizeof *out ? in->struct_size : sizeof *out);
  out->struct_size = sizeof *out;
  if (out->timeout < 0 && out->timeout != PEBBLE_FOREVER &&
      out->timeout != PEBBLE_DEFAULT)
    return pb_error(PEBBLE_EINVAL,
                    "%s: options.timeout %lld is negative (PEBBLE_FOREVER "
                    "for none)",
                    fname, (long long)out->timeout);
  if (out->kill_grace < 0)
    return pb_error(PEBBLE_EINVAL, "%s: options.kill_grace %lld is negative",
                    fname, (long long)out->kill_grace);
  if (out->queue_wait == PEBBLE_DEFAULT)
    out->queue_wait = PEBBLE_FOREVER;
  if (out->queue_wait < 0 && out->queue_wait != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL,
                    "%s: options.queue_wait %lld is negative (PEBBLE_FOREVER "
                    "to wait without limit)",
                    fname, (long long)out->queue_wait);
  if (out->max_message_size == 0)
    return pb_error(PEBBLE_EINVAL, "%s: options.max_message_size is 0",
                    fname);
  if (out->start_method < PEBBLE_START_DEFAULT ||
      out->start_method > PEBBLE_START_FORKSERVER)
    return pb_error(PEBBLE_EINVAL, "%s: options.start_method %d is unknown",
                    fname, out->start_method);
  return PEBBLE_OK;
}

static int check_kind(pb_lib *L, pebble_kind kind, const char *fname) {
  if (kind != PEBBLE_THREAD && kind != PEBBLE_PROCESS)
    return pb_error(PEBBLE_EINVAL,
                    "%s: kind %d is neither PEBBLE_THREAD nor PEBBLE_PROCESS",
                    fname, (int)kind);
  if (L != NULL && kind == PEBBLE_THREAD &&
      !(L->bk->caps & PEBBLE_CAP_THREADS))
    return pb_error(PEBBLE_ENOTSUP, "%s: backend '%s' cannot run threads",
                    fname, L->bk->name);
  if (L != NULL && kind == PEBBLE_PROCESS &&
      !(L->bk->caps & PEBBLE_CAP_PROCESSES))
    return pb_error(PEBBLE_ENOTSUP, "%s: backend '%s' cannot run processes",
                    fname, L->bk->name);
  return PEBBLE_OK;
}

/* ---- launching ---- */

static int launch(pb_lib *L, pebble_kind kind, pebble_task_fn fn,
                  const void *arg, size_t arg_size,
                  const pebble_task_options *o, uint64_t seq,
                  pb_binding *binding, pebble_future **out) {
  pb_manager *m;
  pebble_future *f;
  pb_job *job;
  int rc;

  if (arg_size > o->max_message_size) {
    pb_binding_unref(binding);
    return pb_error(PEBBLE_ETOOBIG,
                    "argument of %zu bytes is larger than the maximum "
                    "message size of %zu bytes",
                    arg_size, o->max_message_size);
  }
  if (kind == PEBBLE_PROCESS && pb_lib_spawns(L, o->start_method)) {
    char name[PB_NAME_BYTES_MAX];
    int rc2 = PEBBLE_OK;
    if (!pb_backend_can(L->bk, pb_lib_method(L, o->start_method)))
      rc2 = pb_error(PEBBLE_ENOTSUP,
                     "backend '%s' cannot start workers by the %s start "
                     "method",
                     L->bk->name,
                     pb_lib_method_name(L, o->start_method));
    else if (pb_registry_name_of(fn, name, sizeof name) != PEBBLE_OK)
      rc2 = pb_error(PEBBLE_ENOTFOUND,
                     "the task function is not registered: spawned "
                     "workers find tasks by name (pebble_register)");
    if (rc2 != PEBBLE_OK) {
      pb_binding_unref(binding);
      return rc2;
    }
  }
  m = pb_lib_manager(L);
  if (m == NULL) {
    pb_binding_unref(binding);
    return PEBBLE_ESYSTEM; /* message set by the manager */
  }
  job = calloc(1, sizeof *job);
  if (job == NULL || (job->arg = malloc(arg_size ? arg_size : 1)) == NULL ||
      (kind == PEBBLE_THREAD &&
       (job->ctx = malloc(sizeof *job->ctx)) == NULL)) {
    if (job != NULL) {
      free(job->arg);
      free(job);
    }
    pb_binding_unref(binding);
    return pb_error(PEBBLE_ENOMEM, "out of memory launching a task");
  }
  if (arg_size > 0)
    memcpy(job->arg, arg, arg_size);
  rc = pb_future_new(L, o->name, seq, binding, &f);
  if (rc != PEBBLE_OK) {
    free(job->ctx);
    free(job->arg);
    free(job);
    pb_binding_unref(binding);
    return rc;
  }
  f->process = kind == PEBBLE_PROCESS;
  job->lib = L;
  job->manager = m;
  job->kind = kind;
  job->fn = fn;
  job->arg_size = arg_size;
  job->future = f; /* the job's reference */
  job->timeout = o->timeout == PEBBLE_DEFAULT ? PEBBLE_FOREVER : o->timeout;
  job->kill_grace = o->kill_grace;
  job->max_message = o->max_message_size;
  job->spawn = kind == PEBBLE_PROCESS && pb_lib_spawns(L, o->start_method);
  job->start_method = o->start_method;
  atomic_store_explicit(&f->runner, &job->runner, memory_order_relaxed);
  pb_future_ref_new(f); /* the caller's reference (f is not shared yet) */
  rc = pb_job_launch(job); /* frees the job on failure */
  if (rc != PEBBLE_OK) {
    pebble_future_release(f);
    return rc;
  }
  *out = f;
  return PEBBLE_OK;
}

static int common_checks(pebble_task_fn fn, const void *arg, size_t arg_size,
                         pebble_future **future, const char *fname) {
  if (future == NULL)
    return pb_error(PEBBLE_EINVAL, "%s: future is NULL", fname);
  *future = NULL;
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "%s: fn is NULL", fname);
  if (arg == NULL && arg_size > 0)
    return pb_error(PEBBLE_EINVAL, "%s: arg is NULL but arg_size is %zu",
                    fname, arg_size);
  return PEBBLE_OK;
}

int pebble_run(pebble_kind kind, pebble_task_fn fn, const void *arg,
               size_t arg_size, const pebble_task_options *opts,
               pebble_future **future) {
  pebble_task_options o;
  pb_binding *b = NULL;
  pb_lib *L;
  int rc;

  if ((rc = common_checks(fn, arg, arg_size, future, "pebble_run")) ||
      (rc = check_kind(NULL, kind, "pebble_run")) ||
      (rc = pb_task_options_read(opts, &o, "pebble_run")) || (rc = pb_lib_get(&L)) ||
      (rc = check_kind(L, kind, "pebble_run")))
    return rc;
  if (o.callback != NULL &&
      (b = pb_binding_new(o.callback, o.callback_data, NULL)) == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory launching a task");
  return launch(L, kind, fn, arg, arg_size, &o, 0, b, future);
}

int pebble_run_named(pebble_kind kind, const char *name, const void *arg,
                     size_t arg_size, const pebble_task_options *opts,
                     pebble_future **future) {
  pebble_task_options o;
  pebble_task_fn fn;
  int rc;
  if (future != NULL)
    *future = NULL;
  if ((rc = pebble_lookup(name, &fn)) != PEBBLE_OK)
    return rc;
  if ((rc = pb_task_options_read(opts, &o, "pebble_run_named")) != PEBBLE_OK)
    return rc;
  if (o.name == NULL)
    o.name = name;
  return pebble_run(kind, fn, arg, arg_size, &o, future);
}

/* ---- task definitions ---- */

int pebble_task_create(pebble_task **task, pebble_kind kind, pebble_task_fn fn,
                       const pebble_task_options *opts) {
  pebble_task *t;
  pb_lib *L;
  int rc;

  if (task == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_task_create: task is NULL");
  *task = NULL;
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_task_create: fn is NULL");
  if ((rc = check_kind(NULL, kind, "pebble_task_create")) ||
      (rc = pb_lib_get(&L)) || (rc = check_kind(L, kind, "pebble_task_create")))
    return rc;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a task");
  if ((rc = pb_task_options_read(opts, &t->opts, "pebble_task_create")) != PEBBLE_OK) {
    free(t);
    return rc;
  }
  if (t->opts.name != NULL) {
    rc = pebble_register(t->opts.name, fn);
    if (rc == PEBBLE_OK && (t->name = pb_strdup(t->opts.name)) == NULL)
      rc = pb_error(PEBBLE_ENOMEM, "out of memory creating a task");
    if (rc != PEBBLE_OK) {
      free(t);
      return rc;
    }
    t->opts.name = t->name;
  }
  if (L->bk->mutex_create(&t->lock) != PEBBLE_OK ||
      (t->opts.callback != NULL &&
       (t->binding = pb_binding_new(t->opts.callback, t->opts.callback_data,
                                    NULL)) == NULL)) {
    if (t->lock != NULL)
      L->bk->mutex_destroy(t->lock);
    free(t->name);
    free(t);
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a task");
  }
  t->lib = L;
  t->gen = L->gen;
  t->kind = kind;
  t->fn = fn;
  atomic_init(&t->next_seq, 0);
  pb_lib_hold(L);
  *task = t;
  return PEBBLE_OK;
}

int pebble_task_launch(pebble_task *t, const void *arg, size_t arg_size,
                       pebble_future **future) {
  pb_binding *b;
  int rc;
  if (t == NULL) {
    if (future != NULL)
      *future = NULL;
    return pb_error(PEBBLE_EINVAL, "pebble_task_launch: task is NULL");
  }
  if ((rc = common_checks(t->fn, arg, arg_size, future,
                          "pebble_task_launch")) ||
      (rc = pb_lib_check(t->lib, t->gen)))
    return rc;
  t->lib->bk->mutex_lock(t->lock);
  b = pb_binding_ref(t->binding);
  t->lib->bk->mutex_unlock(t->lock);
  return launch(t->lib, t->kind, t->fn, arg, arg_size, &t->opts,
                atomic_fetch_add(&t->next_seq, 1), b, future);
}

int pb_task_view_get(pebble_task *t, pb_task_view *v) {
  int rc;
  if (t == NULL)
    return pb_error(PEBBLE_EINVAL, "task is NULL");
  if ((rc = pb_lib_check(t->lib, t->gen)) != PEBBLE_OK)
    return rc;
  v->fn = t->fn;
  v->opts = &t->opts;
  t->lib->bk->mutex_lock(t->lock);
  v->binding = pb_binding_ref(t->binding);
  t->lib->bk->mutex_unlock(t->lock);
  v->seq = atomic_fetch_add(&t->next_seq, 1);
  return PEBBLE_OK;
}

int pebble_task_set_callback(pebble_task *t, pebble_callback_fn callback,
                             void *user_data, void (*destroy)(void *)) {
  pb_binding *nb = NULL, *old;
  int rc;
  if (t == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_task_set_callback: task is NULL");
  if ((rc = pb_lib_check(t->lib, t->gen)) != PEBBLE_OK)
    return rc;
  if ((callback != NULL || destroy != NULL) &&
      (nb = pb_binding_new(callback, user_data, destroy)) == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory setting a callback");
  t->lib->bk->mutex_lock(t->lock);
  old = t->binding;
  t->binding = nb;
  t->lib->bk->mutex_unlock(t->lock);
  pb_binding_unref(old);
  return PEBBLE_OK;
}

void pebble_task_destroy(pebble_task *t) {
  if (t == NULL || t->lib->bk->fork_generation() != t->gen)
    return;
  pb_binding_unref(t->binding);
  t->lib->bk->mutex_destroy(t->lock);
  pb_lib_drop(t->lib);
  free(t->name);
  free(t);
}
