/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_page.c -- the page a process worker shares with its pool: which
 * task the worker runs, so that a cancel or a timeout kills the worker
 * only while it runs that task.
 *
 * The pool numbers the tasks it sends each worker (the ordinal, in the
 * task message).  The worker writes `run` before it starts a task
 * (ordinal, RUNNING) and when the task returns (ordinal, DONE).  The pool,
 * to stop task n, claims the page: it swaps whatever the worker wrote for
 * KILL, then kills, but only while the worker has not finished n (it
 * runs n, or has not got to it yet).  Once the worker wrote that n is
 * done, or started a later task sent ahead, the claim fails and nothing
 * is killed: the kill meant for n can no longer hit another task.  The
 * worker starts a task only by swapping its own last word for the new
 * one: if it finds KILL there instead, it starts nothing and waits to be
 * killed.  Both sides change the word only by compare-and-swap, so a
 * claim and a start cannot both win.  Once the worker is dead, the word
 * also tells whether it began the task handed to it (pb_page_began).
 *
 * The page also carries the skip epoch (worker.c): the pool bumps it
 * after each write that carried a request to skip a task sent ahead.
 *
 * A forked worker inherits the page (a shared anonymous mapping made
 * before the fork).  A spawned one makes it, as a memory file sealed
 * against shrinking and growing, and sends its descriptor to the pool
 * (PB_MSG_PAGE); the pool checks the seals and the size before it maps
 * it, so that the worker cannot make the pool's reads fault.  Without
 * shared memory, memory files, descriptor passing or lock-free 64-bit
 * atomics there is no page, and the pool sends such a worker nothing
 * ahead: without tasks behind the one it runs, a kill cannot hit another.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#if !defined(_WIN32) && ATOMIC_LLONG_LOCK_FREE == 2
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(MAP_SHARED) && defined(MAP_ANONYMOUS)
#define PB_HAVE_PAGE 1
#endif
#endif
#if defined(PB_HAVE_PAGE) && defined(__linux__)
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#define PB_HAVE_PAGE_SLEEP 1
#endif

#define PB_RUN_RUNNING 1u
#define PB_RUN_DONE 2u
#define PB_RUN_KILL (~(unsigned long long)0)

static unsigned long long run_word(uint64_t ordinal, unsigned state) {
  return ((unsigned long long)ordinal << 2) | state;
}

int pb_page_begin(pb_worker_page *page, uint64_t ordinal) {
  unsigned long long v = atomic_load(&page->run);
  do
    if (v == PB_RUN_KILL)
      return 0;
  while (!atomic_compare_exchange_weak(&page->run, &v,
                                       run_word(ordinal, PB_RUN_RUNNING)));
  return 1;
}

void pb_page_end(pb_worker_page *page, uint64_t ordinal) {
  unsigned long long v = run_word(ordinal, PB_RUN_RUNNING);
  /* Fails only on KILL: the pool is about to kill the worker. */
  atomic_compare_exchange_strong(&page->run, &v,
                                 run_word(ordinal, PB_RUN_DONE));
}

int pb_page_claim(pb_worker_page *page, uint64_t ordinal) {
  unsigned long long v = atomic_load(&page->run);
  for (;;) {
    if (v == PB_RUN_KILL)
      return 1; /* claimed already: killing again changes nothing */
    if ((v >> 2) > ordinal ||
        ((v >> 2) == ordinal && (v & 3u) == PB_RUN_DONE))
      return 0; /* it ended: what runs now is another task */
    if (atomic_compare_exchange_weak(&page->run, &v, PB_RUN_KILL))
      return 1;
  }
}

int pb_page_began(pb_worker_page *page, uint64_t ordinal) {
  unsigned long long v = atomic_load(&page->run);
  return v == PB_RUN_KILL || (v >> 2) >= ordinal;
}

atomic_uint *pb_page_skip_epoch(pb_worker_page *page) {
  return page != NULL ? &page->skip_epoch : NULL;
}

