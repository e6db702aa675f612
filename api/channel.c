/* SPDX-License-Identifier: Apache-2.0 */
/*
 * channel.c -- worker messages on a process's channel: the parent's
 * incremental reader and the child's sender.  See message.c for the
 * format and its checks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void reset(pb_reader *r) {
  r->header_got = 0;
  r->header_unchecked = 0;
  r->summed = 0;
  r->sum_got = 0;
  r->payload = NULL;
  r->mapped = 0;
  r->payload_got = 0;
  r->payload_cap = 0;
}

void pb_reader_free(pb_reader *r) {
  if (r->payload != r->notice && r->payload != r->small)
    pb_result_free(r->payload, (size_t)r->header.size, r->mapped);
  free(r->buf);
  r->buf = NULL;
  r->buf_pos = r->buf_len = 0;
  r->drained = 0;
  reset(r);
}

/* A large payload is faulted in at once rather than page by page. */
#define PB_PREFAULT_MIN ((size_t)1 << 20)

/* The memory for a payload grows with the bytes that arrive: it starts at
 * this much (or the announced size, if smaller) and doubles, up to the
 * announced size.  A header alone, which anything can forge, commits
 * next to nothing; a payload that does come costs at most one copy of
 * it in reallocations (large blocks are moved by remapping, not copied,
 * on most systems). */
#define PB_PAYLOAD_FIRST ((size_t)64 << 10)

/* Room for more of the payload: the block (one byte longer, for the NUL)
 * doubles, capped at the announced size. */
static int grow_payload(pb_reader *r, char *why, size_t whylen) {
  size_t size = (size_t)r->header.size, cap = r->payload_cap;
  char *p;
  cap = cap < PB_PAYLOAD_FIRST ? PB_PAYLOAD_FIRST
                               : (cap <= size / 2 ? cap * 2 : size);
  if (cap > size)
    cap = size;
  p = realloc(r->payload, cap + 1); /* cap < SIZE_MAX: pb_msg_check */
  if (p == NULL) {
    snprintf(why, whylen,
             "out of memory for a message of %zu bytes (%zu received)", size,
             r->payload_got);
    return PEBBLE_ENOMEM;
  }
  if (cap - r->payload_cap >= PB_PREFAULT_MIN)
    pb_prefault(p + r->payload_cap, cap - r->payload_cap);
  r->payload = p;
  r->payload_cap = cap;
  return PEBBLE_OK;
}

/* A result sent as a memory file: its descriptor came with the header's
 * bytes (the backend kept it); the file becomes the payload. */
static int map_shared(pb_reader *r, const pebble_backend *bk,
                      pebble_bk_proc *proc, char *why, size_t whylen) {
  intptr_t handle;
  void *addr;
  int rc;
  if (!PB_BK_HAS(bk, proc_take_handle) ||
      bk->proc_take_handle(proc, &handle) != PEBBLE_OK) {
    snprintf(why, whylen, "the worker said its result is a memory file, "
                          "but no file came with it");
    return PEBBLE_EPROTO;
  }
  rc = pb_shared_map(handle, (size_t)r->header.size + 1, &addr, why, whylen);
  if (rc != PEBBLE_OK)
    return rc;
  r->payload = addr;
  r->payload[r->header.size] = '\0'; /* a private page: ours to write */
  r->mapped = 1;
  r->payload_got = r->payload_cap = (size_t)r->header.size;
  return PEBBLE_OK;
}

/* A task notice names its task in the payload and the tag alike. */
static int notice_tag_ok(const pb_reader *r) {
  uint64_t id;
  memcpy(&id, r->payload, sizeof id); /* size checked: pb_msg_check */
  return r->header.tag == pb_msg_tag(id);
}

int pb_reader_cut_short(const pb_reader *r, char *buf, size_t len) {
  if (r->header_got > 0 && r->header_got < sizeof r->header_buf) {
    snprintf(buf, len,
             "its message was cut short after %zu of the %zu bytes of its "
             "header",
             r->header_got, sizeof r->header_buf);
    return 1;
  }
  if (r->header_got == sizeof r->header_buf &&
      r->payload_got < (size_t)r->header.size) {
    snprintf(buf, len, "its message was cut short after %zu of %llu bytes",
             r->payload_got, (unsigned long long)r->header.size);
    return 1;
  }
  if (r->header_got == sizeof r->header_buf && r->summed &&
      r->sum_got < sizeof r->sum) {
    snprintf(buf, len,
             "its message was cut short after the %llu bytes of its result, "
             "in their checksum",
             (unsigned long long)r->header.size);
    return 1;
  }
  return 0;
}

