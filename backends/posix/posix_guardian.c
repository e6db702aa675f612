/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_guardian.c -- workers' process groups die with their parent: the
 * worker and whatever its task started (a program it ran, a child it
 * forked), which a parent-death signal cannot reach: that signal ends the
 * worker alone, where the kernel has it at all.  Used on every system; a
 * task that leaves its group (setsid, setpgid) escapes it.
 *
 * On the first process start a single-threaded guardian process is forked,
 * twice over so that it is not the application's child (no surprise child
 * for waitpid(-1), nothing for us to reap).  It holds one end of a socket
 * whose other end only the library holds (close-on-exec, closed in every
 * worker).  Each worker tells the guardian its process group id from inside
 * the child, before the child could outlive an unnoticed parent; the
 * parent says "forget" before it reaps the worker (the zombie still
 * reserves the id).  When the parent dies its end closes: the guardian
 * reads end-of-file, SIGKILLs every group it remembers and exits.  Workers
 * need no extra thread.
 *
 * Telling and forgetting go through a table of group ids shared with the
 * guardian (one page, mapped shared before the guardian is forked): the
 * parent picks a free entry before each fork, the child writes its group
 * id there, the parent clears it before the reap.  No message and no
 * wake-up of the guardian per worker: it reads the table only when the
 * parent is gone.  The child's write comes before it closes its copy of
 * the library's end, so the guardian, which acts on end-of-file only,
 * always sees it.  With every entry in use, a worker falls back to a
 * message on the socket.
 *
 * The group outlives its leader while any member lives (the kernel keeps
 * the id reserved), so killing it after the worker died still reaches the
 * task's children.  The cost is one double fork at the first process
 * start of a library life, and one small message per worker start and
 * reap.
 *
 * The guardian was forked from a possibly multi-threaded process, so it
 * lives on async-signal-safe calls only: raw reads, mmap for its table.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "posix_internal.h"

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* G_STOP: the library shuts down, not the process; the shared table now
 * belongs to the next guardian, which a later start forks.  What is still
 * registered in it is sent as G_ADD first, so this guardian kills it at
 * end-of-file as it would a worker that told it by message. */
enum { G_ADD = 1, G_FORGET = 2, G_STOP = 3 };

/* One message; far below PIPE_BUF, so concurrent writers never mix. */
typedef struct guardian_msg {
  int32_t op;
  int32_t pad;
  int64_t pgid;
} guardian_msg;

/* The library's end; under the registry lock. */
#define g_fd pbp_fp.g_fd /* on the fork page (posix_internal.h) */

/* The shared table: entry i holds a registered group id, or 0.  Mapped
 * once and kept for the life of the process (a new guardian inherits what
 * is still registered); the free list is the parent's, under the registry
 * lock. */
#define G_SLOTS PBP_GUARDIAN_SLOTS
#define g_slots pbp_fp.g_slots
#define g_free pbp_fp.g_free
#define g_free_n pbp_fp.g_free_n

