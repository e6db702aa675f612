/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c -- named tasks, so a worker that does not share the caller's
 * memory (a re-executed program, a platform without fork) can find a task
 * function by name.  Process-wide; survives pebble_shutdown().
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PB_NAME_MAX 63

typedef struct entry {
  char name[PB_NAME_MAX + 1];
  pebble_task_fn fn;
} entry;

static entry *entries;
static size_t n_entries, cap_entries;

int pb_name_valid(const char *name) {
  size_t n = 0;
  const char *p;
  if (name == NULL)
    return 0;
  for (p = name; *p; p++, n++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == ':' ||
          *p == '-'))
      return 0;
  return n >= 1 && n <= PB_NAME_MAX;
}

/* The library's own tasks, known to every program that links it, so a
 * spawned worker finds them as it finds the application's. */
static entry builtins[] = {{"pebble.map_chunk", pb_map_chunk}};
#define N_BUILTINS (sizeof builtins / sizeof builtins[0])

static entry *find(const char *name) {
  size_t i;
  for (i = 0; i < N_BUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return &builtins[i];
  for (i = 0; i < n_entries; i++)
    if (strcmp(entries[i].name, name) == 0)
      return &entries[i];
  return NULL;
}

int pebble_register(const char *name, pebble_task_fn fn) {
  entry *e;
  int rc = PEBBLE_OK;
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_register: fn is NULL");
  if (!pb_name_valid(name))
    return pb_error(PEBBLE_EINVAL,
                    "pebble_register: name '%s' must be 1-%d characters of "
                    "[A-Za-z0-9_.:-]",
                    name ? name : "(null)", PB_NAME_MAX);
  pb_static_lock(PB_LOCK_REGISTRY);
  e = find(name);
  if (e != NULL) {
    if (e->fn != fn)
      rc = pb_error(PEBBLE_EEXIST,
                    "pebble_register: '%s' is registered to another "
                    "function",
                    name);
  } else {
    if (n_entries == cap_entries) {
      size_t cap = cap_entries ? cap_entries * 2 : 16;
      entry *grown = realloc(entries, cap * sizeof *grown);
      if (grown == NULL)
        rc = pb_error(PEBBLE_ENOMEM, "out of memory registering '%s'", name);
      else {
        entries = grown;
        cap_entries = cap;
      }
    }
    if (rc == PEBBLE_OK) {
      strcpy(entries[n_entries].name, name);
      entries[n_entries].fn = fn;
      n_entries++;
    }
  }
  pb_static_unlock(PB_LOCK_REGISTRY);
  return rc;
}

int pebble_lookup(const char *name, pebble_task_fn *fn) {
  entry *e;
  if (name == NULL || fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_lookup: NULL argument");
  pb_static_lock(PB_LOCK_REGISTRY);
  e = find(name);
  if (e != NULL)
    *fn = e->fn;
  pb_static_unlock(PB_LOCK_REGISTRY);
  if (e == NULL)
    return pb_error(PEBBLE_ENOTFOUND, "no task is registered as '%s'", name);
  return PEBBLE_OK;
}

int pb_registry_name_of(pebble_task_fn fn, char *buf, size_t len) {
  size_t i;
  int rc = PEBBLE_ENOTFOUND;
  for (i = 0; i < N_BUILTINS; i++)
    if (builtins[i].fn == fn && strlen(builtins[i].name) < len) {
      strcpy(buf, builtins[i].name);
      return PEBBLE_OK;
    }
  pb_static_lock(PB_LOCK_REGISTRY);
  for (i = 0; i < n_entries; i++)
    if (entries[i].fn == fn && strlen(entries[i].name) < len) {
      strcpy(buf, entries[i].name);
      rc = PEBBLE_OK;
      break;
    }
  pb_static_unlock(PB_LOCK_REGISTRY);
  return rc;
}
