/* SPDX-License-Identifier: Apache-2.0 */
/* core_ahead.c -- process pools sending tasks ahead to busy workers: a
 * task sent ahead and cancelled never starts, a worker that dies gives its
 * unstarted tasks back, a stop cancels them, the limits (timeouts,
 * max_tasks, long tasks) hold, and every result still arrives once. */
#include "core_util.h"

#ifndef _WIN32
#include <poll.h>
#endif
#include <signal.h>
#include <sys/stat.h>

static int echo(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  return pebble_result_int(ctx, v);
}

/* Which worker process ran the task: its process id and the moment of its
 * first task. The id alone is not enough: Windows (and Wine) hands a freed
 * process id out again at once, so two recycled workers can share one. */
static int worker_identity(pebble_ctx *ctx, const void *arg, size_t size) {
  static int64_t identity;
  (void)arg, (void)size;
  if (identity == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    identity = ((int64_t)getpid() << 40) ^
               ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
  }
  return pebble_result_int(ctx, identity);
}

/* Creates the file named by its argument: proof that it ran. */
/* Sleeps 3 ms: a task long enough for the pool to stop sending ahead. */
static int nap(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx;
  (void)arg;
  (void)size;
  usleep(3000);
  return 0;
}

static int mark(pebble_ctx *ctx, const void *arg, size_t size) {
  int fd;
  if (size == 0 || ((const char *)arg)[size - 1] != '\0')
    return pebble_fail(ctx, 1, "expected a path");
  if ((fd = open(arg, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
    return pebble_fail(ctx, 2, "cannot create the mark");
  close(fd);
  return pebble_result_int(ctx, 1);
}

/* Waits until the test opens the FIFO named by its argument and closes
 * it again. */
static int gate(pebble_ctx *ctx, const void *arg, size_t size) {
  char c;
  int fd;
  if (size == 0 || ((const char *)arg)[size - 1] != '\0')
    return pebble_fail(ctx, 1, "expected a path");
  if ((fd = open(arg, O_RDONLY | O_CLOEXEC)) < 0)
    return pebble_fail(ctx, 2, "cannot open the gate");
  while (read(fd, &c, 1) > 0)
    ;
  close(fd);
  return pebble_result_int(ctx, 7);
}

/* As gate, then the worker dies. */
static int gate_then_die(pebble_ctx *ctx, const void *arg, size_t size) {
  gate(ctx, arg, size);
  kill(getpid(), SIGKILL);
  return 0;
}

typedef struct scene {
  char dir[64], gate[96], mark_b[96], mark_c[96];
} scene;

static int scene_open(scene *s) {
  snprintf(s->dir, sizeof s->dir, "/tmp/pebble-ahead-XXXXXX");
  if (mkdtemp(s->dir) == NULL)
    return -1;
  snprintf(s->gate, sizeof s->gate, "%s/gate", s->dir);
  snprintf(s->mark_b, sizeof s->mark_b, "%s/b", s->dir);
  snprintf(s->mark_c, sizeof s->mark_c, "%s/c", s->dir);
  return mkfifo(s->gate, 0600);
}

static void scene_close(scene *s) {
  unlink(s->gate);
  unlink(s->mark_b);
  unlink(s->mark_c);
  rmdir(s->dir);
}

/* Let the gate task through: opening the FIFO waits for it to be open
 * at the other end. */
static void open_gate(const scene *s) {
  int fd = open(s->gate, O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    close(fd);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static pebble_pool *one_worker(int send_ahead) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.workers = 1;
  o.start_eagerly = 1;
  o.send_ahead = send_ahead;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_OK);
  return p;
}

/* Wait a bounded while for f to start. */
static int started(pebble_future *f) {
  int i;
  for (i = 0; i < 6000 && pebble_future_state(f) == PEBBLE_PENDING; i++)
    usleep(5000);
  return pebble_future_state(f) == PEBBLE_RUNNING;
}

/* Wait a bounded while for the pool to have sent n tasks ahead. */
static int sent_ahead(pebble_pool *p, uint64_t n) {
  int i;
  for (i = 0; i < 6000 && pool_stats(p).sent_ahead < n; i++)
    usleep(5000);
  return pool_stats(p).sent_ahead == n;
}

/* Counters move just after the futures resolve: wait a bounded while. */
static uint64_t done_count(pebble_pool *p, uint64_t want) {
  int i;
  for (i = 0; i < 2000 && pool_stats(p).done < want; i++)
    usleep(5000);
  return pool_stats(p).done;
}

static pebble_future *schedule_str(pebble_pool *p, pebble_task_fn fn,
                                   const char *s) {
  pebble_future *f = NULL;
  CU_ASSERT_EQUAL(pebble_pool_schedule(p, fn, s, strlen(s) + 1, NULL, &f),
                  PEBBLE_OK);
  return f;
}

/* The scene of the first three tests: a one-worker pool that always
 * sends ahead; `first` runs at the gate, b and c (marks) are sent ahead
 * behind it (where the backend can). */
typedef struct gate_scene {
  scene s;
  pebble_pool *p;
  pebble_future *a, *b, *c;
} gate_scene;

static void gate_scene_begin(gate_scene *g, pebble_task_fn first) {
  g->p = one_worker(PEBBLE_SEND_AHEAD_ALWAYS);
  CU_ASSERT_EQUAL_FATAL(scene_open(&g->s), 0);
  g->a = schedule_str(g->p, first, g->s.gate);
  CU_ASSERT_EQUAL(started(g->a), 1);
  g->b = schedule_str(g->p, mark, g->s.mark_b);
  g->c = schedule_str(g->p, mark, g->s.mark_c);
  CU_ASSERT_EQUAL(sent_ahead(g->p, ahead_expected() ? 2 : 0), 1);
}

static void gate_scene_end(gate_scene *g) {
  pebble_future_release(g->a);
  pebble_future_release(g->b);
  pebble_future_release(g->c);
  CU_ASSERT_EQUAL(pebble_pool_destroy(g->p), PEBBLE_OK);
  scene_close(&g->s);
}

/* Behind a running task, two are sent ahead; the first is cancelled: the
 * worker skips it (no kill, no restart), the second runs.  The gate opens
 * right after the cancel returns: a cancel that returned before its skip
 * request was written would let the worker start the task now and then;
 * several rounds make that show. */
#define CANCEL_ROUNDS 8
static void test_cancel_skips(void) {
  int round;
  for (round = 0; round < CANCEL_ROUNDS; round++) {
    gate_scene g;
    int64_t v = 0;
    gate_scene_begin(&g, gate);
    CU_ASSERT_EQUAL(pebble_future_state(g.b), PEBBLE_PENDING);
    CU_ASSERT_EQUAL(pebble_future_cancel(g.b), PEBBLE_OK);
    open_gate(&g.s);
    CU_ASSERT_EQUAL(pebble_future_get_int(g.a, PEBBLE_SEC(60), &v),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(pebble_future_get_int(g.c, PEBBLE_SEC(60), &v),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_state(g.b), PEBBLE_CANCELLED);
    CU_ASSERT_EQUAL(exists(g.s.mark_b), 0); /* never started */
    CU_ASSERT_EQUAL(exists(g.s.mark_c), 1);
    CU_ASSERT_EQUAL(pool_stats(g.p).worker_restarts, 0); /* skipped */
    CU_ASSERT_EQUAL(pool_stats(g.p).cancelled, 1);
    gate_scene_end(&g);
  }
}

/* As above, but the cancelled task is already in the worker's own
 * buffer when the cancel comes: the worker read it together with the task
 * it runs (sent ahead behind a first one, which has looked at the channel
 * already).  Before it starts the task it must still see the skip request
 * written after that read. */
static void test_cancel_skips_buffered(void) {
  int round;
  for (round = 0; round < CANCEL_ROUNDS / 2; round++) {
    scene s0, s;
    pebble_pool *p = one_worker(PEBBLE_SEND_AHEAD_ALWAYS);
    pebble_future *a0, *a1, *b, *c;
    int64_t v = 0;
    CU_ASSERT_EQUAL_FATAL(scene_open(&s0), 0);
    CU_ASSERT_EQUAL_FATAL(scene_open(&s), 0);
    a0 = schedule_str(p, gate, s0.gate);
    CU_ASSERT_EQUAL(started(a0), 1);
    a1 = schedule_str(p, gate, s.gate);
    b = schedule_str(p, mark, s.mark_b);
    c = schedule_str(p, mark, s.mark_c);
    CU_ASSERT_EQUAL(sent_ahead(p, ahead_expected() ? 3 : 0), 1);
    open_gate(&s0); /* the worker reads a1, b and c, and starts a1 */
    CU_ASSERT_EQUAL(started(a1), 1);
    CU_ASSERT_EQUAL(pebble_future_state(b), PEBBLE_PENDING);
    CU_ASSERT_EQUAL(pebble_future_cancel(b), PEBBLE_OK);
    open_gate(&s);
    CU_ASSERT_EQUAL(pebble_future_get_int(a1, PEBBLE_SEC(60), &v), PEBBLE_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(pebble_future_get_int(c, PEBBLE_SEC(60), &v), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_state(b), PEBBLE_CANCELLED);
    CU_ASSERT_EQUAL(exists(s.mark_b), 0); /* never started */
    CU_ASSERT_EQUAL(exists(s.mark_c), 1);
    CU_ASSERT_EQUAL(pool_stats(p).worker_restarts, 0); /* skipped */
    pebble_future_release(a0);
    pebble_future_release(a1);
    pebble_future_release(b);
    pebble_future_release(c);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
    scene_close(&s0);
    scene_close(&s);
  }
}

/* The worker dies running the first task: the two sent ahead never
 * started, so they run on its replacement instead of failing with it. */
static void test_death_gives_back(void) {
  gate_scene g;
  int64_t v = 0;
  gate_scene_begin(&g, gate_then_die);
  open_gate(&g.s);
  CU_ASSERT_EQUAL(pebble_future_get(g.a, PEBBLE_SEC(60), NULL, NULL),
                  PEBBLE_EDIED);
  CU_ASSERT_EQUAL(pebble_future_get_int(g.b, PEBBLE_SEC(60), &v), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get_int(g.c, PEBBLE_SEC(60), &v), PEBBLE_OK);
  CU_ASSERT_EQUAL(exists(g.s.mark_b), 1);
  CU_ASSERT_EQUAL(exists(g.s.mark_c), 1);
  CU_ASSERT_EQUAL(pool_stats(g.p).worker_restarts, 1);
  CU_ASSERT_EQUAL(done_count(g.p, 2), 2);
  gate_scene_end(&g);
}

/* Stopping the pool cancels the tasks sent ahead; none of them starts. */
static void test_stop_cancels(void) {
  gate_scene g;
  gate_scene_begin(&g, gate);
  CU_ASSERT_EQUAL(pebble_pool_stop(g.p), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_pool_join(g.p, PEBBLE_SEC(60)), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(g.a, 0, NULL, NULL), PEBBLE_ECANCELED);
  CU_ASSERT_EQUAL(pebble_future_get(g.b, 0, NULL, NULL), PEBBLE_ECANCELED);
  CU_ASSERT_EQUAL(pebble_future_get(g.c, 0, NULL, NULL), PEBBLE_ECANCELED);
  CU_ASSERT_EQUAL(exists(g.s.mark_b), 0);
  CU_ASSERT_EQUAL(exists(g.s.mark_c), 0);
  CU_ASSERT_EQUAL(pool_stats(g.p).cancelled, 3);
  gate_scene_end(&g);
}

/* Nothing goes ahead behind a task with a timeout, and a task with a
 * timeout never goes ahead (its clock starts when it starts). */
static void test_timeouts_not_ahead(void) {
  int order;
  for (order = 0; order < 2; order++) {
    scene s;
    pebble_pool *p = one_worker(PEBBLE_SEND_AHEAD_ALWAYS);
    pebble_task_options timed;
    pebble_future *a = NULL, *b = NULL;
    int64_t v = 0;
    CU_ASSERT_EQUAL_FATAL(scene_open(&s), 0);
    pebble_task_options_init(&timed);
    timed.timeout = PEBBLE_SEC(120);
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, gate, s.gate, strlen(s.gate) + 1,
                                         order == 0 ? &timed : NULL, &a),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(started(a), 1);
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, mark, s.mark_b,
                                         strlen(s.mark_b) + 1,
                                         order == 1 ? &timed : NULL, &b),
                    PEBBLE_OK);
    usleep(20000); /* time for the manager to (wrongly) send it */
    CU_ASSERT_EQUAL(pebble_future_state(b), PEBBLE_PENDING);
    open_gate(&s);
    CU_ASSERT_EQUAL(pebble_future_get_int(b, PEBBLE_SEC(60), &v), PEBBLE_OK);
    CU_ASSERT_EQUAL(pool_stats(p).sent_ahead, 0);
    pebble_future_release(a);
    pebble_future_release(b);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
    scene_close(&s);
  }
}

/* n tasks of fn, each waited for before the next: the pool's recent
 * tasks (how long they took decides what AUTO sends ahead). */
static void run_in_turn(pebble_pool *p, pebble_task_fn fn, int64_t n) {
  int64_t i;
  for (i = 0; i < n; i++) {
    pebble_future *f = NULL;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, fn, &i, sizeof i, NULL, &f),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_future_status(f), PEBBLE_OK);
    pebble_future_release(f);
  }
}