/* ---- the outcome ring ----
 *
 * A worker's write to its channel per outcome was most of what it did
 * for a trivial task, and each woke the pool's manager thread.  So the
 * worker puts its small messages (outcomes, task notices) one after the
 * other in a ring on the page, and writes to the channel only a NUDGE,
 * and that only when the pool stopped looking at the ring (want_nudge,
 * which the pool sets before it looks at the ring a last time, and the
 * worker clears as it nudges: the two stores come before the two loads
 * in one order, so one side sees the other).  A message is published
 * whole (ring_tail moves past it once it is all there), so a worker that
 * dies leaves only whole messages, which the pool still reads: an
 * outcome in the ring is as safe as one in the channel.
 *
 * What does not fit (a large message, one with a descriptor, a full
 * ring) goes on the channel.  The two stay in order because the pool
 * empties the ring before it takes any message from the channel, and the
 * worker goes back to the ring only once the pool has taken every
 * message it sent on the channel (chan_taken).
 *
 * The pool trusts nothing the worker wrote: a tail more than a ring ahead
 * is refused, and the bytes are copied out before the reader (channel.c)
 * checks them as it checks the channel's.
 *
 * An application thread waiting for a future whose task runs here may
 * read the ring itself (pool_processes.c, wait_direct), so that a round
 * trip wakes two threads, not three: it sleeps on `waiter` with bit 0
 * set, and the worker, after it moved the tail, wakes it there instead of
 * nudging the pool.  The waiter sets the bit before it looks at the ring
 * a last time, as the pool does with want_nudge: one side sees the
 * other. */

static pb_worker_page *ring_page;  /* this worker's, or NULL */
static pebble_bk_chan *ring_chan;  /* its channel to the pool */
static uint64_t ring_chan_sent;    /* messages it sent on the channel */

void pb_ring_use(pb_worker_page *page, pebble_bk_chan *chan,
                 uint64_t chan_sent) {
  ring_page = page;
  ring_chan = chan;
  ring_chan_sent = chan_sent;
}

/* Counted before the bytes are written: the pool, which loads the count
 * after it read bytes, then knows every byte of the worker's own among
 * them counted.  Only this process writes it. */
static void count_chan_bytes(pb_worker_page *page, size_t n) {
  atomic_store(&page->chan_bytes,
               atomic_load_explicit(&page->chan_bytes, memory_order_relaxed) +
                   n);
}

/* The ring's room for n more bytes, if the worker may use it now. */
static int ring_room(pb_worker_page *page, size_t n, uint64_t *tail) {
  uint64_t head;
  if (n > PB_RING_BYTES ||
      atomic_load_explicit(&page->chan_taken, memory_order_acquire) !=
          ring_chan_sent)
    return 0;
  *tail = atomic_load_explicit(&page->ring_tail, memory_order_relaxed);
  head = atomic_load_explicit(&page->ring_head, memory_order_acquire);
  return PB_RING_BYTES - (size_t)(*tail - head) >= n;
}

