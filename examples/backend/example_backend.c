/* SPDX-License-Identifier: Apache-2.0 */
/*
 * example_backend.c -- a Pebble backend written out of tree: threads only.
 *
 * Built against the installed header alone (pkg-config --cflags pebble;
 * see Makefile), loaded by name: PEBBLE_BACKEND=example finds
 * pebble_example.so in PEBBLE_BACKEND_PATH or in the install directory
 * (pkg-config --variable=moduledir pebble).
 *
 * It runs thread tasks, thread pools, deadlines, cancellation and
 * completion queues on pthreads.  It does not claim PEBBLE_CAP_PROCESSES,
 * so the library refuses process tasks under it with PEBBLE_ENOTSUP and
 * never calls a process operation: those stay NULL.  With
 * PEBBLE_EXAMPLE_BACKEND_LOG set, it says on stderr when it starts and
 * stops, and how many threads it started.
 *
 * A module calls nothing of libpebble's (a statically linked application
 * exports none of it): what it needs from the library comes through the
 * pebble_host table given to init.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pthread_condattr_setclock, pipe2 where declared */
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <pebble/backend.h>

/* ---- life cycle and fork generation ---- */

static const pebble_host *host;
static int logging;
static unsigned long threads_started; /* under count_lock */
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

/* Bumped in the child of every fork: the core then refuses objects the
 * parent made (their threads are not in the child). */
static volatile uint64_t generation;
static void bump_generation(void) { generation++; }
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) {
  pthread_atfork(NULL, NULL, bump_generation);
}

/* Task threads get the signal mask of the application thread that started
 * the library, even when a library thread (all signals blocked) creates
 * them. */
static sigset_t app_mask;

static int example_init(const pebble_host *h) {
  host = h;
  logging = getenv("PEBBLE_EXAMPLE_BACKEND_LOG") != NULL;
  pthread_sigmask(SIG_SETMASK, NULL, &app_mask);
  if (pthread_once(&atfork_once, register_atfork) != 0)
    return PEBBLE_ESYSTEM;
  if (logging)
    fprintf(stderr, "example backend: init\n");
  return PEBBLE_OK;
}

static void example_shutdown(void) {
  if (logging) {
    pthread_mutex_lock(&count_lock);
    fprintf(stderr, "example backend: shutdown after %lu threads\n",
            threads_started);
    pthread_mutex_unlock(&count_lock);
  }
  host = NULL;
}

static uint64_t example_fork_generation(void) { return generation; }

/* ---- clock ---- */

static uint64_t example_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec to_timespec(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  return ts;
}

static int from_errno(int err) {
  return err == ENOMEM || err == EAGAIN ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
}

/* ---- threads ---- */

struct pebble_bk_thread {
  pthread_t tid;
  void (*fn)(void *);
  void (*unwound)(void *);
  void *arg;
};

/* Runs only when the thread ends without fn returning (pthread_exit). */
static void run_unwound(void *p) {
  pebble_bk_thread *t = p;
  if (t->unwound != NULL)
    t->unwound(t->arg);
}

static void *thread_start(void *p) {
  pebble_bk_thread *t = p;
  pthread_cleanup_push(run_unwound, t);
  t->fn(t->arg);
  pthread_cleanup_pop(0);
  return NULL;
}

static int example_thread_create(pebble_bk_thread **thread, void (*fn)(void *),
                                 void (*unwound)(void *), void *arg,
                                 unsigned flags) {
  pebble_bk_thread *t;
  sigset_t want, old;
  int rc;
  if (thread == NULL || fn == NULL || (flags & ~PEBBLE_BK_THREAD_INTERNAL))
    return PEBBLE_EINVAL;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return PEBBLE_ENOMEM;
  t->fn = fn;
  t->unwound = unwound;
  t->arg = arg;
  /* A new thread inherits the mask in force at pthread_create. */
  if (flags & PEBBLE_BK_THREAD_INTERNAL)
    sigfillset(&want);
  else
    want = app_mask;
  pthread_sigmask(SIG_SETMASK, &want, &old);
  rc = pthread_create(&t->tid, NULL, thread_start, t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    free(t);
    return from_errno(rc);
  }
  pthread_mutex_lock(&count_lock);
  threads_started++;
  pthread_mutex_unlock(&count_lock);
  *thread = t;
  return PEBBLE_OK;
}

static int example_thread_join(pebble_bk_thread *t) {
  if (t == NULL)
    return PEBBLE_EINVAL;
  if (pthread_equal(t->tid, pthread_self()))
    return PEBBLE_EDEADLK;
  if (pthread_join(t->tid, NULL) != 0)
    return PEBBLE_ESYSTEM;
  free(t);
  return PEBBLE_OK;
}

