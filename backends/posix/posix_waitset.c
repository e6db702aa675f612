/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_waitset.c -- one thread waits for channels, exits and wakes.
 *
 * poll() over a wake descriptor and, for every watched process, its
 * channel and its exit descriptor.  ppoll() where it exists, for deadlines
 * finer than a millisecond; plain poll() otherwise, with the timeout
 * rounded up.  Either way the wait is repeated until the deadline has
 * really passed, so it never returns early.
 *
 * The watch list may change from other threads while the waiter sleeps:
 * every change bumps an epoch and wakes the waiter, which then drops what
 * it saw (the descriptors may be closed by now) and reports nothing; the
 * caller simply waits again.
 *
 * Only adding a process allocates: it makes room for it in the list and
 * in the waiter's arrays at once, so a wait never needs memory and a
 * process whose watch was refused is known to the caller.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "posix_internal.h"

#if defined(HAVE_PPOLL) || defined(__linux__) || defined(__FreeBSD__) ||     \
    defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
#define PBP_HAVE_PPOLL 1
#endif

typedef struct watch {
  pebble_bk_proc *proc;
  unsigned events;
  void *tag;
} watch;

/* Which watch a pollfd belongs to, and whether it is the exit fd. */
typedef struct poll_slot {
  size_t watch;
  int is_exit;
} poll_slot;

struct pebble_bk_waitset {
  pthread_mutex_t lock; /* guards everything below but the scratch */
  pbp_wakefd wake;
  watch *watches;
  size_t n_watches, cap_watches;
  unsigned long epoch;  /* bumped by every change of the watch list */
  int waiting;
  pthread_t waiter;
  size_t rotate;        /* where reporting starts: fairness under cap */
  /* Scratch of the waiting thread, sized under the lock by watch. */
  struct pollfd *pfds;
  poll_slot *slots;
  unsigned *ready;
  size_t cap_scratch;   /* watches the scratch can hold */
  /* The pollfds a waiter is polling, and an array replaced meanwhile,
   * freed by the waiter once its poll is over. */
  struct pollfd *polling, *retired;
};

static int reserve_locked(pebble_bk_waitset *ws, size_t need);

int pbp_waitset_create(pebble_bk_waitset **out) {
  pebble_bk_waitset *ws;
  if (out == NULL)
    return PEBBLE_EINVAL;
  ws = calloc(1, sizeof *ws);
  if (ws == NULL)
    return PEBBLE_ENOMEM;
  if (pthread_mutex_init(&ws->lock, NULL) != 0) {
    free(ws);
    return PEBBLE_ESYSTEM;
  }
  if (reserve_locked(ws, 0) != 0 || pbp_wakefd_open(&ws->wake) != 0) {
    int err = ws->pfds != NULL ? errno : ENOMEM;
    pthread_mutex_destroy(&ws->lock);
    free(ws->pfds);
    free(ws->slots);
    free(ws->ready);
    free(ws);
    return err == ENOMEM ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
  }
  *out = ws;
  return PEBBLE_OK;
}

void pbp_waitset_destroy(pebble_bk_waitset *ws) {
  size_t i;
  if (ws == NULL)
    return;
  pthread_mutex_lock(&ws->lock);
  for (i = 0; i < ws->n_watches; i++)
    ws->watches[i].proc->ws = NULL;
  pthread_mutex_unlock(&ws->lock);
  pbp_wakefd_close(&ws->wake);
  pthread_mutex_destroy(&ws->lock);
  free(ws->watches);
  free(ws->pfds);
  free(ws->slots);
  free(ws->ready);
  free(ws->retired);
  free(ws);
}

/* With the lock held: the list changed under a waiter in another thread. */
static void changed_locked(pebble_bk_waitset *ws) {
  ws->epoch++;
  if (ws->waiting && !pthread_equal(ws->waiter, pthread_self()))
    pbp_wakefd_signal(&ws->wake);
}

