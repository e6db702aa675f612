/* SPDX-License-Identifier: Apache-2.0 */
/* log.c -- the application's logging hook; nothing goes to stderr. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include "internal.h"

static pebble_log_fn log_fn;
static void *log_user;
static int log_max;
/* The level wanted (0 without a hook): a line nobody wants costs one
 * load, no lock. */
static atomic_int log_wanted;

void pebble_set_log_handler(pebble_log_fn fn, void *user_data,
                            int max_level) {
  pb_static_lock(PB_LOCK_LOG);
  log_fn = fn;
  log_user = user_data;
  log_max = max_level;
  atomic_store(&log_wanted, fn != NULL ? max_level : 0);
  pb_static_unlock(PB_LOCK_LOG);
}

int pb_log_wants(int level) {
  return level <= atomic_load_explicit(&log_wanted, memory_order_relaxed);
}

const char *pb_task_label(const pebble_future *f, char *buf, size_t len) {
  if (f == NULL)
    snprintf(buf, len, "no task");
  else if (pb_future_name_of(f) != NULL)
    snprintf(buf, len, "task '%s' (future %llu)", pb_future_name_of(f),
             (unsigned long long)f->id);
  else
    snprintf(buf, len, "task of future %llu", (unsigned long long)f->id);
  return buf;
}

void pb_log(int level, const char *fmt, ...) {
  pebble_log_fn fn;
  void *user;
  char line[1024];
  va_list ap;

  if (level > atomic_load_explicit(&log_wanted, memory_order_relaxed))
    return;
  pb_static_lock(PB_LOCK_LOG);
  fn = level <= log_max ? log_fn : NULL;
  user = log_user;
  pb_static_unlock(PB_LOCK_LOG);
  if (fn == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* Called without the lock: the hook may take its own time. */
  fn(level, line, user);
}
