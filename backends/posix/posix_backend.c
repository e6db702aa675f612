/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_backend.c -- the POSIX backend's table, life cycle, clock and
 * fork generation.
 *
 * Threads are pthreads; processes are fork()ed children, each leading its
 * own process group, talking over a socketpair; exits are seen through a
 * pidfd (or a helper thread blocked in waitid) so nothing is polled.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "posix_internal.h"

/* Bumped only in the child of a fork, when the child has one thread.  A
 * word, so loading it is atomic without libatomic on 32-bit systems. */
#define fork_gen pbp_fp.fork_gen /* on the fork page (posix_internal.h) */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static const pebble_host *host;

static void before_fork(void) { pbp_fd_before_fork(); }

static void after_fork_parent(void) { pbp_fd_after_fork_parent(); }

/* Only async-signal-safe work: a counter, a lock release, a close. */
static void after_fork_child(void) {
  PBP_STORE(&fork_gen, PBP_LOAD(&fork_gen) + 1);
  pbp_guardian_after_fork_child();
  pbp_forkserver_after_fork_child();
  pbp_fd_after_fork_child();
}

/* Set once the handlers are in: the fork generation, read on every call
 * into the library, then skips pthread_once. */
static int atfork_registered;

static void register_atfork(void) {
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  PBP_STORE(&atfork_registered, 1);
}

void pbp_atfork_once(void) {
  if (!PBP_LOAD(&atfork_registered))
    pthread_once(&atfork_once, register_atfork);
}

void pbp_log(int level, const char *fmt, ...) {
  const pebble_host *h = PBP_LOAD(&host);
  char line[512];
  va_list ap;
  if (h == NULL || h->log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  h->log(level, "%s", line);
}

static int posix_init(const pebble_host *h) {
  /* A host too old to have the log hook is used without it. */
  if (h != NULL && h->struct_size < offsetof(pebble_host, log) + sizeof h->log)
    h = NULL;
  pbp_atfork_once();
  pbp_thread_capture_app_mask();
  PBP_STORE(&host, h);
  return PEBBLE_OK;
}

static void posix_shutdown(void) {
  pbp_forkserver_stop();
  pbp_guardian_stop();
  PBP_STORE(&host, (const pebble_host *)NULL);
}

static uint64_t posix_fork_generation(void) {
  pbp_atfork_once();
  return (uint64_t)PBP_LOAD(&fork_gen);
}

uint64_t pbp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if PBP_USE_PIDFD
#define CAP_PIDFD PEBBLE_CAP_PIDFD
#define DESC_EXIT "exits seen through pidfd"
#else
#define CAP_PIDFD 0u
#define DESC_EXIT "exits seen by a waitid helper thread"
#endif
#if PBP_USE_PDEATHSIG
#define CAP_PDEATHSIG PEBBLE_CAP_PDEATHSIG
#define DESC_DEATH                                                           \
  "workers die with the parent (PR_SET_PDEATHSIG), their process groups "    \
  "too (guardian process)"
#else
#define CAP_PDEATHSIG 0u
#define DESC_DEATH                                                           \
  "workers and their process groups die with the parent (guardian process)"
#endif

static const pebble_backend table = {
    .abi_major = PEBBLE_BACKEND_ABI_MAJOR,
    .abi_minor = PEBBLE_BACKEND_ABI_MINOR,
    .struct_size = sizeof(pebble_backend),
    .name = "posix",
    .description = "POSIX threads; fork()ed, spawned or forkserver processes in their "
                   "own process groups; " DESC_EXIT "; " DESC_DEATH,
    .caps = PEBBLE_CAP_THREADS | PEBBLE_CAP_PROCESSES | PEBBLE_CAP_FORK |
            PEBBLE_CAP_KILL_GROUP | PEBBLE_CAP_SPAWN | PEBBLE_CAP_FORKSERVER |
            CAP_PIDFD | CAP_PDEATHSIG,
    .init = posix_init,
    .shutdown = posix_shutdown,
    .fork_generation = posix_fork_generation,
    .now_ns = pbp_now_ns,
    .thread_create = pbp_thread_create,
    .thread_join = pbp_thread_join,
    .thread_self_id = pbp_thread_self_id,
    .mutex_create = pbp_mutex_create,
    .mutex_destroy = pbp_mutex_destroy,
    .mutex_lock = pbp_mutex_lock,
    .mutex_unlock = pbp_mutex_unlock,
    .cond_create = pbp_cond_create,
    .cond_destroy = pbp_cond_destroy,
    .cond_signal = pbp_cond_signal,
    .cond_broadcast = pbp_cond_broadcast,
    .cond_wait = pbp_cond_wait,
    .proc_start = pbp_proc_start,
    .proc_pid = pbp_proc_pid,
    .proc_read = pbp_proc_read,
    .proc_write = pbp_proc_write,
    .proc_kill = pbp_proc_kill,
    .proc_reap = pbp_proc_reap,
    .proc_destroy = pbp_proc_destroy,
    .chan_write_all = pbp_chan_write_all,
    .chan_read_all = pbp_chan_read_all,
    .waitset_create = pbp_waitset_create,
    .waitset_destroy = pbp_waitset_destroy,
    .waitset_watch = pbp_waitset_watch,
    .waitset_wake = pbp_waitset_wake,
    .waitset_wait = pbp_waitset_wait,
    .notifier_create = pbp_notifier_create,
    .notifier_destroy = pbp_notifier_destroy,
    .notifier_handle = pbp_notifier_handle,
    .notifier_set = pbp_notifier_set,
    .notifier_clear = pbp_notifier_clear,
    .proc_spawn = pbp_proc_spawn,
    .chan_adopt = pbp_chan_adopt,
    .configure = NULL,
    .proc_forkserver = pbp_proc_forkserver,
    .chan_read = pbp_chan_read,
    .chan_send_handle = pbp_chan_send_handle,
    .proc_take_handle = pbp_proc_take_handle,
    .chan_read_ready = pbp_chan_read_ready,
    .proc_remote = pbp_proc_remote,
    .proc_spawn_launched = pbp_proc_spawn_launched,
};

int pbp_host_worker_serve(pebble_bk_chan *chan) {
  const pebble_host *h = PBP_LOAD(&host);
  if (h == NULL || h->struct_size < offsetof(pebble_host, worker_serve) +
                                        sizeof h->worker_serve ||
      h->worker_serve == NULL)
    return 127;
  return h->worker_serve(&table, chan);
}

/* The entry point: hidden pebble__backend_posix_get when built into
 * libpebble, exported pebble_backend_posix_get as a module. */
#ifdef PEBBLE_BACKEND_BUILTIN
const pebble_backend *pebble__backend_posix_get(void);
#else
PEBBLE_API const pebble_backend *pebble_backend_posix_get(void);
#endif

PEBBLE_BACKEND_ENTRY(posix) { return &table; }