static void remove_locked(pebble_bk_waitset *ws, pebble_bk_proc *proc) {
  size_t slot = proc->ws_slot, last = ws->n_watches - 1;
  if (slot != last) {
    ws->watches[slot] = ws->watches[last];
    ws->watches[slot].proc->ws_slot = slot;
  }
  ws->n_watches--;
  proc->ws = NULL;
  changed_locked(ws);
}

int pbp_waitset_watch(pebble_bk_waitset *ws, pebble_bk_proc *proc,
                      unsigned events, void *tag) {
  const unsigned all = PEBBLE_EV_READ | PEBBLE_EV_WRITE | PEBBLE_EV_EXIT;
  int rc = PEBBLE_OK;
  if (ws == NULL || proc == NULL || (events & ~all))
    return PEBBLE_EINVAL;
  pthread_mutex_lock(&ws->lock);
  if (proc->ws != NULL && proc->ws != ws) {
    rc = PEBBLE_EBUSY; /* one waitset per process */
  } else if (proc->ws == ws) {
    if (events == 0) {
      remove_locked(ws, proc);
    } else {
      ws->watches[proc->ws_slot].events = events;
      ws->watches[proc->ws_slot].tag = tag;
      changed_locked(ws);
    }
  } else if (events != 0) {
    if (reserve_locked(ws, ws->n_watches + 1) != 0) {
      pthread_mutex_unlock(&ws->lock);
      return PEBBLE_ENOMEM;
    }
    ws->watches[ws->n_watches].proc = proc;
    ws->watches[ws->n_watches].events = events;
    ws->watches[ws->n_watches].tag = tag;
    proc->ws = ws;
    proc->ws_slot = ws->n_watches++;
    changed_locked(ws);
  }
  pthread_mutex_unlock(&ws->lock);
  return rc;
}

void pbp_waitset_forget_proc(pebble_bk_proc *proc) {
  pebble_bk_waitset *ws = proc->ws;
  if (ws == NULL)
    return;
  pthread_mutex_lock(&ws->lock);
  if (proc->ws == ws)
    remove_locked(ws, proc);
  pthread_mutex_unlock(&ws->lock);
}

void pbp_waitset_wake(pebble_bk_waitset *ws) {
  if (ws != NULL)
    pbp_wakefd_signal(&ws->wake);
}

/* With the lock held: room for `need` watches, in the list and in the
 * waiter's arrays.  A waiter may be polling the old pollfds: they are
 * kept for it to free.  Arrays already grown stay grown on a failure. */
static int reserve_locked(pebble_bk_waitset *ws, size_t need) {
  size_t cap;
  struct pollfd *pfds;
  poll_slot *slots;
  unsigned *ready;
  if (need > ws->cap_watches) {
    watch *grown;
    cap = ws->cap_watches ? ws->cap_watches * 2 : 16;
    grown = realloc(ws->watches, cap * sizeof *grown);
    if (grown == NULL)
      return -1;
    ws->watches = grown;
    ws->cap_watches = cap;
  }
  if (need <= ws->cap_scratch && ws->pfds != NULL)
    return 0;
  cap = need < 16 ? 16 : need * 2;
  slots = realloc(ws->slots, 3 * cap * sizeof *slots);
  if (slots == NULL)
    return -1;
  ws->slots = slots;
  ready = realloc(ws->ready, cap * sizeof *ready);
  if (ready == NULL)
    return -1;
  ws->ready = ready;
  pfds = malloc((1 + 3 * cap) * sizeof *pfds);
  if (pfds == NULL)
    return -1;
  if (ws->pfds != NULL && ws->pfds == ws->polling) {
    free(ws->retired); /* NULL: one poll sees one array */
    ws->retired = ws->pfds;
  } else {
    free(ws->pfds);
  }
  ws->pfds = pfds;
  ws->cap_scratch = cap;
  return 0;
}

