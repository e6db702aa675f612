/*
 * loader.c -- finding, loading and checking backends.
 *
 * A backend is built in (the POSIX one) or a module file named
 * pebble_<name><ext> that exports pebble_backend_<name>_get.  Modules are
 * looked up in PEBBLE_BACKEND_PATH first (a developer's explicit choice),
 * then among the built-ins, then in the install directory.  A module is
 * checked before any of its operations is called and never unloaded.
 * Callers hold the boot lock.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef PEBBLE_MODULE_DIR
#define PEBBLE_MODULE_DIR "/usr/local/lib/pebble"
#endif

const pebble_backend *pebble__backend_posix_get(void);

static const struct {
  const char *name;
  const pebble_backend *(*get)(void);
} builtins[] = {{"posix", pebble__backend_posix_get}};
#define N_BUILTINS (sizeof builtins / sizeof builtins[0])

/* Modules loaded so far, by path: loaded once, kept for good. */
typedef struct loaded_module {
  char *path;
  const pebble_backend *bk; /* NULL if it failed its checks */
  int status;
  char error[512];
  struct loaded_module *next;
} loaded_module;
static loaded_module *modules;

const pebble_backend *pb_builtin_backend(const char *name) {
  size_t i;
  for (i = 0; i < N_BUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0)
      return builtins[i].get();
  return NULL;
}

#define PB_REQUIRED_OPS_END                                                  \
  (offsetof(pebble_backend, waitset_wait) + sizeof(void (*)(void)))

int pb_backend_check(const pebble_backend *bk, const char *where,
                     const char *want_name) {
  if (bk == NULL)
    return pb_error(PEBBLE_EBACKEND, "backend %s returned no table", where);
  /* Any minor of our major will do: operations are only ever appended
   * and struct_size tells which ones a module has. */
  if (bk->abi_major != PEBBLE_BACKEND_ABI_MAJOR)
    return pb_error(PEBBLE_EABI,
                    "backend %s has ABI version %u.%u; this library needs "
                    "%u.%u or a later %u.x",
                    where, bk->abi_major, bk->abi_minor,
                    PEBBLE_BACKEND_ABI_MAJOR, PEBBLE_BACKEND_ABI_MINOR,
                    PEBBLE_BACKEND_ABI_MAJOR);
  if (bk->struct_size < PB_REQUIRED_OPS_END)
    return pb_error(PEBBLE_EABI,
                    "backend %s has a table of %zu bytes; this library "
                    "needs at least %zu",
                    where, bk->struct_size, (size_t)PB_REQUIRED_OPS_END);
  if (bk->name == NULL || (want_name && strcmp(bk->name, want_name) != 0))
    return pb_error(PEBBLE_EBACKEND, "backend %s calls itself '%s', not '%s'",
                    where, bk->name ? bk->name : "(null)", want_name);
  if (!bk->init || !bk->fork_generation || !bk->now_ns ||
      !bk->thread_create || !bk->thread_join || !bk->thread_self_id ||
      !bk->mutex_create || !bk->mutex_destroy || !bk->mutex_lock ||
      !bk->mutex_unlock || !bk->cond_create || !bk->cond_destroy ||
      !bk->cond_signal || !bk->cond_broadcast || !bk->cond_wait ||
      !bk->waitset_create || !bk->waitset_destroy || !bk->waitset_watch ||
      !bk->waitset_wake || !bk->waitset_wait)
    return pb_error(PEBBLE_EABI, "backend %s lacks a mandatory operation",
                    where);
  if ((bk->caps & PEBBLE_CAP_PROCESSES) &&
      (!bk->proc_start || !bk->proc_pid || !bk->proc_read ||
       !bk->proc_write || !bk->proc_kill || !bk->proc_reap ||
       !bk->proc_destroy || !bk->chan_write_all || !bk->chan_read_all))
    return pb_error(PEBBLE_EABI,
                    "backend %s claims processes but lacks a process "
                    "operation",
                    where);
  return PEBBLE_OK;
}

