/* SPDX-License-Identifier: Apache-2.0 */
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
#include "remote_frame.h"

/* A text for the task task_id (0: none, an initializer's failure). */
static int send_text(const pebble_backend *bk, pebble_bk_chan *chan,
                     enum pb_msg_type type, int32_t code, uint64_t task_id,
                     const char *text) {
  pb_msg_header h;
  pb_msg_fill(&h, type, code, strlen(text));
  h.tag = pb_msg_tag(task_id);
  return pb_chan_send(bk, chan, &h, text);
}

/* What the worker reads from its channel collects in its inbox.  With a
 * backend that reads "what is there" (chan_read), a task's header and
 * argument come in one read, and several tasks sent ahead in one; a large
 * argument is read straight into its own memory.  Tasks sent ahead
 * (PB_TASK_AHEAD) may be followed by a request to skip them (PB_MSG_SKIP):
 * before starting one, the worker reads what is already there and looks
 * for such requests (`skips`). */
#define PB_INBOX_MIN 4096
#define PB_INBOX_DIRECT ((size_t)64 << 10) /* larger: read straight in */
#define PB_INBOX_DRAIN_MAX ((size_t)4 << 20)
typedef struct inbox {
  const pebble_backend *bk;
  pebble_bk_chan *chan;
  int (*read_some)(pebble_bk_chan *chan, void *buf, size_t len,
                   size_t *done); /* NULL: chan_read_all only */
  unsigned char *data;
  size_t pos, len, cap;
  size_t scanned; /* messages before it were looked at for SKIPs */
  uint64_t *skips;
  size_t nskips, skips_cap;
  /* The next task's STARTED or SKIPPED went out with the last outcome. */
  int decided, decided_skip;
  uint64_t decided_id;
  /* Shared with the pool (worker_page.c), or NULL.  `claimed`: the page
   * said the pool is about to kill this worker: it starts nothing more. */
  pb_worker_page *page;
  int claimed;
  /* With a page (pb_worker_config): the pool bumps *skip_epoch after
   * writing a SKIP.  The channel holds no SKIP not read yet while the
   * word still has the value it had before the last read that found the
   * channel empty (epoch_seen), so the worker reads it only when the word
   * moved: no system call per task sent ahead. */
  atomic_uint *skip_epoch;
  unsigned epoch_seen;
  int epoch_known;
  /* A small task's message (the common case: a few words of argument)
   * is read here rather than into a block of its own. */
  union {
    max_align_t align; /* the argument is used as malloc'd memory is */
    unsigned char bytes[PB_INBOX_SMALL_TASK];
  } small_task;
} inbox;

static void task_buf_free(inbox *in, unsigned char *buf) {
  if (buf != in->small_task.bytes)
    free(buf);
}

/* Room for n more bytes after len. */
static int in_room(inbox *in, size_t n) {
  if (in->pos > 0 && in->cap - in->len < n) {
    memmove(in->data, in->data + in->pos, in->len - in->pos);
    in->len -= in->pos;
    in->scanned = in->scanned > in->pos ? in->scanned - in->pos : 0;
    in->pos = 0;
  }
  if (in->cap - in->len < n) {
    size_t cap = in->cap ? in->cap : PB_INBOX_MIN;
    unsigned char *d;
    while (cap - in->len < n)
      cap *= 2;
    if ((d = realloc(in->data, cap)) == NULL)
      return PEBBLE_ENOMEM;
    in->data = d;
    in->cap = cap;
  }
  return PEBBLE_OK;
}

/* Wait until n bytes are buffered. */
static int in_need(inbox *in, size_t n) {
  while (in->len - in->pos < n) {
    size_t miss = n - (in->len - in->pos), got = 0;
    int rc = in_room(in, in->read_some != NULL && miss < PB_INBOX_MIN
                             ? PB_INBOX_MIN
                             : miss);
    if (rc != PEBBLE_OK)
      return rc;
    if (in->read_some == NULL) {
      if ((rc = in->bk->chan_read_all(in->chan, in->data + in->len, miss)) !=
          PEBBLE_OK)
        return rc;
      got = miss;
    } else if ((rc = in->read_some(in->chan, in->data + in->len,
                                   in->cap - in->len, &got)) != PEBBLE_OK) {
      return rc;
    }
    in->len += got;
  }
  return PEBBLE_OK;
}

