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
 * cut one after the other from chunks (one malloc per chunk), each block
 * after its chunk's address: a queued task costs 184 bytes.  The first
 * 16 chunks are of 64 KiB (355 blocks); the next of 8 MiB (45,590
 * blocks) on huge pages (see BIG_BYTES), so that a large burst does not
 * fault a page in every 22 tasks.
 *
 * Faulting a fresh huge page in still stops the scheduling thread for
 * the time it takes to zero it (0.1 ms, or 5 ms on a guest whose host
 * takes back the memory it frees), and the workers, having run dry,
 * fall asleep and must be woken task by task.  So a thread pool worker
 * with nothing to do faults the chunk's next huge pages in for it
 * (pb_blocks_prefault: MADV_POPULATE_WRITE, which leaves what the pages
 * hold, so it is safe on blocks already being written), and once the last
 * one is being cut, makes the next chunk: a scheduler faster than its
 * workers finds its pages ready, a slower one is helped by the workers it
 * leaves idle.  At most one chunk is made ahead; it goes back with the
 * others (the peak's decay, a destroyed pool, pebble_shutdown()).
 *
 * A block given back goes back to its own chunk (without the lock), and
 * each chunk counts its blocks handed out and given back, so that the
 * chunks with none in use are found by a look at the chunk list, never
 * by a walk of the spare blocks (after a burst of a million tasks, such
 * a walk held the lock for tenths of a second).  Blocks are taken from
 * one chunk while it has any, then from the chunks given blocks back.
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
 * chunk (64 KiB, or 8 MiB past the first 16), as a long-lived object
 * pins a page of any allocator.
 * (Chunks aligned to their size would find a block's chunk by masking,
 * without its address in front of it; but glibc cannot reuse the hole a
 * freed aligned chunk leaves for the next one.)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "internal.h"

#define DECAY_NS 1000000000u /* a peak older than this is halved */
#define DECAY_EVERY 1024u    /* frees between two looks at the clock */

/* A slot: the chunk's address, then the block.  A future and its task
 * need 8-byte alignment. */
#define FRONT sizeof(pb_chunk *)
#define SLOT ((FRONT + PB_BLOCK_SIZE + 7) & ~(size_t)7)
/* 64 KiB with malloc's own header: one heap chunk. */
#define HEADER ((sizeof(pb_chunk) + 15) & ~(size_t)15)
#define CHUNK_BLOCKS ((65536u - 16u - HEADER) / SLOT)
#define CHUNK_BYTES (HEADER + CHUNK_BLOCKS * SLOT)
/* Past the first SMALL_CHUNKS chunks, a chunk is BIG_BYTES at an address
 * aligned to HUGE_BYTES (a malloc of HUGE_BYTES more: that rest is
 * address space, never touched) that the kernel is asked to back with
 * huge pages: a burst of a million tasks then faults a page in every
 * 11,000 tasks instead of every 22, and misses the TLB as rarely.  Huge
 * pages over part of a chunk only (a malloc of 8 MiB, its whole 2 MiB
 * pages asked for: three of four) were measured slower: every 4 KiB
 * page left costs a fault. */
#define SMALL_CHUNKS 16u
#define HUGE_BYTES ((size_t)2 << 20)
#define BIG_BYTES ((size_t)8 << 20)
#define BIG_BLOCKS ((BIG_BYTES - HEADER) / SLOT)
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
#define PB_CAN_PREFAULT 1
#else
#define PB_CAN_PREFAULT 0
#endif

typedef struct pb_spare {
  struct pb_spare *next;
} spare;
_Static_assert(_Alignof(pebble_future) <= 8 && _Alignof(spare) <= 8 &&
                   FRONT % 8 == 0,
               "blocks are only 8-byte aligned");

struct pb_chunk {
  pb_chunk *next; /* every chunk held (lock) */
  /* On the blocks' given_back stack or their ready list (once at a time:
   * `listed`): pushed by the giver that listed it, then the lock's. */
  pb_chunk *next_ready;
  spare *free;               /* lock held: blocks to hand out */
  spare *_Atomic returned;   /* given back since: taken whole (lock) */
  void *base;                /* what malloc returned */
  size_t blocks;             /* how many it holds */
  size_t handed;             /* lock held: blocks ever handed out */
  atomic_size_t back;        /* blocks ever given back: the giver's last
                                touch of the chunk */
  atomic_int listed; /* on given_back or ready; CUT_MARK while cutting */
};
#define CUT_MARK 2

static char *first_slot(pb_chunk *c) { return (char *)c + HEADER; }

/* Huge pages for [p, p + size), p and size multiples of HUGE_BYTES:
 * where the kernel offers them on request (Linux's transparent huge
 * pages in "madvise" mode, the default of most distributions); else
 * nothing changes. */
static void advise_huge(void *p, size_t size) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  (void)madvise(p, size, MADV_HUGEPAGE);
#else
  (void)p, (void)size;
#endif
}