/* Load and check one module file; the result is cached. */
static loaded_module *load_module(const char *path, const char *name) {
  loaded_module *m;
  void *h;
  char sym[128];
  pebble_backend_get_fn get;

  for (m = modules; m != NULL; m = m->next)
    if (strcmp(m->path, path) == 0)
      return m;
  m = calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->path = pb_strdup(path);
  if (m->path == NULL) {
    free(m);
    return NULL;
  }
  h = pb_dl_open(path, m->error, sizeof m->error);
  if (h == NULL) {
    char why[sizeof m->error];
    memcpy(why, m->error, sizeof why);
    snprintf(m->error, sizeof m->error, "cannot load backend module %s: %.300s",
             path, why);
    m->status = PEBBLE_EBACKEND;
  } else {
    snprintf(sym, sizeof sym, "pebble_backend_%s_get", name);
    get = (pebble_backend_get_fn)(intptr_t)pb_dl_sym(h, sym);
    if (get == NULL) {
      snprintf(m->error, sizeof m->error,
               "backend module %s does not export %s", path, sym);
      m->status = PEBBLE_EBACKEND;
    } else {
      char where[512];
      const pebble_backend *bk = get();
      snprintf(where, sizeof where, "module %s", path);
      m->status = pb_backend_check(bk, where, name);
      if (m->status == PEBBLE_OK)
        m->bk = bk;
      else
        snprintf(m->error, sizeof m->error, "%s", pebble_last_error());
    }
  }
  m->next = modules;
  modules = m;
  return m;
}

static int module_path(char *buf, size_t len, const char *dir,
                       const char *name) {
  int n = snprintf(buf, len, "%s/pebble_%s%s", dir, name, pb_module_ext());
  return n > 0 && (size_t)n < len;
}

/* Try dir/pebble_<name>.so; 1 and *out filled (or an error) if it exists. */
static int try_dir(const char *dir, const char *name, pb_backend_ref *out,
                   int *rc) {
  char path[4096];
  loaded_module *m;
  if (!module_path(path, sizeof path, dir, name) || !pb_file_exists(path))
    return 0;
  m = load_module(path, name);
  if (m == NULL) {
    *rc = pb_error(PEBBLE_ENOMEM, "out of memory loading %s", path);
    return 1;
  }
  if (m->bk == NULL) {
    *rc = pb_error(m->status, "%s", m->error);
    return 1;
  }
  out->bk = m->bk;
  out->path = m->path;
  *rc = PEBBLE_OK;
  return 1;
}

/* Call fn for each directory of PEBBLE_BACKEND_PATH; stop when it returns 1. */
static int each_path_dir(int (*fn)(const char *dir, void *u), void *u) {
  const char *list = pb_secure_getenv("PEBBLE_BACKEND_PATH");
  const char *sep = pb_path_list_separator();
  char dir[4096];
  while (list != NULL && *list) {
    size_t n = strcspn(list, sep);
    if (n > 0 && n < sizeof dir) {
      memcpy(dir, list, n);
      dir[n] = '\0';
      if (fn(dir, u))
        return 1;
    }
    list += n;
    if (*list)
      list++;
  }
  return 0;
}

struct resolve_ctx {
  const char *name;
  pb_backend_ref *out;
  int rc;
};
static int resolve_in(const char *dir, void *u) {
  struct resolve_ctx *c = u;
  return try_dir(dir, c->name, c->out, &c->rc);
}