/* The task the worker answers now. */
static uint64_t current_task(const pb_reader *r) {
  return r->task_id_live != NULL ? (uint64_t)atomic_load(r->task_id_live)
                                 : r->task_id;
}

/* A header just read: checked against the task the worker answers now;
 * a result file's descriptor is taken with it.  PEBBLE_OK, or *status. */
static int header_done(pb_reader *r, const pebble_backend *bk,
                       pebble_bk_proc *proc, size_t max_result, int *status,
                       char *why, size_t whylen) {
  *status =
      pb_msg_check(&r->header, max_result, current_task(r), why, whylen);
  if (*status == PEBBLE_OK && r->header.type == PB_MSG_RESULT_SHARED)
    *status = map_shared(r, bk, proc, why, whylen);
  if (*status == PEBBLE_OK && r->header.type == PB_MSG_RESULT_SUMMED) {
    r->summed = 1; /* its checksum follows the payload */
    r->header.type = PB_MSG_RESULT;
    pb_sum_init(&r->sum_run);
  }
  return *status;
}

/* A NUDGE carries nothing: it needs no turn after the ring's messages. */
static int plain_nudge(const pb_msg_header *h) {
  return h->magic == PB_MSG_MAGIC && h->version == PB_MSG_VERSION &&
         h->type == PB_MSG_NUDGE && h->code == 0 && h->size == 0 &&
         h->tag == pb_msg_tag(0);
}

static int header_good(const pb_reader *r, const pb_msg_header *h,
                       size_t max_result) {
  char why[8];
  return plain_nudge(h) || pb_msg_check(h, max_result, current_task(r), why,
                                        sizeof why) == PEBBLE_OK;
}

/* The header that starts k bytes further on, if its bytes are all in
 * (the header's own, then the buffer's): good, or not? */
static int good_from(const pb_reader *r, size_t k, size_t max_result) {
  enum { H = sizeof(pb_msg_header) };
  pb_msg_header h;
  unsigned char bytes[H];
  size_t avail = r->buf == NULL ? 0 : r->buf_len - r->buf_pos;
  size_t from_header = k < H ? H - k : 0, skip = k > H ? k - H : 0;
  if (skip > avail || from_header + (avail - skip) < H)
    return 0;
  memcpy(bytes, r->header_buf + (H - from_header), from_header);
  memcpy(bytes + from_header, r->buf + r->buf_pos + skip, H - from_header);
  memcpy(&h, bytes, H);
  return header_good(r, &h, max_result);
}

/* Byte i of what was read and not taken yet: the header's bytes, then
 * the buffer's. */
static unsigned char unread_byte(const pb_reader *r, size_t i) {
  return i < sizeof r->header_buf ? r->header_buf[i]
                                  : r->buf[r->buf_pos + i -
                                           sizeof r->header_buf];
}

/* A bad header that does not name the worker's task, and no good one
 * after it in what was read: are all these bytes someone else's?  They
 * are when every byte of the worker's own messages (but nudges) is taken:
 * the worker counts each on its page before it writes it, and the count
 * is loaded after the bytes were read.  Only the start of a nudge may
 * then be among them, at their end: that much is kept, as part of a
 * header (the rest of the nudge follows).  The others are dropped; 1 if
 * so.  A header that names the task is refused as the worker's own. */
static int drop_all_stray(pb_reader *r, const pb_msg_header *h) {
  enum { H = sizeof(pb_msg_header) };
  pb_msg_header nudge;
  unsigned char keep[H];
  size_t i, j, unread = H + (r->buf == NULL ? 0 : r->buf_len - r->buf_pos);
  if (h->tag == pb_msg_tag(current_task(r)) ||
      atomic_load(&r->ring_beside->chan_bytes) != r->own_taken)
    return 0; /* it may be the worker's own: refused */
  pb_msg_fill(&nudge, PB_MSG_NUDGE, 0, 0);
  nudge.tag = pb_msg_tag(0);
  for (j = H - 1; j > 0; j--) {
    for (i = 0; i < j && unread_byte(r, unread - j + i) ==
                             ((const unsigned char *)&nudge)[i];
         i++)
      ;
    if (i == j)
      break;
  }
  for (i = 0; i < j; i++)
    keep[i] = unread_byte(r, unread - j + i);
  memcpy(r->header_buf, keep, j);
  r->header_got = j;
  if (r->buf != NULL)
    r->buf_pos = r->buf_len;
  r->stray_dropped += unread - j;
  return 1;
}

