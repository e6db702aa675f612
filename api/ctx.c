/* SPDX-License-Identifier: Apache-2.0 */
/* ctx.c -- what a running task sees: its result, its failure, its stop. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void pb_ctx_init(pebble_ctx *ctx, atomic_int *stop, size_t max_message,
                 uint64_t future_id, uint64_t seq) {
  /* Not the 1 KiB message buffer: it is read only once written. */
  ctx->result = NULL;
  ctx->result_size = 0;
  ctx->result_handle = -1;
  ctx->shared_ok = 0;
  ctx->result_error = 0;
  ctx->result_type = PB_VALUE_BYTES;
  ctx->has_message = 0;
  ctx->message[0] = '\0';
  ctx->stop = stop;
  ctx->max_message = max_message;
  ctx->future_id = future_id;
  ctx->seq = seq;
}

void pb_ctx_free_result(pebble_ctx *ctx) {
  if (ctx->result_handle >= 0) {
    pb_shared_unmap(ctx->result, ctx->result_size + 1);
    pb_shared_close(ctx->result_handle);
    ctx->result_handle = -1;
  } else if (ctx->result != ctx->small.bytes) {
    free(ctx->result);
  }
  ctx->result = NULL;
  ctx->result_size = 0;
}

void pb_ctx_own_result(pebble_ctx *ctx) {
  void *p;
  if (ctx->result != ctx->small.bytes)
    return;
  if ((p = malloc(ctx->result_size + 1)) == NULL) {
    ctx->result_error = PEBBLE_ENOMEM;
    snprintf(ctx->message, sizeof ctx->message,
             "out of memory for a result of %zu bytes", ctx->result_size);
    ctx->result = NULL;
    ctx->result_size = 0;
    return;
  }
  memcpy(p, ctx->small.bytes, ctx->result_size + 1);
  ctx->result = p;
}

void *pebble_result_alloc(pebble_ctx *ctx, size_t size) {
  char *p;
  if (ctx == NULL) {
    pb_error(PEBBLE_EINVAL, "pebble_result_alloc: ctx is NULL");
    return NULL;
  }
  if (size > ctx->max_message) {
    ctx->result_error = PEBBLE_ETOOBIG;
    snprintf(ctx->message, sizeof ctx->message,
             "the result of %zu bytes is larger than the maximum message "
             "size of %zu bytes",
             size, ctx->max_message);
    pb_error(PEBBLE_ETOOBIG, "%s", ctx->message);
    return NULL;
  }
  if (size == SIZE_MAX) { /* the maximum is SIZE_MAX: no room for the NUL */
    ctx->result_error = PEBBLE_ETOOBIG;
    snprintf(ctx->message, sizeof ctx->message,
             "the result of %zu bytes is larger than this process can hold",
             size);
    pb_error(PEBBLE_ETOOBIG, "%s", ctx->message);
    return NULL;
  }
  /* A large result of a process task goes to the parent as a memory
   * file (shared_result.c); the heap where that is not possible.  Not
   * one larger than the machine's memory: a file of any size can be
   * made, and faulting it in would wake the OOM killer where malloc
   * simply fails. */
  if (ctx->shared_ok && size >= PB_SHARED_RESULT_MIN &&
      size <= pb_physical_memory()) {
    intptr_t handle;
    void *mem;
    if (pb_shared_create(size + 1, &handle, &mem) == PEBBLE_OK) {
      p = mem;
      p[size] = '\0';
      pb_ctx_free_result(ctx);
      ctx->result = p;
      ctx->result_size = size;
      ctx->result_handle = handle;
      ctx->result_type = PB_VALUE_BYTES;
      return p;
    }
  }
  p = size < sizeof ctx->small.bytes ? (char *)ctx->small.bytes
                                      : malloc(size + 1);
  if (p == NULL) {
    ctx->result_error = PEBBLE_ENOMEM;
    snprintf(ctx->message, sizeof ctx->message,
             "out of memory for a result of %zu bytes", size);
    pb_error(PEBBLE_ENOMEM, "%s", ctx->message);
    return NULL;
  }
  p[size] = '\0'; /* so text results can be read as strings */
  pb_ctx_free_result(ctx); /* never the small place: it is not freed */
  ctx->result = p;
  ctx->result_size = size;
  ctx->result_type = PB_VALUE_BYTES;
  return p;
}

int pebble_result_set(pebble_ctx *ctx, const void *data, size_t size) {
  void *p;
  if (ctx == NULL || (data == NULL && size > 0))
    return pb_error(PEBBLE_EINVAL, "pebble_result_set: %s is NULL",
                    ctx == NULL ? "ctx" : "data");
  p = pebble_result_alloc(ctx, size);
  if (p == NULL)
    return ctx->result_error;
  if (size > 0)
    memmove(p, data, size); /* data may be the small result before */
  return PEBBLE_OK;
}

int pebble_fail(pebble_ctx *ctx, int code, const char *fmt, ...) {
  if (code == 0)
    code = 1;
  if (ctx != NULL && fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    ctx->has_message = 1;
  }
  return code;
}

int pebble_should_stop(pebble_ctx *ctx) {
  if (ctx == NULL || ctx->stop == NULL)
    return PEBBLE_OK;
  return atomic_load(ctx->stop);
}

uint64_t pebble_ctx_future_id(const pebble_ctx *ctx) {
  return ctx ? ctx->future_id : 0;
}
uint64_t pebble_ctx_seq(const pebble_ctx *ctx) { return ctx ? ctx->seq : 0; }

void pb_ctx_outcome(pebble_ctx *ctx, int ret, pb_outcome *o) {
  memset(o, 0, sizeof *o);
  if (ctx->result_error != PEBBLE_OK) {
    o->state = PEBBLE_FAILED;
    o->status = ctx->result_error;
    o->message = pb_strdup(ctx->message);
    pb_ctx_free_result(ctx);
  } else if (ret != 0) {
    o->state = PEBBLE_FAILED;
    o->status = PEBBLE_ETASK;
    o->task_code = ret;
    o->message = ctx->has_message
                     ? pb_strdup(ctx->message)
                     : pb_format("the task failed with code %d", ret);
    pb_ctx_free_result(ctx);
  } else {
    o->state = PEBBLE_DONE;
    o->status = PEBBLE_OK;
    o->result = ctx->result;
    o->result_borrowed = ctx->result == ctx->small.bytes;
    o->result_size = ctx->result_size;
    o->result_mapped = ctx->result_handle >= 0;
    o->result_type = ctx->result_type;
    if (ctx->result_handle >= 0) /* the mapping stays the result's */
      pb_shared_close(ctx->result_handle);
    ctx->result_handle = -1;
    ctx->result = NULL;
    ctx->result_size = 0;
  }
}