/* Copy the next n bytes out; a large remainder is read straight to dst. */
static int in_take(inbox *in, void *dst, size_t n) {
  size_t have = in->len - in->pos;
  int rc;
  if (n > have && n - have >= PB_INBOX_DIRECT) {
    memcpy(dst, in->data + in->pos, have);
    in->pos = in->len;
    return in->bk->chan_read_all(in->chan, (unsigned char *)dst + have,
                                 n - have);
  }
  if ((rc = in_need(in, n)) != PEBBLE_OK)
    return rc;
  memcpy(dst, in->data + in->pos, n);
  in->pos += n;
  return PEBBLE_OK;
}

/* A block of n + 1 bytes holding the next n bytes of a message, n as its
 * header announced.  The block grows with the bytes that arrive (from
 * 64 KiB, doubling), so a header commits memory only as its payload
 * comes.  NULL with *rc set on failure. */
#define PB_GROW_FIRST ((size_t)64 << 10)
static unsigned char *read_growing(int (*read_exact)(void *from, void *dst,
                                                     size_t len),
                                   void *from, size_t n, int *rc) {
  size_t cap = n < PB_GROW_FIRST ? n : PB_GROW_FIRST, got = 0;
  unsigned char *buf = malloc(cap + 1), *p;
  *rc = PEBBLE_ENOMEM;
  if (buf == NULL || n == SIZE_MAX)
    goto fail;
  for (;;) {
    if ((*rc = read_exact(from, buf + got, cap - got)) != PEBBLE_OK)
      goto fail;
    got = cap;
    if (got == n)
      return buf;
    cap = cap <= (n - cap) ? 2 * cap : n;
    if ((p = realloc(buf, cap + 1)) == NULL) {
      *rc = PEBBLE_ENOMEM;
      goto fail;
    }
    buf = p;
  }
fail:
  free(buf);
  return NULL;
}

static int inbox_read_exact(void *in, void *dst, size_t len) {
  return in_take(in, dst, len);
}

typedef struct chan_source {
  const pebble_backend *bk;
  pebble_bk_chan *chan;
} chan_source;

static int chan_read_exact(void *from, void *dst, size_t len) {
  chan_source *src = from;
  return src->bk->chan_read_all(src->chan, dst, len);
}

/* Read whatever is already there, then note the SKIP requests among the
 * complete messages not yet looked at. */
static void in_scan_skips(inbox *in) {
  const pebble_backend *bk = in->bk;
  size_t at;
  unsigned epoch = 0;
  int look = 1;
  if (in->skip_epoch != NULL) {
    epoch = atomic_load(in->skip_epoch); /* before the read below */
    look = !in->epoch_known || epoch != in->epoch_seen;
  }
  while (look && in->len - in->pos < PB_INBOX_DRAIN_MAX) {
    size_t got = 0;
    if (in_room(in, PB_INBOX_MIN) != PEBBLE_OK)
      break;
    if (bk->chan_read_ready(in->chan, in->data + in->len, in->cap - in->len,
                            &got) != PEBBLE_OK) {
      /* Nothing more now (a closed channel shows on the next read): every
       * SKIP written before `epoch` was read is in the inbox. */
      in->epoch_seen = epoch;
      in->epoch_known = in->skip_epoch != NULL;
      break;
    }
    in->len += got;
  }
  at = in->scanned > in->pos ? in->scanned : in->pos;
  while (in->len - at >= sizeof(pb_msg_header)) {
    pb_msg_header h;
    memcpy(&h, in->data + at, sizeof h);
    if (h.magic != PB_MSG_MAGIC || h.size > in->len - at - sizeof h)
      break; /* incomplete (or garbage, which the loop will refuse) */
    if (h.type == PB_MSG_SKIP && h.size == sizeof(uint64_t)) {
      if (in->nskips == in->skips_cap) {
        size_t cap = in->skips_cap ? 2 * in->skips_cap : 8;
        uint64_t *s = realloc(in->skips, cap * sizeof *s);
        if (s == NULL)
          break;
        in->skips = s;
        in->skips_cap = cap;
      }
      memcpy(&in->skips[in->nskips++], in->data + at + sizeof h,
             sizeof(uint64_t));
    }
    at += sizeof h + (size_t)h.size;
  }
  in->scanned = at;
}

/* Remove id from the skip requests; 1 if it was there. */
static int in_skip_take(inbox *in, uint64_t id) {
  size_t i;
  for (i = 0; i < in->nskips; i++)
    if (in->skips[i] == id) {
      in->skips[i] = in->skips[--in->nskips];
      return 1;
    }
  return 0;
}

