/* log.c -- the application's logging hook; nothing goes to stderr. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include "internal.h"

static pebble_log_fn log_fn;
static void *log_user;
static int log_max;

void pebble_set_log_handler(pebble_log_fn fn, void *user_data,
                            int max_level) {
  pb_static_lock(PB_LOCK_LOG);
  log_fn = fn;
  log_user = user_data;
  log_max = max_level;
  pb_static_unlock(PB_LOCK_LOG);
}

void pb_log(int level, const char *fmt, ...) {
  pebble_log_fn fn;
  void *user;
  char line[1024];
  va_list ap;

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
