/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_backend.c -- the APR backend's table, life cycle, settings, clock
 * and memory pools.
 *
 * Threads, locks and processes go through the Apache Portable Runtime, so
 * the same code serves the platforms APR serves.  APR lacks three things
 * the contract needs, and each is handled here or beside it: a monotonic
 * clock (now_ns below), a timed wait on that clock (apr_deadline.c), and
 * process groups (the backend does not claim PEBBLE_CAP_KILL_GROUP).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#else
#include <time.h>
#endif

#include <apr_errno.h>
#include <apr_general.h>

#include "apr_internal.h"

static const pebble_host *host;

/* The application's pool Pebble is tied to (setting "parent_pool"), and
 * whether the cleanup registered on it is live. */
static apr_pool_t *parent_pool;
static int parent_cleanup_live;
/* The root of every object's pool, with a locked allocator. */
static apr_pool_t *root;
static apr_allocator_t *root_allocator;
static apr_thread_mutex_t *root_allocator_lock;
static int apr_started;

/* Memory an idle allocator keeps for reuse; beyond it, freed. */
#define PBA_ALLOCATOR_MAX_FREE (1u << 20)

void pba_log(int level, const char *fmt, ...) {
  const pebble_host *h = PBA_LOAD(&host);
  char line[512];
  va_list ap;
  if (h == NULL || h->log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  h->log(level, "%s", line);
}

apr_pool_t *pba_pool_new(void) {
  apr_pool_t *p = NULL;
  apr_pool_t *r = PBA_LOAD(&root);
  if (r == NULL || apr_pool_create(&p, r) != APR_SUCCESS)
    return NULL;
  return p;
}

int pba_sys_errno(apr_status_t st) {
  if (st == APR_SUCCESS)
    return 0;
  if (st < APR_OS_START_ERROR)
    return (int)st; /* an errno value */
  if (st >= APR_OS_START_SYSERR)
    return (int)(st - APR_OS_START_SYSERR);
  return 0;
}

int pba_status(apr_status_t st) {
  if (st == APR_SUCCESS)
    return PEBBLE_OK;
  if (APR_STATUS_IS_ENOMEM(st))
    return PEBBLE_ENOMEM;
  if (APR_STATUS_IS_ENOTIMPL(st))
    return PEBBLE_ENOTSUP;
  return PEBBLE_ESYSTEM;
}

/* A status's name, from the public header's map: a module calls nothing
 * of libpebble's, which may be linked statically into the application and
 * then exports nothing a module could bind to. */
static const char *status_name(int status) {
  switch (status) {
#define PBA_NAME_(name, value, text)                                         \
  case value:                                                                \
    return "PEBBLE_" #name;
    PEBBLE_STATUS_MAP(PBA_NAME_)
#undef PBA_NAME_
  default:
    return "an unknown status";
  }
}

/* The application's pool is going away (an Apache graceful restart, say):
 * Pebble goes with it.  If the application still holds Pebble objects the
 * library cannot be taken from under them; it stays up and says so. */
static apr_status_t parent_pool_cleanup(void *unused) {
  const pebble_host *h = PBA_LOAD(&host);
  int rc;
  (void)unused;
  parent_cleanup_live = 0;
  if (h == NULL || h->struct_size < offsetof(pebble_host, shutdown) +
                                        sizeof h->shutdown ||
      h->shutdown == NULL)
    return APR_SUCCESS;
  rc = h->shutdown();
  if (rc != PEBBLE_OK)
    pba_log(PEBBLE_LOG_ERROR,
            "apr backend: the parent pool was destroyed but Pebble could "
            "not shut down (%s); destroy pools and futures before the APR "
            "pool they were tied to",
            status_name(rc));
  return APR_SUCCESS;
}

static void stop_pools(void) {
  if (root != NULL) {
    apr_pool_t *r = root;
    PBA_STORE(&root, (apr_pool_t *)NULL);
    apr_pool_destroy(r); /* destroys the allocator and its lock too */
  }
  root_allocator = NULL;
  root_allocator_lock = NULL;
}

static int start_pools(void) {
  apr_status_t st;
  st = apr_allocator_create(&root_allocator);
  if (st != APR_SUCCESS)
    return pba_status(st);
  apr_allocator_max_free_set(root_allocator, PBA_ALLOCATOR_MAX_FREE);
  /* Unmanaged would escape apr_pool_cleanup_for_exec; a child of APR's
   * global pool is reached by it, so spawned programs inherit none of our
   * files even where they lack close-on-exec. */
  st = apr_pool_create_ex(&root, NULL, NULL, root_allocator);
  if (st != APR_SUCCESS) {
    apr_allocator_destroy(root_allocator);
    root_allocator = NULL;
    return pba_status(st);
  }
  apr_allocator_owner_set(root_allocator, root);
  st = apr_thread_mutex_create(&root_allocator_lock,
                               APR_THREAD_MUTEX_DEFAULT, root);
  if (st != APR_SUCCESS) {
    stop_pools();
    return pba_status(st);
  }
  apr_allocator_mutex_set(root_allocator, root_allocator_lock);
  return PEBBLE_OK;
}

static int apr_backend_init(const pebble_host *h) {
  apr_status_t st;
  int rc;
  if (h != NULL && h->struct_size < offsetof(pebble_host, log) + sizeof h->log)
    h = NULL;
  /* A failed apr_initialize() still counts as one: undone, or the next
   * one would "succeed" on a half-made APR.  Out of memory is said as
   * such: it passes, unlike a broken APR. */
  if ((st = apr_initialize()) != APR_SUCCESS) {
    apr_terminate();
    return APR_STATUS_IS_ENOMEM(st) || st == APR_ENOPOOL ? PEBBLE_ENOMEM
                                                          : PEBBLE_EBACKEND;
  }
  apr_started = 1;
  pba_proc_atfork_once();
  pba_thread_capture_app_mask();
  rc = start_pools();
  if (rc == PEBBLE_OK && (rc = pba_deadline_start()) != PEBBLE_OK)
    stop_pools();
  if (rc == PEBBLE_OK && (rc = pba_lifeline_start()) != PEBBLE_OK) {
    pba_deadline_stop();
    stop_pools();
  }
  if (rc != PEBBLE_OK) {
    apr_terminate();
    apr_started = 0;
    return rc;
  }
  PBA_STORE(&host, h);
  if (parent_pool != NULL) {
    apr_pool_cleanup_register(parent_pool, NULL, parent_pool_cleanup,
                              apr_pool_cleanup_null);
    parent_cleanup_live = 1;
  }
  return PEBBLE_OK;
}

static void apr_backend_shutdown(void) {
  if (parent_cleanup_live) {
    /* A shutdown by the application, not by the pool's cleanup: the pool
     * must not call back into a library that is gone. */
    apr_pool_cleanup_kill(parent_pool, NULL, parent_pool_cleanup);
    parent_cleanup_live = 0;
  }
  /* The setting was for one life of the library. */
  parent_pool = NULL;
  pba_lifeline_stop();
  pba_deadline_stop();
  stop_pools();
  PBA_STORE(&host, (const pebble_host *)NULL);
  if (apr_started) {
    apr_terminate();
    apr_started = 0;
  }
}

/* Settings, before init (the core refuses them while running):
 *   "parent_pool" (apr_pool_t *): tie Pebble to this pool; when it is
 *   destroyed or cleared, Pebble shuts down.  NULL unties it. */
static int apr_backend_configure(const char *key, void *value) {
  if (key == NULL)
    return PEBBLE_EINVAL;
  if (strcmp(key, "parent_pool") == 0) {
    parent_pool = (apr_pool_t *)value;
    return PEBBLE_OK;
  }
  return PEBBLE_ENOTSUP;
}

uint64_t pba_now_ns(void) {
#if defined(_WIN32)
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;
  if (freq.QuadPart == 0)
    QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (uint64_t)(now.QuadPart / freq.QuadPart) * 1000000000u +
         (uint64_t)(now.QuadPart % freq.QuadPart) * 1000000000u /
             (uint64_t)freq.QuadPart;
#else
  /* APR's apr_time_now() is the wall clock, which jumps. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

#if APR_HAS_FORK
#define CAP_FORK PEBBLE_CAP_FORK
#define DESC_START "fork()ed (apr_proc_fork) or spawned (apr_proc_create)"
#else
#define CAP_FORK 0u
#define DESC_START "spawned (apr_proc_create)"
#endif

/* On Windows processes are Win32's own (apr_proc_win32.c): spawn only, a
 * Job object per worker, so a kill reaches everything it started and
 * nothing outlives this process. */
#ifdef _WIN32
#define CAPS                                                                 \
  (PEBBLE_CAP_THREADS | PEBBLE_CAP_PROCESSES | PEBBLE_CAP_SPAWN |            \
   PEBBLE_CAP_PDEATHSIG | PEBBLE_CAP_KILL_GROUP)
#define DESC_PROCS                                                           \
  "processes spawned (CreateProcess), each in a Job object that a kill "    \
  "ends whole and that dies with this process; exits seen by a wait on "   \
  "the process handle"
#else
#define CAPS                                                                 \
  (PEBBLE_CAP_THREADS | PEBBLE_CAP_PROCESSES | CAP_FORK | PEBBLE_CAP_SPAWN | \
   PEBBLE_CAP_PDEATHSIG)
#define DESC_PROCS                                                           \
  "processes " DESC_START "; exits seen by a thread in "                     \
  "apr_proc_wait; workers die with their parent (lifeline pipe); no "        \
  "process groups"
#endif

static const pebble_backend table = {
    .abi_major = PEBBLE_BACKEND_ABI_MAJOR,
    .abi_minor = PEBBLE_BACKEND_ABI_MINOR,
    .struct_size = sizeof(pebble_backend),
    .name = "apr",
    .description = "Apache Portable Runtime threads and processes; "
                   DESC_PROCS,
    .caps = CAPS,
    .init = apr_backend_init,
    .shutdown = apr_backend_shutdown,
    .fork_generation = pba_proc_fork_generation,
    .now_ns = pba_now_ns,
    .thread_create = pba_thread_create,
    .thread_join = pba_thread_join,
    .thread_self_id = pba_thread_self_id,
    .mutex_create = pba_mutex_create,
    .mutex_destroy = pba_mutex_destroy,
    .mutex_lock = pba_mutex_lock,
    .mutex_unlock = pba_mutex_unlock,
    .cond_create = pba_cond_create,
    .cond_destroy = pba_cond_destroy,
    .cond_signal = pba_cond_signal,
    .cond_broadcast = pba_cond_broadcast,
    .cond_wait = pba_cond_wait,
    .proc_start = pba_proc_start,
    .proc_pid = pba_proc_pid,
    .proc_read = pba_proc_read,
    .proc_write = pba_proc_write,
    .proc_kill = pba_proc_kill,
    .proc_reap = pba_proc_reap,
    .proc_destroy = pba_proc_destroy,
    .chan_write_all = pba_chan_write_all,
    .chan_read_all = pba_chan_read_all,
    .waitset_create = pba_waitset_create,
    .waitset_destroy = pba_waitset_destroy,
    .waitset_watch = pba_waitset_watch,
    .waitset_wake = pba_waitset_wake,
    .waitset_wait = pba_waitset_wait,
    .notifier_create = pba_notifier_create,
    .notifier_destroy = pba_notifier_destroy,
    .notifier_handle = pba_notifier_handle,
    .notifier_set = pba_notifier_set,
    .notifier_clear = pba_notifier_clear,
    .proc_spawn = pba_proc_spawn,
    .chan_adopt = pba_chan_adopt,
    .configure = apr_backend_configure,
    .fork_prepare = pba_fork_prepare,
    .fork_parent = pba_fork_parent,
    .fork_child = pba_fork_child,
};

/* The entry point: hidden pebble__backend_apr_get when built into
 * libpebble (Windows), exported pebble_backend_apr_get as a module. */
PEBBLE_BACKEND_ENTRY(apr);

PEBBLE_BACKEND_ENTRY(apr) { return &table; }
