/* SPDX-License-Identifier: Apache-2.0 */
/*
 * posix_notifier.c -- a descriptor an application's event loop (poll,
 * epoll, libuv, libevent) can watch: readable while set, level-triggered.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>

#include "posix_internal.h"

struct pebble_bk_notifier {
  pbp_wakefd fd;
};

int pbp_notifier_create(pebble_bk_notifier **out) {
  pebble_bk_notifier *n;
  if (out == NULL)
    return PEBBLE_EINVAL;
  n = malloc(sizeof *n);
  if (n == NULL)
    return PEBBLE_ENOMEM;
  if (pbp_wakefd_open(&n->fd) != 0) {
    int err = errno;
    free(n);
    return err == ENOMEM ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
  }
  *out = n;
  return PEBBLE_OK;
}

void pbp_notifier_destroy(pebble_bk_notifier *n) {
  if (n == NULL)
    return;
  pbp_wakefd_close(&n->fd);
  free(n);
}

intptr_t pbp_notifier_handle(pebble_bk_notifier *n) {
  return n != NULL ? (intptr_t)n->fd.rd : (intptr_t)-1;
}

void pbp_notifier_set(pebble_bk_notifier *n) {
  if (n != NULL)
    pbp_wakefd_signal(&n->fd);
}

void pbp_notifier_clear(pebble_bk_notifier *n) {
  if (n != NULL)
    pbp_wakefd_drain(&n->fd);
}
