/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_handles.c -- descriptors passed from a child to its parent.
 *
 * A large result travels as a sealed memory file: the child sends the
 * message header with the file's descriptor attached (SCM_RIGHTS on the
 * channel, which is a Unix socket), and the parent maps the file instead
 * of reading the bytes through the channel.
 *
 * The parent reads the channel through a buffer, so a descriptor may
 * arrive before the core has parsed the header it belongs to: every read
 * keeps what arrives, oldest first, and the core takes one when it meets
 * a header that says one was sent.  Only the manager thread reads a
 * process's channel, and the library forks only from that thread, so no
 * worker of ours can inherit a descriptor held here; they are close-on-
 * exec for the application's own fork and exec.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "posix_internal.h"

#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif

/* Room for a few descriptors in one read: a well-behaved child sends one
 * per message, and the parent's buffer holds a few messages at most. */
#define PBP_CMSG_FDS PBP_PASSED_MAX

#ifdef MSG_DONTWAIT
#define PBP_CMSG_DONTWAIT MSG_DONTWAIT
#else
#define PBP_CMSG_DONTWAIT 0 /* the parent's end is O_NONBLOCK anyway */
#endif

static void keep(pebble_bk_proc *p, int fd) {
  if (PBP_CMSG_CLOEXEC == 0)
    (void)pbp_fd_set_cloexec(fd);
  if (p->passed_count < PBP_PASSED_MAX)
    p->passed[p->passed_count++] = fd;
  else
    close(fd); /* more than any message can use: the child misbehaves */
}

ssize_t pbp_proc_recv(pebble_bk_proc *p, void *buf, size_t len, int flags) {
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int) * PBP_CMSG_FDS)];
  } control;
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *c;
  ssize_t n;

  memset(&msg, 0, sizeof msg);
  iov.iov_base = buf;
  iov.iov_len = len > SSIZE_MAX ? SSIZE_MAX : len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.space;
  msg.msg_controllen = sizeof control.space;
  n = recvmsg(p->chan_fd, &msg, flags | PBP_CMSG_CLOEXEC);
  if (n < 0)
    return n;
  for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t i, count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (i = 0; i < count; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        keep(p, fd);
      }
    }
  }
  /* MSG_CTRUNC: the kernel closed what did not fit; the header that
   * needed one will find none and say so. */
  return n;
}

int pbp_proc_take_handle(pebble_bk_proc *p, intptr_t *handle) {
  if (p == NULL || handle == NULL)
    return PEBBLE_EINVAL;
  if (p->passed_count == 0 && p->res_fd >= 0) {
    /* The child's messages come through a pipe: the descriptor waits on
     * the socket, riding on one byte sent before the header was written
     * (pbp_chan_send_handle), so it is there by now. */
    char byte;
    ssize_t n;
    do
      n = pbp_proc_recv(p, &byte, 1, PBP_CMSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
  }
  if (p->passed_count == 0)
    return PEBBLE_ENOTFOUND;
  *handle = p->passed[0];
  p->passed_count--;
  memmove(p->passed, p->passed + 1, p->passed_count * sizeof p->passed[0]);
  return PEBBLE_OK;
}

void pbp_proc_close_passed(pebble_bk_proc *p) {
  while (p->passed_count > 0)
    close(p->passed[--p->passed_count]);
}

int pbp_chan_send_handle(pebble_bk_chan *chan, const void *buf, size_t len,
                         intptr_t handle) {
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *c;
  int fd = (int)handle;
  int split = chan != NULL && chan->out_fd != chan->fd;
  static const char marker = 0;
  ssize_t n;

  if (chan == NULL || buf == NULL || len == 0 || fd < 0)
    return PEBBLE_EINVAL;
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  /* Messages go through a pipe: the descriptor goes on the socket first,
   * on a byte of its own, then the message (pbp_proc_take_handle). */
  iov.iov_base = (void *)(uintptr_t)(split ? &marker : buf);
  iov.iov_len = split ? 1 : len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.space;
  msg.msg_controllen = sizeof control.space;
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  /* The descriptor rides on the first byte sent; the rest follows. */
  do
    n = sendmsg(chan->fd, &msg, PBP_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EPIPE || errno == ECONNRESET ? PEBBLE_EDIED
                                                 : PEBBLE_ESYSTEM;
  if (split)
    return pbp_chan_write_all(chan, buf, len);
  if ((size_t)n < len)
    return pbp_chan_write_all(chan, (const char *)buf + n, len - (size_t)n);
  return PEBBLE_OK;
}