static int name_ok(const char *name) {
  const char *p;
  if (name == NULL || *name == '\0' || strlen(name) > 48)
    return 0;
  for (p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
      return 0;
  return 1;
}

int pb_backend_resolve(const char *name, pb_backend_ref *out) {
  struct resolve_ctx c;
  char names[512];
  if (name == NULL || *name == '\0')
    return pb_error(PEBBLE_EINVAL, "backend name is empty");
  if (strchr(name, '/') || strchr(name, '\\'))
    return pb_error(PEBBLE_EINVAL,
                    "backend name '%s' contains a path separator; use "
                    "PEBBLE_BACKEND_PATH to name a directory",
                    name);
  if (!name_ok(name))
    return pb_error(PEBBLE_EINVAL,
                    "backend name '%s' is not a plain name "
                    "([A-Za-z0-9_-], at most 48 characters)",
                    name);
  c.name = name;
  c.out = out;
  c.rc = PEBBLE_OK;
  if (each_path_dir(resolve_in, &c))
    return c.rc;
  out->bk = pb_builtin_backend(name);
  out->path = NULL;
  if (out->bk != NULL)
    return pb_backend_check(out->bk, name, name);
  if (try_dir(PEBBLE_MODULE_DIR, name, out, &c.rc))
    return c.rc;
  pb_backend_names(names, sizeof names);
  return pb_error(PEBBLE_EBACKEND, "unknown backend '%s'; available: %s", name,
                  names);
}

/* ---- listing ---- */

struct name_list {
  char *buf;
  size_t len;
};

static void add_name(struct name_list *l, const char *name) {
  size_t used = strlen(l->buf), n = strlen(name);
  const char *p = l->buf;
  /* Skip names already listed. */
  while (*p) {
    size_t w = strcspn(p, ",");
    if (w == n && strncmp(p, name, n) == 0)
      return;
    p += w;
    while (*p == ',' || *p == ' ')
      p++;
  }
  if (used + n + 3 > l->len)
    return;
  if (used > 0)
    strcat(l->buf, ", ");
  strcat(l->buf, name);
}

/* "pebble_apr.so" -> "apr"; 0 if the file is not a module name. */
static int module_name(const char *file, char *name, size_t len) {
  const char *ext = pb_module_ext();
  size_t fl = strlen(file), el = strlen(ext), pl = strlen("pebble_");
  if (fl <= pl + el || strncmp(file, "pebble_", pl) != 0 ||
      strcmp(file + fl - el, ext) != 0 || fl - pl - el >= len)
    return 0;
  memcpy(name, file + pl, fl - pl - el);
  name[fl - pl - el] = '\0';
  return name_ok(name);
}

static void list_file(const char *file, void *u) {
  char name[64];
  if (module_name(file, name, sizeof name))
    add_name(u, name);
}
static int list_dir(const char *dir, void *u) {
  pb_dir_each(dir, list_file, u);
  return 0;
}

void pb_backend_names(char *buf, size_t len) {
  struct name_list l;
  size_t i;
  l.buf = buf;
  l.len = len;
  buf[0] = '\0';
  for (i = 0; i < N_BUILTINS; i++)
    add_name(&l, builtins[i].name);
  each_path_dir(list_dir, &l);
  list_dir(PEBBLE_MODULE_DIR, &l);
}

/* Backends are gathered under the boot lock, then shown to the caller
 * without it, so the caller may use Pebble from its function. */
typedef struct visit_item {
  pebble_backend_info info;
  char name[64];
  char path[4096];
  char error[512];
} visit_item;

typedef struct visit_ctx {
  visit_item *items;
  size_t n, cap;
  const char *dir;
} visit_ctx;

static visit_item *visit_add(visit_ctx *c, const char *name,
                             const pebble_backend *bk, const char *path,
                             const char *error) {
  visit_item *it;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 4;
    visit_item *grown = realloc(c->items, cap * sizeof *grown);
    if (grown == NULL)
      return NULL;
    c->items = grown;
    c->cap = cap;
  }
  it = &c->items[c->n++];
  memset(it, 0, sizeof *it);
  it->info.struct_size = sizeof it->info;
  snprintf(it->name, sizeof it->name, "%s", name);
  if (bk != NULL) {
    it->info.description = bk->description;
    it->info.caps = bk->caps;
    it->info.abi_major = bk->abi_major;
    it->info.abi_minor = bk->abi_minor;
  }
  if (path != NULL)
    snprintf(it->path, sizeof it->path, "%s", path);
  if (error != NULL)
    snprintf(it->error, sizeof it->error, "%s", error);
  it->info.usable = error == NULL;
  return it;
}

static void visit_file(const char *file, void *u) {
  visit_ctx *c = u;
  char name[64], path[4096];
  loaded_module *m;
  if (!module_name(file, name, sizeof name) ||
      !module_path(path, sizeof path, c->dir, name))
    return;
  m = load_module(path, name);
  visit_add(c, name, m ? m->bk : NULL, path,
            m == NULL ? "out of memory" : m->bk == NULL ? m->error : NULL);
}
static int visit_dir(const char *dir, void *u) {
  visit_ctx *c = u;
  c->dir = dir;
  pb_dir_each(dir, visit_file, c);
  return 0;
}

int pebble_backend_foreach(pebble_backend_visit_fn fn, void *user_data) {
  visit_ctx c;
  size_t i;
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_backend_foreach: fn is NULL");
  memset(&c, 0, sizeof c);
  pb_static_lock(PB_LOCK_BOOT);
  for (i = 0; i < N_BUILTINS; i++) {
    const pebble_backend *bk = builtins[i].get();
    int ok = pb_backend_check(bk, builtins[i].name, builtins[i].name);
    visit_add(&c, builtins[i].name, bk, NULL,
              ok == PEBBLE_OK ? NULL : "failed its checks");
  }
  each_path_dir(visit_dir, &c);
  visit_dir(PEBBLE_MODULE_DIR, &c);
  pb_static_unlock(PB_LOCK_BOOT);
  for (i = 0; i < c.n; i++) {
    visit_item *it = &c.items[i];
    it->info.name = it->name;
    it->info.path = it->path[0] ? it->path : NULL;
    it->info.error = it->info.usable ? NULL : it->error;
    fn(&it->info, user_data);
  }
  free(c.items);
  return PEBBLE_OK;
}
