/* SPDX-License-Identifier: Apache-2.0 */
/*
 * platform.c -- what the core needs before any backend is loaded: a few
 * static locks, safe environment reads, directory listing and dlopen.
 * Everything else goes through the backend contract.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sched.h>
#endif

#include "internal.h"

#ifdef _WIN32
#include <windows.h>

static SRWLOCK static_locks[PB_LOCK_COUNT] = {SRWLOCK_INIT, SRWLOCK_INIT,
                                              SRWLOCK_INIT};
void pb_static_lock(enum pb_static_lock w) { AcquireSRWLockExclusive(&static_locks[w]); }
void pb_static_unlock(enum pb_static_lock w) { ReleaseSRWLockExclusive(&static_locks[w]); }
/* No fork on Windows: nothing calls the hooks. */
void pb_fork_hooks_set(void (*prepare)(void), void (*parent)(void),
                       void (*child)(void)) {
  (void)prepare, (void)parent, (void)child;
}
const char *pb_secure_getenv(const char *name) { return getenv(name); }
int pb_file_exists(const char *path) {
  return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}
int pb_dir_each(const char *dir, void (*fn)(const char *, void *), void *user) {
  char pattern[4096];
  WIN32_FIND_DATAA fd;
  HANDLE h;
  snprintf(pattern, sizeof pattern, "%s\\*", dir);
  h = FindFirstFileA(pattern, &fd);
  if (h == INVALID_HANDLE_VALUE)
    return PEBBLE_ENOTFOUND;
  do
    fn(fd.cFileName, user);
  while (FindNextFileA(h, &fd));
  FindClose(h);
  return PEBBLE_OK;
}
void *pb_dl_open(const char *path, char *err, size_t errlen) {
  HMODULE h = LoadLibraryA(path);
  if (h == NULL)
    snprintf(err, errlen, "LoadLibrary failed with error %lu",
             (unsigned long)GetLastError());
  return (void *)h;
}
void *pb_dl_sym(void *h, const char *s) {
  return (void *)(intptr_t)GetProcAddress((HMODULE)h, s);
}
const char *pb_module_ext(void) { return ".dll"; }
unsigned pb_online_cpus(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return (unsigned)si.dwNumberOfProcessors;
}
const char *pb_path_list_separator(void) { return ";"; }

static INIT_ONCE relative_dir_once = INIT_ONCE_STATIC_INIT;
static char relative_dir[4096];
struct relative_dir_args {
  const char *rel, *fallback;
};
static BOOL CALLBACK find_relative_dir(PINIT_ONCE once, PVOID arg,
                                       PVOID *unused) {
  const struct relative_dir_args *a = arg;
  HMODULE self = NULL;
  char path[4096], *slash;
  DWORD n;
  (void)once, (void)unused;
  /* The module this code is in: libpebble-0.dll, or the program when
   * the library is linked statically. */
  if (GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                             GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                         (LPCSTR)(const void *)relative_dir, &self) &&
      (n = GetModuleFileNameA(self, path, sizeof path)) > 0 &&
      n < sizeof path && (slash = strrchr(path, '\\')) != NULL) {
    *slash = '\0';
    snprintf(relative_dir, sizeof relative_dir, "%s\\%s", path, a->rel);
  } else {
    snprintf(relative_dir, sizeof relative_dir, "%s", a->fallback);
  }
  return TRUE;
}
const char *pb_library_relative_dir(const char *rel, const char *fallback) {
  struct relative_dir_args a;
  a.rel = rel;
  a.fallback = fallback;
  InitOnceExecuteOnce(&relative_dir_once, find_relative_dir, &a, NULL);
  return relative_dir;
}

const char *pb_sys_strerror(int err) {
  static PB_TLS char text[256];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                               FORMAT_MESSAGE_IGNORE_INSERTS,
                           NULL, (DWORD)err, 0, text, sizeof text, NULL);
  /* The system's text ends in ".\r\n". */
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
                   text[n - 1] == ' ' || text[n - 1] == '.'))
    text[--n] = '\0';
  if (n == 0)
    snprintf(text, sizeof text, "system error %d", err);
  return text;
}
void pb_prefault(void *p, size_t size) { (void)p, (void)size; }
size_t pb_physical_memory(void) { return SIZE_MAX; }