/* A bad header beside a ring, where a worker's channel carries little but
 * whole messages of its own: if it is bad in itself (not a good header
 * refused for what came with it, which is the worker's own), and a good
 * header starts further on in what was read, the bytes before that one
 * were written by something else in the worker.  They are dropped, and
 * the header is read on from there.  1 if so.  With no good header after
 * it, the bytes are dropped only when none of the worker's own can be
 * among them (drop_all_stray); else they are refused as before, and end
 * the worker.  Nothing is dropped on a guess, nor waited for. */
static int drop_stray(pb_reader *r, size_t max_result) {
  enum { H = sizeof(pb_msg_header) };
  pb_msg_header h;
  size_t k, avail = r->buf == NULL ? 0 : r->buf_len - r->buf_pos;
  memcpy(&h, r->header_buf, H);
  if (r->ring_beside == NULL || header_good(r, &h, max_result))
    return 0;
  for (k = 1; k <= avail && !good_from(r, k, max_result); k++)
    ;
  if (k > avail)
    return drop_all_stray(r, &h);
  if (k < H) {
    memmove(r->header_buf, r->header_buf + k, H - k);
    r->header_got = H - k;
  } else {
    r->header_got = 0;
    r->buf_pos += k - H;
  }
  r->stray_dropped += k;
  return 1;
}

/* Messages are read through a small buffer, so that one read brings a
 * header with its payload, or several small messages; a payload larger
 * than the buffer is read straight into its own memory.  A read that
 * returns less than asked means the channel is empty for now: the reader
 * then waits for the next readiness rather than reading again only to
 * hear EAGAIN (the waitset is level-triggered, so nothing is missed). */
