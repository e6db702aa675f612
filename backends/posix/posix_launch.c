/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_launch.c -- spawned workers started through a launcher command
 * (a pool's `launcher` option, or PEBBLE_LAUNCHER: "ssh HOST",
 * "srun -N1 -n1", "mpirun -n 1 ..."), which
 * runs the worker program elsewhere and forwards its standard input and
 * output (docs/cluster.md).
 *
 * The launcher's stdin and stdout are both the child's end of the usual
 * socket channel, so the core writes tasks and reads outcomes as for any
 * worker; no port is opened.  The launcher runs
 *   env PEBBLE_WORKER_CHANNEL=stdio PEBBLE_WORKER_BACKEND=posix PROGRAM
 * where it puts the program, and the program's pebble_worker_main() makes
 * itself the remote supervisor (api/remote.c).  What comes back is framed
 * (api/remote_frame.h): the worker's bytes, then a report of how it ended
 * and on which host, which proc_reap and proc_remote then give instead of
 * the launcher's own exit.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>

#include "posix_internal.h"
#include "remote_frame.h"

#ifdef MSG_DONTWAIT
#define PBP_DONTWAIT MSG_DONTWAIT
#else
#define PBP_DONTWAIT 0
#endif

struct pbp_launch {
  unsigned char head[PB_FRAME_HEADER];
  unsigned head_have;
  int in_frame;    /* reading a frame's body: `type`, `left` */
  unsigned type;
  size_t left;
  char report[PB_FRAME_REPORT_MAX + 1];
  size_t report_have;
  int reported;    /* the report arrived: exit, pid and host are its */
  int placed;      /* the first heartbeat said where: pid and host */
  int corrupt;     /* the launcher wrote something that is not a frame */
  /* Silence: the launcher is killed when nothing came for `silence_ns`
   * (PB_BEATS_LOST heartbeats), or for `start_ns` before the first word
   * (0: no bound).  Manager thread only. */
  uint64_t heard_ns, silence_ns, start_ns;
  int heard, lost;
  pebble_bk_exit exit;
  long pid;
  char host[256];
  /* Down: the core's bytes go in DATA frames and, when nothing went down
   * for a heartbeat interval, a BEAT frame goes between two of them, so
   * that the remote supervisor can tell a lost application (or a killed
   * launcher that left the remote side running, as a killed srun does)
   * from a quiet one.  Any thread that writes, and the manager's waitset:
   * under wlock. */
  pthread_mutex_t wlock;
  unsigned char down_head[PB_FRAME_HEADER];
  unsigned down_head_sent; /* PB_FRAME_HEADER: no header is pending */
  size_t down_left;        /* bytes of the current DATA frame still due */
  uint64_t down_ns;        /* when something last went down */
  uint64_t beat_ns;        /* the heartbeat interval */
};

/* A whole number of seconds from the environment, or `dflt`. */
static long env_seconds(const char *name, long dflt, long max) {
  const char *v = getenv(name);
  char *end;
  long s;
  if (v == NULL || *v == '\0')
    return dflt;
  s = strtol(v, &end, 10);
  if (*end != '\0' || s < 0 || s > max) {
    pbp_log(PEBBLE_LOG_WARN, "%s='%s' is not a number of seconds from 0 to "
                             "%ld; %ld is used",
            name, v, max, dflt);
    return dflt;
  }
  return s;
}

long pbp_launch_heartbeat_s(void) {
  long s = env_seconds(PBP_HEARTBEAT_ENV, PB_HEARTBEAT_DEFAULT, 3600);
  return s > 0 ? s : PB_HEARTBEAT_DEFAULT;
}

long pbp_launch_start_timeout_s(void) {
  return env_seconds(PBP_START_TIMEOUT_ENV, 120, 86400);
}

const char *pbp_launcher(void) {
  const char *l = getenv(PBP_LAUNCHER_ENV);
  return l != NULL && *l != '\0' ? l : NULL;
}

/* Characters a remote shell takes as they are (ssh joins its arguments
 * into one command line for the remote user's shell). */
static int shell_safe(const char *s) {
  for (; *s != '\0'; s++)
    if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789_./-+,:=@%",
               *s) == NULL)
      return 0;
  return 1;
}

