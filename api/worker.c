/*
 * worker.c -- the loop of a pool worker process, forked or spawned.
 *
 * A forked worker inherits the pool's settings and finds task functions
 * by address; a spawned worker (a fresh run of a program, see
 * pebble_worker_main) gets its settings in a first CONFIG message and
 * finds every function by its registered name, since addresses mean
 * nothing in another program image.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int send_text(const pebble_backend *bk, pebble_bk_chan *chan,
                     enum pb_msg_type type, int32_t code, const char *text) {
  pb_msg_header h;
  pb_msg_fill(&h, type, code, strlen(text));
  return pb_chan_send(bk, chan, &h, text);
}

/* What the worker reads from its channel goes through a small buffer
 * when the backend can read "what is there" (chan_read): a task's header
 * and argument then come in one read. */
#define PB_WORKER_INBUF 4096
typedef struct inbuf {
  int (*read_some)(pebble_bk_chan *chan, void *buf, size_t len,
                   size_t *done); /* NULL: chan_read_all only */
  size_t pos, len;
  unsigned char data[PB_WORKER_INBUF];
} inbuf;

static int in_read(const pebble_backend *bk, pebble_bk_chan *chan,
                   inbuf *in, void *dst, size_t n) {
  unsigned char *at = dst;
  size_t take = in->len - in->pos;
  if (take > n)
    take = n;
  memcpy(at, in->data + in->pos, take);
  in->pos += take;
  at += take;
  n -= take;
  if (n == 0)
    return PEBBLE_OK;
  if (in->read_some == NULL || n >= sizeof in->data)
    return bk->chan_read_all(chan, at, n);
  in->pos = in->len = 0;
  while (in->len < n) {
    size_t got = 0;
    int rc = in->read_some(chan, in->data + in->len,
                           sizeof in->data - in->len, &got);
    if (rc != PEBBLE_OK)
      return rc;
    in->len += got;
  }
  memcpy(at, in->data, n);
  in->pos = n;
  return PEBBLE_OK;
}

int pb_worker_serve(const pebble_backend *bk, pebble_bk_chan *chan,
                    const pb_worker_config *cfg) {
  unsigned tasks = 0;
  inbuf in;
  in.read_some = bk->struct_size >= offsetof(pebble_backend, chan_read) +
                                        sizeof bk->chan_read
                     ? bk->chan_read
                     : NULL;
  in.pos = in.len = 0;
  memset(&pb_role, 0, sizeof pb_role);
  if (cfg->initializer != NULL) {
    pebble_ctx ctx;
    int ret;
    pb_ctx_init(&ctx, NULL, cfg->max_message, 0, 0);
    ret = cfg->initializer(&ctx, cfg->init_arg, cfg->init_arg_size);
    pb_ctx_free_result(&ctx);
    if (ret != 0) {
      if (!ctx.has_message)
        snprintf(ctx.message, sizeof ctx.message, "it returned %d", ret);
      send_text(bk, chan, PB_MSG_INIT_FAILED, 0, ctx.message);
      return 1;
    }
  }
  for (;;) {
    pb_msg_header h;
    unsigned char *buf;
    uint64_t head[PB_TASK_WORDS];
    pebble_task_fn fn = NULL;
    pebble_ctx ctx;
    size_t skip, arg_size;
    unsigned char *arg;
    int ret;

    if (in_read(bk, chan, &in, &h, sizeof h) != PEBBLE_OK)
      return 0; /* the pool closed our channel */
    if (h.magic != PB_MSG_MAGIC || h.version != PB_MSG_VERSION)
      return 4;
    if (h.type == PB_MSG_QUIT)
      return 0;
    if (h.type != PB_MSG_TASK || h.size < sizeof head ||
        h.size - sizeof head > cfg->max_message + PB_NAME_BYTES_MAX)
      return 4;
    buf = malloc((size_t)h.size);
    if (buf == NULL)
      return 5;
    if (in_read(bk, chan, &in, buf, (size_t)h.size) != PEBBLE_OK) {
      free(buf);
      return 0;
    }
    memcpy(head, buf, sizeof head);
    if (head[3] >= PB_NAME_BYTES_MAX || head[3] > h.size - sizeof head) {
      free(buf);
      return 4;
    }
    skip = sizeof head + (size_t)head[3];
    if (!cfg->by_name && head[0] != 0) {
      memcpy(&fn, &head[0], sizeof fn < 8 ? sizeof fn : 8);
    } else {
      char name[PB_NAME_BYTES_MAX];
      memcpy(name, buf + sizeof head, (size_t)head[3]);
      name[head[3]] = '\0';
      if (pebble_lookup(name, &fn) != PEBBLE_OK) {
        char why[PB_MESSAGE_MAX];
        free(buf);
        snprintf(why, sizeof why,
                 "no task is registered as '%s' in the worker program "
                 "(register it before pebble_worker_main())",
                 name);
        if (send_text(bk, chan, PB_MSG_ERROR, PEBBLE_ENOTFOUND, why) != 0)
          return 0;
        continue;
      }
    }
    /* A name before the argument leaves it unaligned; tasks may read it
     * as any type, as they can a malloc'd block. */
    arg = buf + skip;
    arg_size = (size_t)h.size - skip;
    if (skip % 16 != 0) {
      memmove(buf, arg, arg_size);
      arg = buf;
    }
    pb_ctx_init(&ctx, NULL, cfg->max_message, head[1], head[2]);
    ctx.shared_ok = PB_BK_HAS(bk, chan_send_handle);
    ret = fn(&ctx, arg, arg_size);
    free(buf);
    if (pb_send_outcome(bk, chan, &ctx, ret) != PEBBLE_OK)
      return 0;
    pb_ctx_free_result(&ctx);
    if (cfg->max_tasks > 0 && ++tasks >= cfg->max_tasks)
      return 0; /* recycled: the pool starts a fresh one */
  }
}

