/* SPDX-License-Identifier: Apache-2.0 */
/* core_shared_result.c -- large results of process tasks: handed over as a
 * sealed memory file where the system and backend allow, through the
 * channel elsewhere; whole, in order, and gone when released. */
#include "core_util.h"

#define MIB ((size_t)1 << 20)

/* The byte at index i of the result made from seed. */
static unsigned char pattern(uint64_t seed, size_t i) {
  return (unsigned char)(i * 2654435761u + seed * 97u + (i >> 12));
}

/* Argument: {size, seed}.  Fills a result of that size. */
static int make_result(pebble_ctx *ctx, const void *arg, size_t size) {
  uint64_t a[2];
  unsigned char *p;
  size_t i;
  if (size != sizeof a)
    return pebble_fail(ctx, 1, "expected {size, seed}");
  memcpy(a, arg, sizeof a);
  if ((p = pebble_result_alloc(ctx, (size_t)a[0])) == NULL)
    return pebble_fail(ctx, 2, "no result buffer");
  for (i = 0; i < (size_t)a[0]; i++)
    p[i] = pattern(a[1], i);
  return 0;
}

/* A large buffer, then replaced by a small result. */
static int replaced(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  if (pebble_result_alloc(ctx, 3 * MIB) == NULL)
    return pebble_fail(ctx, 2, "no result buffer");
  return pebble_result_string(ctx, "small");
}

/* A large buffer, then a failure: the buffer goes nowhere. */
static int fills_then_fails(pebble_ctx *ctx, const void *arg, size_t size) {
  unsigned char *p;
  (void)arg, (void)size;
  if ((p = pebble_result_alloc(ctx, 3 * MIB)) == NULL)
    return pebble_fail(ctx, 2, "no result buffer");
  memset(p, 1, 3 * MIB);
  return pebble_fail(ctx, 7, "failed after filling");
}

/* Writes in the first 8 bytes of a 2 MiB result how many bytes of its
 * result file had pages before the task wrote to it (0 where it finds no
 * such file: result files are Linux memory files).  Pages made when the
 * buffer is given, not as it is written: a file the system cannot back is
 * refused there, not met as a SIGBUS in the middle of the task's writes. */
static int backed_at_alloc(pebble_ctx *ctx, const void *arg, size_t size) {
  uint64_t backed = 0;
  unsigned char *p;
  (void)arg, (void)size;
  if ((p = pebble_result_alloc(ctx, 2 * MIB)) == NULL)
    return pebble_fail(ctx, 2, "no result buffer");
#ifdef __linux__
  {
    DIR *d;
    struct dirent *e;
    if ((d = opendir("/proc/self/fd")) != NULL) {
      while ((e = readdir(d)) != NULL) {
        char path[300], target[256];
        struct stat st;
        ssize_t n;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        if ((n = readlink(path, target, sizeof target - 1)) <= 0)
          continue;
        target[n] = '\0';
        if (strstr(target, "memfd:pebble-result") != NULL &&
            stat(path, &st) == 0)
          backed = (uint64_t)st.st_blocks * 512u;
      }
      closedir(d);
    }
  }
#endif
  memset(p, 0, 2 * MIB);
  memcpy(p, &backed, sizeof backed);
  return 0;
}

/* How many result files this process has mapped now. */
static int result_mappings(void) {
  return count_mappings("memfd:pebble-result");
}

/* The library may hold a future a moment after the application released
 * it (until the process is reaped): wait a bounded while for the result
 * files to be unmapped. */
static int mappings_gone(void) {
  int i;
  for (i = 0; i < 500 && result_mappings() > 0; i++)
    usleep(10000);
  return result_mappings() == 0;
}

/* Whether results should travel as files here: Linux memory files, and
 * the POSIX backend (it passes descriptors; the APR one cannot). */
static int files_expected(void) {
#ifdef __linux__
  const char *name, *reason;
  pebble_backend_choice(&name, &reason);
  return strcmp(name, "posix") == 0;
#else
  return 0;
#endif
}

static size_t mismatches(const void *data, size_t size, uint64_t seed) {
  const unsigned char *p = data;
  size_t i, bad = 0;
  for (i = 0; i < size; i++)
    bad += p[i] != pattern(seed, i);
  return bad;
}

static pebble_future *launch(size_t size, uint64_t seed) {
  uint64_t a[2] = {size, seed};
  pebble_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(
      pebble_run(PEBBLE_PROCESS, make_result, a, sizeof a, NULL, &f),
      PEBBLE_OK);
  return f;
}

/* Descriptors open once the library runs (its manager's are opened on
 * first use and kept). */
static int settled_fds(void) {
  pebble_future *f = launch(16, 0);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_SEC(60)), PEBBLE_OK);
  pebble_future_release(f);
  usleep(200000);
  return count_fds();
}

/* A process's descriptors close a moment after its result is in: wait a
 * bounded while for the count to come back.  (At most the baseline: on a
 * slow machine the baseline itself may still count a closing one.) */
static int fds_back_to(int fds) {
  int i;
  for (i = 0; i < 500 && count_fds() > fds; i++)
    usleep(10000);
  return count_fds();
}

static void test_one_shot(void) {
  const void *data;
  size_t size = 0;
  int fds = settled_fds();
  pebble_future *f = launch(3 * MIB + 5, 11);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(size, 3 * MIB + 5);
  CU_ASSERT_EQUAL(mismatches(data, size, 11), 0);
  CU_ASSERT_EQUAL(((const char *)data)[size], '\0');
  if (files_expected())
    CU_ASSERT_EQUAL(result_mappings(), 1);
  pebble_future_release(f);
  CU_ASSERT_EQUAL(mappings_gone(), 1);
  CU_ASSERT(fds_back_to(fds) <= fds); /* none left open */
}

