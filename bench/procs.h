/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procs.h -- the hand-written process baselines of workload 3.
 *
 * preforked: plain pre-forked pools, the near-physical limit of a
 * process pool: 16-byte messages (an id and an 8-byte argument or
 * result), one write() per message each way, no framing beyond that and
 * no supervision (no timeouts, no crash handling).
 *   PREFORKED_PIPES (the reference): a task pipe and a result pipe per
 *   child; children and parent read as many messages as are there in one
 *   read(); the parent keeps every child supplied without blocking.
 *   PREFORKED_SHARED: one task pipe and one result pipe shared by all
 *   children, each child reading one task per read().
 *
 * pingpong: two processes passing one byte back and forth over a pair of
 * pipes, the floor of any process round trip.
 */
#ifndef BENCH_PROCS_H
#define BENCH_PROCS_H

#include <stddef.h>

/* In a new child: close every descriptor above 2 but keep_a and keep_b,
 * so no child holds another's pipe end (which would hide end-of-file). */
void bench_close_others(int keep_a, int keep_b);

typedef struct preforked preforked;
enum preforked_kind { PREFORKED_PIPES, PREFORKED_SHARED };
preforked *preforked_start(enum preforked_kind kind, unsigned children);
/* Send n tasks as fast as the pipe takes them; return once every result
 * has been read back. */
void preforked_burst(preforked *p, size_t n);
/* One task, then its result. */
void preforked_round_trip(preforked *p);
void preforked_stop(preforked *p);

typedef struct pingpong pingpong;
pingpong *pingpong_start(void);
void pingpong_round_trip(pingpong *p);
void pingpong_stop(pingpong *p);

#endif /* BENCH_PROCS_H */