/* A new chunk, small or big (see BIG_BYTES); a small one when a big one
 * finds no memory.  Faulting a small chunk's pages in at once (madvise
 * MADV_POPULATE_WRITE) was tried: no faster than the faults it saves. */
static pb_chunk *big_at(void *base) {
  return (pb_chunk *)(((uintptr_t)base + HUGE_BYTES - 1) &
                      ~(uintptr_t)(HUGE_BYTES - 1));
}

static pb_chunk *chunk_init(void *base, pb_chunk *c, size_t blocks) {
  c->blocks = blocks;
  c->base = base;
  c->next = c->next_ready = NULL;
  c->free = NULL;
  atomic_init(&c->returned, NULL);
  c->handed = 0;
  atomic_init(&c->back, 0);
  atomic_init(&c->listed, 0);
  return c;
}

static pb_chunk *chunk_new(int big) {
  void *base;
  if (big && (base = malloc(BIG_BYTES + HUGE_BYTES)) != NULL) {
    advise_huge(big_at(base), BIG_BYTES);
    return chunk_init(base, big_at(base), BIG_BLOCKS);
  }
  if ((base = malloc(CHUNK_BYTES)) != NULL)
    return chunk_init(base, base, CHUNK_BLOCKS);
  return NULL;
}

int pb_blocks_init(pb_blocks *b, const pebble_backend *bk) {
  b->current = b->ready = NULL;
  atomic_init(&b->given_back, NULL);
  atomic_init(&b->returned, 0);
  b->settled = 0;
  b->chunk_list = b->carving = NULL;
  b->carve = b->carve_end = NULL;
  b->chunks = b->capacity = b->in_use = b->peak = 0;
  b->peak_at = 0;
  b->fault_next = NULL;
  b->prefaulters = 0;
  atomic_init(&b->fault_wanted, 0);
  b->next_chunk = NULL;
  b->next_fault = NULL;
  b->reserving = 0;
  return bk->mutex_create(&b->lock);
}

static void free_chunks(pb_chunk *list) {
  pb_chunk *next;
  for (; list != NULL; list = next) {
    next = list->next;
    free(list->base);
  }
}

/* Lock held: in_use counts the blocks given back meanwhile.  Acquire:
 * pairs with the release in pb_blocks_put. */
static void settle_count(pb_blocks *b) {
  size_t returned = atomic_load_explicit(&b->returned, memory_order_acquire);
  b->in_use -= returned - b->settled;
  b->settled = returned;
}

/* Lock held: the chunks given blocks back meanwhile join the ready list. */
static void take_given_back(pb_blocks *b) {
  pb_chunk *c, *last;
  if (atomic_load(&b->given_back) == NULL ||
      (c = atomic_exchange(&b->given_back, NULL)) == NULL)
    return;
  for (last = c; last->next_ready != NULL; last = last->next_ready)
    ;
  last->next_ready = b->ready;
  b->ready = c;
}