/* Just under the size that goes as a file, and just at it. */
static void test_threshold(void) {
  size_t sizes[2] = {MIB - 1, MIB}, i;
  for (i = 0; i < 2; i++) {
    const void *data;
    size_t size = 0;
    pebble_future *f = launch(sizes[i], i);
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                    PEBBLE_OK);
    CU_ASSERT_EQUAL(size, sizes[i]);
    CU_ASSERT_EQUAL(mismatches(data, size, i), 0);
    if (files_expected())
      CU_ASSERT_EQUAL(result_mappings(), (int)i);
    pebble_future_release(f);
  }
}

/* One worker sends several in a row; all are held at once, each whole
 * and its own; the worker is recycled after each task, so every result
 * outlives the process that made it, and the pool is gone before they
 * are read. */
static void test_pool_in_a_row(void) {
  pebble_pool_options o;
  pebble_pool *p = NULL;
  pebble_future *f[4];
  int fds = settled_fds(), k, kinds;
  for (kinds = 0; kinds < 2; kinds++) {
    pebble_pool_options_init(&o);
    o.workers = 1;
    o.max_tasks = kinds == 0 ? 0 : 1;
    CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&p, PEBBLE_PROCESS, &o),
                          PEBBLE_OK);
    for (k = 0; k < 4; k++) {
      uint64_t a[2] = {2 * MIB + (size_t)k, 100 + (uint64_t)k};
      CU_ASSERT_EQUAL_FATAL(
          pebble_pool_schedule(p, make_result, a, sizeof a, NULL, &f[k]),
          PEBBLE_OK);
    }
    for (k = 0; k < 4; k++)
      CU_ASSERT_EQUAL(pebble_future_wait(f[k], PEBBLE_SEC(60)), PEBBLE_OK);
    CU_ASSERT_EQUAL(pebble_pool_destroy(p), PEBBLE_OK);
    if (files_expected())
      CU_ASSERT_EQUAL(result_mappings(), 4);
    for (k = 0; k < 4; k++) {
      const void *data;
      size_t size = 0;
      CU_ASSERT_EQUAL(pebble_future_get(f[k], 0, &data, &size), PEBBLE_OK);
      CU_ASSERT_EQUAL(size, 2 * MIB + (size_t)k);
      CU_ASSERT_EQUAL(mismatches(data, size, 100 + (uint64_t)k), 0);
      pebble_future_release(f[k]);
    }
    CU_ASSERT_EQUAL(mappings_gone(), 1);
  }
  CU_ASSERT(fds_back_to(fds) <= fds); /* none left open */
}

static void test_replaced_and_failed(void) {
  pebble_future *f = NULL;
  const void *data;
  size_t size = 0;
  CU_ASSERT_EQUAL_FATAL(pebble_run(PEBBLE_PROCESS, replaced, NULL, 0, NULL, &f),
                        PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL(size, 6);
  CU_ASSERT_STRING_EQUAL((const char *)data, "small");
  CU_ASSERT_EQUAL(mappings_gone(), 1);
  pebble_future_release(f);
  CU_ASSERT_EQUAL_FATAL(
      pebble_run(PEBBLE_PROCESS, fills_then_fails, NULL, 0, NULL, &f),
      PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), NULL, NULL),
                  PEBBLE_ETASK);
  CU_ASSERT_EQUAL(pebble_future_task_code(f), 7);
  CU_ASSERT_EQUAL(mappings_gone(), 1);
  pebble_future_release(f);
}

/* A result file has all its pages once pebble_result_alloc() returns. */
static void test_backed_at_alloc(void) {
  pebble_future *f = NULL;
  const void *data;
  size_t size = 0;
  uint64_t backed = 0;
  if (!files_expected())
    return; /* results go through the channel here */
  CU_ASSERT_EQUAL_FATAL(
      pebble_run(PEBBLE_PROCESS, backed_at_alloc, NULL, 0, NULL, &f),
      PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                  PEBBLE_OK);
  CU_ASSERT_EQUAL_FATAL(size, 2 * MIB);
  memcpy(&backed, data, sizeof backed);
  if (backed < 2 * MIB)
    fprintf(stderr, "the result file had %llu of %zu bytes backed\n",
            (unsigned long long)backed, 2 * MIB);
  CU_ASSERT(backed >= 2 * MIB);
  pebble_future_release(f);
}

/* The maximum message size still bounds a result sent as a file. */
static void test_too_big(void) {
  pebble_task_options o;
  pebble_future *f = NULL;
  uint64_t a[2] = {2 * MIB, 1};
  pebble_task_options_init(&o);
  o.max_message_size = MIB;
  CU_ASSERT_EQUAL_FATAL(
      pebble_run(PEBBLE_PROCESS, make_result, a, sizeof a, &o, &f), PEBBLE_OK);
  CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), NULL, NULL),
                  PEBBLE_ETOOBIG);
  pebble_future_release(f);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"a large result arrives whole, then goes", test_one_shot},
      {"just under and at the size sent as a file", test_threshold},
      {"several in a row, outliving worker and pool", test_pool_in_a_row},
      {"replaced by a small result; dropped on failure",
       test_replaced_and_failed},
      {"the maximum message size still holds", test_too_big},
      {"a result file has its pages when it is given", test_backed_at_alloc},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(make_result);
  REGISTER_TASK(replaced);
  REGISTER_TASK(fills_then_fails);
  REGISTER_TASK(backed_at_alloc);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  if (skip_without_processes())
    return 77;
  return run_suite("shared_result", tests);
}