/* Appends one descriptor to the poll set, answering for watch i. */
static void add_pfd(pebble_bk_waitset *ws, size_t *n, int fd, short events,
                    size_t i, int is_exit) {
  ws->pfds[*n].fd = fd;
  ws->pfds[*n].events = events;
  ws->pfds[*n].revents = 0;
  ws->slots[*n - 1].watch = i;
  ws->slots[*n - 1].is_exit = is_exit;
  (*n)++;
}

/* Fill the pollfds: the wake descriptor, then each watch's descriptors
 * (a forked child's messages come through a pipe of their own, so READ
 * and WRITE may be two descriptors). */
static size_t build_locked(pebble_bk_waitset *ws) {
  size_t n = 1, i;
  ws->pfds[0].fd = ws->wake.rd;
  ws->pfds[0].events = POLLIN;
  ws->pfds[0].revents = 0;
  for (i = 0; i < ws->n_watches; i++) {
    const watch *w = &ws->watches[i];
    short ev = 0;
    ws->ready[i] = 0;
    if (w->events & PEBBLE_EV_READ) {
      if (w->proc->res_fd >= 0)
        add_pfd(ws, &n, w->proc->res_fd, POLLIN, i, 0);
      else
        ev |= POLLIN;
    }
    if (w->events & PEBBLE_EV_WRITE)
      ev |= POLLOUT;
    if (ev != 0)
      add_pfd(ws, &n, w->proc->chan_fd, ev, i, 0);
    if (w->events & PEBBLE_EV_EXIT)
      add_pfd(ws, &n, w->proc->exit_fd, POLLIN, i, 1);
  }
  return n;
}

/* Workers started through a launcher must be heard from now and then,
 * and hear from us (posix_launch.c): the nearest moment one of them must
 * have spoken by, or is due a heartbeat. */
static uint64_t silence_deadline_locked(const pebble_bk_waitset *ws) {
  uint64_t at = PEBBLE_BK_FOREVER;
  size_t i;
  for (i = 0; i < ws->n_watches; i++) {
    pebble_bk_proc *p = ws->watches[i].proc;
    if (p->launch != NULL) {
      uint64_t t = pbp_launch_silence_deadline(p);
      uint64_t b = pbp_launch_beat_deadline(p);
      if (t < at)
        at = t;
      if (b < at)
        at = b;
    }
  }
  return at;
}

/* After a poll of n pollfds (0: their results are not to be read): a
 * launched worker's channel with bytes waiting has been heard from; one
 * silent past its bound is killed (its exit then ends its tasks). */
static void check_silence_locked(pebble_bk_waitset *ws, size_t n) {
  uint64_t now = pbp_now_ns();
  size_t k, i;
  for (k = 1; k < n; k++) {
    pebble_bk_proc *p = ws->watches[ws->slots[k - 1].watch].proc;
    if (p->launch != NULL && !ws->slots[k - 1].is_exit &&
        (ws->pfds[k].revents & POLLIN))
      pbp_launch_heard(p, now);
  }
  for (i = 0; i < ws->n_watches; i++)
    if (ws->watches[i].proc->launch != NULL) {
      pbp_launch_check_silence(ws->watches[i].proc, now);
      pbp_launch_beat(ws->watches[i].proc, now);
    }
}

