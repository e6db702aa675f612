/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map.c -- applying a function to many items through a pool.
 *
 * Items are packed into chunks; each chunk is one pool task running
 * map_chunk(), which calls the user's function once per item and packs
 * every item's outcome into the chunk's result.  Reading a map decodes a
 * chunk's result once, when first asked.  A chunk that fails as a whole
 * (timeout, crash, cancel) gives its outcome to each of its items.
 *
 * Chunk argument:  u64 fn, u64 count, then per item: u64 size, bytes.
 *                  On spawn pools fn is 0 and the function goes by name
 *                  (u64 length, the name) before the items, since a
 *                  pointer means nothing in another program; map_chunk
 *                  itself is the registry's built-in "pebble.map_chunk".
 * Chunk result:    per item: i32 status, i32 code, u64 size, bytes (the
 *                  result, or the failure message with its NUL), padded
 *                  to 16 bytes so that every item's bytes are aligned as
 *                  malloc'd memory is.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define MAP_ALIGN 16
#define PADDED(n) (((n) + (MAP_ALIGN - 1)) & ~(size_t)(MAP_ALIGN - 1))

typedef struct item_view {
  int status;
  int code;
  const char *data;
  size_t size;
  const char *message;
} item_view;

struct pebble_map {
  pb_lib *lib;
  uint64_t gen;
  size_t count, chunk_size, nchunks;
  pebble_future **chunks;
  unsigned char *decoded; /* per chunk */
  item_view *items;
  pebble_bk_mutex *lock;
  pebble_cqueue *completed;
  size_t next_item, end_item; /* as-completed cursor within a chunk */
  size_t chunks_delivered;
};

/* ---- in the worker ---- */

typedef struct packed_outcome {
  int32_t status, code;
  uint64_t size;
  void *bytes; /* owned */
} packed_outcome;

int pb_map_chunk(pebble_ctx *ctx, const void *arg, size_t arg_size) {
  const unsigned char *p = arg, *end = p + arg_size;
  uint64_t fn_bits, count, i;
  pebble_task_fn fn;
  packed_outcome *outs;
  size_t total = 0, done = 0;
  unsigned char *res;
  int rc = 0;

  if (arg_size < 16)
    return pebble_fail(ctx, 1, "map chunk: malformed argument");
  memcpy(&fn_bits, p, 8);
  memcpy(&count, p + 8, 8);
  p += 16;
  memcpy(&fn, &fn_bits, sizeof fn < 8 ? sizeof fn : 8);
  if (fn_bits == 0) {
    char name[PB_NAME_BYTES_MAX];
    uint64_t len;
    if (end - p < 8)
      return pebble_fail(ctx, 1, "map chunk: malformed argument");
    memcpy(&len, p, 8);
    p += 8;
    if (len >= sizeof name || (uint64_t)(end - p) < len)
      return pebble_fail(ctx, 1, "map chunk: malformed argument");
    memcpy(name, p, (size_t)len);
    name[len] = '\0';
    p += len;
    if (pebble_lookup(name, &fn) != PEBBLE_OK)
      return pebble_fail(ctx, PEBBLE_ENOTFOUND,
                         "no task is registered as '%s' in the worker "
                         "program (register it before pebble_worker_main())",
                         name);
  }
  if (count > arg_size / 8)
    return pebble_fail(ctx, 1, "map chunk: malformed argument");
  outs = calloc(count ? (size_t)count : 1, sizeof *outs);
  if (outs == NULL)
    return pebble_fail(ctx, 1, "map chunk: out of memory");
  for (i = 0; i < count; i++, done++) {
    uint64_t size;
    void *item;
    pebble_ctx sub;
    int ret;
    if (pebble_should_stop(ctx) != PEBBLE_OK)
      break; /* the chunk is resolved already; nobody reads the rest */
    if ((size_t)(end - p) < 8)
      break;
    memcpy(&size, p, 8);
    p += 8;
    if ((uint64_t)(end - p) < size)
      break;
    /* A private, aligned copy: items are packed without padding. */
    item = malloc(size ? (size_t)size : 1);
    if (item == NULL) {
      rc = pebble_fail(ctx, 1, "map chunk: out of memory");
      break;
    }
    memcpy(item, p, (size_t)size);
    p += size;
    pb_ctx_init(&sub, ctx->stop, ctx->max_message, ctx->future_id,
                ctx->seq);
    ret = fn(&sub, item, (size_t)size);
    free(item);
    pb_ctx_own_result(&sub); /* outs[i] takes it over */
    if (sub.result_error != PEBBLE_OK) {
      outs[i].status = sub.result_error;
      outs[i].bytes = pb_strdup(sub.message);
      outs[i].size = strlen(sub.message) + 1;
      pb_ctx_free_result(&sub);
    } else if (ret != 0) {
      if (!sub.has_message)
        snprintf(sub.message, sizeof sub.message,
                 "the task failed with code %d", ret);
      outs[i].status = PEBBLE_ETASK;
      outs[i].code = ret;
      outs[i].bytes = pb_strdup(sub.message);
      outs[i].size = strlen(sub.message) + 1;
      pb_ctx_free_result(&sub);
    } else {
      outs[i].status = PEBBLE_OK;
      outs[i].bytes = sub.result;
      outs[i].size = sub.result_size;
    }
    total += 16 + PADDED((size_t)outs[i].size);
  }
  if (rc == 0) {
    if (done < count)
      rc = pebble_fail(ctx, 1, "map chunk: stopped or malformed argument");
    else if ((res = pebble_result_alloc(ctx, total)) != NULL) {
      for (i = 0; i < count; i++) {
        memcpy(res, &outs[i].status, 4);
        memcpy(res + 4, &outs[i].code, 4);
        memcpy(res + 8, &outs[i].size, 8);
        if (outs[i].size > 0)
          memcpy(res + 16, outs[i].bytes, (size_t)outs[i].size);
        memset(res + 16 + outs[i].size, 0,
               PADDED((size_t)outs[i].size) - (size_t)outs[i].size);
        res += 16 + PADDED((size_t)outs[i].size);
      }
    }
  }
  for (i = 0; i < count; i++)
    free(outs[i].bytes);
  free(outs);
  return rc;
}

