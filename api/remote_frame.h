/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_frame.h -- what a remote supervisor sends back through a
 * launcher (ssh, srun, mpirun; docs/cluster.md).
 *
 * The application's side of a launched worker is the launcher's standard
 * input and output.  Tasks go down as the worker reads them, unchanged.
 * What comes up is framed, so that the supervisor can add a report of how
 * the worker ended, and where, after the worker's last byte: a 4-byte
 * header (type, then the length in 24 bits, most significant byte first)
 * and that many bytes.  Shared by the supervisor (api/remote.c) and the
 * POSIX backend's reader (posix_launch.c); nothing else of the core's.
 */
#ifndef PEBBLE_REMOTE_FRAME_H
#define PEBBLE_REMOTE_FRAME_H

#include <stddef.h>

#define PB_FRAME_HEADER 4
#define PB_FRAME_DATA 0u /* bytes of the worker's channel */
#define PB_FRAME_EXIT 1u /* the report: "PID EXITED CODE SIGNAL CORE HOST" */
/* The supervisor and its link are alive: empty, but the first says where
 * the worker runs, "PID HOST", for a link lost before the report. */
#define PB_FRAME_BEAT 2u
#define PB_FRAME_MAX 0xFFFFFFu
/* The longest report (or first heartbeat) a reader keeps (a host name is
 * at most 255). */
#define PB_FRAME_REPORT_MAX 400u

static inline void pb_frame_header(unsigned char h[PB_FRAME_HEADER],
                                   unsigned type, size_t len) {
  h[0] = (unsigned char)type;
  h[1] = (unsigned char)(len >> 16);
  h[2] = (unsigned char)(len >> 8);
  h[3] = (unsigned char)len;
}

static inline size_t pb_frame_length(const unsigned char h[PB_FRAME_HEADER]) {
  return (size_t)h[1] << 16 | (size_t)h[2] << 8 | (size_t)h[3];
}

/* The variable that tells a worker program how it was started: the value
 * PB_LAUNCHED_CHANNEL means "through a launcher: supervise, then serve". */
#define PB_LAUNCHED_CHANNEL "stdio"
/* Seconds between the supervisor's heartbeats (in its environment, from
 * the launcher's words); the application gives up on a link silent for
 * PB_BEATS_LOST of them. */
#define PB_HEARTBEAT_ENV "PEBBLE_WORKER_HEARTBEAT"
#define PB_HEARTBEAT_DEFAULT 5
#define PB_BEATS_LOST 3

#endif /* PEBBLE_REMOTE_FRAME_H */