enum pb_read_result pb_reader_step(pb_reader *r, const pebble_backend *bk,
                                   pebble_bk_proc *proc, size_t max_result,
                                   size_t *budget, int *status, char *why,
                                   size_t whylen) {
  if (r->header_unchecked) {
    r->header_unchecked = 0;
    if (header_done(r, bk, proc, max_result, status, why, whylen) !=
            PEBBLE_OK &&
        !drop_stray(r, max_result))
      return PB_READ_BAD;
  }
  for (;;) {
    unsigned char *dst;
    size_t want, avail, got = 0;
    uint64_t seen = 0;
    int header, trailer = 0, rc;

    if (r->eof)
      return PB_READ_EOF;
    header = r->header_got < sizeof r->header_buf;
    if (header) {
      dst = r->header_buf + r->header_got;
      want = sizeof r->header_buf - r->header_got;
    } else {
      if (r->payload == NULL &&
          (r->header.type == PB_MSG_STARTED ||
           r->header.type == PB_MSG_SKIPPED ||
           r->header.type == PB_MSG_NUDGE) &&
          r->header.size < sizeof r->notice) { /* pb_msg_check: it is */
        r->payload = r->notice;
        r->payload_cap = (size_t)r->header.size;
      } else if (r->payload == NULL && r->header.type == PB_MSG_RESULT &&
                 r->header.size < sizeof r->small) {
        r->payload = r->small; /* lent to the outcome: result_borrowed */
        r->payload_cap = (size_t)r->header.size;
      }
      if (r->payload == NULL && /* the first room, also for no payload */
          (*status = grow_payload(r, why, whylen)) != PEBBLE_OK)
        return PB_READ_BAD;
      if (r->payload_got == (size_t)r->header.size && r->summed &&
          r->sum_got < sizeof r->sum) {
        trailer = 1;
        dst = r->sum + r->sum_got;
        want = sizeof r->sum - r->sum_got;
      } else if (r->payload_got == (size_t)r->header.size) {
        r->payload[r->payload_got] = '\0';
        if (r->summed) {
          uint64_t sum;
          memcpy(&sum, r->sum, sizeof sum);
          if (sum != pb_sum_end(&r->sum_run)) {
            *status = PEBBLE_EPROTO;
            snprintf(why, whylen,
                     "the worker's result of %zu bytes does not match its "
                     "checksum: something else in the worker process wrote "
                     "to its channel",
                     r->payload_got);
            return PB_READ_BAD;
          }
        }
        if ((r->header.type == PB_MSG_STARTED ||
             r->header.type == PB_MSG_SKIPPED) &&
            !notice_tag_ok(r)) {
          *status = PEBBLE_EPROTO;
          snprintf(why, whylen,
                   "the worker sent a task notice with a tag that is not "
                   "its task's: something else in the worker process wrote "
                   "to its channel");
          return PB_READ_BAD;
        }
        /* The channel's, as the worker counts them: nudges not. */
        if (r->ring == NULL && !plain_nudge(&r->header))
          r->own_taken += sizeof r->header_buf + r->sum_got +
                          (r->mapped ? 0 : r->payload_got);
        return PB_READ_MESSAGE;
      } else {
        if (r->payload_got == r->payload_cap &&
            (*status = grow_payload(r, why, whylen)) != PEBBLE_OK)
          return PB_READ_BAD;
        dst = (unsigned char *)r->payload + r->payload_got;
        want = r->payload_cap - r->payload_got;
      }
    }
    avail = r->buf_len - r->buf_pos;
    if (avail > 0) { /* what the last read brought */
      got = want < avail ? want : avail;
      memcpy(dst, r->buf + r->buf_pos, got);
      r->buf_pos += got;
    } else {
      size_t ask;
      int direct = !header && want >= PB_READER_BUF;
      if (r->drained) {
        r->drained = 0;
        return PB_READ_AGAIN;
      }
      if (*budget == 0)
        return PB_READ_AGAIN;
      if (!direct && r->buf == NULL &&
          (r->buf = malloc(PB_READER_BUF)) == NULL) {
        *status = PEBBLE_ENOMEM;
        snprintf(why, whylen, "out of memory reading a message");
        return PB_READ_BAD;
      }
      ask = direct ? want : PB_READER_BUF;
      if (ask > *budget)
        ask = *budget;
      if (r->ring != NULL) {
        rc = pb_ring_read(r->ring, direct ? dst : r->buf, ask, &got);
        if (rc != PEBBLE_OK) {
          *status = rc;
          snprintf(why, whylen, "the worker's outcome ring says it holds "
                                "more than it can");
          return PB_READ_BAD;
        }
        if (got == 0)
          return PB_READ_AGAIN; /* looked at again each time: no drained */
        *budget = *budget > got ? *budget - got : 0;
        if (!direct) {
          r->buf_pos = 0;
          r->buf_len = got;
          continue;
        }
        goto got_bytes;
      }
      if (r->ring_beside != NULL)
        seen = atomic_load(&r->ring_beside->ring_tail);
      rc = bk->proc_read(proc, direct ? dst : r->buf, ask, &got);
      if (r->ring_beside != NULL)
        r->ring_seen = seen;
      if (rc == PEBBLE_ENOTREADY)
        return PB_READ_AGAIN;
      if (rc != PEBBLE_OK || got == 0) {
        r->eof = 1;
        return PB_READ_EOF;
      }
      *budget -= got;
      if (got < ask && !direct) /* a large payload: read on while it comes */
        r->drained = 1;
      if (!direct) {
        r->buf_pos = 0;
        r->buf_len = got;
        continue;
      }
    }
  got_bytes:
    if (header) {
      r->header_got += got;
      if (r->header_got < sizeof r->header_buf)
        continue;
      memcpy(&r->header, r->header_buf, sizeof r->header);
      if (r->hold_headers && !plain_nudge(&r->header)) {
        r->header_unchecked = 1;
        return PB_READ_HEADER;
      }
      if (header_done(r, bk, proc, max_result, status, why, whylen) !=
          PEBBLE_OK) {
        if (drop_stray(r, max_result))
          continue;
        return PB_READ_BAD;
      }
      /* The payload's memory comes as its bytes do (grow_payload). */
    } else if (trailer) {
      r->sum_got += got;
    } else {
      if (r->summed) /* just read: still in the cache */
        pb_sum_add(&r->sum_run, dst, got);
      r->payload_got += got;
    }
  }
}