/* AUTO sends nothing ahead of b, scheduled behind a gated task a, when
 * a has run long (b scheduled once a ran 20 ms, the pool's recent tasks
 * short) or when the pool's recent tasks were long (b scheduled right
 * behind a: with recent tasks short, b would go ahead as soon as the
 * manager saw it, if a had not yet run 0.5 ms by then, so this fails
 * when the pool's estimate of a task's time is lost, on all but a slow
 * machine). */
static void auto_holds_back(int recent_long) {
  scene s;
  pebble_pool *p = one_worker(PEBBLE_SEND_AHEAD_AUTO);
  pebble_future *a, *b;
  uint64_t before;
  int64_t v = 0;
  CU_ASSERT_EQUAL_FATAL(scene_open(&s), 0);
  if (recent_long)
    run_in_turn(p, nap, 8);
  else
    run_in_turn(p, echo, 20);
  before = pool_stats(p).sent_ahead;
  a = schedule_str(p, gate, s.gate);
  if (!recent_long) {
    CU_ASSERT_EQUAL(started(a), 1);
    usleep(20000); /* a has now run far longer than a short task */
  }
  b = schedule_str(p, mark, s.mark_b);
  CU_ASSERT_EQUAL(started(a), 1);
  usleep(20000); /* time for the manager to (wrongly) send b */
  CU_ASSERT_EQUAL(pool_stats(p).sent_ahead, before);
  open_gate(&s);
  CU_ASSERT_EQUAL(pebble_future_get_int(b, PEBBLE_SEC(60), &v), PEBBLE_OK);
  CU_ASSERT_EQUAL(pool_stats(p).sent_ahead, before);
  pebble_future_release(a);
  pebble_future_release(b);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  scene_close(&s);
}