/* ---- building ---- */

int pebble_map_options_init(pebble_map_options *o) {
  if (o == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_map_options_init: opts is NULL");
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->chunk_size = 1;
  o->chunk_timeout = PEBBLE_DEFAULT;
  return PEBBLE_OK;
}

static void map_free(pebble_map *M) {
  size_t i;
  for (i = 0; i < M->nchunks; i++)
    pebble_future_release(M->chunks[i]);
  pebble_cqueue_destroy(M->completed);
  if (M->lock != NULL)
    M->lib->bk->mutex_destroy(M->lock);
  free(M->chunks);
  free(M->decoded);
  free(M->items);
  free(M);
}

typedef struct chunk_buf {
  unsigned char *data;
  size_t size, cap, items;
} chunk_buf;

static int buf_put(chunk_buf *b, const void *p, size_t n) {
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    unsigned char *grown;
    while (cap < b->size + n)
      cap *= 2;
    grown = realloc(b->data, cap);
    if (grown == NULL)
      return PEBBLE_ENOMEM;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->size, p, n);
  b->size += n;
  return PEBBLE_OK;
}

/* by_name: the function's registered name, for spawn pools; else NULL. */
static int buf_start(chunk_buf *b, pebble_task_fn fn, const char *by_name) {
  uint64_t head[2] = {0, 0}, len;
  int rc;
  if (by_name == NULL)
    memcpy(&head[0], &fn, sizeof fn < 8 ? sizeof fn : 8);
  b->size = 0;
  b->items = 0;
  rc = buf_put(b, head, sizeof head);
  if (rc == PEBBLE_OK && by_name != NULL) {
    len = strlen(by_name);
    rc = buf_put(b, &len, sizeof len);
    if (rc == PEBBLE_OK)
      rc = buf_put(b, by_name, (size_t)len);
  }
  return rc;
}