static int send_notice(const pebble_backend *bk, pebble_bk_chan *chan,
                       enum pb_msg_type type, uint64_t id) {
  pb_msg_header h;
  pb_msg_fill(&h, type, 0, sizeof id);
  h.tag = pb_msg_tag(id);
  return pb_chan_send(bk, chan, &h, &id);
}

/* Task `ordinal` is about to start (the pool's number for it, 0: none).
 * Returns 0 if the pool claimed this worker (worker_page.c): the task
 * must not start, nor its STARTED go out. */
static int in_begin(inbox *in, uint64_t ordinal) {
  if (in->page != NULL && ordinal != 0 && !in->claimed &&
      !pb_page_begin(in->page, ordinal))
    in->claimed = 1;
  return !in->claimed;
}

/* The pool claimed this worker to kill it: start nothing, wait for the
 * kill (or for the channel to close, if the pool itself is gone). */
static int wait_for_kill(inbox *in) {
  unsigned char sink[512];
  for (;;) {
    size_t got = 0;
    int rc = in->read_some != NULL
                 ? in->read_some(in->chan, sink, sizeof sink, &got)
                 : in->bk->chan_read_all(in->chan, sink, 1);
    if (rc != PEBBLE_OK || (in->read_some != NULL && got == 0))
      return 0;
  }
}

/* If the next message is a task sent ahead, decide now whether it starts
 * (and if so, start it on the page) and put the notice in `note`, so that
 * it leaves with the outcome of the task just run, in one write.  Returns
 * the notice's length, or 0. */
static size_t decide_next(inbox *in, unsigned char *note) {
  pb_msg_header h;
  uint64_t id, ordinal;
  if (!PB_BK_HAS(in->bk, chan_read_ready) ||
      in->len - in->pos < sizeof h + PB_TASK_WORDS * sizeof id)
    return 0;
  memcpy(&h, in->data + in->pos, sizeof h);
  if (h.magic != PB_MSG_MAGIC || h.version != PB_MSG_VERSION ||
      h.type != PB_MSG_TASK || !(h.code & PB_TASK_AHEAD) ||
      h.size < PB_TASK_WORDS * sizeof id)
    return 0;
  memcpy(&id, in->data + in->pos + sizeof h + sizeof id, sizeof id);
  memcpy(&ordinal, in->data + in->pos + sizeof h + 4 * sizeof id,
         sizeof ordinal);
  in_scan_skips(in);
  in->decided_skip = in_skip_take(in, id);
  if (!in->decided_skip && !in_begin(in, ordinal))
    return 0; /* claimed: no notice; the loop waits for the kill */
  in->decided = 1;
  in->decided_id = id;
  pb_msg_fill(&h, in->decided_skip ? PB_MSG_SKIPPED : PB_MSG_STARTED, 0,
              sizeof id);
  h.tag = pb_msg_tag(id);
  memcpy(note, &h, sizeof h);
  memcpy(note + sizeof h, &id, sizeof id);
  return sizeof h + sizeof id;
}

