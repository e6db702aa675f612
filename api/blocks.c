/*
 * blocks.c -- the one fixed-size block a pool task needs (its future, the
 * task and a small argument), carved from larger chunks and kept for
 * reuse.
 *
 * Scheduling takes one such block per task and the application gives it
 * back when it releases the future, often tens of thousands at a time.
 * A malloc per block made a cold burst pay the allocator and one page
 * fault per sixteen tasks, each on the caller's thread; so blocks are cut
 * from chunks of CHUNK_BLOCKS (one malloc per chunk, its pages faulted in
 * by one call where the system offers that), and a block given back goes
 * on its chunk's own free list.
 *
 * Memory: a chunk goes back to malloc once none of its blocks is in use
 * and the chunks left still hold the peak of blocks in use at once,
 * lately.  That peak is halved (and whole free chunks beyond it given
 * back) once it has not been reached for about a second (looked at as
 * blocks come back, so an idle application keeps its spares until its
 * next burst); a destroyed pool gives back every free chunk, and
 * pebble_shutdown() everything.  So the footprint is what the
 * application needed at its busiest, rounded up to whole chunks, plus the
 * chunks that a block still in use keeps (a future held for long pins
 * its chunk, as a long-lived object pins a page of any allocator).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "internal.h"

#define DECAY_NS 1000000000u /* a peak older than this is halved */
#define DECAY_EVERY 1024u    /* frees between two looks at the clock */

/* A block's room in its chunk: the block, then its chunk's address. */
#define STRIDE ((PB_BLOCK_SIZE + sizeof(void *) + 15) & ~(size_t)15)
#define CHUNK_BLOCKS 255u /* 64 KiB with the header: one heap chunk */

typedef struct spare {
  struct spare *next;
} spare;

struct pb_chunk {
  pb_chunk *prev, *next; /* on the list of chunks with room (or not) */
  spare *free;           /* blocks given back, for reuse */
  unsigned carved;       /* blocks cut so far; the rest is untouched */
  unsigned used;         /* blocks in use now */
  int listed;            /* on the room list */
};
#define HEADER ((sizeof(pb_chunk) + 15) & ~(size_t)15)

static pb_chunk **owner_slot(void *block) {
  return (pb_chunk **)((char *)block + PB_BLOCK_SIZE);
}

static int has_room(const pb_chunk *c) {
  return c->free != NULL || c->carved < CHUNK_BLOCKS;
}

static void link_room(pb_blocks *b, pb_chunk *c) {
  c->prev = NULL;
  c->next = b->room;
  if (b->room != NULL)
    b->room->prev = c;
  b->room = c;
  c->listed = 1;
}

static void unlink_room(pb_blocks *b, pb_chunk *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    b->room = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->listed = 0;
}

/* A new chunk, its pages faulted in at once: one system call rather than
 * a fault for every 16 blocks, on the scheduling thread. */
static pb_chunk *chunk_new(void) {
  pb_chunk *c = malloc(HEADER + CHUNK_BLOCKS * STRIDE);
  if (c == NULL)
    return NULL;
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  {
    static long page;
    uintptr_t from, to;
    if (page == 0)
      page = sysconf(_SC_PAGESIZE);
    from = ((uintptr_t)c + HEADER + (uintptr_t)page - 1) &
           ~((uintptr_t)page - 1);
    to = ((uintptr_t)c + HEADER + CHUNK_BLOCKS * STRIDE) &
         ~((uintptr_t)page - 1);
    if (page > 0 && to > from)
      (void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
  }
#endif
  c->prev = c->next = NULL;
  c->free = NULL;
  c->carved = c->used = 0;
  c->listed = 0;
  return c;
}

int pb_blocks_init(pb_blocks *b, const pebble_backend *bk) {
  b->room = NULL;
  b->chunks = b->in_use = b->peak = 0;
  b->frees = 0;
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

/* Lock held: take the chunks none of whose blocks is in use while the
 * rest still hold the peak; returns them, to be freed without the lock. */
static pb_chunk *cut_to_peak(pb_blocks *b) {
  pb_chunk *cut = NULL, *c, *next;
  for (c = b->room; c != NULL && (b->chunks - 1) * CHUNK_BLOCKS >= b->peak;
       c = next) {
    next = c->next;
    if (c->used != 0)
      continue;
    unlink_room(b, c);
    b->chunks--;
    c->next = cut;
    cut = c;
  }
  return cut;
}

void pb_blocks_destroy(pb_blocks *b, const pebble_backend *bk) {
  if (b->lock == NULL)
    return;
  /* A chunk with a block still in use stays: the application holds a
   * future it did not release. */
  b->peak = 0;
  free_chunks(cut_to_peak(b));
  b->room = NULL;
  bk->mutex_destroy(b->lock);
  b->lock = NULL;
}

void *pb_blocks_get(pb_blocks *b, const pebble_backend *bk) {
  pb_chunk *c, *fresh = NULL;
  void *block;
  bk->mutex_lock(b->lock);
  while ((c = b->room) == NULL) {
    bk->mutex_unlock(b->lock);
    if (fresh != NULL || (fresh = chunk_new()) == NULL)
      return NULL; /* (fresh is never left over: see below) */
    bk->mutex_lock(b->lock);
    if (b->room == NULL) { /* else another thread added one meanwhile */
      link_room(b, fresh);
      b->chunks++;
      fresh = NULL;
    }
  }
  if (c->free != NULL) {
    spare *s = c->free;
    c->free = s->next;
    block = s;
  } else {
    block = (char *)c + HEADER + (size_t)c->carved++ * STRIDE;
    *owner_slot(block) = c;
  }
  c->used++;
  if (!has_room(c))
    unlink_room(b, c);
  if (++b->in_use >= b->peak) { /* reached again: the peak is still news */
    b->peak = b->in_use;
    b->peak_at = 0; /* stamped by the next decay look */
  }
  bk->mutex_unlock(b->lock);
  free(fresh); /* another thread's chunk came first */
  return block;
}

void pb_blocks_put(pb_blocks *b, const pebble_backend *bk, void *block) {
  pb_chunk *c = *owner_slot(block), *cut = NULL;
  spare *s = block;
  bk->mutex_lock(b->lock);
  b->in_use--;
  s->next = c->free;
  c->free = s;
  c->used--;
  if (!c->listed)
    link_room(b, c);
  if (++b->frees % DECAY_EVERY == 0) {
    uint64_t now = bk->now_ns();
    if (b->peak_at == 0) {
      b->peak_at = now;
    } else if (now - b->peak_at > DECAY_NS) {
      b->peak = b->peak / 2 > b->in_use ? b->peak / 2 : b->in_use;
      b->peak_at = now;
      cut = cut_to_peak(b);
    }
  }
  if (c->used == 0 && c->listed &&
      (b->chunks - 1) * CHUNK_BLOCKS >= b->peak) {
    unlink_room(b, c); /* the others hold the peak: c goes back */
    b->chunks--;
    c->next = cut;
    cut = c;
  }
  bk->mutex_unlock(b->lock);
  free_chunks(cut);
}

void pb_blocks_trim(pb_blocks *b, const pebble_backend *bk) {
  pb_chunk *cut;
  bk->mutex_lock(b->lock);
  b->peak = b->in_use;
  b->peak_at = 0;
  cut = cut_to_peak(b);
  bk->mutex_unlock(b->lock);
  free_chunks(cut);
}