/* A worker's life after it has its channel: the settings first, then
 * tasks until the channel closes.  Returns the process's exit status.
 * Also the host's worker_serve, for workers a backend started itself. */
int pb_worker_serve_configured(const pebble_backend *bk, pebble_bk_chan *chan) {
  pb_msg_header h;
  pb_worker_config cfg;
  uint64_t head[3];
  unsigned char *buf;
  char name[PB_NAME_BYTES_MAX];
  int rc;
  memset(&cfg, 0, sizeof cfg);
  if (bk->chan_read_all(chan, &h, sizeof h) != PEBBLE_OK)
    return 0;
  if (h.magic != PB_MSG_MAGIC || h.version != PB_MSG_VERSION ||
      h.type != PB_MSG_CONFIG || h.size < sizeof head ||
      h.size > ((size_t)1 << 30) + sizeof head + PB_NAME_BYTES_MAX)
    return 4;
  buf = malloc((size_t)h.size + 1);
  if (buf == NULL || bk->chan_read_all(chan, buf, (size_t)h.size) != 0) {
    free(buf);
    return 5;
  }
  memcpy(head, buf, sizeof head);
  if (head[2] >= PB_NAME_BYTES_MAX || head[2] > h.size - sizeof head) {
    free(buf);
    return 4;
  }
  cfg.max_message = (size_t)head[0];
  cfg.max_tasks = (unsigned)head[1];
  cfg.by_name = 1;
  if (head[2] > 0) {
    memcpy(name, buf + sizeof head, (size_t)head[2]);
    name[head[2]] = '\0';
    if (pebble_lookup(name, &cfg.initializer) != PEBBLE_OK) {
      char why[PB_MESSAGE_MAX];
      snprintf(why, sizeof why,
               "the initializer '%s' is not registered in the worker "
               "program",
               name);
      send_text(bk, chan, PB_MSG_INIT_FAILED, 0, why);
      free(buf);
      return 1;
    }
    /* Moved to the front of buf: the initializer reads it aligned. */
    cfg.init_arg_size = (size_t)(h.size - sizeof head - head[2]);
    memmove(buf, buf + sizeof head + head[2], cfg.init_arg_size);
    cfg.init_arg = buf;
  }
  rc = pb_worker_serve(bk, chan, &cfg);
  free(buf);
  return rc;
}

/* CONFIG payload: u64 max_message, u64 max_tasks, u64 name length, the
 * initializer's name, the initializer's argument. */
int pebble_worker_main(void) {
  pb_lib *L;
  const pebble_backend *bk;
  pebble_bk_chan *chan = NULL;
  int rc;

  if (pb_secure_getenv("PEBBLE_WORKER_CHANNEL") == NULL)
    return PEBBLE_OK; /* an ordinary run of the program */
  if ((rc = pb_lib_get(&L)) != PEBBLE_OK)
    return rc;
  bk = L->bk;
  if (bk->struct_size < offsetof(pebble_backend, chan_adopt) +
                            sizeof bk->chan_adopt ||
      bk->chan_adopt == NULL)
    return pb_error(PEBBLE_ENOTSUP,
                    "backend '%s' cannot run spawned workers", bk->name);
  rc = bk->chan_adopt(&chan);
  if (rc == PEBBLE_ENOTFOUND)
    return PEBBLE_OK;
  if (rc != PEBBLE_OK)
    return pb_error(rc, "cannot take over the worker channel");
  fflush(NULL);
  exit(pb_worker_serve_configured(bk, chan));
}