/* A number per thread, handed out at its first call. */
static pthread_key_t id_key;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static uint64_t next_id = 1; /* under count_lock */
static void make_id_key(void) { pthread_key_create(&id_key, free); }

static uint64_t example_thread_self_id(void) {
  uint64_t *id;
  pthread_once(&id_once, make_id_key);
  id = pthread_getspecific(id_key);
  if (id == NULL) {
    id = malloc(sizeof *id);
    if (id == NULL)
      return 0;
    pthread_mutex_lock(&count_lock);
    *id = next_id++;
    pthread_mutex_unlock(&count_lock);
    pthread_setspecific(id_key, id);
  }
  return *id;
}

/* ---- locks ---- */

struct pebble_bk_mutex {
  pthread_mutex_t m;
};
struct pebble_bk_cond {
  pthread_cond_t c;
};

static int example_mutex_create(pebble_bk_mutex **mutex) {
  pebble_bk_mutex *m = malloc(sizeof *m);
  int rc;
  if (m == NULL)
    return PEBBLE_ENOMEM;
  rc = pthread_mutex_init(&m->m, NULL);
  if (rc != 0) {
    free(m);
    return from_errno(rc);
  }
  *mutex = m;
  return PEBBLE_OK;
}

static void example_mutex_destroy(pebble_bk_mutex *m) {
  if (m != NULL) {
    pthread_mutex_destroy(&m->m);
    free(m);
  }
}

static void example_mutex_lock(pebble_bk_mutex *m) { pthread_mutex_lock(&m->m); }
static void example_mutex_unlock(pebble_bk_mutex *m) {
  pthread_mutex_unlock(&m->m);
}

/* Condition variables on CLOCK_MONOTONIC: deadlines never move with the
 * wall clock. */
static int init_cond(pthread_cond_t *c) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc != 0)
    return rc;
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(c, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

static int example_cond_create(pebble_bk_cond **cond) {
  pebble_bk_cond *c = malloc(sizeof *c);
  int rc;
  if (c == NULL)
    return PEBBLE_ENOMEM;
  rc = init_cond(&c->c);
  if (rc != 0) {
    free(c);
    return from_errno(rc);
  }
  *cond = c;
  return PEBBLE_OK;
}

static void example_cond_destroy(pebble_bk_cond *c) {
  if (c != NULL) {
    pthread_cond_destroy(&c->c);
    free(c);
  }
}

static void example_cond_signal(pebble_bk_cond *c) { pthread_cond_signal(&c->c); }
static void example_cond_broadcast(pebble_bk_cond *c) {
  pthread_cond_broadcast(&c->c);
}

static int example_cond_wait(pebble_bk_cond *c, pebble_bk_mutex *m,
                             uint64_t deadline_ns) {
  struct timespec ts;
  if (deadline_ns == PEBBLE_BK_FOREVER) {
    pthread_cond_wait(&c->c, &m->m);
    return PEBBLE_OK;
  }
  ts = to_timespec(deadline_ns);
  return pthread_cond_timedwait(&c->c, &m->m, &ts) == ETIMEDOUT
             ? PEBBLE_ENOTREADY
             : PEBBLE_OK;
}

/* ---- waitset ----
 * With no processes there is nothing to watch: a wait ends at a wake or
 * at the deadline, and reports no events. */

struct pebble_bk_waitset {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int woken;
};

static int example_waitset_create(pebble_bk_waitset **ws) {
  pebble_bk_waitset *w = calloc(1, sizeof *w);
  int rc;
  if (w == NULL)
    return PEBBLE_ENOMEM;
  rc = pthread_mutex_init(&w->lock, NULL);
  if (rc == 0 && (rc = init_cond(&w->cond)) != 0)
    pthread_mutex_destroy(&w->lock);
  if (rc != 0) {
    free(w);
    return from_errno(rc);
  }
  *ws = w;
  return PEBBLE_OK;
}

static void example_waitset_destroy(pebble_bk_waitset *w) {
  if (w != NULL) {
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
  }
}

static int example_waitset_watch(pebble_bk_waitset *w, pebble_bk_proc *proc,
                                 unsigned events, void *tag) {
  (void)w, (void)proc, (void)events, (void)tag;
  return PEBBLE_ENOTSUP; /* never called: no PEBBLE_CAP_PROCESSES */
}

static void example_waitset_wake(pebble_bk_waitset *w) {
  pthread_mutex_lock(&w->lock);
  w->woken = 1;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

static int example_waitset_wait(pebble_bk_waitset *w, uint64_t deadline_ns,
                                pebble_wait_event *events, size_t cap,
                                size_t *count) {
  struct timespec ts = to_timespec(deadline_ns);
  (void)events, (void)cap;
  pthread_mutex_lock(&w->lock);
  while (!w->woken) {
    if (deadline_ns == PEBBLE_BK_FOREVER)
      pthread_cond_wait(&w->cond, &w->lock);
    else if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
      break;
  }
  w->woken = 0;
  pthread_mutex_unlock(&w->lock);
  *count = 0;
  return PEBBLE_OK;
}

/* ---- notifier: a pipe that holds one byte while set ----
 * What pebble_cqueue_handle() gives an application's event loop. */

struct pebble_bk_notifier {
  pthread_mutex_t lock;
  int fds[2];
  int set;
};

static int cloexec_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFD);
  int st = fcntl(fd, F_GETFL);
  return fl < 0 || st < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0 ||
         fcntl(fd, F_SETFL, st | O_NONBLOCK) != 0;
}