static int serve_tasks(inbox *in, const pb_worker_config *cfg) {
  const pebble_backend *bk = in->bk;
  pebble_bk_chan *chan = in->chan;
  unsigned tasks = 0;
  for (;;) {
    pb_msg_header h;
    unsigned char *buf;
    uint64_t head[PB_TASK_WORDS];
    pebble_task_fn fn = NULL;
    pebble_ctx ctx;
    size_t skip, arg_size;
    unsigned char *arg;
    int ret;

    if (in->claimed)
      return wait_for_kill(in);
    if (in_take(in, &h, sizeof h) != PEBBLE_OK)
      return 0; /* the pool closed our channel */
    if (h.magic != PB_MSG_MAGIC || h.version != PB_MSG_VERSION)
      return 4;
    if (h.type == PB_MSG_QUIT)
      return 0;
    if (h.type == PB_MSG_SKIP) { /* for a task already started or skipped */
      uint64_t id;
      if (h.size != sizeof id || in_take(in, &id, sizeof id) != PEBBLE_OK)
        return 4;
      in_skip_take(in, id);
      continue;
    }
    /* Name and argument: at most the maximum message size and a name
     * (compared without a sum that could wrap at SIZE_MAX). */
    if (h.type != PB_MSG_TASK || h.size < sizeof head ||
        (h.size - sizeof head > PB_NAME_BYTES_MAX &&
         h.size - sizeof head - PB_NAME_BYTES_MAX > cfg->max_message))
      return 4;
    if (h.size < sizeof in->small_task.bytes) {
      buf = in->small_task.bytes;
      if (in_take(in, buf, (size_t)h.size) != PEBBLE_OK)
        return 0;
    } else {
      int rc;
      buf = read_growing(inbox_read_exact, in, (size_t)h.size, &rc);
      if (buf == NULL)
        return rc == PEBBLE_ENOMEM ? 5 : 0;
    }
    memcpy(head, buf, sizeof head);
    if (head[3] >= PB_NAME_BYTES_MAX || head[3] > h.size - sizeof head) {
      task_buf_free(in, buf);
      return 4;
    }
    if (h.code & PB_TASK_AHEAD) {
      /* Sent while another task ran: say whether it starts (started on
       * the page first, so that the pool never hears of a start that a
       * kill it claimed forbids). */
      int skipped;
      if (!PB_BK_HAS(bk, chan_read_ready)) {
        task_buf_free(in, buf);
        return 4; /* the pool never sends ahead to such a worker */
      }
      if (in->decided && in->decided_id == head[1]) {
        skipped = in->decided_skip; /* said with the last outcome */
      } else {
        in_scan_skips(in);
        skipped = in_skip_take(in, head[1]);
        if (!skipped && !in_begin(in, head[4])) {
          task_buf_free(in, buf);
          return wait_for_kill(in);
        }
        if (send_notice(bk, chan, skipped ? PB_MSG_SKIPPED : PB_MSG_STARTED,
                        head[1]) != PEBBLE_OK) {
          task_buf_free(in, buf);
          return 0;
        }
      }
      in->decided = 0;
      if (skipped) {
        task_buf_free(in, buf);
        continue;
      }
    }
    if (!(h.code & PB_TASK_AHEAD) && !in_begin(in, head[4])) {
      task_buf_free(in, buf);
      return wait_for_kill(in);
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
        task_buf_free(in, buf);
        snprintf(why, sizeof why,
                 "no task is registered as '%s' in the worker program "
                 "(register it before pebble_worker_main())",
                 name);
        if (in->page != NULL && head[4] != 0)
          pb_page_end(in->page, head[4]);
        if (send_text(bk, chan, PB_MSG_ERROR, PEBBLE_ENOTFOUND, head[1],
                      why) != 0)
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
    ctx.shared_ok = PB_BK_HAS(bk, chan_send_handle) && !pb_worker_remote;
    /* A task with a timeout: the parent's clock starts with this. */
    if ((h.code & PB_TASK_TELL_START) &&
        pb_send_started(bk, chan, head[1],
                        (h.code & PB_TASK_TELL_START_AT) != 0) != PEBBLE_OK) {
      task_buf_free(in, buf);
      return 0;
    }
    ret = fn(&ctx, arg, arg_size);
    task_buf_free(in, buf);
    /* Ended: a cancel from now on kills nothing (worker_page.c). */
    if (in->page != NULL && head[4] != 0)
      pb_page_end(in->page, head[4]);
    {
      unsigned char note[sizeof(pb_msg_header) + sizeof(uint64_t)];
      int last = cfg->max_tasks > 0 && ++tasks >= cfg->max_tasks;
      size_t note_len = last ? 0 : decide_next(in, note);
      if (pb_send_outcome(bk, chan, &ctx, ret, note, note_len) != PEBBLE_OK)
        return 0;
      pb_ctx_free_result(&ctx);
      if (last)
        return 0; /* recycled: the pool starts a fresh one */
    }
  }
}

int pb_worker_serve(const pebble_backend *bk, pebble_bk_chan *chan,
                    const pb_worker_config *cfg) {
  inbox in;
  int rc;
  memset(&in, 0, sizeof in);
  in.bk = bk;
  in.chan = chan;
  in.page = cfg->page;
  in.skip_epoch = pb_page_skip_epoch(cfg->page);
  in.read_some = bk->struct_size >= offsetof(pebble_backend, chan_read) +
                                        sizeof bk->chan_read
                     ? bk->chan_read
                     : NULL;
  memset(&pb_role, 0, sizeof pb_role);
  pb_ring_use(cfg->page, chan, cfg->chan_sent);
  if (cfg->initializer != NULL) {
    pebble_ctx ctx;
    int ret;
    pb_ctx_init(&ctx, NULL, cfg->max_message, 0, 0);
    ret = cfg->initializer(&ctx, cfg->init_arg, cfg->init_arg_size);
    pb_ctx_free_result(&ctx);
    if (ret != 0) {
      if (!ctx.has_message)
        snprintf(ctx.message, sizeof ctx.message, "it returned %d", ret);
      send_text(bk, chan, PB_MSG_INIT_FAILED, 0, 0, ctx.message);
      return 1;
    }
  }
  rc = serve_tasks(&in, cfg);
  free(in.data);
  free(in.skips);
  return rc;
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
      h.size > ((uint64_t)1 << 30) + sizeof head + PB_NAME_BYTES_MAX)
    return 4;
  {
    chan_source src;
    src.bk = bk;
    src.chan = chan;
    if ((buf = read_growing(chan_read_exact, &src, (size_t)h.size, &rc)) ==
        NULL)
      return 5;
  }
  memcpy(head, buf, sizeof head);
  if (head[2] >= PB_NAME_BYTES_MAX || head[2] > h.size - sizeof head) {
    free(buf);
    return 4;
  }
  /* The pool asked for a page: sent before anything else, or not at all
   * (then nothing is sent ahead to this worker). */
  if ((h.code & PB_CONFIG_PAGE) && !pb_worker_remote &&
      PB_BK_HAS(bk, chan_send_handle)) {
    intptr_t handle;
    pb_worker_page *page;
    if (pb_page_create_file(&handle, &page) == PEBBLE_OK) {
      pb_msg_header ph;
      pb_msg_fill(&ph, PB_MSG_PAGE, 0, 0);
      if (bk->chan_send_handle(chan, &ph, sizeof ph, handle) == PEBBLE_OK) {
        cfg.page = page; /* kept until the process ends */
        cfg.chan_sent = 1;
      }
      pb_shared_close(handle);
    }
  }
  cfg.max_message = head[0] > SIZE_MAX ? SIZE_MAX : (size_t)head[0];
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
      send_text(bk, chan, PB_MSG_INIT_FAILED, 0, 0, why);
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

/* pebble_worker_main() was called in this process. */
static atomic_int worker_main_called;

/* The exit status of a spawned program that forgot pebble_worker_main()
 * (EX_SOFTWARE). */
#define PB_EXIT_NOT_WORKER 70

/* A spawned worker whose program uses the library before (or without)
 * pebble_worker_main() would run the application's main() again: its own
 * pools, its own workers, each of them the same again, without end.  The
 * first use of the library stops it here instead: the parent's future
 * gets the reason through the channel, the operator on stderr. */
void pb_worker_trap(const pebble_backend *bk) {
  static const char why[] =
      "the worker program did not call pebble_worker_main(): a spawned "
      "worker used the library first (call pebble_worker_main() early in "
      "main(), after registering the tasks)";
  pebble_bk_chan *chan = NULL;
  int rc;
  const char *channel = pb_secure_getenv("PEBBLE_WORKER_CHANNEL");
  if (atomic_load(&worker_main_called) || channel == NULL)
    return;
  /* Started through a launcher: the reason can reach the application only
   * through a supervisor (the child goes on here, the parent relays). */
  if (strcmp(channel, PB_LAUNCHED_CHANNEL) == 0)
    pb_remote_supervise();
  rc = PB_BK_HAS(bk, chan_adopt) ? bk->chan_adopt(&chan) : PEBBLE_ENOTSUP;
  if (rc == PEBBLE_ENOTFOUND)
    return; /* not spawned as a worker after all: an ordinary run */
  if (rc == PEBBLE_OK)
    send_text(bk, chan, PB_MSG_INIT_FAILED, PB_INIT_NOT_WORKER, 0, why);
  fprintf(stderr, "pebble: %s\n", why);
  _Exit(PB_EXIT_NOT_WORKER); /* not the application's atexit handlers */
}

/* CONFIG payload: u64 max_message, u64 max_tasks, u64 name length, the
 * initializer's name, the initializer's argument. */
int pebble_worker_main(void) {
  pb_lib *L;
  const pebble_backend *bk;
  pebble_bk_chan *chan = NULL;
  const char *channel;
  int rc;

  atomic_store(&worker_main_called, 1);
  channel = pb_secure_getenv("PEBBLE_WORKER_CHANNEL");
  if (channel == NULL)
    return PEBBLE_OK; /* an ordinary run of the program */
  /* Started through a launcher: split into supervisor and worker before
   * the library starts (docs/cluster.md). */
  if (strcmp(channel, PB_LAUNCHED_CHANNEL) == 0 &&
      (rc = pb_remote_supervise()) != PEBBLE_OK)
    return rc;
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