static void test_auto_not_behind_long(void) { auto_holds_back(0); }
static void test_auto_not_after_long(void) { auto_holds_back(1); }

/* PEBBLE_SEND_AHEAD_ALWAYS: a busy worker holds far more than 32 tasks
 * ahead (a few hundred), in order; one cancelled deep in that list is
 * still skipped, never started, and its worker is neither killed nor
 * replaced. */
#define MANY_AHEAD 150
static void test_many_ahead(void) {
  scene s;
  pebble_pool *p = one_worker(PEBBLE_SEND_AHEAD_ALWAYS);
  pebble_future *a, *c, *f[MANY_AHEAD];
  int64_t i, v = 0;
  int bad = 0;
  CU_ASSERT_EQUAL_FATAL(scene_open(&s), 0);
  a = schedule_str(p, gate, s.gate);
  CU_ASSERT_EQUAL(started(a), 1);
  for (i = 0; i < MANY_AHEAD; i++)
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, echo, &i, sizeof i, NULL, &f[i]),
                    PEBBLE_OK);
  c = schedule_str(p, mark, s.mark_c);
  CU_ASSERT_EQUAL(sent_ahead(p, ahead_expected() ? MANY_AHEAD + 1 : 0), 1);
  CU_ASSERT_EQUAL(pebble_future_cancel(c), PEBBLE_OK);
  open_gate(&s);
  for (i = 0; i < MANY_AHEAD; i++)
    bad += pebble_future_get_int(f[i], PEBBLE_SEC(60), &v) != PEBBLE_OK ||
           v != i;
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(pebble_future_get_int(a, PEBBLE_SEC(60), &v), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_state(c), PEBBLE_CANCELLED);
  CU_ASSERT_EQUAL(done_count(p, MANY_AHEAD + 1), MANY_AHEAD + 1);
  CU_ASSERT_FALSE(exists(s.mark_c));
  CU_ASSERT_EQUAL(pool_stats(p).worker_restarts, 0);
  for (i = 0; i < MANY_AHEAD; i++)
    pebble_future_release(f[i]);
  pebble_future_release(a);
  pebble_future_release(c);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  CU_ASSERT_FALSE(exists(s.mark_c)); /* not even at the end */
  scene_close(&s);
}

