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
 * claim and a start cannot both win.
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

atomic_uint *pb_page_skip_epoch(pb_worker_page *page) {
  return page != NULL ? &page->skip_epoch : NULL;
}

#ifdef PB_HAVE_PAGE

static void page_init(pb_worker_page *page) {
  atomic_init(&page->run, 0);
  atomic_init(&page->skip_epoch, 0);
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