int pbp_launch_prepare(pbp_child_setup *setup, const char *launcher,
                       const char *program, long heartbeat,
                       char ***argv_out) {
  static const char before[] = "exec ", after[] = " \"$@\"";
  char **argv;
  char *script, *beat;
  size_t n = strlen(launcher);
  if (!shell_safe(program)) {
    pbp_log(PEBBLE_LOG_ERROR,
            "cannot start a worker through the launcher: the program's path "
            "'%s' has characters a remote shell would change (use letters, "
            "digits and _./-+,:=@%% only)",
            program);
    return PEBBLE_EINVAL;
  }
  argv = calloc(10, sizeof *argv);
  script = malloc(sizeof before + n + sizeof after);
  beat = malloc(sizeof PB_HEARTBEAT_ENV + 24);
  if (argv == NULL || script == NULL || beat == NULL) {
    free(argv);
    free(script);
    free(beat);
    return PEBBLE_ENOMEM;
  }
  snprintf(beat, sizeof PB_HEARTBEAT_ENV + 24, "%s=%ld", PB_HEARTBEAT_ENV,
           heartbeat);
  /* The launcher is a command line: sh parses it, quotes and all, and
   * the worker's words follow as they are. */
  memcpy(script, before, sizeof before - 1);
  memcpy(script + sizeof before - 1, launcher, n);
  memcpy(script + sizeof before - 1 + n, after, sizeof after);
  argv[0] = (char *)"/bin/sh";
  argv[1] = (char *)"-c";
  argv[2] = script;
  argv[3] = (char *)"pebble-launcher";
  argv[4] = (char *)"env";
  argv[5] = (char *)(PBP_CHANNEL_ENV "=" PB_LAUNCHED_CHANNEL);
  argv[6] = (char *)(PBP_BACKEND_ENV "=posix");
  argv[7] = beat;
  argv[8] = (char *)program;
  argv[9] = NULL;
  setup->exec_path = "/bin/sh";
  setup->argv = argv;
  setup->chan_on_stdio = 1;
  *argv_out = argv;
  return PEBBLE_OK;
}

void pbp_launch_free_argv(char **argv) {
  if (argv != NULL) {
    free(argv[2]);
    free(argv[7]);
  }
  free(argv);
}

int pbp_launch_attach(pebble_bk_proc *p, long heartbeat, long start) {
  p->launch = calloc(1, sizeof *p->launch);
  if (p->launch == NULL)
    return PEBBLE_ENOMEM;
  if (pthread_mutex_init(&p->launch->wlock, NULL) != 0) {
    free(p->launch);
    p->launch = NULL;
    return PEBBLE_ENOMEM;
  }
  p->launch->down_head_sent = PB_FRAME_HEADER;
  p->launch->down_ns = pbp_now_ns();
  p->launch->beat_ns = (uint64_t)heartbeat * 1000000000u;
  p->launch->heard_ns = pbp_now_ns();
  p->launch->silence_ns = (uint64_t)heartbeat * PB_BEATS_LOST * 1000000000u;
  p->launch->start_ns = (uint64_t)start * 1000000000u;
  return PEBBLE_OK;
}

void pbp_launch_heard(pebble_bk_proc *p, uint64_t now) {
  p->launch->heard_ns = now;
  p->launch->heard = 1;
}

uint64_t pbp_launch_silence_deadline(const pebble_bk_proc *p) {
  const struct pbp_launch *L = p->launch;
  uint64_t bound = L->heard ? L->silence_ns : L->start_ns;
  if (L->lost || L->reported || bound == 0)
    return PEBBLE_BK_FOREVER;
  return L->heard_ns + bound;
}

void pbp_launch_check_silence(pebble_bk_proc *p, uint64_t now) {
  struct pbp_launch *L = p->launch;
  uint64_t at = pbp_launch_silence_deadline(p);
  if (at == PEBBLE_BK_FOREVER || now < at)
    return;
  L->lost = 1;
  pbp_log(PEBBLE_LOG_ERROR,
          L->heard ? "no word from the remote worker of launcher process %ld "
                     "for %llu s (its host or the network is lost): the "
                     "launcher is killed"
                   : "the remote worker of launcher process %ld did not "
                     "start within %llu s: the launcher is killed",
          (long)p->pid,
          (unsigned long long)((L->heard ? L->silence_ns : L->start_ns) /
                               1000000000u));
  pbp_proc_kill(p, 1);
}

int pbp_launch_lost(const pebble_bk_proc *p) {
  return p->launch != NULL && p->launch->lost;
}

void pbp_launch_free(pebble_bk_proc *p) {
  if (p->launch != NULL)
    pthread_mutex_destroy(&p->launch->wlock);
  free(p->launch);
  p->launch = NULL;
}

/* Sends what is left of the pending frame header: 1 when it is all out,
 * 0 when the channel is full, -1 on an error (errno). */