int pb_ring_send(const pebble_backend *bk, pebble_bk_chan *chan,
                 const void *buf, size_t n, unsigned msgs, intptr_t handle) {
  pb_worker_page *page = chan == ring_chan ? ring_page : NULL;
  uint64_t tail;
  int rc;
  if (page != NULL && handle < 0 && ring_room(page, n, &tail)) {
    size_t at = (size_t)(tail % PB_RING_BYTES),
           first = PB_RING_BYTES - at < n ? PB_RING_BYTES - at : n;
    memcpy(page->ring + at, buf, first);
    memcpy(page->ring, (const unsigned char *)buf + first, n - first);
    atomic_store(&page->ring_tail, tail + n);
    if (atomic_load(&page->waiter) & 1u) {
      pb_page_wake(page); /* a waiter reads it: the pool may sleep on */
    } else if (atomic_load(&page->want_nudge) &&
               atomic_exchange(&page->want_nudge, 0)) {
      pb_msg_header h;
      pb_msg_fill(&h, PB_MSG_NUDGE, 0, 0);
      h.tag = pb_msg_tag(0);
      if (bk->chan_write_all(chan, &h, sizeof h) != PEBBLE_OK)
        return PEBBLE_EDIED;
    }
    return PEBBLE_OK;
  }
  if (page != NULL) {
    ring_chan_sent += msgs;
    count_chan_bytes(page, n);
  }
  if (handle >= 0) {
    /* The header carries the descriptor; the rest follows. */
    rc = bk->chan_send_handle(chan, buf, sizeof(pb_msg_header), handle);
    if (rc == PEBBLE_OK && n > sizeof(pb_msg_header))
      rc = bk->chan_write_all(chan, (const unsigned char *)buf +
                                        sizeof(pb_msg_header),
                              n - sizeof(pb_msg_header));
  } else {
    rc = bk->chan_write_all(chan, buf, n);
  }
  return rc == PEBBLE_OK ? PEBBLE_OK : PEBBLE_EDIED;
}

void pb_ring_note_chan(pebble_bk_chan *chan, unsigned msgs, size_t n) {
  if (ring_page != NULL && chan == ring_chan) {
    ring_chan_sent += msgs;
    count_chan_bytes(ring_page, n);
  }
}

int pb_ring_read(pb_worker_page *page, void *dst, size_t len, size_t *got) {
  uint64_t head = atomic_load_explicit(&page->ring_head, memory_order_relaxed),
           tail = atomic_load(&page->ring_tail);
  size_t avail, n, at, first;
  *got = 0;
  if (tail - head > PB_RING_BYTES)
    return PEBBLE_EPROTO;
  avail = (size_t)(tail - head);
  n = avail < len ? avail : len;
  at = (size_t)(head % PB_RING_BYTES);
  first = PB_RING_BYTES - at < n ? PB_RING_BYTES - at : n;
  memcpy(dst, page->ring + at, first);
  memcpy((unsigned char *)dst + first, page->ring, n - first);
  atomic_store_explicit(&page->ring_head, head + n, memory_order_release);
  *got = n;
  return PEBBLE_OK;
}

int pb_ring_pending(pb_worker_page *page) {
  return atomic_load(&page->ring_tail) !=
         atomic_load_explicit(&page->ring_head, memory_order_relaxed);
}

#ifdef PB_HAVE_PAGE_SLEEP

/* Shared futexes (no FUTEX_PRIVATE_FLAG): the word lies in memory the
 * worker process maps too. */
int pb_page_can_sleep(void) { return 1; }

unsigned pb_page_waiter_arm(pb_worker_page *page) {
  return atomic_fetch_or(&page->waiter, 1u) | 1u;
}

void pb_page_waiter_disarm(pb_worker_page *page) {
  atomic_fetch_and(&page->waiter, ~1u);
}

void pb_page_sleep(pb_worker_page *page, unsigned seen, uint64_t ns) {
  struct timespec ts, *limit = NULL;
  if (ns != UINT64_MAX) {
    uint64_t sec = ns / 1000000000u;
    ts.tv_sec = sec > (uint64_t)INT_MAX ? INT_MAX : (time_t)sec;
    ts.tv_nsec = (long)(ns % 1000000000u);
    limit = &ts;
  }
  /* EAGAIN (the word moved), EINTR and ETIMEDOUT all mean: look again. */
  syscall(SYS_futex, (void *)&page->waiter, FUTEX_WAIT, seen, limit, NULL,
          0);
}

void pb_page_wake(pb_worker_page *page) {
  atomic_fetch_add(&page->waiter, 2u);
  syscall(SYS_futex, (void *)&page->waiter, FUTEX_WAKE, INT_MAX, NULL, NULL,
          0);
}

#else