static int send_msg(int fd, int op, pid_t pgid) {
  guardian_msg m;
  const char *p = (const char *)&m;
  size_t left = sizeof m;
  memset(&m, 0, sizeof m);
  m.op = op;
  m.pgid = (int64_t)pgid;
  while (left > 0) {
    ssize_t n = pbp_send(fd, p, left, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    left -= (size_t)n;
  }
  return 0;
}

/* ---------------- the guardian process ---------------- */

typedef struct pgid_table {
  pid_t *ids;
  size_t n, cap;
} pgid_table;

static void table_add(pgid_table *t, pid_t id) {
  size_t i;
  for (i = 0; i < t->n; i++)
    if (t->ids[i] == id)
      return;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    pid_t *grown = mmap(NULL, cap * sizeof *grown, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (grown == MAP_FAILED)
      return; /* best effort: this group goes unguarded */
    for (i = 0; i < t->n; i++)
      grown[i] = t->ids[i];
    if (t->ids != NULL)
      munmap(t->ids, t->cap * sizeof *t->ids);
    t->ids = grown;
    t->cap = cap;
  }
  t->ids[t->n++] = id;
}

static void table_forget(pgid_table *t, pid_t id) {
  size_t i;
  for (i = 0; i < t->n; i++)
    if (t->ids[i] == id) {
      t->ids[i] = t->ids[--t->n];
      return;
    }
}

static void close_from(int lowest, int keep, long maxfd) {
  long fd;
#if defined(__linux__) && defined(SYS_close_range)
  if ((keep <= lowest ||
       syscall(SYS_close_range, lowest, keep - 1, 0) == 0) &&
      syscall(SYS_close_range, keep + 1, ~0u, 0) == 0)
    return;
#endif
  for (fd = lowest; fd < maxfd; fd++)
    if (fd != keep)
      close((int)fd);
}

/* Out of the terminal's reach (its own session): Ctrl-C kills the
 * application, not the guardian, which must outlive it to clean up. */
static void guardian_signals(void) {
  static const int ignored[] = {SIGINT, SIGQUIT, SIGHUP, SIGPIPE,
                                SIGTSTP, SIGTTIN, SIGTTOU};
  struct sigaction sa;
  sigset_t none;
  size_t i;
  int sig;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  for (sig = 1; sig < PBP_NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  for (i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
    sigaction(ignored[i], &sa, NULL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The groups registered in the shared table, killed with the others. */
static void kill_shared(volatile int32_t *slots) {
  int i;
  if (slots == NULL)
    return;
  for (i = 0; i < G_SLOTS; i++) {
    int32_t id = PBP_LOAD(&slots[i]);
    if (id > 1)
      kill(-(pid_t)id, SIGKILL);
  }
}

static PBP_NORETURN void guardian_main(int fd, long maxfd,
                                       volatile int32_t *slots) {
  pgid_table table = {NULL, 0, 0};
  unsigned char buf[64 * sizeof(guardian_msg)];
  size_t have = 0, i;
  int null;

  setsid();
  guardian_signals();
  if (fd <= 2) {
    int moved = fcntl(fd, F_DUPFD, 3);
    if (moved < 0)
      _exit(1);
    fd = moved;
  }
  null = open("/dev/null", O_RDWR);
  for (i = 0; null >= 0 && i < 3; i++)
    if (null != (int)i)
      dup2(null, (int)i);
  /* Every other descriptor: the application's too, so the guardian never
   * keeps a pipe or a socket of the application open. */
  close_from(3, fd, maxfd);

  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    size_t used = 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* the parent is gone */
    have += (size_t)n;
    while (have - used >= sizeof(guardian_msg)) {
      guardian_msg m;
      memcpy(&m, buf + used, sizeof m);
      used += sizeof m;
      if (m.op == G_ADD)
        table_add(&table, (pid_t)m.pgid);
      else if (m.op == G_FORGET)
        table_forget(&table, (pid_t)m.pgid);
      else if (m.op == G_STOP)
        slots = NULL;
    }
    for (i = used; i < have; i++)
      buf[i - used] = buf[i];
    have -= used;
  }
  for (i = 0; i < table.n; i++)
    if (table.ids[i] > 1)
      kill(-table.ids[i], SIGKILL);
  kill_shared(slots);
  _exit(0);
}

/* ---------------- the library's side ---------------- */

static long max_open_fds(void) {
  long n = sysconf(_SC_OPEN_MAX);
  return n > 0 ? n : 1024;
}

/* In the first child: fork the guardian and go, so that it is adopted
 * by init.  Only async-signal-safe calls (and the purge of stdio's
 * buffers, which takes no lock: without it, a tool that runs the C
 * library's exit cleanup at _exit, as valgrind does, printed what the
 * parent had buffered a second time); _Fork skips the fork handlers,
 * which already ran for this process. */
static PBP_NORETURN void start_guardian(int fd, long maxfd,
                                        volatile int32_t *slots) {
  pid_t pid;
  pbp_stdio_forget_parents();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  pid = _Fork();
#else
  pid = fork();
#endif
  if (pid == 0)
    guardian_main(fd, maxfd, slots);
  _exit(pid < 0 ? 1 : 0);
}

/* Without per-worker messages a guardian killed by someone shows here:
 * its end of the socket closed (it never writes, so anything readable is
 * end-of-file).  With the registry lock held. */
static int guardian_lost_locked(void) {
  struct pollfd pfd;
  int n;
  pfd.fd = g_fd;
  pfd.events = POLLIN;
  pfd.revents = 0;
  do
    n = poll(&pfd, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
    return 0;
  pbp_fd_close_locked(g_fd);
  g_fd = -1;
  return 1;
}

static void warn_lost(void) {
  pbp_log(PEBBLE_LOG_WARN,
          "the guardian process is gone; workers started before now will "
          "not be killed if this process dies");
}

/* Map the shared table once; without it every worker sends a message. */
static void slots_map_locked(void) {
  void *m;
  int i;
  if (g_slots != NULL)
    return;
  m = mmap(NULL, G_SLOTS * sizeof *g_slots, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return;
  g_slots = m;
  for (i = 0; i < G_SLOTS; i++)
    g_free[i] = (int16_t)(G_SLOTS - 1 - i);
  g_free_n = G_SLOTS;
}

int pbp_guardian_ensure(int *sys_errno) {
  sigset_t all, old;
  long maxfd;
  int sv[2], err, st = 0, lost = 0;
  volatile int32_t *slots;
  pid_t pid, r;

  pbp_fd_lock();
  if (g_fd >= 0 && !(lost = guardian_lost_locked())) {
    pbp_fd_unlock();
    return PEBBLE_OK;
  }
  if (lost)
    warn_lost(); /* and a new one starts, which inherits the table */
  maxfd = max_open_fds();
  slots_map_locked();
  if (pbp_socketpair_locked(sv) != 0) {
    *sys_errno = errno;
    pbp_fd_unlock();
    return PEBBLE_ESYSTEM;
  }
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  slots = g_slots; /* the child's fork handler forgets g_slots */
  pid = pbp_fork_locked();
  if (pid == 0)
    start_guardian(sv[0], maxfd, slots);
  err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pbp_fd_close_locked(sv[0]);
  if (pid < 0) {
    pbp_fd_close_locked(sv[1]);
    pbp_fd_unlock();
    *sys_errno = err;
    return PEBBLE_ESYSTEM;
  }
  g_fd = sv[1];
  pbp_fd_unlock();
  /* The go-between exits at once.  Its status says whether the guardian
   * was forked; lost (ECHILD) if the application reaped it, and then a
   * guardian that is missing shows at the first "forget". */
  do
    r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  if (r == pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
    pbp_fd_lock();
    pbp_fd_close_locked(g_fd);
    g_fd = -1;
    pbp_fd_unlock();
    *sys_errno = EAGAIN;
    return PEBBLE_ESYSTEM;
  }
  return PEBBLE_OK;
}

int pbp_guardian_fd_locked(void) { return g_fd; }

int pbp_guardian_slot_take_locked(volatile int32_t **entry) {
  int slot;
  *entry = NULL;
  if (g_slots == NULL || g_free_n == 0)
    return -1;
  slot = g_free[--g_free_n];
  *entry = &g_slots[slot];
  return slot;
}

void pbp_guardian_slot_put_locked(int slot) {
  PBP_STORE(&g_slots[slot], 0);
  g_free[g_free_n++] = (int16_t)slot;
}

void pbp_guardian_child_register(int guardian_fd, volatile int32_t *entry) {
  if (entry != NULL)
    PBP_STORE(entry, (int32_t)getpid());
  else
    send_msg(guardian_fd, G_ADD, getpid());
}

void pbp_guardian_forget(pid_t pgid, int slot) {
  int lost = 0;
  pbp_fd_lock();
  if (slot >= 0) {
    /* The child is dead or a zombie: it writes no more. */
    pbp_guardian_slot_put_locked(slot);
  } else if (g_fd >= 0 && send_msg(g_fd, G_FORGET, pgid) != 0) {
    /* Killed by someone: start a new one with the next worker. */
    pbp_fd_close_locked(g_fd);
    g_fd = -1;
    lost = 1;
  }
  pbp_fd_unlock();
  if (lost)
    warn_lost();
}

void pbp_guardian_stop(void) {
  pbp_fd_lock();
  if (g_fd >= 0) {
    int i;
    for (i = 0; g_slots != NULL && i < G_SLOTS; i++) {
      int32_t id = PBP_LOAD(&g_slots[i]);
      if (id > 1)
        send_msg(g_fd, G_ADD, (pid_t)id);
    }
    send_msg(g_fd, G_STOP, 0); /* lost already if this fails: no matter */
  }
  pbp_fd_close_locked(g_fd); /* end-of-file: the guardian exits */
  g_fd = -1;
  pbp_fd_unlock();
}

/* In every child of a fork: the guardian belongs to the parent.  A child
 * the application forked must not keep the parent's end open, or the
 * guardian would miss the parent's death; a worker still needs it until
 * it has registered, and closes it with the other library descriptors. */
void pbp_guardian_after_fork_child(void) {
  if (g_fd >= 0 && !pbp_fd_forked_by_library()) {
    pbp_fd_forget_locked(g_fd);
    close(g_fd);
  }
  g_fd = -1;
  /* The table is the parent's: a worker keeps the mapping until it has
   * written its entry, another child drops it.  Either way Pebble used
   * in this process maps a table of its own. */
  if (g_slots != NULL && !pbp_fd_forked_by_library())
    munmap((void *)g_slots, G_SLOTS * sizeof *g_slots);
  g_slots = NULL;
  g_free_n = 0;
}