static int send_head_locked(pebble_bk_proc *p) {
  struct pbp_launch *L = p->launch;
  while (L->down_head_sent < PB_FRAME_HEADER) {
    ssize_t n = pbp_send(p->chan_fd, L->down_head + L->down_head_sent,
                         PB_FRAME_HEADER - L->down_head_sent, PBP_DONTWAIT);
    if (n > 0) {
      L->down_head_sent += (unsigned)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    return -1;
  }
  return 1;
}

static int write_status(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK)
    return PEBBLE_ENOTREADY;
  if (err == EPIPE || err == ECONNRESET)
    return PEBBLE_EDIED;
  return PEBBLE_ESYSTEM;
}

/* The core's bytes, in DATA frames: a frame is begun for at most
 * PB_DOWN_CHUNK of them, and its remaining bytes are the next ones the
 * core writes (it always goes on with the rest of what it could not
 * write), so a frame never waits for bytes that do not come. */
#define PB_DOWN_CHUNK 65536u
int pbp_launch_write(pebble_bk_proc *p, const void *buf, size_t len,
                     size_t *done) {
  struct pbp_launch *L = p->launch;
  int rc = PEBBLE_OK, head;
  pthread_mutex_lock(&L->wlock);
  for (;;) {
    if (L->down_left == 0 && L->down_head_sent == PB_FRAME_HEADER) {
      L->down_left = len < PB_DOWN_CHUNK ? len : PB_DOWN_CHUNK;
      pb_frame_header(L->down_head, PB_FRAME_DATA, L->down_left);
      L->down_head_sent = 0;
    }
    head = send_head_locked(p);
    if (head <= 0) {
      rc = head == 0 ? PEBBLE_ENOTREADY : write_status(errno);
      break;
    }
    if (L->down_left == 0)
      continue; /* that was a heartbeat's header: now the core's frame */
    for (;;) {
      ssize_t n = pbp_send(p->chan_fd, buf,
                           len < L->down_left ? len : L->down_left,
                           PBP_DONTWAIT);
      if (n >= 0) {
        *done = (size_t)n;
        L->down_left -= (size_t)n;
        L->down_ns = pbp_now_ns();
        break;
      }
      if (errno != EINTR) {
        rc = write_status(errno);
        break;
      }
    }
    break;
  }
  pthread_mutex_unlock(&L->wlock);
  return rc;
}

uint64_t pbp_launch_beat_deadline(pebble_bk_proc *p) {
  struct pbp_launch *L = p->launch;
  uint64_t at;
  if (L->lost || L->reported)
    return PEBBLE_BK_FOREVER;
  pthread_mutex_lock(&L->wlock);
  at = L->down_ns + L->beat_ns;
  pthread_mutex_unlock(&L->wlock);
  return at;
}

void pbp_launch_beat(pebble_bk_proc *p, uint64_t now) {
  struct pbp_launch *L = p->launch;
  if (L->lost || L->reported)
    return;
  pthread_mutex_lock(&L->wlock);
  if (now >= L->down_ns + L->beat_ns) {
    /* Between two frames only; a frame under way is itself a sign of
     * life once the channel drains. */
    if (L->down_left == 0 && L->down_head_sent == PB_FRAME_HEADER) {
      pb_frame_header(L->down_head, PB_FRAME_BEAT, 0);
      L->down_head_sent = 0;
    }
    (void)send_head_locked(p); /* a full channel: the rest goes later */
    L->down_ns = now;
  }
  pthread_mutex_unlock(&L->wlock);
}

static void take_report(struct pbp_launch *L) {
  int exited = 0, code = 0, sig = 0, core = 0, used = 0;
  long pid = 0;
  L->report[L->report_have] = '\0';
  if (sscanf(L->report, "%ld %d %d %d %d %n", &pid, &exited, &code, &sig,
             &core, &used) < 5 ||
      used == 0) {
    pbp_log(PEBBLE_LOG_ERROR, "a remote worker's report is not understood: "
                              "'%.80s'",
            L->report);
    return;
  }
  memset(&L->exit, 0, sizeof L->exit);
  L->exit.status_known = 1;
  L->exit.exited = exited != 0;
  L->exit.exit_code = code;
  L->exit.signal = sig;
  L->exit.core_dumped = core != 0;
  L->pid = pid;
  snprintf(L->host, sizeof L->host, "%s", L->report + used);
  L->reported = 1;
}

/* The first heartbeat's "PID HOST": where the worker runs, for a message
 * if the link is lost before the report. */
static void take_place(struct pbp_launch *L) {
  long pid = 0;
  int used = 0;
  L->report[L->report_have] = '\0';
  if (sscanf(L->report, "%ld %n", &pid, &used) < 1 || used == 0 ||
      L->report[used] == '\0')
    return;
  L->pid = pid;
  snprintf(L->host, sizeof L->host, "%s", L->report + used);
  L->placed = 1;
}