int pb_reader_peek_started(const pb_reader *r, uint64_t *id) {
  pb_msg_header h;
  size_t have = r->buf_len - r->buf_pos;
  if (r->buf == NULL || r->header_got != 0 || r->header_unchecked ||
      have < sizeof h + sizeof *id)
    return 0;
  memcpy(&h, r->buf + r->buf_pos, sizeof h);
  if (h.magic != PB_MSG_MAGIC || h.version != PB_MSG_VERSION ||
      h.type != PB_MSG_STARTED || h.code != 0 ||
      (h.size != sizeof *id && h.size != 2 * sizeof *id) ||
      have < sizeof h + (size_t)h.size)
    return 0;
  memcpy(id, r->buf + r->buf_pos + sizeof h, sizeof *id);
  return h.tag == pb_msg_tag(*id);
}

void pb_reader_outcome(pb_reader *r, pb_outcome *o) {
  memset(o, 0, sizeof *o);
  if (r->payload == r->notice) { /* a notice: nothing to hand over */
    o->state = PEBBLE_FAILED;
    reset(r);
    return;
  }
  switch (r->header.type) {
  case PB_MSG_RESULT:
  case PB_MSG_RESULT_SHARED:
    o->state = PEBBLE_DONE;
    o->status = PEBBLE_OK;
    o->result = r->payload;
    o->result_borrowed = r->payload == r->small;
    o->result_size = (size_t)r->header.size;
    o->result_mapped = r->mapped;
    o->result_type = r->header.code; /* checked by pb_msg_check */
    break;
  case PB_MSG_FAILURE:
    o->state = PEBBLE_FAILED;
    o->status = PEBBLE_ETASK;
    o->task_code = r->header.code;
    o->message = r->payload;
    break;
  default: /* PB_MSG_ERROR: checked to be ETOOBIG or ENOMEM */
    o->state = PEBBLE_FAILED;
    o->status = r->header.code;
    o->message = r->payload;
    break;
  }
  reset(r);
}

int pb_send_outcome(const pebble_backend *bk, pebble_bk_chan *chan,
                    pebble_ctx *ctx, int ret, const void *after,
                    size_t after_len) {
  pb_msg_header h;
  const void *payload;
  if (ctx->result_error != PEBBLE_OK) {
    pb_msg_fill(&h, PB_MSG_ERROR, ctx->result_error, strlen(ctx->message));
    h.tag = pb_msg_tag(ctx->future_id);
    payload = ctx->message;
  } else if (ret != 0) {
    if (!ctx->has_message)
      snprintf(ctx->message, sizeof ctx->message,
               "the task failed with code %d", ret);
    pb_msg_fill(&h, PB_MSG_FAILURE, ret, strlen(ctx->message));
    h.tag = pb_msg_tag(ctx->future_id);
    payload = ctx->message;
  } else {
    /* A result in a memory file goes as the file, once sealed; if it
     * cannot be sealed, its bytes go through the channel. */
    if (ctx->result_handle >= 0 && PB_BK_HAS(bk, chan_send_handle) &&
        pb_shared_seal(ctx->result_handle) == PEBBLE_OK) {
      unsigned char buf[sizeof h + 2 * sizeof h]; /* and a notice */
      pb_msg_fill(&h, PB_MSG_RESULT_SHARED, ctx->result_type,
                  ctx->result_size);
      h.tag = pb_msg_tag(ctx->future_id);
      if (after_len > sizeof buf - sizeof h)
        return PEBBLE_EDIED; /* a notice is never that long */
      memcpy(buf, &h, sizeof h);
      if (after_len > 0)
        memcpy(buf + sizeof h, after, after_len);
      return pb_ring_send(bk, chan, buf, sizeof h + after_len,
                          after_len > 0 ? 2 : 1, ctx->result_handle);
    }
    pb_msg_fill(&h, PB_MSG_RESULT, ctx->result_type, ctx->result_size);
    h.tag = pb_msg_tag(ctx->future_id);
    payload = ctx->result;
  }
  return pb_chan_send_then(bk, chan, &h, payload, after, after_len);
}

/* Small messages go out whole: header and payload (and what follows, if
 * it fits) together in a buffer on the stack, in one write (which a pipe
 * keeps whole up to 4 KiB) or through a pool worker's outcome ring
 * (pb_ring_send); larger ones in several writes (send_in_parts). */
#define PB_SEND_BUF 4096
/* The most of a larger result one write sends: the checksum of the last
 * piece, taken after its write, then delays the rest little (64 KiB
 * round trips took 9 % longer than without a checksum, 15 % with pieces
 * of 64 KiB). */
