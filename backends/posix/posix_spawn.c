/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_spawn.c -- the spawn start method: a worker is a fresh program
 * (the running one by default), not a copy of the parent's memory.
 *
 * The child is forked and prepared exactly as for proc_start, then execs
 * the program with its end of the channel left open and its number in
 * PEBBLE_WORKER_CHANNEL.  Everything the exec needs (argv, the
 * environment) is built before the fork, since the child may only make
 * async-signal-safe calls.  In the new program, chan_adopt turns the
 * variable back into a channel.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <mach-o/dyld.h>
#elif defined(__FreeBSD__)
#include <sys/sysctl.h>
#endif

#include "posix_internal.h"

#if defined(__APPLE__)
#include <crt_externs.h>
#define environ (*_NSGetEnviron()) /* not visible to shared libraries */
#else
extern char **environ;
#endif

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* The running program's path, malloc'd; NULL where the system cannot
 * say. */
static char *self_path(void) {
  char *buf = malloc(PATH_MAX + 1);
  if (buf == NULL)
    return NULL;
#if defined(__linux__)
  {
    /* The path rather than /proc/self/exe itself, so tools that run the
     * program under them (valgrind) start the program, not themselves.
     * A binary deleted since it started is still reachable by the link. */
    static const char deleted[] = " (deleted)";
    ssize_t n = readlink("/proc/self/exe", buf, PATH_MAX);
    if (n > 0) {
      buf[n] = '\0';
      if ((size_t)n > sizeof deleted - 1 &&
          strcmp(buf + n - (sizeof deleted - 1), deleted) == 0)
        snprintf(buf, PATH_MAX, "/proc/self/exe");
      return buf;
    }
  }
#elif defined(__APPLE__)
  {
    uint32_t size = PATH_MAX;
    if (_NSGetExecutablePath(buf, &size) == 0)
      return buf;
  }
#elif defined(__FreeBSD__)
  {
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1};
    size_t size = PATH_MAX;
    if (sysctl(mib, 4, buf, &size, NULL, 0) == 0)
      return buf;
  }
#endif
  free(buf);
  return NULL;
}

/* A copy of the environment without PEBBLE_WORKER_CHANNEL or
 * PEBBLE_WORKER_BACKEND, plus fresh ones: the backend's name, so the
 * worker loads the backend that speaks this channel, and the channel
 * whose digits the child writes at *digits. */
static char **worker_environment(char **digits) {
  static const char prefix[] = PBP_CHANNEL_ENV "=";
  static const char backend[] = PBP_BACKEND_ENV "=posix";
  size_t n = 0, k = 0, i;
  char **env, *slot;
  for (i = 0; environ != NULL && environ[i] != NULL; i++)
    n++;
  env = malloc((n + 3) * sizeof *env);
  slot = malloc(sizeof prefix + 16);
  if (env == NULL || slot == NULL) {
    free(env);
    free(slot);
    return NULL;
  }
  for (i = 0; i < n; i++)
    if (strncmp(environ[i], prefix, sizeof prefix - 1) != 0 &&
        strncmp(environ[i], PBP_BACKEND_ENV "=", sizeof PBP_BACKEND_ENV) != 0)
      env[k++] = environ[i];
  env[k++] = (char *)backend;
  memcpy(slot, prefix, sizeof prefix);
  env[k++] = slot;
  env[k] = NULL;
  *digits = slot + sizeof prefix - 1;
  return env;
}

static size_t env_count(char **env) {
  size_t n = 0;
  while (env[n] != NULL)
    n++;
  return n;
}

int pbp_proc_spawn(pebble_bk_proc **out, const char *program,
                   const char *argv0, int *sys_errno) {
  return pbp_proc_spawn_launched(out, program, argv0, NULL, sys_errno);
}

/* What `launch` says within its struct_size, the environment the rest. */
#define PBP_LAUNCH_HAS(l, field)                                             \
  ((l) != NULL &&                                                            \
   (l)->struct_size >= offsetof(pebble_bk_launch, field) + sizeof (l)->field)