/* Take the frames out of n raw bytes in buf, leaving the worker's bytes at
 * its front; returns how many those are. */
static size_t unframe(pebble_bk_proc *p, unsigned char *buf, size_t n) {
  struct pbp_launch *L = p->launch;
  size_t in = 0, out = 0;
  while (in < n && !L->corrupt) {
    size_t take;
    if (!L->in_frame) {
      L->head[L->head_have++] = buf[in++];
      if (L->head_have < PB_FRAME_HEADER)
        continue;
      L->head_have = 0;
      L->type = L->head[0];
      L->left = pb_frame_length(L->head);
      if (L->type != PB_FRAME_DATA && L->type != PB_FRAME_EXIT &&
          L->type != PB_FRAME_BEAT) {
        /* Not a supervisor's output: a login script that prints, or a
         * program that is not a Pebble worker.  Its end is all we can
         * report; the launcher goes, so that its exit follows. */
        L->corrupt = 1;
        pbp_log(PEBBLE_LOG_ERROR,
                "the launcher of worker process %ld wrote something that is "
                "not a remote Pebble worker's output (it began with %02x %02x "
                "%02x %02x): a login script that prints, or a program that "
                "does not call pebble_worker_main(); the launcher is killed",
                (long)p->pid, L->head[0], L->head[1], L->head[2], L->head[3]);
        break;
      }
      L->in_frame = 1;
      L->report_have = 0;
    }
    take = L->left < n - in ? L->left : n - in;
    if (L->type == PB_FRAME_DATA) {
      memmove(buf + out, buf + in, take);
      out += take;
    } else if (L->type == PB_FRAME_EXIT ||
               (L->type == PB_FRAME_BEAT && !L->placed && !L->reported)) {
      size_t room = PB_FRAME_REPORT_MAX - L->report_have;
      size_t keep = take < room ? take : room;
      memcpy(L->report + L->report_have, buf + in, keep);
      L->report_have += keep;
    }
    in += take;
    L->left -= take;
    if (L->left == 0) {
      L->in_frame = 0;
      if (L->type == PB_FRAME_EXIT)
        take_report(L);
      else if (L->type == PB_FRAME_BEAT && L->report_have > 0 &&
               !L->placed && !L->reported)
        take_place(L);
    }
  }
  return out;
}

int pbp_launch_read(pebble_bk_proc *p, void *buf, size_t len, size_t *done) {
  for (;;) {
    ssize_t n;
    size_t out;
    if (p->launch->corrupt) {
      pbp_proc_kill(p, 1);
      return PEBBLE_OK; /* end-of-file */
    }
    n = pbp_proc_recv(p, buf, len, PBP_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return PEBBLE_ENOTREADY;
      if (errno == ECONNRESET)
        return PEBBLE_OK;
      return PEBBLE_ESYSTEM;
    }
    if (n == 0)
      return PEBBLE_OK; /* end-of-file */
    pbp_launch_heard(p, pbp_now_ns());
    out = unframe(p, buf, (size_t)n);
    if (out > 0) {
      *done = out;
      return PEBBLE_OK;
    }
    /* Only frame headers or the report: read on. */
  }
}

void pbp_launch_drain(pebble_bk_proc *p) {
  unsigned char buf[4096];
  while (p->launch != NULL && !p->launch->reported && !p->launch->corrupt) {
    ssize_t n = pbp_proc_recv(p, buf, sizeof buf, PBP_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    unframe(p, buf, (size_t)n);
  }
}

void pbp_launch_exit(const pebble_bk_proc *p, pebble_bk_exit *exit) {
  if (p->launch != NULL && p->launch->reported)
    *exit = p->launch->exit;
}

int pbp_proc_remote(pebble_bk_proc *p, char *host, size_t host_size,
                    long *pid) {
  if (p == NULL)
    return PEBBLE_EINVAL;
  if (p->launch == NULL)
    return PEBBLE_ENOTSUP;
  if (!p->launch->reported && !p->launch->placed) {
    if (host != NULL && host_size > 0)
      host[0] = '\0';
    if (pid != NULL)
      *pid = 0;
  } else {
    if (host != NULL && host_size > 0)
      snprintf(host, host_size, "%s", p->launch->host);
    if (pid != NULL)
      *pid = p->launch->pid;
  }
  if (!p->launch->reported)
    return p->launch->lost ? PEBBLE_ETIMEDOUT : PEBBLE_ENOTREADY;
  return PEBBLE_OK;
}
