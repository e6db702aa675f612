/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool_uv.c -- libuv's uv_queue_work on its own loop.  libuv has one
 * process-wide thread pool whose size is read once from
 * UV_THREADPOOL_SIZE, so the workloads set it to the worker count before
 * the first use (see bench_uv_threads).  Completion is libuv's own: the
 * after-work callbacks run on the loop thread, and uv_run returns once
 * every request is done.
 */
#include "pools.h"

#ifdef BENCH_HAVE_LIBUV
#include <stdlib.h>

#include <uv.h>

#include "bench.h"

typedef struct uv_sys {
  uv_loop_t loop;
  uv_work_t *reqs;
  size_t finished;
} uv_sys;

static void noop(uv_work_t *req) { (void)req; }

static void after(uv_work_t *req, int status) {
  uv_sys *s = req->data;
  if (status != 0)
    bench_die("uv_queue_work: %s", uv_strerror(status));
  s->finished++;
}

static void *create(unsigned workers, size_t max_burst) {
  uv_sys *s = calloc(1, sizeof *s);
  (void)workers; /* UV_THREADPOOL_SIZE, set by the workload */
  if (s == NULL || (s->reqs = calloc(max_burst, sizeof *s->reqs)) == NULL)
    bench_die("out of memory");
  if (uv_loop_init(&s->loop) != 0)
    bench_die("uv_loop_init failed");
  return s;
}

static void burst(void *p, size_t n) {
  uv_sys *s = p;
  size_t i;
  int rc;
  s->finished = 0;
  for (i = 0; i < n; i++) {
    s->reqs[i].data = s;
    if ((rc = uv_queue_work(&s->loop, &s->reqs[i], noop, after)) != 0)
      bench_die("uv_queue_work: %s", uv_strerror(rc));
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  if (s->finished != n)
    bench_die("libuv finished %zu of %zu tasks", s->finished, n);
}

static void round_trip(void *p) { burst(p, 1); }

static void destroy(void *p) {
  uv_sys *s = p;
  uv_loop_close(&s->loop);
  free(s->reqs);
  free(s);
}

const bench_pool_sys bench_pool_uv = {"libuv uv_queue_work", NULL, create,
                                      burst, round_trip, destroy};
#else
const bench_pool_sys bench_pool_uv = {
    "libuv uv_queue_work",
    "libuv was not found at configure time (Debian: libuv1-dev)", NULL, NULL,
    NULL, NULL};
#endif
