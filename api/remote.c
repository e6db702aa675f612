/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote.c -- the remote supervisor: a worker program started through a
 * launcher (ssh, srun, mpirun) splits in two before it does anything else.
 *
 * The launcher gives the program only its standard input and output,
 * forwarded to the application, and reports only its own end; OpenSSH
 * cannot even report a signal faithfully.  So the process the launcher
 * started stays as a supervisor, and a child it forks becomes the worker,
 * with an ordinary socket channel to the supervisor:
 *
 *   - it relays the application's bytes (its stdin, framed the same way)
 *     to the worker, and the worker's bytes, framed (remote_frame.h), to
 *     its stdout;
 *   - when the worker ends, it sends the rest of the worker's bytes, then
 *     a report: the worker's process id, how it ended and this host's
 *     name; then it kills its process group (the worker stays in it,
 *     with whatever the worker's tasks started), having left it first,
 *     and exits;
 *   - it sends a heartbeat when it has sent nothing for a while
 *     (PEBBLE_WORKER_HEARTBEAT seconds), so that the application can tell
 *     a silent network from a busy worker; the first one, at once, says
 *     where the worker runs (its process id and this host's name), so
 *     that a link lost before the report still names them;
 *   - when its stdin ends or its stdout breaks (the application died, or
 *     killed the launcher at a timeout or cancellation), it kills the
 *     group at once; and when nothing came down for PB_BEATS_LOST
 *     heartbeats while it was listening (the application sends one when
 *     it has sent nothing for that long), since a launcher killed on the
 *     application's side can leave this side's stdin open (a srun killed
 *     by SIGKILL leaves its step running).
 *
 * The worker's stdout is the supervisor's stderr, so that a task's printf
 * reaches the application's terminal and never the channel.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "internal.h"

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "remote_frame.h"

#if defined(__GNUC__)
#define PEBBLE_NORETURN_ __attribute__((noreturn))
#else
#define PEBBLE_NORETURN_
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SIGPIPE is ignored in the supervisor anyway */
#endif
#ifndef HOST_NAME_MAX
#define HOST_NAME_MAX 255
#endif

int pb_worker_remote;

/* Bytes relayed per read in each direction. */
#define RELAY_CHUNK 65536

static int chld_pipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  int saved = errno;
  (void)sig;
  while (write(chld_pipe[1], "", 1) < 0 && errno == EINTR)
    ;
  errno = saved;
}

/* The application is gone, or gave up on this worker: nothing here may
 * outlive it.  The group is the worker, what it started, and us. */
static PEBBLE_NORETURN_ void end_group(void) {
  killpg(0, SIGKILL);
  _exit(1); /* not reached: we are in the group */
}

/* The worker has ended and its report is written: end what its tasks
 * started (our group) and exit by ourselves.  A launcher whose task dies
 * by a signal may drop output it has not yet forwarded (srun does), the
 * report with it.  So we first move to a group of a child of ours, kill
 * our old group, then the child, and exit.  A session leader (under
 * sshd) cannot move: it ends with its group, and sshd forwards all. */
static PEBBLE_NORETURN_ void end_group_and_exit(void) {
  pid_t group = getpgrp(), keeper = fork();
  if (keeper == 0) {
    setpgid(0, 0);
    for (;;)
      pause(); /* killed below */
  }
  if (keeper > 0) {
    setpgid(keeper, keeper); /* in place whichever of us runs first */
    if (setpgid(0, keeper) == 0) {
      killpg(group, SIGKILL);
      kill(keeper, SIGKILL);
      while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
        ;
      _exit(0);
    }
    kill(keeper, SIGKILL);
  }
  end_group();
}

/* Write all of buf to a descriptor that may be non-blocking. */
static int write_all(int fd, const unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p;
      p.fd = fd;
      p.events = POLLOUT;
      p.revents = 0;
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void this_host(char *host, size_t size) {
  if (gethostname(host, size) != 0)
    snprintf(host, size, "?");
  host[size - 1] = '\0';
}

/* The worker has ended: its last bytes, the report, then the group. */
static PEBBLE_NORETURN_ void report_and_end(int chan, pid_t pid, int st,
                                       unsigned char *up, size_t up_len) {
  static unsigned char buf[PB_FRAME_HEADER + RELAY_CHUNK];
  char host[HOST_NAME_MAX + 1], text[PB_FRAME_REPORT_MAX];
  int len;
  if (up_len > 0 && write_all(1, up, up_len) != 0)
    end_group();
  /* Everything it wrote is in the socket already. */
  for (;;) {
    ssize_t n = recv(chan, buf + PB_FRAME_HEADER, RELAY_CHUNK, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    pb_frame_header(buf, PB_FRAME_DATA, (size_t)n);
    if (write_all(1, buf, PB_FRAME_HEADER + (size_t)n) != 0)
      end_group();
  }
  this_host(host, sizeof host);
  len = snprintf(text, sizeof text, "%ld %d %d %d %d %s", (long)pid,
                 WIFEXITED(st) ? 1 : 0, WIFEXITED(st) ? WEXITSTATUS(st) : 0,
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0,
#ifdef WCOREDUMP
                 WIFSIGNALED(st) && WCOREDUMP(st) ? 1 : 0,
#else
                 0,
#endif
                 host);
  if (len < 0 || (size_t)len >= sizeof text)
    len = (int)strlen(text);
  pb_frame_header(buf, PB_FRAME_EXIT, (size_t)len);
  memcpy(buf + PB_FRAME_HEADER, text, (size_t)len);
  if (write_all(1, buf, PB_FRAME_HEADER + (size_t)len) != 0)
    end_group();
  end_group_and_exit();
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The heartbeat's interval in milliseconds, from the launcher's words. */
static int heartbeat_ms(void) {
  const char *v = getenv(PB_HEARTBEAT_ENV);
  long s = v != NULL ? strtol(v, NULL, 10) : 0;
  if (s <= 0 || s > 3600)
    s = PB_HEARTBEAT_DEFAULT;
  return (int)(s * 1000);
}

/* The application's frames, as they come down: what the worker gets is
 * the payload of the DATA frames; heartbeats only say that the
 * application is there.  Returns how many bytes of raw[] were payload
 * (moved to its front), or -1 on a frame this side does not know. */
static long unframe_down(unsigned char *raw, size_t n) {
  static unsigned char head[PB_FRAME_HEADER];
  static unsigned head_have;
  static size_t left;
  static unsigned type;
  size_t in = 0, out = 0;
  while (in < n) {
    size_t take;
    if (left == 0 && head_have < PB_FRAME_HEADER) {
      head[head_have++] = raw[in++];
      if (head_have < PB_FRAME_HEADER)
        continue;
      type = head[0];
      left = pb_frame_length(head);
      if (type != PB_FRAME_DATA && type != PB_FRAME_BEAT)
        return -1;
    }
    take = left < n - in ? left : n - in;
    if (type == PB_FRAME_DATA)
      memmove(raw + out, raw + in, take);
    out += type == PB_FRAME_DATA ? take : 0;
    in += take;
    left -= take;
    if (left == 0)
      head_have = 0;
  }
  return (long)out;
}

/* The supervisor's life: relay until the worker or the application ends.
 * Something goes up at least every beat_ms (a heartbeat when the worker
 * says nothing), so the application can tell a silent link from a busy
 * worker; and the application's side does the same, so that this side
 * ends when nothing came down for PB_BEATS_LOST beats while it listened. */
static PEBBLE_NORETURN_ void relay(int chan, pid_t pid, int beat_ms) {
  static unsigned char down[RELAY_CHUNK], up[PB_FRAME_HEADER + RELAY_CHUNK];
  size_t down_len = 0, down_off = 0, up_len, up_off = 0;
  int worker_open = 1, len;
  long long last_up = now_ms(), last_down = last_up;
  char host[HOST_NAME_MAX + 1];
  /* The first heartbeat says at once that the launch worked, and where:
   * "PID HOST" (an application that knows no such body skips it). */
  this_host(host, sizeof host);
  len = snprintf((char *)up + PB_FRAME_HEADER, PB_FRAME_REPORT_MAX, "%ld %s",
                 (long)pid, host);
  if (len < 0 || len >= (int)PB_FRAME_REPORT_MAX)
    len = 0;
  pb_frame_header(up, PB_FRAME_BEAT, (size_t)len);
  up_len = PB_FRAME_HEADER + (size_t)len;
  for (;;) {
    struct pollfd p[4];
    long long now = now_ms(), wait_ms;
    int n;
    if (up_len == 0 && now - last_up >= beat_ms) {
      pb_frame_header(up, PB_FRAME_BEAT, 0);
      up_len = PB_FRAME_HEADER;
      up_off = 0;
    }
    /* Silence counts only while we listen: with bytes of ours still
     * going to a busy worker, we read nothing, and so hear nothing. */
    if (down_len > 0)
      last_down = now;
    else if (now - last_down >= (long long)beat_ms * PB_BEATS_LOST)
      end_group(); /* the application is gone, or cannot reach us */
    p[0].fd = down_len == 0 ? 0 : -1; /* the application's bytes */
    p[0].events = POLLIN;
    p[1].fd = chan;
    p[1].events = (short)((down_len > 0 ? POLLOUT : 0) |
                          (worker_open && up_len == 0 ? POLLIN : 0));
    p[2].fd = up_len > 0 ? 1 : -1;
    p[2].events = POLLOUT;
    p[3].fd = chld_pipe[0];
    p[3].events = POLLIN;
    p[0].revents = p[1].revents = p[2].revents = p[3].revents = 0;
    wait_ms = down_len > 0 ? -1
                           : (long long)beat_ms * PB_BEATS_LOST -
                                 (now - last_down);
    if (up_len == 0 && (wait_ms < 0 || beat_ms - (now - last_up) < wait_ms))
      wait_ms = beat_ms - (now - last_up);
    n = poll(p, 4, (int)wait_ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      end_group();
    }
    if (p[3].revents != 0) {
      char drain[16];
      int st;
      pid_t r;
      while (read(chld_pipe[0], drain, sizeof drain) > 0)
        ;
      do
        r = waitpid(pid, &st, WNOHANG);
      while (r < 0 && errno == EINTR);
      if (r == pid)
        report_and_end(chan, pid, st, up + up_off, up_len - up_off);
    }
    if (p[0].revents != 0) {
      ssize_t r = read(0, down, sizeof down);
      if (r < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (r <= 0)
        end_group(); /* the application or its launcher is gone */
      last_down = now_ms();
      r = unframe_down(down, (size_t)r);
      if (r < 0)
        end_group(); /* not a Pebble application's frames */
      down_len = (size_t)r;
      down_off = 0;
    }
    if ((p[1].revents & (POLLOUT | POLLERR | POLLHUP)) && down_len > 0) {
      ssize_t r = send(chan, down + down_off, down_len - down_off,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0) {
        down_off += (size_t)r;
        if (down_off == down_len)
          down_len = down_off = 0;
      } else if (r < 0 && errno != EINTR && errno != EAGAIN &&
                 errno != EWOULDBLOCK) {
        down_len = down_off = 0; /* the worker is ending: its exit tells */
      }
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && worker_open &&
        up_len == 0) {
      ssize_t r = recv(chan, up + PB_FRAME_HEADER, RELAY_CHUNK, MSG_DONTWAIT);
      if (r > 0) {
        pb_frame_header(up, PB_FRAME_DATA, (size_t)r);
        up_len = PB_FRAME_HEADER + (size_t)r;
        up_off = 0;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN &&
                            errno != EWOULDBLOCK)) {
        worker_open = 0; /* its exit follows */
      }
    }
    if ((p[2].revents & (POLLOUT | POLLERR | POLLHUP)) && up_len > 0) {
      ssize_t r = write(1, up + up_off, up_len - up_off);
      if (r > 0) {
        last_up = now_ms();
        up_off += (size_t)r;
        if (up_off == up_len)
          up_len = up_off = 0;
      } else if (r < 0 && errno != EINTR && errno != EAGAIN) {
        end_group(); /* nobody reads us any more */
      }
    }
  }
}

/* Move fd to a number above the standard ones. */
static int above_stdio(int fd) {
  int moved;
  if (fd > 2)
    return fd;
  moved = fcntl(fd, F_DUPFD, 3);
  close(fd);
  return moved;
}

int pb_remote_supervise(void) {
  struct sigaction sa;
  char digits[24];
  int sv[2], fd, beat_ms = heartbeat_ms();
  pid_t parent = getpid(), pid;

  /* Our own group, so that killing it reaches nothing of the launcher's
   * (a session leader under sshd already leads one). */
  if (getpgrp() != parent)
    setpgid(0, 0);
  /* Nothing else runs in this process yet: no other thread can fork
   * between the calls and the close-on-exec flags set after them. */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return pb_error(PEBBLE_ESYSTEM,
                    "remote worker: cannot make its channel: %s",
                    strerror(errno));
  if (pipe(chld_pipe) != 0)
    return pb_error(PEBBLE_ESYSTEM, "remote worker: cannot make a pipe: %s",
                    strerror(errno));
  sv[0] = above_stdio(sv[0]);
  sv[1] = above_stdio(sv[1]);
  fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  fcntl(sv[1], F_SETFD, FD_CLOEXEC);
  fcntl(chld_pipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(chld_pipe[1], F_SETFD, FD_CLOEXEC);
  fcntl(chld_pipe[0], F_SETFL, fcntl(chld_pipe[0], F_GETFL) | O_NONBLOCK);
  fcntl(chld_pipe[1], F_SETFL, fcntl(chld_pipe[1], F_GETFL) | O_NONBLOCK);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    return pb_error(PEBBLE_ESYSTEM, "remote worker: cannot fork: %s",
                    strerror(errno));
  if (pid > 0) {
    close(sv[1]);
    signal(SIGPIPE, SIG_IGN);
    relay(sv[0], pid, beat_ms);
  }
  /* The worker. */
  signal(SIGCHLD, SIG_DFL);
  close(chld_pipe[0]);
  close(chld_pipe[1]);
  close(sv[0]);
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  if (getppid() != parent)
    _exit(1);
  /* A task's printf goes to stderr, never into the channel. */
  dup2(2, 1);
  fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, 0);
    close(fd);
  }
  snprintf(digits, sizeof digits, "%d", sv[1]);
  setenv("PEBBLE_WORKER_CHANNEL", digits, 1);
  /* Its own pools, if any, start their workers here. */
  unsetenv("PEBBLE_LAUNCHER");
  unsetenv(PB_HEARTBEAT_ENV);
  /* The application is on another host: no memory is shared with it. */
  pb_worker_remote = 1;
  return PEBBLE_OK;
}

#else /* _WIN32 */

int pb_worker_remote;

int pb_remote_supervise(void) {
  return pb_error(PEBBLE_ENOTSUP,
                  "a worker started through a launcher is not supported on "
                  "Windows");
}

#endif