static int grow_chunks(pebble_map *M, size_t want) {
  pebble_future **c;
  unsigned char *d;
  if (want <= M->nchunks)
    return PEBBLE_OK;
  c = realloc(M->chunks, want * sizeof *c);
  if (c == NULL)
    return PEBBLE_ENOMEM;
  M->chunks = c;
  d = realloc(M->decoded, want);
  if (d == NULL)
    return PEBBLE_ENOMEM;
  M->decoded = d;
  return PEBBLE_OK;
}

static int flush_chunk(pebble_pool *P, pebble_map *M, chunk_buf *b,
                       const pebble_task_options *o) {
  pebble_future *f;
  int rc;
  if (b->items == 0)
    return PEBBLE_OK;
  memcpy(b->data + 8, &(uint64_t){b->items}, 8);
  if (grow_chunks(M, M->nchunks + 1) != PEBBLE_OK)
    return pb_error(PEBBLE_ENOMEM, "out of memory starting a map");
  rc = pb_pool_schedule_internal(P, pb_map_chunk, b->data, b->size, o, NULL,
                                 M->nchunks, &f);
  if (rc != PEBBLE_OK)
    return rc;
  M->chunks[M->nchunks] = f;
  M->decoded[M->nchunks] = 0;
  M->nchunks++;
  return pebble_cqueue_add(M->completed, f);
}

