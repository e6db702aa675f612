/* SPDX-License-Identifier: Apache-2.0 */
/*
 * placement.c -- which CPU a thread runs on, and a way for the manager
 * thread to leave a CPU that a busy worker needs.
 *
 * A process worker's result goes through a pipe, and Linux wakes the
 * reader of a pipe with a "sync" hint: the writer is expected to sleep
 * soon, so the reader (the manager thread) is put on the writer's CPU
 * when that CPU runs nothing else.  A worker with a queue of short tasks
 * does not sleep: it and the manager then share one CPU while another
 * may sit idle, and a burst on one worker takes half as long again or
 * twice as long (docs/performance.md, section 3, "Two speeds").  The
 * kernel offers no way to ask for a wake-up without the hint, and the
 * library sets no thread's affinity for good; so the manager, when it
 * finds itself on the CPU of a worker that has more work, asks to be
 * moved: it narrows its own affinity by that CPU, which moves it at
 * once, and gives the mask back as it found it.  It never touches any
 * other thread, stays within whatever mask the application or the system
 * set, and does nothing where fewer CPUs are allowed than the work needs
 * or PEBBLE_MOVE_MANAGER=0.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <string.h>
#ifdef __linux__
#include <sched.h>
#endif

#include "internal.h"

#if defined(__linux__) && defined(CPU_COUNT) && defined(CPU_CLR)
#define PB_CAN_MOVE 1
#endif

/* PEBBLE_MOVE_MANAGER: 1 (the default) or 0; -1 for anything else. */
static int move_setting(const char **env) {
  *env = pb_secure_getenv("PEBBLE_MOVE_MANAGER");
  if (*env == NULL || **env == '\0' || strcmp(*env, "1") == 0)
    return 1;
  if (strcmp(*env, "0") == 0)
    return 0;
  return -1;
}

/* Read as the library starts (pb_move_setting_check): 1 or 0. */
static _Atomic int move_allowed = 1;

int pb_move_setting_check(void) {
  const char *env;
  int on = move_setting(&env);
  if (on < 0)
    return pb_error(PEBBLE_EINVAL,
                    "PEBBLE_MOVE_MANAGER='%s' is neither 1 (the manager "
                    "thread may leave a busy worker's CPU) nor 0 (never)",
                    env);
  atomic_store_explicit(&move_allowed, on, memory_order_relaxed);
  return PEBBLE_OK;
}

int pb_cpu_now(void) {
#ifdef PB_CAN_MOVE
  return sched_getcpu();
#else
  return -1;
#endif
}

int pb_move_off_cpu(int cpu, unsigned need) {
#ifdef PB_CAN_MOVE
  cpu_set_t mask, narrower;
  if (!atomic_load_explicit(&move_allowed, memory_order_relaxed) ||
      cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu ||
      sched_getaffinity(0, sizeof mask, &mask) != 0 ||
      CPU_COUNT(&mask) < (int)need || !CPU_ISSET(cpu, &mask))
    return 0;
  narrower = mask;
  CPU_CLR(cpu, &narrower);
  if (sched_setaffinity(0, sizeof narrower, &narrower) != 0)
    return 0;
  /* Moved by now; the mask goes back as it was. */
  if (sched_setaffinity(0, sizeof mask, &mask) != 0)
    pb_log(PEBBLE_LOG_WARN,
           "the manager thread could not restore its CPU affinity after "
           "leaving CPU %d",
           cpu);
  return 1;
#else
  (void)cpu, (void)need;
  return 0;
#endif
}