/* Many short tasks, two workers: every result arrives once and right; a
 * worker recycled after max_tasks never gets more than that. */
static void test_burst_and_max_tasks(void) {
  int round;
  for (round = 0; round < 2; round++) {
    /* Recycling: 700 tasks, 7 a worker: 100 worker processes. */
    const int64_t N = round == 0 ? 3000 : 700;
    pebble_pool_options o;
    pebble_pool *p = NULL;
    pebble_future **f;
    int64_t i, v = 0;
    /* Workers are forked (at the start, and when recycled) while this
     * thread allocates for the burst it schedules. */
    if (UNDER_ASAN && threaded_fork_mode() &&
        skip_test(__func__, ASAN_FORK_WHY))
      break;
    f = calloc((size_t)N, sizeof *f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    pebble_pool_options_init(&o);
    o.workers = 2;
    o.send_ahead = PEBBLE_SEND_AHEAD_ALWAYS;
    o.max_tasks = round == 0 ? 0 : 7;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    for (i = 0; i < N; i++)
      CU_ASSERT_EQUAL(pebble_pool_schedule(p, round == 0 ? echo : worker_identity, &i,
                                           sizeof i, NULL, &f[i]),
                      PEBBLE_OK);
    if (round == 0) {
      int bad = 0;
      for (i = 0; i < N; i++)
        bad += pebble_future_get_int(f[i], PEBBLE_SEC(120), &v) !=
                   PEBBLE_OK ||
               v != i;
      CU_ASSERT_EQUAL(bad, 0);
    } else {
      /* Tasks per worker process: at most max_tasks each. */
      int64_t *workers = calloc((size_t)N, sizeof *workers);
      int over = 0, failed = 0;
      size_t n = 0, j, k;
      CU_ASSERT_PTR_NOT_NULL_FATAL(workers);
      for (i = 0; i < N; i++) {
        failed += pebble_future_get_int(f[i], PEBBLE_SEC(120), &v) !=
                  PEBBLE_OK;
        workers[n++] = v;
      }
      for (j = 0; j < n; j++) {
        size_t same = 0;
        for (k = 0; k < n; k++)
          same += workers[k] == workers[j];
        over += same > 7;
      }
      CU_ASSERT_EQUAL(failed, 0);
      CU_ASSERT_EQUAL(over, 0);
      free(workers);
    }
    if (ahead_expected())
      CU_ASSERT(pool_stats(p).sent_ahead > 0);
    CU_ASSERT_EQUAL(done_count(p, (uint64_t)N), (uint64_t)N);
    for (i = 0; i < N; i++)
      pebble_future_release(f[i]);
    free(f);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
}

/* The race test's tasks: a task whose index is a multiple of 4 first
 * tells the test it runs (its index, on the FIFO named in the argument),
 * so that the test's cancel arrives while it runs; then every task works
 * a little, from nothing to some tens of microseconds by index, so that
 * cancels land on every moment up to the task's end.  One in eight of
 * those tells the test only at its end instead, and returns a result
 * large enough to take a while to read (RACE_BIG bytes, its index
 * first): the cancel mostly comes after the task ended, while its result
 * is on its way. */
#define RACE_BIG ((size_t)512 << 10)
typedef struct race_arg {
  int64_t index;
  char fifo[96];
} race_arg;

static int race_task(pebble_ctx *ctx, const void *arg, size_t size) {
  static int fd = -1;
  race_arg a;
  volatile unsigned spin = 0;
  unsigned i, n;
  if (size != sizeof a)
    return pebble_fail(ctx, 1, "expected a race_arg");
  memcpy(&a, arg, sizeof a);
  if (a.index % 4 == 0) {
    if (fd < 0 && (fd = open(a.fifo, O_WRONLY | O_CLOEXEC)) < 0)
      return pebble_fail(ctx, 2, "cannot open the FIFO");
    if (a.index % 32 == 0) {
      unsigned char *big = pebble_result_alloc(ctx, RACE_BIG);
      if (big == NULL)
        return pebble_fail(ctx, 4, "no memory for the result");
      memset(big, 0, RACE_BIG);
      memcpy(big, &a.index, sizeof a.index);
      if (write(fd, &a.index, sizeof a.index) != (ssize_t)sizeof a.index)
        return pebble_fail(ctx, 3, "cannot write to the FIFO");
      return 0;
    }
    if (write(fd, &a.index, sizeof a.index) != (ssize_t)sizeof a.index)
      return pebble_fail(ctx, 3, "cannot write to the FIFO");
  }
  n = (unsigned)(a.index / 4 % 8) * 30000u;
  for (i = 0; i < n; i++)
    spin += i;
  return pebble_result_int(ctx, a.index);
}

static int race_targets_open(pebble_future **f, int64_t n) {
  int64_t i;
  for (i = 0; i < n; i += 4) {
    int st = pebble_future_state(f[i]);
    if (st == PEBBLE_PENDING || st == PEBBLE_RUNNING)
      return 1;
  }
  return 0;
}

/* A cancel kills a worker only while it runs the cancelled task: never
 * the task it was sent ahead and started once the cancelled one ended.
 * Every fourth task is cancelled as soon as it says it runs, racing its
 * end; a task not cancelled must end with its own result, a cancelled
 * one cancelled, or done with its result if it ended first, as the
 * cancel's return says (PEBBLE_OK or PEBBLE_EALREADY). */
static void test_cancel_only_its_own(void) {
  const int64_t N = 1200;
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future **f = calloc((size_t)N, sizeof *f);
  int *rc = calloc((size_t)N, sizeof *rc);
  race_arg a;
  char dir[64];
  int64_t i, v;
  int fd, wrong = 0, hit = 0, early = 0;
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
  snprintf(dir, sizeof dir, "/tmp/pebble-race-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  memset(&a, 0, sizeof a);
  snprintf(a.fifo, sizeof a.fifo, "%s/fifo", dir);
  CU_ASSERT_EQUAL_FATAL(mkfifo(a.fifo, 0600), 0);
  /* Read and write: the tasks' opens never wait for a reader. */
  fd = open(a.fifo, O_RDWR | O_CLOEXEC);
  CU_ASSERT_FATAL(fd >= 0);
  pebble_pool_options_init(&o);
  o.workers = 2;
  o.start_eagerly = 1;
  o.send_ahead = PEBBLE_SEND_AHEAD_ALWAYS;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                        PEBBLE_OK);
  for (i = 0; i < N; i++) {
    rc[i] = 1; /* not cancelled */
    a.index = i;
    CU_ASSERT_EQUAL(pebble_pool_schedule(p, race_task, &a, sizeof a, NULL,
                                         &f[i]),
                    PEBBLE_OK);
  }
  /* A task killed before it said it runs never says so: when the FIFO
   * stays quiet, look whether any cancelled task is still open. */
  while (race_targets_open(f, N)) {
    struct pollfd pfd;
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 200) > 0 &&
        read(fd, &v, sizeof v) == (ssize_t)sizeof v && v >= 0 && v < N) {
      int was_running = 0;
      rc[v] = pebble_future_cancel_ex(f[v], &was_running);
      if (rc[v] == PEBBLE_OK)
        hit += was_running;
      else
        early++;
    }
  }
  for (i = 0; i < N; i++) {
    int cancelled = i % 4 == 0;
    int st;
    pebble_future_wait(f[i], PEBBLE_SEC(120));
    st = pebble_future_state(f[i]);
    v = -1;
    if (i % 32 == 0) {
      const void *data = NULL;
      size_t size = 0;
      if (pebble_future_get(f[i], 0, &data, &size) == PEBBLE_OK &&
          size == RACE_BIG)
        memcpy(&v, data, sizeof v);
    } else {
      pebble_future_get_int(f[i], 0, &v);
    }
    if (st == PEBBLE_DONE && rc[i] != PEBBLE_OK && v == i)
      continue;
    if (cancelled && st == PEBBLE_CANCELLED && rc[i] == PEBBLE_OK)
      continue;
    if (wrong < 5)
      fprintf(stderr, "  task %lld (%s): %s: %s\n", (long long)i,
              cancelled ? "cancelled" : "not cancelled",
              pebble_strerror(pebble_future_status(f[i])),
              pebble_future_message(f[i]) ? pebble_future_message(f[i])
                                          : "");
    wrong++;
  }
  fprintf(stderr,
          "  %lld tasks, %lld cancelled (%d as they ran, %d after they "
          "ended): %d wrong outcomes\n",
          (long long)N, (long long)(N / 4), hit, early, wrong);
  CU_ASSERT_EQUAL(wrong, 0);
  for (i = 0; i < N; i++)
    pebble_future_release(f[i]);
  free(f);
  free(rc);
  CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  close(fd);
  unlink(a.fifo);
  rmdir(dir);
}

