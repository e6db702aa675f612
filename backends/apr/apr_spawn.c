/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_spawn.c -- the spawn start method through apr_proc_create, the only
 * way APR starts a program on every platform (on Windows, the only way
 * there is).  No POSIX call on this path but the signal mask, which has
 * no meaning on Windows.
 *
 * apr_proc_create connects only standard input, output and error, and a
 * task's printf must not land in the channel, so the channel is passed
 * another way: the child's two pipe ends are made inheritable for the
 * moment of the spawn and their numbers (handle values on Windows) go in
 * PEBBLE_WORKER_CHANNEL as "apr:READ,WRITE".  Standard input is
 * /dev/null (NUL); output and error are the application's.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_env.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "apr_internal.h"

#if defined(_WIN32)
#include <windows.h>
#define environ _environ
#define PBA_NULL_DEVICE "NUL"
#elif defined(__APPLE__)
#include <crt_externs.h>
#include <mach-o/dyld.h>
#define environ (*_NSGetEnviron())
#define PBA_NULL_DEVICE "/dev/null"
#else
#include <unistd.h>
extern char **environ;
#define PBA_NULL_DEVICE "/dev/null"
#endif

#define PBA_PATH_MAX 4096
#define PBA_CHANNEL_PREFIX "apr:"

/* The running program's path, from pool; NULL where the system cannot
 * say. */
static char *self_path(apr_pool_t *pool) {
  char *buf = apr_palloc(pool, PBA_PATH_MAX + 1);
#if defined(_WIN32)
  DWORD n = GetModuleFileNameA(NULL, buf, PBA_PATH_MAX);
  if (n > 0 && n < PBA_PATH_MAX)
    return buf;
#elif defined(__APPLE__)
  uint32_t size = PBA_PATH_MAX;
  if (_NSGetExecutablePath(buf, &size) == 0)
    return buf;
#elif defined(__linux__)
  /* The path rather than /proc/self/exe, so a program run under a tool
   * (valgrind) starts again as itself. */
  ssize_t n = readlink("/proc/self/exe", buf, PBA_PATH_MAX);
  if (n > 0) {
    buf[n] = '\0';
    return buf;
  }
#endif
  return NULL;
}

