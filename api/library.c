/* SPDX-License-Identifier: Apache-2.0 */
/*
 * library.c -- the library state: lazy initialisation, shutdown, backend
 * selection, global settings.
 *
 * The state lives behind one pointer.  After a fork the child sees the
 * backend's fork generation change, leaves the parent's state alone (its
 * locks may be held by threads that do not exist in the child) and
 * builds a new one on first use.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pb_lib *_Atomic g_lib;
static char g_selected[64];
static int g_selected_set;
static atomic_size_t g_max_message = (size_t)1 << 30;
PB_TLS pb_thread_role pb_role PB_TLS_FAST;

static int host_shutdown(void) { return pebble_shutdown(); }
static const pebble_host host = {sizeof(pebble_host), pb_log, host_shutdown,
                                 pb_worker_serve_configured};

/* Which name would be chosen now, and why (boot lock held). */
static const char *choose_name(const char **reason) {
  const char *env;
  /* A spawned worker speaks its parent's channel, so it runs the backend
   * its parent named, whatever else says otherwise. */
  env = pb_secure_getenv("PEBBLE_WORKER_BACKEND");
  if (env != NULL && *env && pb_secure_getenv("PEBBLE_WORKER_CHANNEL")) {
    *reason = "backend of the process that spawned this worker";
    return env;
  }
  if (g_selected_set) {
    *reason = "selected from code with pebble_backend_select()";
    return g_selected;
  }
  env = pb_secure_getenv("PEBBLE_BACKEND");
  if (env != NULL && *env) {
    *reason = "PEBBLE_BACKEND environment variable";
    return env;
  }
  *reason = "built-in default";
  return PB_DEFAULT_BACKEND;
}

static void lib_free(pb_lib *L) {
  int i;
  for (i = 0; i < PB_STRIPES; i++) {
    if (L->stripes[i].cond)
      L->bk->cond_destroy(L->stripes[i].cond);
    if (L->stripes[i].mutex)
      L->bk->mutex_destroy(L->stripes[i].mutex);
  }
  if (L->drained)
    L->bk->cond_destroy(L->drained);
  if (L->lock)
    L->bk->mutex_destroy(L->lock);
  pb_blocks_destroy(&L->blocks, L->bk);
  free(L);
}

int pb_backend_can(const pebble_backend *bk, int method) {
  switch (method) {
  case PEBBLE_START_FORK:
    return (bk->caps & PEBBLE_CAP_FORK) != 0;
  case PEBBLE_START_SPAWN:
    return (bk->caps & PEBBLE_CAP_SPAWN) != 0 &&
           bk->struct_size >= offsetof(pebble_backend, chan_adopt) +
                                  sizeof bk->chan_adopt &&
           bk->proc_spawn != NULL;
  case PEBBLE_START_FORKSERVER:
    return (bk->caps & PEBBLE_CAP_FORKSERVER) != 0 &&
           bk->struct_size >= offsetof(pebble_backend, proc_forkserver) +
                                  sizeof bk->proc_forkserver &&
           bk->proc_forkserver != NULL;
  default:
    return 0;
  }
}

/* What PEBBLE_START_DEFAULT means: PEBBLE_START_METHOD if set, else fork
 * where the backend can. */
static int default_start(const pebble_backend *bk, int *method) {
  static const struct {
    const char *name;
    int method;
  } names[] = {{"fork", PEBBLE_START_FORK},
               {"spawn", PEBBLE_START_SPAWN},
               {"forkserver", PEBBLE_START_FORKSERVER}};
  const char *env = pb_secure_getenv("PEBBLE_START_METHOD");
  size_t i;
  *method = pb_backend_can(bk, PEBBLE_START_FORK) ? PEBBLE_START_FORK
                                                  : PEBBLE_START_SPAWN;
  if (env == NULL || *env == '\0')
    return PEBBLE_OK;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(env, names[i].name) == 0) {
      if (!pb_backend_can(bk, names[i].method))
        return pb_error(PEBBLE_ENOTSUP,
                        "PEBBLE_START_METHOD=%s: backend '%s' cannot start "
                        "workers that way",
                        env, bk->name);
      *method = names[i].method;
      return PEBBLE_OK;
    }
  return pb_error(PEBBLE_EINVAL,
                  "PEBBLE_START_METHOD='%s' is not a start method (fork, "
                  "spawn or forkserver)",
                  env);
}

