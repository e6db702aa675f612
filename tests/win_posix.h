/* SPDX-License-Identifier: Apache-2.0 */
/* win_posix.h -- the few POSIX calls the core test programs make, for a
 * mingw-w64 build run under Wine (included by core_util.h on Windows only).
 *
 * Only what has a faithful Windows meaning is provided: kill() ends a
 * process (TerminateProcess) or asks whether it lives, pipe() is _pipe(),
 * pause() sleeps for good.  What has none (fork, waitpid, FIFOs) fails
 * with ENOSYS, and the tests that need it are skipped by name with
 * NO_FORK_WHY or NO_FIFO_WHY (core_util.h), never passed. */
#ifndef PEBBLE_WIN_POSIX_H
#define PEBBLE_WIN_POSIX_H

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <process.h>
#include <signal.h>
#include <sys/types.h>
#include <windows.h>

#ifndef SIGKILL
#define SIGKILL 9
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NONBLOCK
#define O_NONBLOCK 0
#endif

/* kill(pid, 0): does the process live; any other signal ends it. */
static inline int kill(pid_t pid, int sig) {
  HANDLE h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE |
                             PROCESS_QUERY_LIMITED_INFORMATION,
                         FALSE, (DWORD)pid);
  DWORD code = 0;
  int rc = 0;
  if (h == NULL) {
    errno = ESRCH;
    return -1;
  }
  if (!GetExitCodeProcess(h, &code) || code != STILL_ACTIVE) {
    errno = ESRCH;
    rc = -1;
  } else if (sig != 0 && !TerminateProcess(h, 128 + (UINT)sig)) {
    errno = EPERM;
    rc = -1;
  }
  CloseHandle(h);
  return rc;
}

static inline int win_no_fork(void) {
  errno = ENOSYS;
  return -1;
}
#define fork() win_no_fork()
static inline pid_t waitpid(pid_t pid, int *status, int options) {
  (void)pid, (void)status, (void)options;
  errno = ECHILD;
  return -1;
}
#define WNOHANG 1
#define WIFEXITED(st) 1
#define WEXITSTATUS(st) (st)
#define WIFSIGNALED(st) 0
#define WTERMSIG(st) 0

static inline int pipe(int fds[2]) { return _pipe(fds, 65536, _O_BINARY); }

/* Nothing to read in this pipe now (its write end still open). */
static inline int pipe_is_empty(int fd) {
  DWORD avail = 0;
  HANDLE h = (HANDLE)_get_osfhandle(fd);
  return PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL) && avail == 0;
}

static inline int pause(void) {
  for (;;)
    Sleep(INFINITE);
  return -1;
}

static inline int mkfifo(const char *path, int mode) {
  (void)path, (void)mode;
  errno = ENOSYS;
  return -1;
}
#define F_SETFL 4
static inline int fcntl(int fd, int cmd, ...) {
  (void)fd, (void)cmd;
  errno = ENOSYS;
  return -1;
}
static inline char *mkdtemp(char *templ) {
  (void)templ;
  errno = ENOSYS;
  return NULL;
}

static inline ssize_t readlink(const char *path, char *buf, size_t size) {
  (void)path, (void)buf, (void)size;
  errno = ENOSYS;
  return -1;
}

static inline int setpgid(pid_t pid, pid_t group) {
  (void)pid, (void)group;
  errno = ENOSYS;
  return -1;
}

static inline int setenv(const char *name, const char *value, int replace) {
  if (!replace && getenv(name) != NULL)
    return 0;
  return _putenv_s(name, value) == 0 ? 0 : -1;
}
static inline int unsetenv(const char *name) {
  return _putenv_s(name, "") == 0 ? 0 : -1;
}

/* poll() for pipe descriptors (the tests poll nothing else): Windows has
 * no wait on an anonymous pipe's data, so this looks every millisecond
 * until the timeout (a test's helper, not the library's way). */
#define POLLIN 0x1
#define POLLHUP 0x10
struct pollfd {
  int fd;
  short events, revents;
};
static inline int poll(struct pollfd *fds, unsigned long n, int timeout_ms) {
  DWORD start = GetTickCount();
  for (;;) {
    int ready = 0;
    unsigned long i;
    for (i = 0; i < n; i++) {
      DWORD avail = 0;
      HANDLE h = (HANDLE)_get_osfhandle(fds[i].fd);
      fds[i].revents = 0;
      if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL))
        fds[i].revents = POLLHUP;
      else if (avail > 0 && (fds[i].events & POLLIN))
        fds[i].revents = POLLIN;
      ready += fds[i].revents != 0;
    }
    if (ready > 0 || (timeout_ms >= 0 &&
                      GetTickCount() - start >= (DWORD)timeout_ms))
      return ready;
    Sleep(1);
  }
}

/* The C library's rand_r is POSIX only: the same small generator. */
static inline int rand_r(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return (int)((*seed / 65536u) % 32768u);
}

#endif