/* Outcomes of every size, from a worker that dies at last.  Sizes cycle
 * through 8 bytes, 3,000 (each fits the outcome ring, and a few dozen
 * queued fill it, so some go on the channel) and 20,000 (always the
 * channel, written in pieces): the pool must take each in its turn, or
 * it would refuse one as another task's.  The last task kills its
 * worker once every outcome before it is written, some of them still in
 * the ring: those count, the task that killed it fails as a crash. */
#define RING_TASKS 1500
static size_t ring_size(int64_t i) {
  static const size_t sizes[3] = {8, 3000, 20000};
  /* The last ones small and quick: the worker writes them faster than
   * the pool reads them, so that it dies with some still in the ring. */
  return i >= RING_TASKS - 300 ? 8 : sizes[i % 3];
}

static int sized(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t i;
  unsigned char *out;
  size_t n;
  if (pebble_arg_int(arg, size, &i) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  if (i == RING_TASKS - 1)
    kill(getpid(), SIGKILL);
  n = ring_size(i);
  if ((out = pebble_result_alloc(ctx, n)) == NULL)
    return pebble_fail(ctx, 2, "no memory");
  memset(out, (int)(i % 251), n);
  memcpy(out, &i, sizeof i);
  return 0;
}

static void test_every_size_in_turn(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future **f = calloc(RING_TASKS, sizeof *f);
  int64_t i;
  int wrong = 0, round;
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  /* A worker is forked again (after the kill) while this thread
   * allocates for the burst it schedules. */
  if (UNDER_ASAN && threaded_fork_mode() &&
      skip_test(__func__, ASAN_FORK_WHY)) {
    free(f);
    return;
  }
  for (round = 0; round < 2; round++) {
    pebble_pool_options_init(&o);
    o.workers = round + 1;
    o.send_ahead = PEBBLE_SEND_AHEAD_ALWAYS;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    for (i = 0; i < RING_TASKS; i++)
      CU_ASSERT_EQUAL(
          pebble_pool_schedule(p, sized, &i, sizeof i, NULL, &f[i]),
          PEBBLE_OK);
    for (i = 0; i < RING_TASKS; i++) {
      const unsigned char *data;
      const void *d;
      size_t size = 0, k;
      int64_t said = -1;
      int rc = pebble_future_get(f[i], PEBBLE_SEC(120), &d, &size);
      data = d;
      if (i == RING_TASKS - 1) {
        wrong += rc != PEBBLE_EDIED;
        continue;
      }
      if (rc != PEBBLE_OK || size != ring_size(i)) {
        if (wrong++ < 3)
          printf("(task %lld: %s, %zu bytes: %s) ", (long long)i,
                 pebble_status_name(rc), size,
                 pebble_future_message(f[i]));
        continue;
      }
      memcpy(&said, data, sizeof said);
      for (k = sizeof said; k < size && data[k] == (unsigned char)(i % 251);
           k++)
        ;
      wrong += said != i || k != size;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    if (ahead_expected())
      CU_ASSERT(pool_stats(p).sent_ahead > 0);
    CU_ASSERT_EQUAL(done_count(p, RING_TASKS - 1), RING_TASKS - 1);
    for (i = 0; i < RING_TASKS; i++)
      pebble_future_release(f[i]);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
  }
  free(f);
}

static void test_bad_option(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_pool_options_init(&o);
  o.send_ahead = 7;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o), PEBBLE_EINVAL);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "send_ahead"));
}