#define PB_SUM_PIECE ((size_t)16 << 10)

/* A message too large for one write goes out in several, which
 * something else writing on the channel meanwhile could split: a result
 * carries its checksum after it (PB_MSG_RESULT_SUMMED), taken a piece at
 * a time once the piece is written (while the parent reads it).  Its last
 * few KiB go in one write with the checksum and what follows, so that the
 * parent is not woken once more for those. */
static int send_in_parts(const pebble_backend *bk, pebble_bk_chan *chan,
                         const pb_msg_header *h, const void *payload,
                         const void *after, size_t after_len) {
  pb_msg_header whole = *h;
  const unsigned char *p = payload;
  unsigned char last[PB_SEND_BUF];
  size_t size = (size_t)h->size, tail = 0, off, piece;
  uint64_t sum;
  int summed = h->type == PB_MSG_RESULT && after_len <= PB_SEND_BUF / 2;
  pb_sum run;
  if (summed) {
    whole.type = PB_MSG_RESULT_SUMMED;
    pb_sum_init(&run);
    tail = PB_SEND_BUF - sizeof sum - after_len;
    if (tail > size)
      tail = size;
  }
  pb_ring_note_chan(chan, after_len > 0 ? 2 : 1,
                    sizeof whole + size + (summed ? sizeof sum : 0) +
                        after_len);
  if (bk->chan_write_all(chan, &whole, sizeof whole) != PEBBLE_OK)
    return PEBBLE_EDIED;
  for (off = 0; off < size - tail; off += piece) {
    piece = size - tail - off < PB_SUM_PIECE ? size - tail - off
                                              : PB_SUM_PIECE;
    if (bk->chan_write_all(chan, p + off, piece) != PEBBLE_OK)
      return PEBBLE_EDIED;
    if (summed)
      pb_sum_add(&run, p + off, piece);
  }
  if (!summed)
    return after_len > 0 &&
                   bk->chan_write_all(chan, after, after_len) != PEBBLE_OK
               ? PEBBLE_EDIED
               : PEBBLE_OK;
  memcpy(last, p + off, tail);
  pb_sum_add(&run, last, tail);
  sum = pb_sum_end(&run);
  memcpy(last + tail, &sum, sizeof sum);
  if (after_len > 0)
    memcpy(last + tail + sizeof sum, after, after_len);
  return bk->chan_write_all(chan, last, tail + sizeof sum + after_len) ==
                 PEBBLE_OK
             ? PEBBLE_OK
             : PEBBLE_EDIED;
}

int pb_chan_send_then(const pebble_backend *bk, pebble_bk_chan *chan,
                      const pb_msg_header *h, const void *payload,
                      const void *after, size_t after_len) {
  if (h->size <= PB_SEND_BUF - sizeof *h - after_len &&
      after_len <= PB_SEND_BUF - sizeof *h) {
    unsigned char buf[PB_SEND_BUF];
    size_t n = sizeof *h + (size_t)h->size;
    memcpy(buf, h, sizeof *h);
    if (h->size > 0)
      memcpy(buf + sizeof *h, payload, (size_t)h->size);
    if (after_len > 0)
      memcpy(buf + n, after, after_len);
    return pb_ring_send(bk, chan, buf, n + after_len, after_len > 0 ? 2 : 1,
                        -1);
  }
  return send_in_parts(bk, chan, h, payload, after, after_len);
}

int pb_chan_send(const pebble_backend *bk, pebble_bk_chan *chan,
                 const pb_msg_header *h, const void *payload) {
  return pb_chan_send_then(bk, chan, h, payload, NULL, 0);
}

int pb_send_started(const pebble_backend *bk, pebble_bk_chan *chan,
                    uint64_t id, int with_time) {
  pb_msg_header h;
  uint64_t payload[2];
  payload[0] = id;
  payload[1] = with_time ? bk->now_ns() : 0;
  pb_msg_fill(&h, PB_MSG_STARTED, 0,
              (with_time ? 2 : 1) * sizeof(uint64_t));
  h.tag = pb_msg_tag(id);
  return pb_chan_send(bk, chan, &h, payload);
}