int pb_page_can_sleep(void) { return 0; }
unsigned pb_page_waiter_arm(pb_worker_page *page) {
  (void)page;
  return 0;
}
void pb_page_waiter_disarm(pb_worker_page *page) { (void)page; }
void pb_page_sleep(pb_worker_page *page, unsigned seen, uint64_t ns) {
  (void)page, (void)seen, (void)ns;
}
void pb_page_wake(pb_worker_page *page) { (void)page; }

#endif

#ifdef PB_HAVE_PAGE

static void page_init(pb_worker_page *page) {
  atomic_init(&page->run, 0);
  atomic_init(&page->skip_epoch, 0);
  atomic_init(&page->ring_head, 0);
  atomic_init(&page->chan_taken, 0);
  atomic_init(&page->want_nudge, 1); /* nobody looks at first */
  atomic_init(&page->waiter, 0);
  atomic_init(&page->ring_tail, 0);
  atomic_init(&page->chan_bytes, 0);
}

pb_worker_page *pb_page_new_inherited(void) {
  void *p = mmap(NULL, sizeof(pb_worker_page), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  page_init(p);
  return p;
}

void pb_page_free(pb_worker_page *page) {
  if (page != NULL)
    munmap((void *)page, sizeof *page);
}

#if defined(HAVE_MEMFD_CREATE)
#include "memfd_seal.h"

int pb_page_create_file(intptr_t *handle, pb_worker_page **out) {
  int fd = memfd_create("pebble-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void *p;
  if (fd < 0)
    return PEBBLE_ENOTSUP;
  if (ftruncate(fd, (off_t)sizeof(pb_worker_page)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
      (p = mmap(NULL, sizeof(pb_worker_page), PROT_READ | PROT_WRITE,
                MAP_SHARED, fd, 0)) == MAP_FAILED) {
    close(fd);
    return PEBBLE_ENOTSUP;
  }
  page_init(p);
  *handle = fd;
  *out = p;
  return PEBBLE_OK;
}

int pb_page_map_file(intptr_t handle, pb_worker_page **out, char *why,
                     size_t whylen) {
  int fd = (int)handle, seals, rc = PEBBLE_OK;
  struct stat st;
  void *p;
  seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
                       (F_SEAL_SHRINK | F_SEAL_GROW)) {
    snprintf(why, whylen, "the worker sent a page that is not a sealed "
                          "memory file");
    rc = PEBBLE_EPROTO;
  } else if (fstat(fd, &st) != 0 ||
             (uint64_t)st.st_size != (uint64_t)sizeof(pb_worker_page)) {
    snprintf(why, whylen, "the worker's page does not have the %zu bytes "
                          "of one",
             sizeof(pb_worker_page));
    rc = PEBBLE_EPROTO;
  } else if ((p = mmap(NULL, sizeof(pb_worker_page), PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0)) == MAP_FAILED) {
    snprintf(why, whylen, "cannot map the worker's page: %s",
             strerror(errno));
    rc = PEBBLE_ENOMEM;
  } else {
    *out = p;
  }
  close(fd);
  return rc;
}

#else /* no memory files */

int pb_page_create_file(intptr_t *handle, pb_worker_page **out) {
  (void)handle, (void)out;
  return PEBBLE_ENOTSUP;
}

int pb_page_map_file(intptr_t handle, pb_worker_page **out, char *why,
                     size_t whylen) {
  (void)out;
  close((int)handle);
  snprintf(why, whylen, "this system cannot map a worker's page");
  return PEBBLE_ENOTSUP;
}

#endif

#else /* no page: nothing is sent ahead */

pb_worker_page *pb_page_new_inherited(void) { return NULL; }

void pb_page_free(pb_worker_page *page) { (void)page; }

int pb_page_create_file(intptr_t *handle, pb_worker_page **out) {
  (void)handle, (void)out;
  return PEBBLE_ENOTSUP;
}

int pb_page_map_file(intptr_t handle, pb_worker_page **out, char *why,
                     size_t whylen) {
  (void)handle, (void)out;
  snprintf(why, whylen, "this system cannot map a worker's page");
  return PEBBLE_ENOTSUP;
}

#endif