const char *pb_start_method_name(int start_method) {
  switch (start_method) {
  case PEBBLE_START_FORK:
    return "fork";
  case PEBBLE_START_SPAWN:
    return "spawn";
  case PEBBLE_START_FORKSERVER:
    return "forkserver";
  default:
    return "default";
  }
}

int pb_lib_method(const pb_lib *L, int start_method) {
  return start_method == PEBBLE_START_DEFAULT ? L->default_method
                                              : start_method;
}

const char *pb_lib_method_name(const pb_lib *L, int start_method) {
  return pb_start_method_name(pb_lib_method(L, start_method));
}

int pb_lib_spawns(const pb_lib *L, int start_method) {
  int m = pb_lib_method(L, start_method);
  return m == PEBBLE_START_SPAWN || m == PEBBLE_START_FORKSERVER;
}

int pb_start_named_worker(pb_lib *L, int start_method, const char *program,
                          pebble_bk_proc **proc, int *sys_errno) {
  if (pb_lib_method(L, start_method) == PEBBLE_START_FORKSERVER)
    return L->bk->proc_forkserver(proc, sys_errno);
  return L->bk->proc_spawn(proc, program, NULL, sys_errno);
}

int pb_start_launched_worker(pb_lib *L, int start_method, const char *program,
                             const pebble_bk_launch *launch,
                             pebble_bk_proc **proc, int *sys_errno) {
  if (launch == NULL || pb_lib_method(L, start_method) != PEBBLE_START_SPAWN ||
      !PB_BK_HAS(L->bk, proc_spawn_launched))
    return pb_start_named_worker(L, start_method, program, proc, sys_errno);
  return L->bk->proc_spawn_launched(proc, program, NULL, launch, sys_errno);
}

static int lib_create(pb_lib **out) {
  const char *reason, *name = choose_name(&reason);
  pb_backend_ref ref;
  pb_lib *L;
  int rc, i, default_method;

  rc = pb_backend_resolve(name, &ref);
  if (rc != PEBBLE_OK)
    return rc;
  rc = default_start(ref.bk, &default_method);
  if (rc == PEBBLE_OK)
    rc = pb_spin_setting_check(); /* refused like a bad start method */
  if (rc != PEBBLE_OK)
    return rc;
  rc = ref.bk->init(&host);
  if (rc != PEBBLE_OK)
    return pb_error(rc, "backend '%s' failed to start: %s", ref.bk->name,
                    pebble_strerror(rc));
  L = calloc(1, sizeof *L);
  if (L == NULL) {
    if (ref.bk->shutdown)
      ref.bk->shutdown();
    return pb_error(PEBBLE_ENOMEM, "out of memory initialising Pebble");
  }
  L->bk = ref.bk;
  L->backend_path = ref.path;
  L->default_method = default_method;
  snprintf(L->backend_reason, sizeof L->backend_reason, "%s", reason);
  L->gen = ref.bk->fork_generation();
  atomic_init(&L->live, 0);
  atomic_init(&L->running, 0);
  atomic_init(&L->tasks_open, 0);
  atomic_init(&L->drain_waiters, 0);
  atomic_init(&L->next_id, 1);
  atomic_init(&L->manager, NULL);
  atomic_init(&L->dispatch, NULL);
  rc = L->bk->mutex_create(&L->lock);
  if (rc == PEBBLE_OK)
    rc = L->bk->cond_create(&L->drained);
  if (rc == PEBBLE_OK)
    rc = pb_blocks_init(&L->blocks, L->bk);
  for (i = 0; rc == PEBBLE_OK && i < PB_STRIPES; i++) {
    rc = L->bk->mutex_create(&L->stripes[i].mutex);
    if (rc == PEBBLE_OK)
      rc = L->bk->cond_create(&L->stripes[i].cond);
  }
  if (rc != PEBBLE_OK) {
    lib_free(L);
    if (ref.bk->shutdown)
      ref.bk->shutdown();
    return pb_error(rc, "cannot create the library's locks");
  }
  /* From now on a fork waits for the backend's operations in flight. */
  pb_fork_hooks_set(PB_BK_HAS(ref.bk, fork_prepare) ? ref.bk->fork_prepare
                                                    : NULL,
                    PB_BK_HAS(ref.bk, fork_parent) ? ref.bk->fork_parent
                                                   : NULL,
                    PB_BK_HAS(ref.bk, fork_child) ? ref.bk->fork_child : NULL);
  pb_log(PEBBLE_LOG_INFO, "pebble %s: backend '%s' (%s)%s%s",
         PEBBLE_VERSION_STRING, L->bk->name, reason,
         L->backend_path ? " from " : "",
         L->backend_path ? L->backend_path : "");
  *out = L;
  return PEBBLE_OK;
}

