/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_shared_result.c -- a worker that lies about a result sent as a
 * memory file cannot crash or fool the parent.  The tasks here bypass the
 * library and write forged messages on their channel (found as the one
 * Unix socket a forked worker keeps): a file without seals (the worker
 * could shrink it under the parent's mapping: SIGBUS), one shorter than
 * the header says, a header with no file, and a pipe instead of a file.
 * Each resolves its future with PEBBLE_EPROTO and a message saying which.
 * Linux with memfd_create and the POSIX backend's fork start method only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h" /* the message header the forgeries imitate */
#include "core_util.h"

#if defined(__linux__) && defined(HAVE_MEMFD_CREATE)

#define CLAIMED ((uint64_t)2 << 20)

enum forgery { UNSEALED, SHORT_FILE, NO_FILE, A_PIPE, FORGERIES };
static const char *const expected_text[FORGERIES] = {
    "not a sealed memory file", "does not have the",
    "no file came with it", "not a sealed memory file"};

static int channel_fd(void) {
  int fd;
  for (fd = 3; fd < 1024; fd++) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
      return fd;
  }
  return -1;
}

/* A forked worker of the POSIX backend writes its messages to a pipe
 * (a write-only end whose read end it does not hold); descriptors still
 * go on the socket, each on a byte of its own sent before the header. */
static int message_pipe_fd(void) {
  int fd;
  for (fd = 3; fd < 1024; fd++) {
    struct stat st;
    int fl = fcntl(fd, F_GETFL), other;
    if (fl == -1 || (fl & O_ACCMODE) != O_WRONLY || fstat(fd, &st) != 0 ||
        !S_ISFIFO(st.st_mode))
      continue;
    for (other = 3; other < 1024; other++) {
      struct stat o;
      int ofl = fcntl(other, F_GETFL);
      if (other != fd && ofl != -1 && (ofl & O_ACCMODE) != O_WRONLY &&
          fstat(other, &o) == 0 && S_ISFIFO(o.st_mode) &&
          o.st_ino == st.st_ino)
        break;
    }
    if (other == 1024)
      return fd;
  }
  return -1;
}

static int forge(pebble_ctx *ctx, const void *arg, size_t size) {
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg;
  struct iovec iov;
  pb_msg_header h;
  int kind, chan = channel_fd(), out = message_pipe_fd(), file = -1,
      pipes[2];
  static const char marker = 0;
  if (size != sizeof kind || chan < 0)
    return pebble_fail(ctx, 1, "no channel found");
  memcpy(&kind, arg, sizeof kind);
  switch (kind) {
  case UNSEALED:
  case SHORT_FILE:
    file = memfd_create("forged", MFD_ALLOW_SEALING);
    if (file < 0 ||
        ftruncate(file, kind == UNSEALED ? (off_t)CLAIMED + 1 : 100) != 0)
      return pebble_fail(ctx, 1, "memfd");
    if (kind == SHORT_FILE)
      fcntl(file, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    break;
  case A_PIPE:
    if (pipe(pipes) != 0)
      return pebble_fail(ctx, 1, "pipe");
    file = pipes[0];
    break;
  default:
    break;
  }
  memset(&h, 0, sizeof h);
  h.magic = PB_MSG_MAGIC;
  h.version = PB_MSG_VERSION;
  h.type = PB_MSG_RESULT_SHARED;
  h.size = CLAIMED;
  h.tag = pb_msg_tag(pebble_ctx_future_id(ctx));
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  iov.iov_base = out >= 0 ? (void *)(uintptr_t)&marker : (void *)&h;
  iov.iov_len = out >= 0 ? 1 : sizeof h;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (file >= 0) {
    struct cmsghdr *c;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &file, sizeof file);
  }
  if (out >= 0) {
    if ((file >= 0 && sendmsg(chan, &msg, MSG_NOSIGNAL) != 1) ||
        write(out, &h, sizeof h) != (ssize_t)sizeof h)
      return pebble_fail(ctx, 1, "sendmsg");
  } else if (sendmsg(chan, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof h) {
    return pebble_fail(ctx, 1, "sendmsg");
  }
  for (;;)
    pause(); /* the parent kills a worker that sent garbage */
}

static int result_mappings(void) { return count_mappings("memfd:"); }

static void check_refused(pebble_future *f, int kind) {
  const char *text;
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), NULL, NULL),
                  PEBBLE_EPROTO);
  text = pebble_future_message(f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  if (strstr(text, expected_text[kind]) == NULL)
    printf("(forgery %d: \"%s\") ", kind, text);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, expected_text[kind]));
  CU_ASSERT_EQUAL(result_mappings(), 0);
}

static void test_one_shot_forgeries(void) {
  int kind;
  for (kind = 0; kind < FORGERIES; kind++) {
    pebble_future *f = NULL;
    CU_ASSERT_EQUAL_FATAL(
        pebble_run(PEBBLE_PROCESS, forge, &kind, sizeof kind, NULL, &f),
        PEBBLE_OK);
    check_refused(f, kind);
    pebble_future_release(f);
  }
}

static int good(pebble_ctx *ctx, const void *arg, size_t size) {
  char *p;
  (void)arg, (void)size;
  if ((p = pebble_result_alloc(ctx, (size_t)CLAIMED)) == NULL)
    return 1;
  memset(p, 7, (size_t)CLAIMED);
  return 0;
}

/* A pool whose worker lies gets a new worker, which works. */
static void test_pool_forgeries(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  int kind;
  pebble_pool_options_init(&o);
  o.workers = 1;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                        PEBBLE_OK);
  for (kind = 0; kind < FORGERIES; kind++) {
    pebble_future *f = NULL;
    const void *data;
    size_t size = 0;
    CU_ASSERT_EQUAL_FATAL(
        pebble_pool_schedule(p, forge, &kind, sizeof kind, NULL, &f),
        PEBBLE_OK);
    check_refused(f, kind);
    pebble_future_release(f);
    CU_ASSERT_EQUAL_FATAL(pebble_pool_schedule(p, good, NULL, 0, NULL, &f),
                          PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(size, CLAIMED);
    if (size == CLAIMED)
      CU_ASSERT(((const unsigned char *)data)[size - 1] == 7);
    pebble_future_release(f);
  }
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"one-shot workers that lie", test_one_shot_forgeries},
      {"pool workers that lie", test_pool_forgeries},
      CU_TEST_INFO_NULL};
  const char *name, *reason;
  /* Forked workers (the default start method) with the built-in POSIX
   * backend: the forgeries are written for its channels. */
  unsetenv("PEBBLE_START_METHOD");
  if (pebble_backend_choice(&name, &reason) != PEBBLE_OK ||
      strcmp(name, "posix") != 0) {
    printf("skipped: needs the POSIX backend\n");
    return 77;
  }
  return run_suite("shared result forgeries", tests);
}

#else
int main(void) {
  printf("skipped: needs Linux memory files (memfd_create)\n");
  return 77;
}
#endif