#else /* POSIX */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t static_locks[PB_LOCK_COUNT] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The running backend's fork hooks: written under PB_LOCK_BOOT, read by
 * the fork handlers while they hold it. */
static void (*hook_prepare)(void), (*hook_parent)(void), (*hook_child)(void);

void pb_fork_hooks_set(void (*prepare)(void), void (*parent)(void),
                       void (*child)(void)) {
  hook_prepare = prepare;
  hook_parent = parent;
  hook_child = child;
}

/* Hold every static lock across fork so a child never inherits one that
 * another thread held; the child can then initialise Pebble afresh.  The
 * backend's hook comes last, so its locks always come after ours. */
static void before_fork(void) {
  int i;
  for (i = 0; i < PB_LOCK_COUNT; i++)
    pthread_mutex_lock(&static_locks[i]);
  if (hook_prepare != NULL)
    hook_prepare();
}
static void unlock_all(void) {
  int i;
  for (i = PB_LOCK_COUNT - 1; i >= 0; i--)
    pthread_mutex_unlock(&static_locks[i]);
}
static void after_fork_parent(void) {
  if (hook_parent != NULL)
    hook_parent();
  unlock_all();
}
static void after_fork_child(void) {
  if (hook_child != NULL)
    hook_child();
  unlock_all();
}
static void register_atfork(void) {
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void pb_static_lock(enum pb_static_lock w) {
  pthread_once(&atfork_once, register_atfork);
  pthread_mutex_lock(&static_locks[w]);
}
void pb_static_unlock(enum pb_static_lock w) {
  pthread_mutex_unlock(&static_locks[w]);
}

const char *pb_secure_getenv(const char *name) {
#if defined(HAVE_SECURE_GETENV) || (defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 17)))
  return secure_getenv(name);
#else
  if (getuid() != geteuid() || getgid() != getegid())
    return NULL;
  return getenv(name);
#endif
}

int pb_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int pb_dir_each(const char *dir, void (*fn)(const char *, void *), void *user) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL)
    return PEBBLE_ENOTFOUND;
  while ((e = readdir(d)) != NULL)
    fn(e->d_name, user);
  closedir(d);
  return PEBBLE_OK;
}

void *pb_dl_open(const char *path, char *err, size_t errlen) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    const char *e = dlerror();
    snprintf(err, errlen, "%s", e ? e : "dlopen failed");
  }
  return h;
}

void *pb_dl_sym(void *h, const char *s) { return dlsym(h, s); }

const char *pb_module_ext(void) {
#ifdef LT_MODULE_EXT
  return LT_MODULE_EXT;
#elif defined(__APPLE__)
  return ".so";
#else
  return ".so";
#endif
}
const char *pb_path_list_separator(void) { return ":"; }
const char *pb_sys_strerror(int err) { return strerror(err); }

unsigned pb_online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

size_t pb_physical_memory(void) {
#if defined(_SC_PHYS_PAGES)
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    return (uint64_t)pages > SIZE_MAX / (uint64_t)page
               ? SIZE_MAX
               : (size_t)pages * (size_t)page;
#endif
  return SIZE_MAX;
}

/* Linux 5.14 and later fault a whole range in with one call, many times
 * faster than a fault per page as the data arrives; elsewhere, or on an
 * older kernel (EINVAL), nothing happens and the pages fault in as used. */
void pb_prefault(void *p, size_t size) {
#if defined(__linux__)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t start, end;
  if (page <= 0 || size == 0)
    return;
  /* Whole pages inside the block only: the rest is the heap's. */
  start = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  end = ((uintptr_t)p + size) & ~((uintptr_t)page - 1);
  if (end > start)
    madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
  (void)p, (void)size;
#endif
}
#endif

/* Spinning helps only when another CPU can produce what is watched for:
 * never when this process may run on one CPU only (a machine with one, or
 * a process pinned to one).  PEBBLE_SPIN=N sets the longest spin in
 * microseconds (0: never spin), for machines shared by busy programs. */
static unsigned usable_cpus(void) {
#if defined(__linux__) && defined(CPU_COUNT)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return (unsigned)CPU_COUNT(&set);
#endif
  return pb_online_cpus();
}

/* PEBBLE_SPIN in nanoseconds; PB_SPIN_NS if unset; 0 if it is not a
 * number of microseconds from 0 to 1000000 (*bad set, env named). */
