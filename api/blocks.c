/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blocks.c -- the one fixed-size block a pool task needs (its future, the
 * task and a small argument), carved from larger chunks and kept for
 * reuse.
 *
 * Scheduling takes one such block per task and the application gives it
 * back when it releases the future, often tens of thousands at a time.
 * A malloc per block made a burst on a cold pool pay the allocator and a
 * page fault every sixteen tasks, on the scheduling thread; so blocks are
 * cut one after the other from chunks of CHUNK_BLOCKS (one malloc per
 * chunk), with no header of their own: a queued task costs 248 bytes,
 * not 256.
 *
 * Blocks given back are kept for the next tasks (handing tens of
 * thousands back to malloc makes it shrink its heap and fault the pages
 * in again for the next burst), but never more than the peak of blocks in
 * use at once, lately, rounded up to a whole chunk: the footprint stays
 * what the application needed at its busiest.  That peak is halved (and
 * the chunks none of whose blocks is in use given back while the rest
 * hold it) once it has not been reached for about a second (looked at as
 * blocks come back, so an idle application keeps its spares until its
 * next burst); a destroyed pool gives back every chunk with no block in
 * use, and pebble_shutdown() everything.  A block still in use keeps its
 * chunk (64 KiB), as a long-lived object pins a page of any allocator.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "internal.h"

#define DECAY_NS 1000000000u /* a peak older than this is halved */
#define DECAY_EVERY 1024u    /* frees between two looks at the clock */

/* Blocks lie back to back; a future and its task need 8-byte alignment. */
#define STRIDE ((PB_BLOCK_SIZE + 7) & ~(size_t)7)
/* 64 KiB with malloc's own header: one heap chunk. */
#define HEADER ((sizeof(pb_chunk) + 15) & ~(size_t)15)
#define CHUNK_BLOCKS ((65536u - 16u - HEADER) / STRIDE)
#define CHUNK_BYTES (HEADER + CHUNK_BLOCKS * STRIDE)

typedef struct pb_spare {
  struct pb_spare *next;
} spare;
_Static_assert(_Alignof(pebble_future) <= 8 && _Alignof(spare) <= 8,
               "blocks are only 8-byte aligned");

struct pb_chunk {
  pb_chunk *next; /* every chunk held */
  size_t free;    /* while cutting: its blocks not in use */
};

static char *first_block(pb_chunk *c) { return (char *)c + HEADER; }

/* A new chunk.  Faulting its pages in at once (madvise
 * MADV_POPULATE_WRITE) was tried: no faster than the faults it saves. */
static pb_chunk *chunk_new(void) {
  pb_chunk *c = malloc(CHUNK_BYTES);
  if (c == NULL)
    return NULL;
  c->next = NULL;
  c->free = 0;
  return c;
}

int pb_blocks_init(pb_blocks *b, const pebble_backend *bk) {
  b->head = NULL;
  atomic_init(&b->given_back, NULL);
  atomic_init(&b->returned, 0);
  atomic_init(&b->frees, 0);
  b->chunk_list = NULL;
  b->carve = b->carve_end = NULL;
  b->chunks = b->in_use = b->peak = 0;
  b->peak_at = 0;
  return bk->mutex_create(&b->lock);
}

static void free_chunks(pb_chunk *list) {
  pb_chunk *next;
  for (; list != NULL; list = next) {
    next = list->next;
    free(list);
  }
}

static int by_address(const void *x, const void *y) {
  const pb_chunk *a = *(pb_chunk *const *)x, *b = *(pb_chunk *const *)y;
  return a < b ? -1 : a > b;
}

/* The chunk of block p in the sorted array. */
static pb_chunk *chunk_of(pb_chunk **sorted, size_t n, const char *p) {
  size_t lo = 0, hi = n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if ((const char *)sorted[mid] <= p)
      lo = mid;
    else
      hi = mid;
  }
  return sorted[lo];
}

/* Lock held: in_use counts the blocks given back meanwhile.  Acquire:
 * pairs with the release in pb_blocks_put, so that a chunk found unused
 * here is freed after everything its last users wrote into it. */
static void settle_count(pb_blocks *b) {
  b->in_use -= atomic_exchange_explicit(&b->returned, 0, memory_order_acquire);
}

/* Lock held: the blocks given back meanwhile join the spare list (a walk
 * to its end: for the rare looks of cut_to_peak).  A block counted back
 * but not yet pushed only keeps its chunk one look longer: a chunk is cut
 * only when every one of its blocks is on the list. */
static void settle_returns(pb_blocks *b) {
  spare *s = atomic_exchange_explicit(&b->given_back, NULL,
                                      memory_order_acquire),
        *last;
  settle_count(b);
  if (s == NULL)
    return;
  for (last = s; last->next != NULL; last = last->next)
    ;
  last->next = b->head;
  b->head = s;
}

/* Lock held: take the chunks none of whose blocks is in use while the
 * rest still hold the peak; returns them, to be freed without the lock.
 * Rare (a decay, a destroyed pool), so it may sort and search. */