int main(void) {
  CU_TestInfo tests[] = {
      {"a cancelled task sent ahead is skipped, never started",
       NEEDS_FIFOS(test_cancel_skips)},
      {"a cancelled task sent ahead and already read by its worker is "
       "skipped, never started",
       NEEDS_FIFOS(test_cancel_skips_buffered)},
      {"a dying worker gives back the tasks sent ahead",
       NEEDS_FIFOS(test_death_gives_back)},
      {"a stop cancels the tasks sent ahead", NEEDS_FIFOS(test_stop_cancels)},
      {"nothing goes ahead with or behind a timeout",
       NEEDS_FIFOS(test_timeouts_not_ahead)},
      {"auto: nothing goes ahead behind a long task",
       NEEDS_FIFOS(test_auto_not_behind_long)},
      {"auto: nothing goes ahead while recent tasks were long",
       NEEDS_FIFOS(test_auto_not_after_long)},
      {"always: a busy worker holds more than 32 tasks ahead; one "
       "cancelled deep among them is skipped",
       NEEDS_FIFOS(test_many_ahead)},
      {"a burst arrives whole; max_tasks holds", test_burst_and_max_tasks},
      {"a cancel kills only its own task, never the next one",
       NEEDS_FIFOS(test_cancel_only_its_own)},
      {"outcomes of every size arrive in turn, and those written before "
       "the worker died count",
       test_every_size_in_turn},
      {"an unknown send_ahead is refused", test_bad_option},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(echo);
  REGISTER_TASK(sized);
  REGISTER_TASK(race_task);
  REGISTER_TASK(worker_identity);
  REGISTER_TASK(mark);
  REGISTER_TASK(nap);
  REGISTER_TASK(gate);
  REGISTER_TASK(gate_then_die);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  if (skip_without_processes())
    return 77;
  return run_suite("ahead", tests);
}