int pbp_proc_spawn_launched(pebble_bk_proc **out, const char *program,
                            const char *argv0, const pebble_bk_launch *launch,
                            int *sys_errno) {
  pbp_child_setup setup;
  char *self = NULL, *argv[2], **envp, *digits = NULL, **launch_argv = NULL;
  const char *launcher = NULL;
  long heartbeat = 0, start = -1;
  int rc, ignored;

  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL || (program != NULL && *program == '\0'))
    return PEBBLE_EINVAL;
  *out = NULL;
  if (PBP_LAUNCH_HAS(launch, command))
    launcher = launch->command;
  if (PBP_LAUNCH_HAS(launch, heartbeat_s))
    heartbeat = launch->heartbeat_s;
  if (PBP_LAUNCH_HAS(launch, start_timeout_s))
    start = launch->start_timeout_s;
  if ((launcher != NULL && *launcher == '\0') || heartbeat < 0 ||
      heartbeat > 3600 || start < -1 || start > 86400)
    return PEBBLE_EINVAL;
  if (launcher == NULL)
    launcher = pbp_launcher();
  if (heartbeat == 0)
    heartbeat = pbp_launch_heartbeat_s();
  if (start < 0)
    start = pbp_launch_start_timeout_s();
  if (program == NULL) {
    errno = 0;
    self = self_path();
    if (self == NULL) {
      /* /proc/self/exe is unreadable, for one, in a process that changed
       * its user: say why, as a refused start. */
      *sys_errno = errno;
      return errno != 0 ? PEBBLE_ESYSTEM : PEBBLE_ENOTSUP;
    }
  }
  envp = worker_environment(&digits);
  if (envp == NULL) {
    free(self);
    return PEBBLE_ENOMEM;
  }
  argv[0] = (char *)(argv0 != NULL ? argv0 : program != NULL ? program : self);
  argv[1] = NULL;
  memset(&setup, 0, sizeof setup);
  setup.exec_path = program != NULL ? program : self;
  setup.argv = argv;
  setup.envp = envp;
  setup.chan_digits = digits;
  if (launcher != NULL) {
    /* The launcher gets its worker's channel on its stdin and stdout, and
     * no channel variable of ours. */
    rc = pbp_launch_prepare(&setup, launcher, setup.exec_path, heartbeat,
                            &launch_argv);
    setup.chan_digits = NULL;
    envp[env_count(envp) - 1] = NULL;
    if (rc == PEBBLE_OK)
      rc = pbp_proc_launch(out, &setup, sys_errno);
    if (rc == PEBBLE_OK &&
        (rc = pbp_launch_attach(*out, heartbeat, start)) != PEBBLE_OK) {
      pbp_proc_kill(*out, 1);
      pbp_proc_destroy(*out);
      *out = NULL;
    }
    pbp_launch_free_argv(launch_argv);
  } else
    rc = pbp_proc_launch(out, &setup, sys_errno);
  free(digits - (sizeof(PBP_CHANNEL_ENV "=") - 1));
  free(envp);
  free(self);
  return rc;
}

/* The one channel a spawned worker has; adopted at most once, since the
 * variable goes away. */
static pebble_bk_chan adopted;

int pbp_chan_adopt(pebble_bk_chan **out) {
  const char *value;
  char *end;
  struct stat st;
  long fd;
  int rc;

  if (out == NULL)
    return PEBBLE_EINVAL;
  *out = NULL;
  value = getenv(PBP_CHANNEL_ENV);
  if (value == NULL)
    return PEBBLE_ENOTFOUND;
  errno = 0;
  fd = strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || fd < 0 || fd > INT_MAX ||
      fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    unsetenv(PBP_CHANNEL_ENV);
    return PEBBLE_EINVAL;
  }
  /* From now on a library descriptor like any other: closed on exec and
   * in this worker's own children. */
  pbp_fd_set_cloexec((int)fd);
  pbp_fd_lock();
  rc = pbp_fd_add_locked((int)fd);
  pbp_fd_unlock();
  if (rc != 0)
    return PEBBLE_ENOMEM; /* the variable stays: the caller may retry */
  /* This worker's own children must be ordinary programs. */
  unsetenv(PBP_CHANNEL_ENV);
  unsetenv(PBP_BACKEND_ENV);
  adopted.fd = adopted.out_fd = (int)fd;
  *out = &adopted;
  return PEBBLE_OK;
}