/* Lock held: a spare block and its chunk, or NULL.  The orders are
 * sequentially consistent: a giver that finds its chunk still listed
 * does not list it again, so a chunk taken off the list (listed cleared)
 * must then see every block given back to it that the giver saw it
 * listed for. */
static spare *take_spare(pb_blocks *b, pb_chunk **from) {
  pb_chunk *c = b->current;
  spare *s;
  for (;;) {
    if (c != NULL) {
      if (c->free == NULL && atomic_load(&c->returned) != NULL)
        c->free = atomic_exchange(&c->returned, NULL);
      if ((s = c->free) != NULL) {
        c->free = s->next;
        *from = c;
        return s;
      }
    }
    if (b->ready == NULL)
      take_given_back(b);
    if ((c = b->ready) == NULL)
      break;
    b->ready = c->next_ready;
    atomic_store(&c->listed, 0); /* after reading next_ready */
    b->current = c;
  }
  b->current = NULL;
  if (b->carve != b->carve_end) {
    *(pb_chunk **)(void *)b->carve = b->carving;
    s = (spare *)(void *)(b->carve + FRONT);
    b->carve += SLOT;
    *from = b->carving;
    return s;
  }
  return NULL;
}

/* Lock held: take the chunks none of whose blocks is in use while the
 * rest still hold the peak; returns them, to be freed without the lock.
 * A look at each chunk: its blocks are all on its own lists. */
