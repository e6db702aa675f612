/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memfd_seal.h -- the memfd_create() flags and file seals that the shared
 * memory of a worker's page (worker_page.c) and of a large result
 * (shared_result.c) use, for C libraries whose headers predate them
 * though the kernel has them (the values are the Linux ABI's).  Include
 * after <fcntl.h> and <sys/mman.h>.
 */
#ifndef PEBBLE_MEMFD_SEAL_H
#define PEBBLE_MEMFD_SEAL_H

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif

#endif
