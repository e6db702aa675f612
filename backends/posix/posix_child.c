/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_child.c -- what a new child does between fork() and the task.
 *
 * The parent may have many threads, so until child_main the child may
 * only make async-signal-safe calls: no malloc, no stdio, no locks.  It
 * leads its own process group (so the whole group can be killed), makes
 * sure it dies with its parent, drops the parent's signal dispositions
 * and mask, closes every library descriptor but its channel, and reads
 * standard input from /dev/null.  It always ends with _exit(): atexit
 * handlers and stdio buffers belong to the parent.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "posix_internal.h"

#ifdef HAVE_STDIO_EXT_H
#include <stdio_ext.h>
#endif

/* What another of the application's threads wrote to stdout or stderr
 * after the flush before fork sits in this copy's buffers too: printed
 * here, it would appear twice.  It is the parent's to print. */
void pbp_stdio_forget_parents(void) {
#if defined(HAVE___FPURGE)
  __fpurge(stdout);
  __fpurge(stderr);
#elif defined(HAVE_FPURGE)
  fpurge(stdout);
  fpurge(stderr);
#endif
}

#if PBP_USE_PDEATHSIG
#include <sys/prctl.h>
#endif

/* Exit status when the child cannot be prepared (the parent is gone
 * already) or its program cannot be executed. */
#define CHILD_SETUP_FAILED 127

/*
 * Every disposition back to its default, unconditionally: a sigaction per
 * signal.  Asking the kernel first which ones differ (reading
 * /proc/self/status, or a sigaction query per signal) costs as much CPU
 * as the resets themselves, and the read touched a page of stack and
 * several pages of code more, each a page fault in a fresh child
 * (docs/performance.md, one-shot launch).
 */
static void reset_signals(void) {
  struct sigaction dfl;
  sigset_t none;
  int sig;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  /* Dispositions first, then the mask: a signal pending since the fork
   * gets its default action, never the parent's handler. */
  for (sig = 1; sig < PBP_NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL); /* fails harmlessly for reserved ones */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Keep the channel off descriptors 0-2: the task's printf must never
 * write into it, and stdin is about to be replaced. */
static int above_stdio(int fd) {
  int moved;
  if (fd < 0 || fd > 2)
    return fd;
#ifdef F_DUPFD_CLOEXEC
  moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
#else
  moved = fcntl(fd, F_DUPFD, 3);
  if (moved >= 0)
    fcntl(moved, F_SETFD, FD_CLOEXEC);
#endif
  if (moved < 0)
    _exit(CHILD_SETUP_FAILED);
  close(fd);
  return moved;
}

static void stdin_from_dev_null(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    close(0); /* better no stdin than the parent's */
    return;
  }
  if (fd == 0) {
    fcntl(0, F_SETFD, 0); /* keep it across exec */
    return;
  }
  dup2(fd, 0);
  close(fd);
}

/* The spawn start method: the channel survives exec and its number goes
 * into the environment; exec's errno goes back to the parent. */
static PBP_NORETURN void exec_worker(const pbp_child_setup *s, int chan_fd,
                                     int err_fd) {
  char digits[16];
  size_t n = 0, i;
  unsigned v = (unsigned)chan_fd;
  int e;
  /* (A launcher has its channel on stdin and stdout instead.) */
  if (s->chan_digits != NULL) {
    do
      digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (i = 0; i < n; i++)
      s->chan_digits[i] = digits[n - 1 - i];
    s->chan_digits[n] = '\0';
    fcntl(chan_fd, F_SETFD, 0); /* the one library descriptor exec keeps */
  }
  execve(s->exec_path, s->argv, s->envp);
  e = errno;
  while (write(err_fd, &e, sizeof e) < 0 && errno == EINTR)
    ;
  _exit(CHILD_SETUP_FAILED);
}

void pbp_child_run(const pbp_child_setup *s) {
  pebble_bk_chan chan;
  int status, err_fd;

  /* First: every way out from here is _exit(), which prints nothing, but
   * under a tool that runs the C library's exit cleanup there (valgrind's
   * default) the parent's buffered output would come out a second time. */
  pbp_stdio_forget_parents();
  setpgid(0, 0); /* the parent does the same: whoever runs first wins */
#if PBP_USE_PDEATHSIG
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* this process, at once */
#endif
  /* The guardian kills our whole group when the parent dies, with what
   * the task started in it.  It hears of us from here, before the parent
   * could die unnoticed: it reads this before it can see the parent's end
   * close (we hold a copy of that end until now). */
  if (s->guardian_fd >= 0)
    pbp_guardian_child_register(s->guardian_fd, s->guardian_entry);
  /* The parent died before the above took hold: nobody would kill us. */
  if (getppid() != s->parent)
    _exit(CHILD_SETUP_FAILED);
  reset_signals();
  pbp_thread_child_is_task();
  pbp_fd_child_close_all_but(s->chan_fd, s->res_fd);
  chan.fd = above_stdio(s->chan_fd);
  pbp_fd_child_renumber(s->chan_fd, chan.fd);
  chan.out_fd = chan.fd;
  if (s->res_fd >= 0) {
    chan.out_fd = above_stdio(s->res_fd);
    pbp_fd_child_renumber(s->res_fd, chan.out_fd);
  }
  err_fd = above_stdio(s->err_fd);
  if (s->chan_on_stdio) {
    /* A launcher forwards its stdin and stdout: they are the channel (it
     * stays close-on-exec itself). */
    dup2(chan.fd, 0);
    dup2(chan.fd, 1);
  } else
    stdin_from_dev_null();

  if (s->exec_path != NULL)
    exec_worker(s, chan.fd, err_fd);
  status = s->child_main(s->arg, &chan);
  /* The task's own buffered output would be lost by _exit().  From here
   * on this is the task's process, so stdio may be used. */
  fflush(NULL);
  _exit(status);
}