static pb_chunk *cut_to_peak(pb_blocks *b) {
  pb_chunk **sorted, *c, *cut = NULL, **pp;
  spare *s, **sp;
  size_t n, i;
  settle_count(b);
  n = b->chunks;
  if (n == 0 || (n - 1) * CHUNK_BLOCKS < b->peak)
    return NULL;
  if (b->in_use == 0 && b->peak == 0) { /* all of them */
    cut = b->chunk_list;
    b->chunk_list = NULL;
    b->head = NULL;
    /* Every block is counted back, so none is being pushed now. */
    (void)atomic_exchange_explicit(&b->given_back, NULL, memory_order_acquire);
    b->carve = b->carve_end = NULL;
    b->chunks = 0;
    return cut;
  }
  if ((sorted = malloc(n * sizeof *sorted)) == NULL)
    return NULL; /* kept until the next look */
  settle_returns(b);
  for (i = 0, c = b->chunk_list; c != NULL; c = c->next, i++) {
    sorted[i] = c;
    c->free = 0;
  }
  qsort(sorted, n, sizeof *sorted, by_address);
  for (s = b->head; s != NULL; s = s->next)
    chunk_of(sorted, n, (char *)s)->free++;
  if (b->carve != NULL)
    chunk_of(sorted, n, b->carve)->free +=
        (size_t)(b->carve_end - b->carve) / STRIDE;
  for (pp = &b->chunk_list; (c = *pp) != NULL;) {
    if (c->free == CHUNK_BLOCKS && (b->chunks - 1) * CHUNK_BLOCKS >= b->peak) {
      *pp = c->next;
      c->next = cut;
      cut = c;
      c->free = SIZE_MAX; /* marks it for the spare list below */
      b->chunks--;
      if (b->carve != NULL && (char *)b->carve >= first_block(c) &&
          (char *)b->carve <= first_block(c) + CHUNK_BLOCKS * STRIDE)
        b->carve = b->carve_end = NULL;
    } else {
      pp = &c->next;
    }
  }
  for (sp = &b->head; (s = *sp) != NULL;) {
    if (chunk_of(sorted, n, (char *)s)->free == SIZE_MAX) {
      *sp = s->next;
    } else {
      sp = &s->next;
    }
  }
  free(sorted);
  return cut;
}

void pb_blocks_destroy(pb_blocks *b, const pebble_backend *bk) {
  if (b->lock == NULL)
    return;
  /* A chunk with a block still in use stays: the application holds a
   * future it did not release. */
  b->peak = 0;
  free_chunks(cut_to_peak(b));
  bk->mutex_destroy(b->lock);
  b->lock = NULL;
}

void *pb_blocks_get(pb_blocks *b, const pebble_backend *bk) {
  spare *s;
  pb_chunk *fresh;
  bk->mutex_lock(b->lock);
  if (b->head == NULL && /* the blocks given back become the spare list */
      atomic_load_explicit(&b->given_back, memory_order_relaxed) != NULL)
    b->head = atomic_exchange_explicit(&b->given_back, NULL,
                                       memory_order_acquire);
  if ((s = b->head) != NULL) {
    b->head = s->next;
  } else if (b->carve != b->carve_end) {
    s = (spare *)b->carve;
    b->carve += STRIDE;
  }
  /* in_use may still count blocks given back since the last settling:
   * settle before calling a new peak. */
  if (++b->in_use >= b->peak) {
    settle_count(b);
    if (b->in_use >= b->peak) { /* reached again: the peak is news */
      b->peak = b->in_use;
      b->peak_at = 0; /* stamped by the next decay look */
    }
  }
  bk->mutex_unlock(b->lock);
  if (s != NULL)
    return s;
  fresh = chunk_new(); /* without the lock: it may fault pages in */
  bk->mutex_lock(b->lock);
  if (fresh == NULL) {
    b->in_use--;
  } else if (b->carve != b->carve_end) {
    /* Another thread's chunk came first: use it, give this one back. */
    s = (spare *)b->carve;
    b->carve += STRIDE;
  } else {
    fresh->next = b->chunk_list;
    b->chunk_list = fresh;
    b->chunks++;
    s = (spare *)first_block(fresh);
    b->carve = first_block(fresh) + STRIDE;
    b->carve_end = first_block(fresh) + CHUNK_BLOCKS * STRIDE;
    fresh = NULL;
  }
  bk->mutex_unlock(b->lock);
  free(fresh);
  return s;
}

/* Without the lock: an application releasing a burst of futures would
 * otherwise take it once per block.  A stack that is only ever taken
 * whole (settle_returns) has no ABA hazard. */
void pb_blocks_put(pb_blocks *b, const pebble_backend *bk, void *block) {
  spare *s = block, *top;
  pb_chunk *cut = NULL;
  top = atomic_load_explicit(&b->given_back, memory_order_relaxed);
  do
    s->next = top;
  while (!atomic_compare_exchange_weak_explicit(
      &b->given_back, &top, s, memory_order_release, memory_order_relaxed));
  atomic_fetch_add_explicit(&b->returned, 1, memory_order_release);
  if ((atomic_fetch_add_explicit(&b->frees, 1, memory_order_relaxed) + 1) %
          DECAY_EVERY !=
      0)
    return;
  bk->mutex_lock(b->lock);
  settle_count(b);
  {
    uint64_t now = bk->now_ns();
    if (b->peak_at == 0) {
      b->peak_at = now;
    } else if (now - b->peak_at > DECAY_NS) {
      b->peak = b->peak / 2 > b->in_use ? b->peak / 2 : b->in_use;
      b->peak_at = now;
      cut = cut_to_peak(b);
    }
  }
  bk->mutex_unlock(b->lock);
  free_chunks(cut);
}

void pb_blocks_trim(pb_blocks *b, const pebble_backend *bk) {
  pb_chunk *cut;
  bk->mutex_lock(b->lock);
  settle_count(b);
  b->peak = b->in_use;
  b->peak_at = 0;
  cut = cut_to_peak(b);
  bk->mutex_unlock(b->lock);
  free_chunks(cut);
}