static uint64_t spin_setting(const char **bad) {
  const char *env = pb_secure_getenv("PEBBLE_SPIN");
  char *end;
  unsigned long us;
  *bad = NULL;
  if (env == NULL || *env == '\0')
    return PB_SPIN_NS;
  if (*env >= '0' && *env <= '9') {
    us = strtoul(env, &end, 10);
    if (*end == '\0' && us <= 1000000ul)
      return (uint64_t)us * 1000u;
  }
  *bad = env;
  return PB_SPIN_NS;
}

int pb_spin_setting_check(void) {
  const char *bad;
  spin_setting(&bad);
  if (bad != NULL)
    return pb_error(PEBBLE_EINVAL,
                    "PEBBLE_SPIN='%s' is not a number of microseconds from 0 "
                    "to 1000000 (0: never spin)",
                    bad);
  return PEBBLE_OK;
}

uint64_t pb_spin_ns(void) {
  static _Atomic uint64_t limit = UINT64_MAX;
  uint64_t ns = atomic_load_explicit(&limit, memory_order_relaxed);
  if (ns == UINT64_MAX) {
    const char *bad;
    ns = spin_setting(&bad);
    if (bad != NULL) /* set after the library started, which refuses
                        to start with a bad value */
      pb_log(PEBBLE_LOG_WARN,
             "PEBBLE_SPIN='%s' is not a number of microseconds up to "
             "1000000; using %u",
             bad, (unsigned)(PB_SPIN_NS / 1000u));
    if (usable_cpus() < 2)
      ns = 0;
    atomic_store_explicit(&limit, ns, memory_order_relaxed);
  }
  return ns;
}

/* A caller waiting for a process task's result spins only with CPUs to
 * spare: the worker process and the manager thread that reads its result
 * need one each, and a spinning caller on a third would otherwise push
 * one of them off. */
int pb_spin_for_processes(void) {
  static _Atomic int known = -1;
  int v = atomic_load_explicit(&known, memory_order_relaxed);
  if (v < 0) {
    v = pb_spin_ns() > 0 && usable_cpus() >= 4;
    atomic_store_explicit(&known, v, memory_order_relaxed);
  }
  return v;
}

#define SPIN_MIN_NS 2000u /* a budget cut below this is nothing */

int pb_spin_wait(const pebble_backend *bk, pb_spin *spin,
                 int (*ready)(void *arg, unsigned turn), void *arg,
                 uint64_t *gave_up) {
  uint64_t limit = pb_spin_ns(), start, now;
  unsigned budget, turn = 0, grown;
  *gave_up = 0;
  if (limit == 0)
    return 0;
  budget = atomic_load_explicit(&spin->budget_ns, memory_order_relaxed);
  if (budget == UINT32_MAX)
    budget = (unsigned)limit;
  if (budget == 0) {
    if (atomic_fetch_add_explicit(&spin->skips, 1, memory_order_relaxed) %
            32u != 31u)
      return 0;
    /* A full-length probe: the event may come late only because the
     * other side stopped spinning too (a worker asleep takes a wake-up),
     * and a short probe would never see that it is worth it again. */
    budget = (unsigned)limit;
  }
  start = bk->now_ns();
  for (;;) {
    int r = ready(arg, turn);
    if (r < 0)
      return 0;
    if (r > 0) {
      grown = budget + budget / 2 + 1000u;
      atomic_store_explicit(&spin->budget_ns,
                            grown < limit ? grown : (unsigned)limit,
                            memory_order_relaxed);
      return 1;
    }
    pb_cpu_relax();
    if ((++turn & 31u) == 0 && (now = bk->now_ns()) - start >= budget)
      break;
  }
  *gave_up = now;
  return 0;
}

void pb_spin_slept(const pebble_backend *bk, pb_spin *spin,
                   uint64_t gave_up) {
  uint64_t limit = pb_spin_ns();
  unsigned budget;
  if (gave_up == 0 || bk->now_ns() - gave_up > 2 * limit)
    return;
  budget = atomic_load_explicit(&spin->budget_ns, memory_order_relaxed);
  if (budget == UINT32_MAX)
    budget = (unsigned)limit;
  atomic_store_explicit(&spin->budget_ns,
                        budget / 4 < SPIN_MIN_NS ? 0 : budget / 4,
                        memory_order_relaxed);
}