int pebble_pool_map_source(pebble_pool *P, pebble_task_fn fn,
                           pebble_item_source_fn source, void *user_data,
                           const pebble_map_options *opts,
                           pebble_map **map) {
  pebble_map_options mo;
  pebble_task_options o;
  pebble_map *M;
  chunk_buf b;
  pebble_item it;
  char fn_name[PB_NAME_BYTES_MAX];
  const char *by_name = NULL;
  size_t i;
  int rc;

  if (map == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_map: map is NULL");
  *map = NULL;
  if (P == NULL || fn == NULL || source == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_map: %s is NULL",
                    P == NULL ? "pool" : fn == NULL ? "fn" : "source");
  if ((rc = pb_lib_check(P->lib, P->gen)) != PEBBLE_OK)
    return rc;
  pebble_map_options_init(&mo);
  if (opts != NULL) {
    if (opts->struct_size < sizeof(size_t) * 2 || opts->struct_size > 65536)
      return pb_error(PEBBLE_EINVAL,
                      "pebble_pool_map: options.struct_size is %zu; "
                      "initialise the options with pebble_map_options_init()",
                      opts->struct_size);
    memcpy(&mo, opts,
           opts->struct_size < sizeof mo ? opts->struct_size : sizeof mo);
  }
  if (mo.chunk_size == 0)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_map: chunk_size is 0");
  if (pb_pool_uses_spawn(P)) {
    if (pb_registry_name_of(fn, fn_name, sizeof fn_name) != PEBBLE_OK)
      return pb_error(PEBBLE_ENOTFOUND,
                      "pebble_pool_map: the function is not registered: "
                      "spawned workers find tasks by name (pebble_register)");
    by_name = fn_name;
  }
  if (mo.chunk_timeout < 0 && mo.chunk_timeout != PEBBLE_FOREVER &&
      mo.chunk_timeout != PEBBLE_DEFAULT)
    return pb_error(PEBBLE_EINVAL, "pebble_pool_map: negative chunk_timeout");
  pebble_task_options_init(&o);
  o.timeout = mo.chunk_timeout;

  M = calloc(1, sizeof *M);
  if (M == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory starting a map");
  M->lib = P->lib;
  M->gen = P->gen;
  M->chunk_size = mo.chunk_size;
  if (P->lib->bk->mutex_create(&M->lock) != PEBBLE_OK ||
      pebble_cqueue_create(&M->completed) != PEBBLE_OK) {
    map_free(M);
    return pb_error(PEBBLE_ESYSTEM, "cannot create the map's lock or queue");
  }
  memset(&b, 0, sizeof b);
  rc = buf_start(&b, fn, by_name);
  for (i = 0; rc == PEBBLE_OK; i++) {
    uint64_t size;
    memset(&it, 0, sizeof it);
    if (!source(user_data, i, &it))
      break;
    if (it.data == NULL && it.size > 0) {
      rc = pb_error(PEBBLE_EINVAL, "pebble_pool_map: item %zu has NULL data",
                    i);
      break;
    }
    size = it.size;
    if ((rc = buf_put(&b, &size, 8)) != PEBBLE_OK ||
        (rc = buf_put(&b, it.data, it.size)) != PEBBLE_OK) {
      rc = pb_error(PEBBLE_ENOMEM, "out of memory starting a map");
      break;
    }
    b.items++;
    M->count++;
    if (b.items == M->chunk_size) {
      rc = flush_chunk(P, M, &b, &o);
      if (rc == PEBBLE_OK)
        rc = buf_start(&b, fn, by_name);
    }
  }
  if (rc == PEBBLE_OK)
    rc = flush_chunk(P, M, &b, &o);
  free(b.data);
  if (rc == PEBBLE_OK &&
      (M->items = calloc(M->count ? M->count : 1, sizeof *M->items)) == NULL)
    rc = pb_error(PEBBLE_ENOMEM, "out of memory starting a map");
  if (rc != PEBBLE_OK) {
    char saved[512];
    snprintf(saved, sizeof saved, "%s", pebble_last_error());
    for (i = 0; i < M->nchunks; i++)
      pebble_future_cancel(M->chunks[i]);
    map_free(M);
    return pb_error(rc, "%s", saved);
  }
  pb_lib_hold(P->lib);
  *map = M;
  return PEBBLE_OK;
}

typedef struct array_src {
  const pebble_item *items;
  size_t count;
} array_src;

static int from_array(void *user, size_t index, pebble_item *item) {
  array_src *a = user;
  if (index >= a->count)
    return 0;
  *item = a->items[index];
  return 1;
}

int pebble_pool_map(pebble_pool *P, pebble_task_fn fn,
                    const pebble_item *items, size_t count,
                    const pebble_map_options *opts, pebble_map **map) {
  array_src a;
  if (items == NULL && count > 0) {
    if (map != NULL)
      *map = NULL;
    return pb_error(PEBBLE_EINVAL, "pebble_pool_map: items is NULL");
  }
  a.items = items;
  a.count = count;
  return pebble_pool_map_source(P, fn, from_array, &a, opts, map);
}

/* ---- reading ---- */

size_t pebble_map_count(const pebble_map *M) { return M ? M->count : 0; }

/* Fill the item views of chunk c, resolved (map lock held). */
static void decode(pebble_map *M, size_t c) {
  pebble_future *f = M->chunks[c];
  size_t first = c * M->chunk_size, n = M->count - first, i;
  const unsigned char *p, *end;
  const void *data = NULL;
  size_t size = 0;
  int st;
  if (n > M->chunk_size)
    n = M->chunk_size;
  st = pebble_future_get(f, PEBBLE_NOWAIT, &data, &size);
  p = data;
  end = p + size;
  for (i = 0; i < n; i++) {
    item_view *v = &M->items[first + i];
    uint64_t sz;
    if (st != PEBBLE_OK) {
      v->status = st;
      v->code = pebble_future_task_code(f);
      v->message = pebble_future_message(f);
      continue;
    }
    if (end - p < 16) {
      v->status = PEBBLE_EPROTO;
      v->message = "malformed map chunk result";
      continue;
    }
    memcpy(&v->status, p, 4);
    memcpy(&v->code, p + 4, 4);
    memcpy(&sz, p + 8, 8);
    p += 16;
    if ((uint64_t)(end - p) < sz || (size_t)(end - p) < PADDED((size_t)sz)) {
      v->status = PEBBLE_EPROTO;
      v->message = "malformed map chunk result";
      p = end;
      continue;
    }
    if (v->status == PEBBLE_OK) {
      v->data = sz > 0 ? (const char *)p : "";
      v->size = (size_t)sz;
      v->message = "";
    } else {
      v->message = sz > 0 && p[sz - 1] == '\0' ? (const char *)p : "";
    }
    p += PADDED((size_t)sz);
  }
  M->decoded[c] = 1;
}

static int view(pebble_map *M, size_t index, pebble_time_t timeout,
                item_view *out) {
  size_t c;
  int rc;
  if (M == NULL)
    return pb_error(PEBBLE_EINVAL, "map is NULL");
  if ((rc = pb_lib_check(M->lib, M->gen)) != PEBBLE_OK)
    return rc;
  if (index >= M->count)
    return pb_error(PEBBLE_EINVAL, "map index %zu out of range (%zu items)",
                    index, M->count);
  c = index / M->chunk_size;
  rc = pebble_future_wait(M->chunks[c], timeout);
  if (rc != PEBBLE_OK)
    return rc;
  M->lib->bk->mutex_lock(M->lock);
  if (!M->decoded[c])
    decode(M, c);
  *out = M->items[index];
  M->lib->bk->mutex_unlock(M->lock);
  return PEBBLE_OK;
}

int pebble_map_get(pebble_map *M, size_t index, pebble_time_t timeout,
                   const void **data, size_t *size) {
  item_view v;
  int rc = view(M, index, timeout, &v);
  if (rc != PEBBLE_OK)
    return rc;
  if (v.status != PEBBLE_OK)
    return pb_error(v.status, "%s", v.message ? v.message : "");
  if (data != NULL)
    *data = v.data;
  if (size != NULL)
    *size = v.size;
  return PEBBLE_OK;
}

const char *pebble_map_message(pebble_map *M, size_t index) {
  item_view v;
  if (view(M, index, PEBBLE_NOWAIT, &v) != PEBBLE_OK || v.message == NULL)
    return "";
  return v.message;
}

int pebble_map_task_code(pebble_map *M, size_t index) {
  item_view v;
  if (view(M, index, PEBBLE_NOWAIT, &v) != PEBBLE_OK)
    return 0;
  return v.status == PEBBLE_ETASK ? v.code : 0;
}

int pebble_map_next_completed(pebble_map *M, pebble_time_t timeout,
                              size_t *index) {
  pebble_future *f;
  size_t c;
  int rc;
  if (M == NULL || index == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_map_next_completed: NULL argument");
  if ((rc = pb_lib_check(M->lib, M->gen)) != PEBBLE_OK)
    return rc;
  M->lib->bk->mutex_lock(M->lock);
  if (M->next_item < M->end_item) {
    *index = M->next_item++;
    M->lib->bk->mutex_unlock(M->lock);
    return PEBBLE_OK;
  }
  if (M->chunks_delivered == M->nchunks) {
    M->lib->bk->mutex_unlock(M->lock);
    return pb_error(PEBBLE_ENOTFOUND, "every item of the map was returned");
  }
  M->lib->bk->mutex_unlock(M->lock);
  rc = pebble_cqueue_wait(M->completed, timeout, &f);
  if (rc != PEBBLE_OK)
    return rc;
  c = (size_t)pebble_future_seq(f); /* chunks are numbered by seq */
  pebble_future_release(f);
  M->lib->bk->mutex_lock(M->lock);
  M->chunks_delivered++;
  M->next_item = c * M->chunk_size;
  M->end_item = M->next_item + M->chunk_size;
  if (M->end_item > M->count)
    M->end_item = M->count;
  *index = M->next_item++;
  M->lib->bk->mutex_unlock(M->lock);
  return PEBBLE_OK;
}

int pebble_map_cancel(pebble_map *M) {
  size_t i;
  int rc;
  if (M == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_map_cancel: map is NULL");
  if ((rc = pb_lib_check(M->lib, M->gen)) != PEBBLE_OK)
    return rc;
  for (i = 0; i < M->nchunks; i++)
    pebble_future_cancel(M->chunks[i]);
  return PEBBLE_OK;
}

void pebble_map_release(pebble_map *M) {
  pb_lib *L;
  if (M == NULL || M->lib->bk->fork_generation() != M->gen)
    return;
  L = M->lib;
  map_free(M);
  pb_lib_drop(L);
}