static int named(const char *entry, const char *name) {
  size_t n = strlen(name);
  return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* The environment, without any worker variables, plus this worker's. */
static const char **worker_environment(apr_pool_t *pool, const char *chan) {
  size_t n = 0, k = 0, i;
  const char **env;
  for (i = 0; environ != NULL && environ[i] != NULL; i++)
    n++;
  env = apr_palloc(pool, (n + 3) * sizeof *env);
  for (i = 0; i < n; i++)
    if (!named(environ[i], PBA_CHANNEL_ENV) &&
        !named(environ[i], PBA_BACKEND_ENV))
      env[k++] = environ[i];
  env[k++] = PBA_BACKEND_ENV "=apr";
  env[k++] = apr_pstrcat(pool, PBA_CHANNEL_ENV "=", chan, NULL);
  env[k] = NULL;
  return env;
}

/* "apr:READ,WRITE,LIFELINE" */
static const char *channel_value(pebble_bk_proc *proc, apr_pool_t *pool) {
  apr_os_file_t rd, wr, life;
  apr_os_file_get(&rd, proc->child.rd);
  apr_os_file_get(&wr, proc->child.wr);
  apr_os_file_get(&life, pba_lifeline_end());
#if defined(_WIN32)
  return apr_psprintf(pool,
                      PBA_CHANNEL_PREFIX "%" APR_UINT64_T_FMT
                                         ",%" APR_UINT64_T_FMT
                                         ",%" APR_UINT64_T_FMT,
                      (apr_uint64_t)(uintptr_t)rd, (apr_uint64_t)(uintptr_t)wr,
                      (apr_uint64_t)(uintptr_t)life);
#else
  return apr_psprintf(pool, PBA_CHANNEL_PREFIX "%d,%d,%d", (int)rd, (int)wr,
                      (int)life);
#endif
}

int pba_proc_spawn(pebble_bk_proc **out, const char *program,
                   const char *argv0, int *sys_errno) {
  pebble_bk_proc *proc;
  apr_procattr_t *attr;
  apr_file_t *null_in = NULL;
  apr_pool_t *scratch;
  const char *argv[2], *path;
  unsigned char saved_mask[PBA_MASK_BYTES];
  apr_status_t st;
  int rc, ignored;

  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL || (program != NULL && *program == '\0'))
    return PEBBLE_EINVAL;
  *out = NULL;
  if ((scratch = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  errno = 0;
  path = program != NULL ? program : self_path(scratch);
  if (path == NULL) {
    /* Unreadable, for one, in a process that changed its user. */
    *sys_errno = errno;
    apr_pool_destroy(scratch);
    return errno != 0 ? PEBBLE_ESYSTEM : PEBBLE_ENOTSUP;
  }
  if ((rc = pba_proc_new(&proc, sys_errno)) != PEBBLE_OK) {
    apr_pool_destroy(scratch);
    return rc;
  }
  argv[0] = argv0 != NULL ? argv0 : path;
  argv[1] = NULL;

  st = apr_procattr_create(&attr, scratch);
  /* Both open a descriptor (the second a duplicate) with a cleanup. */
  pba_fd_ops_begin();
  if (st == APR_SUCCESS)
    st = apr_file_open(&null_in, PBA_NULL_DEVICE, APR_FOPEN_READ,
                       APR_FPROT_OS_DEFAULT, scratch);
  if (st == APR_SUCCESS)
    st = apr_procattr_child_in_set(attr, null_in, NULL);
  pba_fd_ops_end();
  if (st == APR_SUCCESS)
    st = apr_procattr_cmdtype_set(attr, APR_PROGRAM);
  /* Checks that the program can be run before starting it, so a bad path
   * is an error here rather than a worker dying at once. */
  if (st == APR_SUCCESS)
    st = apr_procattr_error_check_set(attr, 1);
  if (st == APR_SUCCESS) {
    const char **env = worker_environment(scratch, channel_value(proc, scratch));
    apr_file_inherit_set(proc->child.rd);
    apr_file_inherit_set(proc->child.wr);
    apr_file_inherit_set(pba_lifeline_end());
    /* The program starts with the application's signal mask, not the
     * library thread's. */
    pba_thread_mask_app(saved_mask, sizeof saved_mask);
    /* The process's pool, not scratch: on Windows the handle lives there. */
    st = apr_proc_create(&proc->proc, path, argv, env, attr, proc->pool);
    pba_thread_mask_restore(saved_mask);
    apr_file_inherit_unset(pba_lifeline_end());
  }
  if (null_in != NULL)
    apr_file_close(null_in);
  apr_pool_destroy(scratch);
  if (st != APR_SUCCESS) {
    *sys_errno = pba_sys_errno(st);
    pba_proc_destroy_unstarted(proc);
    return PEBBLE_ESYSTEM;
  }
  if ((rc = pba_proc_started(proc, sys_errno)) != PEBBLE_OK) {
    pba_proc_destroy_unstarted(proc);
    return rc;
  }
  *out = proc;
  return PEBBLE_OK;
}

/* The one channel a spawned worker has. */
static pebble_bk_chan adopted;
static apr_pool_t *adopted_pool;

static int parse_handle(const char **p, apr_os_file_t *out) {
  char *end;
  unsigned long long v;
  errno = 0;
  v = strtoull(*p, &end, 10);
  if (errno != 0 || end == *p)
    return 0;
#if defined(_WIN32)
  *out = (apr_os_file_t)(uintptr_t)v;
#else
  if (v > 1u << 30)
    return 0;
  *out = (apr_os_file_t)v;
#endif
  *p = end;
  return 1;
}

int pba_chan_adopt(pebble_bk_chan **out) {
  apr_os_file_t rd, wr, life;
  apr_file_t *lifeline;
  const char *p;
  char *value;
  apr_pool_t *pool;
  if (out == NULL)
    return PEBBLE_EINVAL;
  *out = NULL;
  if ((pool = pba_pool_new()) == NULL)
    return PEBBLE_ENOMEM;
  if (apr_env_get(&value, PBA_CHANNEL_ENV, pool) != APR_SUCCESS) {
    apr_pool_destroy(pool);
    return PEBBLE_ENOTFOUND;
  }
  p = value;
  if (strncmp(p, PBA_CHANNEL_PREFIX, sizeof PBA_CHANNEL_PREFIX - 1) != 0) {
    apr_pool_destroy(pool);
    return PEBBLE_EINVAL; /* another backend's channel */
  }
  p += sizeof PBA_CHANNEL_PREFIX - 1;
  if (!parse_handle(&p, &rd) || *p++ != ',' || !parse_handle(&p, &wr) ||
      *p++ != ',' || !parse_handle(&p, &life) || *p != '\0' ||
      apr_os_pipe_put_ex(&adopted.rd, &rd, 0, pool) != APR_SUCCESS ||
      apr_os_pipe_put_ex(&adopted.wr, &wr, 0, pool) != APR_SUCCESS ||
      apr_os_pipe_put_ex(&lifeline, &life, 0, pool) != APR_SUCCESS) {
    apr_env_delete(PBA_CHANNEL_ENV, pool);
    apr_pool_destroy(pool);
    return PEBBLE_EINVAL;
  }
  /* Ours now: closed on exec, and this worker's own children are
   * ordinary programs. */
  apr_file_inherit_unset(adopted.rd);
  apr_file_inherit_unset(adopted.wr);
  apr_file_inherit_unset(lifeline);
  pba_fd_track(adopted.rd);
  pba_fd_track(adopted.wr);
  pba_fd_track(lifeline);
  if (pba_lifeline_watch_adopted(lifeline, pool) != PEBBLE_OK) {
    apr_env_delete(PBA_CHANNEL_ENV, pool);
    return PEBBLE_ESYSTEM; /* a worker that would outlive its parent */
  }
  apr_env_delete(PBA_CHANNEL_ENV, pool);
  apr_env_delete(PBA_BACKEND_ENV, pool);
  adopted_pool = pool;
  *out = &adopted;
  return PEBBLE_OK;
}
