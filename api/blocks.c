/*
 * blocks.c -- a reuse list for the one fixed-size block a pool task needs
 * (its future, the task and a small argument).
 *
 * Scheduling allocates one such block per task and the application frees
 * it when it releases the future, often tens of thousands at a time.
 * Handing them back to malloc makes the allocator trim its heap after a
 * burst and fault the pages in again for the next one, which costs more
 * than the task itself.  So freed blocks are kept for reuse, but never
 * more than the peak of blocks in use at once: the footprint stays what
 * the application needed at its busiest.  That peak is halved (and the
 * spare blocks beyond it freed) once it has not been reached for about a
 * second (looked at as blocks come back, so an idle application keeps its
 * spares until its next burst); a destroyed pool gives back every spare
 * block, and pebble_shutdown() everything.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "internal.h"

#define DECAY_NS 1000000000u /* a peak older than this is halved */
#define DECAY_EVERY 1024u    /* frees between two looks at the clock */

typedef struct spare {
  struct spare *next;
} spare;

int pb_blocks_init(pb_blocks *b, const pebble_backend *bk) {
  b->head = NULL;
  b->cached = b->in_use = b->peak = 0;
  b->frees = 0;
  b->peak_at = 0;
  return bk->mutex_create(&b->lock);
}

static void free_list(void *list) {
  spare *s = list, *next;
  for (; s != NULL; s = next) {
    next = s->next;
    free(s);
  }
}

void pb_blocks_destroy(pb_blocks *b, const pebble_backend *bk) {
  if (b->lock == NULL)
    return;
  free_list(b->head);
  b->head = NULL;
  bk->mutex_destroy(b->lock);
  b->lock = NULL;
}

void *pb_blocks_get(pb_blocks *b, const pebble_backend *bk) {
  spare *s;
  bk->mutex_lock(b->lock);
  s = b->head;
  if (s != NULL) {
    b->head = s->next;
    b->cached--;
  }
  if (++b->in_use >= b->peak) { /* reached again: the peak is still news */
    b->peak = b->in_use;
    b->peak_at = 0; /* stamped by the next decay look */
  }
  bk->mutex_unlock(b->lock);
  if (s == NULL && (s = malloc(PB_BLOCK_SIZE)) == NULL) {
    bk->mutex_lock(b->lock);
    b->in_use--;
    bk->mutex_unlock(b->lock);
  }
  return s;
}

/* Lock held: cut the spare list to what the peak allows; returns the
 * blocks cut, to be freed without the lock. */
static spare *cut_to_peak(pb_blocks *b) {
  spare *cut = NULL, *s;
  while (b->head != NULL && b->cached + b->in_use > b->peak) {
    s = b->head;
    b->head = s->next;
    b->cached--;
    s->next = cut;
    cut = s;
  }
  return cut;
}

void pb_blocks_put(pb_blocks *b, const pebble_backend *bk, void *block) {
  spare *s = block, *cut = NULL;
  bk->mutex_lock(b->lock);
  b->in_use--;
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
  if (b->cached + b->in_use < b->peak) {
    s->next = b->head;
    b->head = s;
    b->cached++;
    s = NULL;
  }
  bk->mutex_unlock(b->lock);
  free(s);
  free_list(cut);
}

void pb_blocks_trim(pb_blocks *b, const pebble_backend *bk) {
  spare *cut;
  bk->mutex_lock(b->lock);
  b->peak = b->in_use;
  b->peak_at = 0;
  cut = cut_to_peak(b);
  bk->mutex_unlock(b->lock);
  free_list(cut);
}