/* One poll until the deadline: >0 ready, 0 when it passed, -1 on error. */
static int poll_until(struct pollfd *pfds, size_t n, uint64_t deadline_ns) {
  for (;;) {
    int rc;
    uint64_t now = 0, left = 0;
    if (deadline_ns != PEBBLE_BK_FOREVER) {
      now = pbp_now_ns();
      left = deadline_ns > now ? deadline_ns - now : 0;
    }
#ifdef PBP_HAVE_PPOLL
    {
      struct timespec ts;
      uint64_t sec = left / 1000000000u;
      if (sec > (uint64_t)INT32_MAX)
        sec = (uint64_t)INT32_MAX; /* waits again afterwards if need be */
      ts.tv_sec = (time_t)sec;
      ts.tv_nsec = (long)(left % 1000000000u);
      rc = ppoll(pfds, (nfds_t)n,
                 deadline_ns == PEBBLE_BK_FOREVER ? NULL : &ts, NULL);
    }
#else
    {
      /* Rounded up: a millisecond timer must not fire before the
       * deadline. */
      uint64_t ms = (left + 999999u) / 1000000u;
      rc = poll(pfds, (nfds_t)n,
                deadline_ns == PEBBLE_BK_FOREVER
                    ? -1
                    : (ms > (uint64_t)INT_MAX ? INT_MAX : (int)ms));
    }
#endif
    if (rc > 0)
      return rc;
    if (rc < 0 && errno != EINTR)
      return -1;
    if (rc == 0 && (left == 0 || pbp_now_ns() >= deadline_ns))
      return 0;
    /* Interrupted, or a clamped timeout ran out early: wait on. */
  }
}

int pbp_waitset_wait(pebble_bk_waitset *ws, uint64_t deadline_ns,
                     pebble_wait_event *events, size_t cap, size_t *count) {
  unsigned long epoch;
  size_t n, i, k, n_watches;
  struct pollfd *pfds;
  uint64_t silence;
  int rc, err;

  if (count != NULL)
    *count = 0;
  if (ws == NULL || count == NULL || (cap > 0 && events == NULL))
    return PEBBLE_EINVAL;
  pthread_mutex_lock(&ws->lock);
  if (ws->waiting) {
    pthread_mutex_unlock(&ws->lock);
    return PEBBLE_EBUSY; /* one waiter at a time */
  }
  /* The arrays have room for every watch (watch made it). */
  ws->waiting = 1;
  ws->waiter = pthread_self();
  n = build_locked(ws);
  epoch = ws->epoch;
  pfds = ws->polling = ws->pfds;
  silence = silence_deadline_locked(ws);
  pthread_mutex_unlock(&ws->lock);

  rc = poll_until(pfds, n, silence < deadline_ns ? silence : deadline_ns);
  err = errno;

  pthread_mutex_lock(&ws->lock);
  if (silence != PEBBLE_BK_FOREVER)
    check_silence_locked(ws, rc > 0 && ws->epoch == epoch ? n : 0);
  ws->waiting = 0;
  ws->polling = NULL;
  if (rc > 0 && pfds[0].revents != 0)
    pbp_wakefd_drain(&ws->wake);
  /* Same epoch: the list, and so the arrays, did not change. */
  if (rc > 0 && ws->epoch == epoch) {
    for (k = 1; k < n; k++) {
      short re = pfds[k].revents;
      const poll_slot *s = &ws->slots[k - 1];
      unsigned want = ws->watches[s->watch].events, got = 0;
      if (re == 0)
        continue;
      if (s->is_exit) {
        got = PEBBLE_EV_EXIT;
      } else {
        /* Hang-up and errors count as readable (the read sees
         * end-of-file) and writable (the write sees PEBBLE_EDIED). */
        if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
          got |= PEBBLE_EV_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL))
          got |= PEBBLE_EV_WRITE;
      }
      ws->ready[s->watch] |= got & want;
    }
    /* Report from a rotating start, so a cap below the number of ready
     * watches cannot starve the last ones. */
    n_watches = ws->n_watches;
    for (i = 0; i < n_watches && *count < cap; i++) {
      size_t w = (ws->rotate + i) % n_watches;
      if (ws->ready[w] != 0) {
        events[*count].tag = ws->watches[w].tag;
        events[*count].events = ws->ready[w];
        (*count)++;
      }
    }
    if (n_watches > 0)
      ws->rotate = (ws->rotate + 1) % n_watches;
  }
  free(ws->retired); /* replaced while polled */
  ws->retired = NULL;
  pthread_mutex_unlock(&ws->lock);
  if (rc < 0) {
    errno = err;
    return PEBBLE_ESYSTEM;
  }
  return PEBBLE_OK;
}