static int stale(const pb_lib *L) {
  return L->bk->fork_generation() != L->gen;
}

int pb_lib_get(pb_lib **out) {
  pb_lib *L = atomic_load_explicit(&g_lib, memory_order_acquire);
  int rc = PEBBLE_OK, created = 0;
  if (L != NULL && !stale(L)) {
    *out = L;
    return PEBBLE_OK;
  }
  pb_static_lock(PB_LOCK_BOOT);
  L = atomic_load(&g_lib);
  if (L != NULL && stale(L))
    L = NULL; /* the parent's state: abandoned, never touched again */
  if (L == NULL) {
    created = 1;
    rc = lib_create(&L);
    atomic_store_explicit(&g_lib, rc == PEBBLE_OK ? L : NULL,
                          memory_order_release);
  }
  pb_static_unlock(PB_LOCK_BOOT);
  /* A spawned worker that did not start with pebble_worker_main() ends
   * here, before it can start anything of its own. */
  if (created && rc == PEBBLE_OK)
    pb_worker_trap(L->bk);
  /* The forkserver is forked now, before this library starts a thread
   * of its own (and outside the boot lock, which the fork handlers take).
   * If that fails, the first worker tries again and reports why. */
  if (created && rc == PEBBLE_OK &&
      L->default_method == PEBBLE_START_FORKSERVER) {
    int err = 0;
    if (L->bk->proc_forkserver(NULL, &err) != PEBBLE_OK)
      pb_log(PEBBLE_LOG_WARN, "cannot start the forkserver now: %s",
             err ? pb_sys_strerror(err) : "refused");
  }
  *out = L;
  return rc;
}

int pb_forked_error(void) {
  return pb_error(PEBBLE_EFORKED,
                  "this object was created before a fork, in the parent "
                  "process; it cannot be used in the child");
}

int pb_lib_check(const pb_lib *lib, uint64_t gen) {
  return lib->bk->fork_generation() != gen ? pb_forked_error() : PEBBLE_OK;
}

void pb_lib_hold(pb_lib *lib) { atomic_fetch_add(&lib->live, 1); }
void pb_lib_drop(pb_lib *lib) { atomic_fetch_sub(&lib->live, 1); }

void pb_lib_task_open(pb_lib *lib) { atomic_fetch_add(&lib->tasks_open, 1); }

/* Wakes pebble_shutdown() when the last open task is over: it counts
 * itself a waiter, then looks at the count, under the lock this takes
 * before waking it, so the wake-up cannot fall between the two. */
void pb_lib_task_done(pb_lib *lib) {
  if (atomic_fetch_sub(&lib->tasks_open, 1) == 1 &&
      atomic_load(&lib->drain_waiters) > 0) {
    lib->bk->mutex_lock(lib->lock);
    lib->bk->cond_broadcast(lib->drained);
    lib->bk->mutex_unlock(lib->lock);
  }
}

/* Wait until every one-shot task has resolved and its callbacks have run
 * (those may launch more, which are waited for too). */