static int example_notifier_create(pebble_bk_notifier **out) {
  pebble_bk_notifier *n = calloc(1, sizeof *n);
  if (n == NULL)
    return PEBBLE_ENOMEM;
  if (pipe(n->fds) != 0) {
    int err = errno;
    free(n);
    return err == EMFILE || err == ENFILE ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
  }
  if (cloexec_nonblock(n->fds[0]) || cloexec_nonblock(n->fds[1])) {
    close(n->fds[0]);
    close(n->fds[1]);
    free(n);
    return PEBBLE_ESYSTEM;
  }
  pthread_mutex_init(&n->lock, NULL);
  *out = n;
  return PEBBLE_OK;
}

static void example_notifier_destroy(pebble_bk_notifier *n) {
  if (n != NULL) {
    close(n->fds[0]);
    close(n->fds[1]);
    pthread_mutex_destroy(&n->lock);
    free(n);
  }
}

static intptr_t example_notifier_handle(pebble_bk_notifier *n) {
  return n->fds[0];
}

static void example_notifier_set(pebble_bk_notifier *n) {
  pthread_mutex_lock(&n->lock);
  if (!n->set && write(n->fds[1], "x", 1) == 1)
    n->set = 1;
  pthread_mutex_unlock(&n->lock);
}

static void example_notifier_clear(pebble_bk_notifier *n) {
  char byte;
  pthread_mutex_lock(&n->lock);
  if (n->set && read(n->fds[0], &byte, 1) == 1)
    n->set = 0;
  pthread_mutex_unlock(&n->lock);
}

/* ---- the table ----
 * Designated initialisers: each operation lands in its own field whatever
 * the header's order, and the ones this backend lacks stay NULL. */

static const pebble_backend table = {
    /* The ABI this module was built for, and the size of the struct it
     * knows: the loader compares both before calling anything. */
    .abi_major = PEBBLE_BACKEND_ABI_MAJOR,
    .abi_minor = PEBBLE_BACKEND_ABI_MINOR,
    .struct_size = sizeof(pebble_backend),
    .name = "example",
    .description = "out-of-tree example: pthreads, no processes",
    .caps = PEBBLE_CAP_THREADS,

    .init = example_init,
    .shutdown = example_shutdown,
    .fork_generation = example_fork_generation,
    .now_ns = example_now_ns,

    .thread_create = example_thread_create,
    .thread_join = example_thread_join,
    .thread_self_id = example_thread_self_id,

    .mutex_create = example_mutex_create,
    .mutex_destroy = example_mutex_destroy,
    .mutex_lock = example_mutex_lock,
    .mutex_unlock = example_mutex_unlock,
    .cond_create = example_cond_create,
    .cond_destroy = example_cond_destroy,
    .cond_signal = example_cond_signal,
    .cond_broadcast = example_cond_broadcast,
    .cond_wait = example_cond_wait,

    .waitset_create = example_waitset_create,
    .waitset_destroy = example_waitset_destroy,
    .waitset_watch = example_waitset_watch,
    .waitset_wake = example_waitset_wake,
    .waitset_wait = example_waitset_wait,

    .notifier_create = example_notifier_create,
    .notifier_destroy = example_notifier_destroy,
    .notifier_handle = example_notifier_handle,
    .notifier_set = example_notifier_set,
    .notifier_clear = example_notifier_clear,
};

/* The one exported symbol: pebble_backend_example_get. */
PEBBLE_BACKEND_ENTRY(example) { return &table; }
