/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shared_result.c -- large results of process tasks as memory files.
 *
 * In a worker, pebble_result_alloc() of PB_SHARED_RESULT_MIN bytes or
 * more gives memory in an anonymous memory file (memfd) instead of the
 * heap.  When the task returns, the file is sealed against shrinking and
 * growing and its descriptor goes to the parent with the result header;
 * the parent maps it.  The bytes are written once, by the task, and never
 * copied: a 1 GiB result reaches the parent in the time of a message.
 *
 * Anonymous files only: nothing has a name, so nothing is left behind
 * when a worker is killed, and no small /dev/shm bounds the size.  The
 * parent checks the seals before it maps: a worker cannot shrink the file
 * under the parent's mapping (which would turn reads into SIGBUS).  The
 * parent's mapping is private: writing into a result (against its const)
 * changes the parent's copy only.
 *
 * Where memory files or descriptor passing are missing (or fail), results
 * go through the channel as before.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(HAVE_MEMFD_CREATE) && !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define PB_HAVE_SHARED 1
#endif

#ifdef PB_HAVE_SHARED
#include "memfd_seal.h"

int pb_shared_create(size_t len, intptr_t *handle, void **addr) {
  int fd = memfd_create("pebble-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void *p;
  if (fd < 0)
    return PEBBLE_ENOTSUP;
  if (ftruncate(fd, (off_t)len) != 0) {
    close(fd);
    return PEBBLE_ENOMEM;
  }
#if defined(__linux__)
  /* The task writes it all: its pages are made in one call (then each
   * first write only maps one), and a file the system cannot back is
   * refused here, not met as a SIGBUS at a write.  Faulting the mapping
   * in with MADV_POPULATE_WRITE instead, or no preparation, cost up to
   * twice as long for 1 GiB (docs/performance.md, section 6).  Where
   * the file system cannot, the pages come as they are written; a
   * signal that interrupts a long allocation does not refuse the file. */
  {
    int rc;
    while ((rc = fallocate(fd, 0, 0, (off_t)len)) != 0 && errno == EINTR)
      ;
    if (rc != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
      close(fd);
      return PEBBLE_ENOMEM;
    }
  }
#endif
  p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    return PEBBLE_ENOMEM;
  }
  *handle = fd;
  *addr = p;
  return PEBBLE_OK;
}

int pb_shared_seal(intptr_t handle) {
  return fcntl((int)handle, F_ADD_SEALS,
               F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0
             ? PEBBLE_OK
             : PEBBLE_ENOTSUP;
}

int pb_shared_map(intptr_t handle, size_t len, void **addr, char *why,
                  size_t whylen) {
  int fd = (int)handle, seals, rc = PEBBLE_OK;
  struct stat st;
  void *p;
  seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
    snprintf(why, whylen, "the worker sent a result file that is not a "
                          "sealed memory file");
    rc = PEBBLE_EPROTO;
  } else if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != (uint64_t)len) {
    snprintf(why, whylen, "the worker's result file does not have the "
                          "%zu bytes its header says", len);
    rc = PEBBLE_EPROTO;
  } else if ((p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                       0)) == MAP_FAILED) {
    snprintf(why, whylen, "cannot map a result of %zu bytes: %s", len,
             strerror(errno));
    rc = PEBBLE_ENOMEM;
  } else {
    *addr = p;
  }
  close(fd);
  return rc;
}

void pb_shared_unmap(void *addr, size_t len) { munmap(addr, len); }

void pb_shared_close(intptr_t handle) { close((int)handle); }

#else /* no memory files: results go through the channel */

int pb_shared_create(size_t len, intptr_t *handle, void **addr) {
  (void)len, (void)handle, (void)addr;
  return PEBBLE_ENOTSUP;
}
int pb_shared_seal(intptr_t handle) {
  (void)handle;
  return PEBBLE_ENOTSUP;
}
int pb_shared_map(intptr_t handle, size_t len, void **addr, char *why,
                  size_t whylen) {
  (void)handle, (void)len, (void)addr;
  snprintf(why, whylen, "this system cannot map a worker's result file");
  return PEBBLE_ENOTSUP;
}
void pb_shared_unmap(void *addr, size_t len) { (void)addr, (void)len; }
void pb_shared_close(intptr_t handle) { (void)handle; }

#endif

void pb_result_free(void *result, size_t size, int mapped) {
  if (mapped)
    pb_shared_unmap(result, size + 1);
  else
    free(result);
}