static void drain_tasks(pb_lib *L) {
  L->bk->mutex_lock(L->lock);
  atomic_fetch_add(&L->drain_waiters, 1);
  while (atomic_load(&L->tasks_open) > 0)
    L->bk->cond_wait(L->drained, L->lock, PEBBLE_BK_FOREVER);
  atomic_fetch_sub(&L->drain_waiters, 1);
  L->bk->mutex_unlock(L->lock);
}

pb_manager *pb_lib_manager(pb_lib *L) {
  pb_manager *m = atomic_load_explicit(&L->manager, memory_order_acquire);
  if (m != NULL)
    return m;
  L->bk->mutex_lock(L->lock);
  m = atomic_load(&L->manager);
  if (m == NULL && pb_manager_start(L, &m) == PEBBLE_OK)
    atomic_store_explicit(&L->manager, m, memory_order_release);
  L->bk->mutex_unlock(L->lock);
  return m;
}

pb_dispatch *pb_lib_dispatch(pb_lib *L) {
  pb_dispatch *d = atomic_load_explicit(&L->dispatch, memory_order_acquire);
  if (d != NULL)
    return d;
  L->bk->mutex_lock(L->lock);
  d = atomic_load(&L->dispatch);
  if (d == NULL && pb_dispatch_start(L, &d) == PEBBLE_OK)
    atomic_store_explicit(&L->dispatch, d, memory_order_release);
  L->bk->mutex_unlock(L->lock);
  return d;
}

/* Stop the threads and free the state; nobody else can reach it. */
static void lib_destroy(pb_lib *L) {
  pb_manager *m = atomic_load(&L->manager);
  pb_dispatch *d;
  if (m != NULL)
    pb_manager_stop(m);
  /* Read after the manager is gone: what it resolved last may have
   * started the callback thread. */
  d = atomic_load(&L->dispatch);
  if (d != NULL)
    pb_dispatch_stop(d);
  /* The threads are gone: the fork hooks go too, unless another library
   * runs already (it set its own). */
  pb_static_lock(PB_LOCK_BOOT);
  if (atomic_load(&g_lib) == NULL)
    pb_fork_hooks_set(NULL, NULL, NULL);
  pb_static_unlock(PB_LOCK_BOOT);
  /* Our objects first: the backend may free what they live in. */
  {
    const pebble_backend *bk = L->bk;
    lib_free(L);
    if (bk->shutdown)
      bk->shutdown();
  }
}

/* Take L out of service if nothing uses it (boot lock held). */
static int detach_if_idle(pb_lib *L, const char *caller) {
  long live = atomic_load(&L->live), running = atomic_load(&L->running);
  if (live > 0)
    return pb_error(PEBBLE_EBUSY,
                    "%s: %ld futures or task definitions are still held; "
                    "release them first",
                    caller, live);
  if (running > 0)
    return pb_error(PEBBLE_EBUSY,
                    "%s: %ld tasks are still running (a timed-out or "
                    "cancelled thread task keeps running until it returns)",
                    caller, running);
  /* What is left finishes by itself: joins, reaps, callbacks.  Stopping
   * the threads waits for it. */
  atomic_store(&g_lib, NULL);
  return PEBBLE_OK;
}

int pebble_init(void) {
  pb_lib *L;
  return pb_lib_get(&L);
}

int pebble_shutdown(void) {
  pb_lib *L;
  int rc = PEBBLE_OK;
  if (pb_role.callbacks || pb_role.running_future || pb_role.library_thread)
    return pb_error(PEBBLE_EDEADLK,
                    "pebble_shutdown: called from a task or a callback, "
                    "which would wait for itself");
  pb_static_lock(PB_LOCK_BOOT);
  L = atomic_load(&g_lib);
  if (L != NULL && stale(L)) {
    atomic_store(&g_lib, NULL);
    L = NULL;
  }
  pb_static_unlock(PB_LOCK_BOOT);
  if (L == NULL)
    return PEBBLE_OK;
  /* Tasks launched and let go (their futures released) are waited for,
   * with their callbacks; held futures are refused at once below. */
  if (atomic_load(&L->live) == 0)
    drain_tasks(L);
  pb_static_lock(PB_LOCK_BOOT);
  if (atomic_load(&g_lib) != L)
    L = NULL; /* shut down meanwhile (a call that should not race this) */
  else
    rc = detach_if_idle(L, "pebble_shutdown");
  pb_static_unlock(PB_LOCK_BOOT);
  if (L != NULL && rc == PEBBLE_OK)
    lib_destroy(L);
  return rc;
}

