/* SPDX-License-Identifier: Apache-2.0 */
/*
 * message.c -- the worker message format.
 *
 * A worker sends one message per task: a fixed header (magic, version,
 * type, code, payload size) and the payload.  The parent checks every
 * field before trusting the size, so a worker that sends garbage or a size
 * that does not fit is stopped instead of driving an allocation.  Even a
 * size that passes only bounds the payload: its memory grows with the
 * bytes that arrive (channel.c), never with what a header announces.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Failure and error messages are short texts; anything larger is garbage. */
#define PB_TEXT_PAYLOAD_MAX (64u * 1024u)

void pb_msg_fill(pb_msg_header *h, enum pb_msg_type type, int32_t code,
                 uint64_t size) {
  memset(h, 0, sizeof *h);
  h->magic = PB_MSG_MAGIC;
  h->version = PB_MSG_VERSION;
  h->type = (uint16_t)type;
  h->code = code;
  h->size = size;
}

/* Whether h carries the tag its type needs.  Task notices are compared
 * with the id they carry once read (channel.c); unknown types are refused
 * below. */
static int tag_ok(const pb_msg_header *h, uint64_t task_id) {
  switch (h->type) {
  case PB_MSG_RESULT:
  case PB_MSG_RESULT_SUMMED:
  case PB_MSG_RESULT_SHARED:
  case PB_MSG_FAILURE:
  case PB_MSG_ERROR:
    return h->tag == pb_msg_tag(task_id);
  case PB_MSG_INIT_FAILED:
  case PB_MSG_NUDGE:
    return h->tag == pb_msg_tag(0);
  default:
    return 1;
  }
}

/* Fletcher's sums over 64-bit words, in four lanes (about as fast as
 * the memory is read): bytes moved, added or changed change them. */
static void sum_turn(pb_sum *s, const unsigned char *b) {
  uint64_t w;
  size_t i;
  for (i = 0; i < 4; i++) {
    memcpy(&w, b + 8 * i, sizeof w);
    s->a[i] += w;
    s->c[i] += s->a[i];
  }
}

void pb_sum_init(pb_sum *s) {
  size_t i;
  for (i = 0; i < 4; i++) {
    s->a[i] = i + 1;
    s->c[i] = 0;
  }
  s->total = 0;
  s->part_len = 0;
}

void pb_sum_add(pb_sum *s, const void *p, size_t n) {
  const unsigned char *b = p;
  s->total += n;
  if (s->part_len > 0) {
    size_t take = sizeof s->part - s->part_len;
    if (take > n)
      take = n;
    memcpy(s->part + s->part_len, b, take);
    s->part_len += take;
    b += take;
    n -= take;
    if (s->part_len < sizeof s->part)
      return;
    sum_turn(s, s->part);
    s->part_len = 0;
  }
  for (; n >= sizeof s->part; b += sizeof s->part, n -= sizeof s->part)
    sum_turn(s, b);
  memcpy(s->part, b, n);
  s->part_len = n;
}

uint64_t pb_sum_end(pb_sum *s) {
  uint64_t h = s->total;
  size_t i;
  memset(s->part + s->part_len, 0, sizeof s->part - s->part_len);
  sum_turn(s, s->part);
  for (i = 0; i < 4; i++)
    h = (h ^ s->a[i] ^ (s->c[i] << 1 | s->c[i] >> 63)) * 0x9e3779b97f4a7c15u;
  return h;
}

int pb_msg_check(const pb_msg_header *h, size_t max_size, uint64_t task_id,
                 char *msg, size_t msglen) {
  if (h->magic != PB_MSG_MAGIC) {
    snprintf(msg, msglen,
             "the worker sent a message with a bad magic number 0x%08x",
             (unsigned)h->magic);
    return PEBBLE_EPROTO;
  }
  if (h->version != PB_MSG_VERSION) {
    snprintf(msg, msglen,
             "the worker speaks message version %u; this library speaks %u",
             (unsigned)h->version, PB_MSG_VERSION);
    return PEBBLE_EPROTO;
  }
  if (!tag_ok(h, task_id)) {
    snprintf(msg, msglen,
             "the worker sent a message that does not answer its task (tag "
             "0x%08x): something else in the worker process wrote to its "
             "channel",
             (unsigned)h->tag);
    return PEBBLE_EPROTO;
  }
  switch (h->type) {
  case PB_MSG_RESULT:
  case PB_MSG_RESULT_SUMMED:
  case PB_MSG_RESULT_SHARED:
    if (h->size > max_size) {
      snprintf(msg, msglen,
               "the result of %llu bytes is larger than the maximum message "
               "size of %zu bytes",
               (unsigned long long)h->size, max_size);
      return PEBBLE_ETOOBIG;
    }
    /* With the maximum at SIZE_MAX: the result and its NUL must fit. */
    if (h->size >= SIZE_MAX) {
      snprintf(msg, msglen,
               "the result of %llu bytes is larger than this process can "
               "hold",
               (unsigned long long)h->size);
      return PEBBLE_ETOOBIG;
    }
    if (h->code < 0 || h->code > PB_VALUE_TYPE_MAX) {
      snprintf(msg, msglen, "the worker sent a result of unknown type %d",
               (int)h->code);
      return PEBBLE_EPROTO;
    }
    return PEBBLE_OK;
  case PB_MSG_ERROR:
    /* Only errors a worker can meet while producing its result. */
    if (h->code != PEBBLE_ETOOBIG && h->code != PEBBLE_ENOMEM &&
        h->code != PEBBLE_ENOTFOUND) {
      snprintf(msg, msglen, "the worker sent an unexpected error code %d",
               (int)h->code);
      return PEBBLE_EPROTO;
    }
    /* fall through */
  case PB_MSG_FAILURE:
  case PB_MSG_INIT_FAILED:
    if (h->size > PB_TEXT_PAYLOAD_MAX) {
      snprintf(msg, msglen,
               "the worker sent an error text of %llu bytes (at most %u)",
               (unsigned long long)h->size, PB_TEXT_PAYLOAD_MAX);
      return PEBBLE_EPROTO;
    }
    return PEBBLE_OK;
  case PB_MSG_NUDGE:
    if (h->size != 0 || h->code != 0) {
      snprintf(msg, msglen, "the worker sent a nudge of %llu bytes with "
                            "code %d",
               (unsigned long long)h->size, (int)h->code);
      return PEBBLE_EPROTO;
    }
    return PEBBLE_OK;
  case PB_MSG_STARTED:
  case PB_MSG_SKIPPED:
    /* A STARTED notice may carry the worker's clock after the id
     * (PB_TASK_TELL_START_AT). */
    if ((h->size != sizeof(uint64_t) &&
         (h->type != PB_MSG_STARTED || h->size != 2 * sizeof(uint64_t))) ||
        h->code != 0) {
      snprintf(msg, msglen,
               "the worker sent a task notice of %llu bytes with code %d",
               (unsigned long long)h->size, (int)h->code);
      return PEBBLE_EPROTO;
    }
    return PEBBLE_OK;
  case PB_MSG_PAGE:
    if (h->size != 0 || h->code != 0) {
      snprintf(msg, msglen,
               "the worker sent a page message of %llu bytes with code %d",
               (unsigned long long)h->size, (int)h->code);
      return PEBBLE_EPROTO;
    }
    return PEBBLE_OK;
  default:
    snprintf(msg, msglen, "the worker sent a message of unknown type %u",
             (unsigned)h->type);
    return PEBBLE_EPROTO;
  }
}