uint64_t pb_started_at(const pb_reader *r, const pebble_backend *bk,
                       uint64_t handed_over) {
  uint64_t now = bk->now_ns(), at;
  if (r->header.size != 2 * sizeof(uint64_t))
    return now; /* a worker that does not tell its clock */
  memcpy(&at, r->payload + sizeof(uint64_t), sizeof at);
  /* Both sides read the same monotonic clock; a time outside what is
   * possible (a different clock) is not trusted. */
  return at >= handed_over && at <= now ? at : now;
}

void pb_exit_info_fill(pebble_exit_info *info, const pebble_bk_exit *ex,
                       long pid, int killed_by_library) {
  memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
  info->pid = pid;
  info->status_known = ex->status_known;
  info->exited = ex->exited;
  info->exit_code = ex->exit_code;
  info->signal = ex->signal;
  info->core_dumped = ex->core_dumped;
  info->killed_by_library = killed_by_library;
}

/* `where` follows the process id: "" here, " on host H" for a worker a
 * launcher started elsewhere. */
static char *exit_message_at(const pebble_exit_info *x, const char *what,
                             long pid, const char *where) {
  if (!x->status_known)
    return pb_format("%s %ld%s ended before returning a result; its exit "
                     "status is unknown (reaped elsewhere, or SIGCHLD is "
                     "ignored)",
                     what, pid, where);
  if (x->signal != 0) {
    char how[96];
    pb_crash_phrase(how, sizeof how, x->signal);
    return pb_format("%s %ld%s %s%s%s", what, pid, where, how,
                     x->core_dumped ? ", core dumped" : "",
                     x->killed_by_library ? ", sent by Pebble" : "");
  }
  return pb_format("%s %ld%s exited with code %d before returning a result",
                   what, pid, where, x->exit_code);
}

char *pb_exit_message(const pebble_exit_info *x, const char *what) {
  return exit_message_at(x, what, x->pid, "");
}

/* A worker started through a launcher is described by its supervisor's
 * report (its host and process id there), or, without one, as the
 * launcher that failed. */
static char *exit_message_proc(const pebble_exit_info *x, const char *what,
                               const pebble_backend *bk,
                               pebble_bk_proc *proc) {
  char host[256] = "", where[300];
  long pid = 0;
  int rc = PB_BK_HAS(bk, proc_remote) && proc != NULL
               ? bk->proc_remote(proc, host, sizeof host, &pid)
               : PEBBLE_ENOTSUP;
  if (rc == PEBBLE_OK) {
    snprintf(where, sizeof where, " on host %s", host);
    return exit_message_at(x, what, pid, where);
  }
  if (rc == PEBBLE_ENOTREADY || rc == PEBBLE_ETIMEDOUT) {
    char *m, *both;
    /* Where the worker ran, if its supervisor said so before the end. */
    if (host[0] != '\0')
      snprintf(where, sizeof where, " (of remote worker %ld on host %s)",
               pid, host);
    else
      snprintf(where, sizeof where, " (of a remote worker)");
    m = exit_message_at(x, "launcher process", x->pid, where);
    if (m == NULL)
      return NULL;
    both = pb_format("%s; no report came from the remote worker (%s)%s", m,
                     rc == PEBBLE_ETIMEDOUT
                         ? "its launcher said nothing for longer than "
                           "allowed (the start bound before the worker's "
                           "first word, three heartbeat intervals after it: "
                           "the pool's launcher_start_timeout and "
                           "launcher_heartbeat, or "
                           "PEBBLE_LAUNCHER_START_TIMEOUT and "
                           "PEBBLE_LAUNCHER_HEARTBEAT): the host or the "
                           "network is lost, and the launcher was killed"
                         : "the launcher failed, or lost its connection",
                     x->status_known && x->exited && x->exit_code == 127
                         ? "; code 127: the launcher command or the worker "
                           "program was not found"
                         : "");
    if (both == NULL)
      return m;
    free(m);
    return both;
  }
  return pb_exit_message(x, what);
}

char *pb_exit_message_cut(const pebble_exit_info *x, const char *what,
                          const pb_reader *r, const pebble_backend *bk,
                          pebble_bk_proc *proc) {
  char cut[128];
  char *m = exit_message_proc(x, what, bk, proc), *both;
  if (m == NULL || !pb_reader_cut_short(r, cut, sizeof cut))
    return m;
  both = pb_format("%s; %s", m, cut);
  if (both == NULL)
    return m;
  free(m);
  return both;
}