int pebble_backend_select(const char *name) {
  pb_backend_ref ref;
  pb_lib *L, *old = NULL;
  int rc = PEBBLE_OK;

  if (name != NULL && strlen(name) >= sizeof g_selected)
    return pb_error(PEBBLE_EINVAL, "pebble_backend_select: name too long");
  pb_static_lock(PB_LOCK_BOOT);
  if (name != NULL)
    rc = pb_backend_resolve(name, &ref);
  if (rc == PEBBLE_OK) {
    L = atomic_load(&g_lib);
    if (L != NULL && stale(L)) {
      atomic_store(&g_lib, NULL);
      L = NULL;
    }
    /* Switching away from a running backend needs it idle. */
    if (L != NULL && (name == NULL || L->bk != ref.bk)) {
      rc = detach_if_idle(L, "pebble_backend_select");
      if (rc == PEBBLE_OK)
        old = L;
    }
  }
  if (rc == PEBBLE_OK) {
    g_selected_set = name != NULL;
    if (name != NULL)
      snprintf(g_selected, sizeof g_selected, "%s", name);
  }
  pb_static_unlock(PB_LOCK_BOOT);
  if (old != NULL)
    lib_destroy(old);
  return rc;
}

int pebble_backend_configure(const char *backend, const char *key,
                             void *value) {
  pb_backend_ref ref;
  pb_lib *L;
  int rc;
  if (backend == NULL || key == NULL)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_backend_configure: NULL backend or key");
  pb_static_lock(PB_LOCK_BOOT);
  rc = pb_backend_resolve(backend, &ref);
  if (rc == PEBBLE_OK) {
    L = atomic_load(&g_lib);
    if (L != NULL && !stale(L) && L->bk == ref.bk)
      rc = pb_error(PEBBLE_EBUSY,
                    "pebble_backend_configure: backend '%s' is running; "
                    "settings take effect when it starts",
                    ref.bk->name);
    else if (ref.bk->struct_size < offsetof(pebble_backend, configure) +
                                       sizeof ref.bk->configure ||
             ref.bk->configure == NULL)
      rc = pb_error(PEBBLE_ENOTSUP, "backend '%s' has no settings",
                    ref.bk->name);
    else if ((rc = ref.bk->configure(key, value)) != PEBBLE_OK)
      rc = pb_error(rc, "backend '%s' refused the setting '%s': %s",
                    ref.bk->name, key,
                    rc == PEBBLE_ENOTSUP ? "unknown key" : pebble_strerror(rc));
  }
  pb_static_unlock(PB_LOCK_BOOT);
  return rc;
}

const char *pebble_backend_name(void) {
  pb_lib *L = atomic_load(&g_lib);
  return L != NULL && !stale(L) ? L->bk->name : NULL;
}

int pebble_backend_choice(const char **name, const char **reason) {
  static char name_buf[64], reason_buf[96];
  const char *n, *r;
  pb_lib *L;
  if (name == NULL || reason == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_backend_choice: NULL argument");
  pb_static_lock(PB_LOCK_BOOT);
  L = atomic_load(&g_lib);
  if (L != NULL && !stale(L)) {
    n = L->bk->name;
    r = L->backend_reason;
  } else {
    n = choose_name(&r);
  }
  snprintf(name_buf, sizeof name_buf, "%s", n);
  snprintf(reason_buf, sizeof reason_buf, "%s", r);
  pb_static_unlock(PB_LOCK_BOOT);
  *name = name_buf;
  *reason = reason_buf;
  return PEBBLE_OK;
}

int pebble_set_max_message_size(size_t bytes) {
  if (bytes == 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_set_max_message_size: size must be > 0");
  atomic_store(&g_max_message, bytes);
  return PEBBLE_OK;
}

size_t pebble_max_message_size(void) { return atomic_load(&g_max_message); }