static pb_chunk *cut_to_peak(pb_blocks *b) {
  pb_chunk *c, *cut = NULL, **pp;
  settle_count(b);
  /* A thread faulting pages in may be in any chunk: none goes meanwhile
   * (the next look at the peak, trim or destroy gives them back).  One
   * making the next chunk holds nothing listed yet. */
  if (b->chunks == 0 || b->prefaulters > 0)
    return NULL;
  take_given_back(b); /* so that a listed chunk is on `ready` */
  for (pp = &b->chunk_list; (c = *pp) != NULL;) {
    /* Acquire: pairs with the giver's release of its last block, so
     * that the chunk is freed after everything its users wrote. */
    if (c->handed ==
            atomic_load_explicit(&c->back, memory_order_acquire) &&
        b->capacity - c->blocks >= b->peak) {
      *pp = c->next;
      c->next = cut;
      cut = c;
      b->chunks--;
      b->capacity -= c->blocks;
      atomic_store_explicit(&c->listed, CUT_MARK, memory_order_relaxed);
      if (b->current == c)
        b->current = NULL;
      if (b->carving == c) {
        b->carving = NULL;
        b->carve = b->carve_end = NULL;
        b->fault_next = NULL;
      }
    } else {
      pp = &c->next;
    }
  }
  /* The chunk made ahead for the next blocks goes too. */
  if (b->next_chunk != NULL) {
    b->next_chunk->next = cut;
    cut = b->next_chunk;
    b->next_chunk = NULL;
    b->next_fault = NULL;
  }
  if (cut != NULL)
    for (pp = &b->ready; (c = *pp) != NULL;) {
      if (atomic_load_explicit(&c->listed, memory_order_relaxed) == CUT_MARK)
        *pp = c->next_ready;
      else
        pp = &c->next_ready;
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
  bk->mutex_destroy(b->lock);
  b->lock = NULL;
}

/* Set once the kernel refused MADV_POPULATE_WRITE (before Linux 5.14):
 * nothing is faulted in ahead from then on. */
static atomic_int populate_unsupported;

/* Faults [from, from + HUGE_BYTES) in as a write would, leaving what it
 * holds (the cutting thread may be writing blocks there by now); 0 where
 * the kernel cannot. */
static int populate(char *from) {
#if PB_CAN_PREFAULT
  if (madvise(from, HUGE_BYTES, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
    atomic_store_explicit(&populate_unsupported, 1, memory_order_relaxed);
    return 0;
  }
  return 1;
#else
  (void)from;
  return 0;
#endif
}

/* Lock held: the next huge page to fault in ahead of the cutting, taken
 * (NULL: none left there). */
static char *page_to_fault(pb_blocks *b) {
  char *from = b->fault_next, *cutting;
  if (from != NULL) {
    /* Past the huge page being cut: its thread faults that one itself. */
    cutting = (char *)((uintptr_t)b->carve & ~(uintptr_t)(HUGE_BYTES - 1));
    if (from <= cutting)
      from = cutting + HUGE_BYTES;
    if (from < (char *)b->carving + BIG_BYTES) {
      b->fault_next = from + HUGE_BYTES;
      return from;
    }
    b->fault_next = NULL;
  }
  if (b->next_chunk != NULL &&
      b->next_fault < (char *)b->next_chunk + BIG_BYTES) {
    from = b->next_fault;
    b->next_fault += HUGE_BYTES;
    return from;
  }
  return NULL;
}

/* Lock held: the chunk being cut is in its last huge page and none is
 * made ahead: time to make the next. */
static int next_wanted(const pb_blocks *b) {
  return b->carving != NULL && b->carving->blocks == BIG_BLOCKS &&
         b->next_chunk == NULL && !b->reserving &&
         b->carve_end - b->carve <= (ptrdiff_t)HUGE_BYTES;
}

/* Lock held, blocks just cut: the threads with nothing to do may make
 * the next chunk now. */
static void want_next(pb_blocks *b) {
  if (PB_CAN_PREFAULT && next_wanted(b) &&
      !atomic_load_explicit(&b->fault_wanted, memory_order_relaxed))
    atomic_store_explicit(&b->fault_wanted, 1, memory_order_relaxed);
}

void *pb_blocks_get(pb_blocks *b, const pebble_backend *bk) {
  spare *s;
  pb_chunk *from = NULL, *fresh = NULL;
  char *made_fault = NULL;
  int big;
  bk->mutex_lock(b->lock);
  if ((s = take_spare(b, &from)) != NULL)
    from->handed++;
  /* in_use may still count blocks given back since the last settling:
   * settle before calling a new peak. */
  if (++b->in_use >= b->peak) {
    settle_count(b);
    if (b->in_use >= b->peak) { /* reached again: the peak is news */
      b->peak = b->in_use;
      b->peak_at = 0; /* stamped by the next decay look */
    }
  }
  big = b->chunks >= SMALL_CHUNKS;
  want_next(b);
  if (s == NULL && big && (fresh = b->next_chunk) != NULL) {
    /* Made ahead, some of its pages faulted in already. */
    made_fault = b->next_fault;
    b->next_chunk = NULL;
    b->next_fault = NULL;
  }
  bk->mutex_unlock(b->lock);
  if (s != NULL)
    return s;
  if (fresh == NULL)
    fresh = chunk_new(big); /* without the lock: it may fault pages in */
  bk->mutex_lock(b->lock);
  if (fresh == NULL) {
    b->in_use--;
  } else if ((s = take_spare(b, &from)) != NULL) {
    /* Another thread's chunk came first: use it, give this one back
     * (or keep it for next if it was made ahead). */
    from->handed++;
    if (made_fault != NULL && b->next_chunk == NULL) {
      b->next_chunk = fresh;
      b->next_fault = made_fault;
      fresh = NULL;
    }
  } else {
    fresh->next = b->chunk_list;
    b->chunk_list = fresh;
    b->chunks++;
    b->capacity += fresh->blocks;
    b->carving = fresh;
    b->carve = first_slot(fresh);
    b->carve_end = first_slot(fresh) + fresh->blocks * SLOT;
    if (fresh->blocks == BIG_BLOCKS && PB_CAN_PREFAULT) {
      /* Its first huge page is this thread's (it writes it now). */
      b->fault_next = made_fault != NULL ? made_fault
                                         : (char *)fresh + HUGE_BYTES;
      atomic_store_explicit(&b->fault_wanted, 1, memory_order_relaxed);
    } else {
      b->fault_next = NULL;
    }
    s = take_spare(b, &from);
    from->handed++;
    fresh = NULL;
  }
  bk->mutex_unlock(b->lock);
  if (fresh != NULL)
    free(fresh->base); /* a big chunk's address is not malloc's */
  return s;
}

size_t pb_blocks_get_some(pb_blocks *b, const pebble_backend *bk, void **out,
                          size_t n) {
  spare *s;
  pb_chunk *from = NULL;
  size_t got = 0;
  bk->mutex_lock(b->lock);
  while (got < n && (s = take_spare(b, &from)) != NULL) {
    from->handed++;
    out[got++] = s;
  }
  want_next(b);
  if (got > 0 && (b->in_use += got) >= b->peak) {
    settle_count(b);
    if (b->in_use >= b->peak) {
      b->peak = b->in_use;
      b->peak_at = 0;
    }
  }
  bk->mutex_unlock(b->lock);
  if (got > 0 || n == 0)
    return got;
  /* Nothing spare and nothing left to carve: a new chunk (the one-block
   * path makes it), then the rest from it. */
  if ((out[0] = pb_blocks_get(b, bk)) == NULL)
    return 0;
  return 1 + (n > 1 ? pb_blocks_get_some(b, bk, out + 1, n - 1) : 0);
}

/* Without the lock: an application releasing a burst of futures would
 * otherwise take it once per block.  Stacks that are only ever taken
 * whole have no ABA hazard. */
void pb_blocks_put(pb_blocks *b, const pebble_backend *bk, void *block) {
  spare *s = block, *top;
  pb_chunk *c = *(pb_chunk **)(void *)((char *)block - FRONT), *ctop, *cut;
  top = atomic_load_explicit(&c->returned, memory_order_relaxed);
  do
    s->next = top;
  while (!atomic_compare_exchange_weak(&c->returned, &top, s));
  if (!atomic_load(&c->listed) && !atomic_exchange(&c->listed, 1)) {
    ctop = atomic_load_explicit(&b->given_back, memory_order_relaxed);
    do
      c->next_ready = ctop;
    while (!atomic_compare_exchange_weak_explicit(
        &b->given_back, &ctop, c, memory_order_release, memory_order_relaxed));
  }
  /* The last touch of c: once every block is back it may be freed. */
  atomic_fetch_add_explicit(&c->back, 1, memory_order_release);
  /* One count for both: the settling of in_use and the looks at the
   * clock. */
  if ((atomic_fetch_add_explicit(&b->returned, 1, memory_order_release) + 1) %
          DECAY_EVERY !=
      0)
    return;
  cut = NULL;
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

int pb_blocks_prefault(pb_blocks *b, const pebble_backend *bk) {
  char *page;
  pb_chunk *made;
  if (!PB_CAN_PREFAULT ||
      !atomic_load_explicit(&b->fault_wanted, memory_order_relaxed) ||
      atomic_load_explicit(&populate_unsupported, memory_order_relaxed))
    return 0;
  bk->mutex_lock(b->lock);
  if ((page = page_to_fault(b)) != NULL) {
    b->prefaulters++;
    bk->mutex_unlock(b->lock);
    page = populate(page) ? page : NULL;
    bk->mutex_lock(b->lock);
    b->prefaulters--;
    bk->mutex_unlock(b->lock);
    return page != NULL;
  }
  if (!next_wanted(b)) {
    /* Nothing until the cutting reaches the last huge page (the cutting
     * thread says when: want_next). */
    atomic_store_explicit(&b->fault_wanted, 0, memory_order_relaxed);
    bk->mutex_unlock(b->lock);
    return 0;
  }
  b->reserving = 1;
  bk->mutex_unlock(b->lock);
  made = chunk_new(1); /* its header faults its first huge page in */
  bk->mutex_lock(b->lock);
  b->reserving = 0;
  if (made != NULL && made->blocks == BIG_BLOCKS && b->next_chunk == NULL) {
    b->next_chunk = made;
    b->next_fault = (char *)made + HUGE_BYTES;
    made = NULL;
  }
  bk->mutex_unlock(b->lock);
  if (made != NULL)
    free(made->base);
  return 1;
}
