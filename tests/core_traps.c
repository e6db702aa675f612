/* core_traps.c -- traps a new user falls into, under every backend and
 * start method: a spawned worker program that forgets
 * pebble_worker_main(), typed getters reading a result of another type,
 * callbacks lost when main returns, and the log lines an operator needs. */
#include "core_util.h"

#include <poll.h>
#include <stdarg.h>

/* ---- tasks ---- */

static int give_int(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, 42);
}
static int give_double(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_double(ctx, 2.5);
}
static int give_string(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_string(ctx, "pebble");
}
/* Eight raw bytes: the size of an int or a double, but neither. */
static int give_raw(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 42;
  (void)arg, (void)size;
  return pebble_result_set(ctx, &v, sizeof v);
}
/* Raw bytes that happen to end in a NUL, like a string. */
static int give_raw_text(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_set(ctx, "abc", 4);
}
static int square(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n = 0;
  pebble_arg_int(arg, size, &n);
  return pebble_result_int(ctx, n * n);
}

/* ---- a spawned worker program that forgets pebble_worker_main() ----
 * The test runs this program again with FORGETFUL_ENV set: main() then
 * skips pebble_worker_main() and uses a spawn pool and a spawned one-shot
 * task, as a new user's program would.  Each run of the program (parent
 * or worker) adds a line to the file the variable names; past
 * FORGETFUL_MAX_STARTS a run stops at once, so that a library that lets
 * the workers run main() again makes a bounded chain, not a fork bomb. */
#define FORGETFUL_ENV "PEBBLE_TEST_FORGETFUL"
#define FORGETFUL_MAX_STARTS 12
#define FORGETFUL_MAX_EXPECTED 5 /* parent, pool workers, one-shot */

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  int n = 0, c;
  if (f == NULL)
    return 0;
  while ((c = fgetc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

static int forgetful_main(const char *count_path) {
  pebble_pool_options po;
  pebble_task_options to;
  pebble_pool *p;
  pebble_future *f;
  int64_t n = 3;
  int fd = open(count_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, "x\n", 2) != 2)
    return 8;
  close(fd);
  if (count_lines(count_path) > FORGETFUL_MAX_STARTS)
    return 9;
  pebble_pool_options_init(&po);
  po.workers = 2;
  po.start_method = PEBBLE_START_SPAWN;
  pebble_task_options_init(&to);
  to.timeout = PEBBLE_SEC(5);
  if (pebble_pool_create(&p, PEBBLE_PROCESS, &po) != PEBBLE_OK) {
    printf("pool-create %s\n", pebble_last_error());
    return 10;
  }
  if (pebble_pool_schedule(p, square, &n, sizeof n, &to, &f) == PEBBLE_OK) {
    pebble_future_wait(f, PEBBLE_SEC(60));
    printf("pool %d %s\n", pebble_future_status(f), pebble_future_message(f));
    pebble_future_release(f);
  } else {
    printf("pool %d %s\n", PEBBLE_EBROKEN, pebble_last_error());
  }
  pebble_pool_destroy(p);
  to.start_method = PEBBLE_START_SPAWN;
  if (pebble_run(PEBBLE_PROCESS, square, &n, sizeof n, &to, &f) !=
      PEBBLE_OK) {
    printf("run %s\n", pebble_last_error());
    return 11;
  }
  pebble_future_wait(f, PEBBLE_SEC(60));
  printf("oneshot %d %s\n", pebble_future_status(f), pebble_future_message(f));
  pebble_future_release(f);
  fflush(stdout);
  return 0;
}

/* Read a whole small file into buf (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = 0;
  buf[0] = '\0';
  if (f == NULL)
    return;
  n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Run this program again with `var` set to `value`, its output in the
 * files out and err; wait up to `limit` seconds.  Returns its exit
 * status, or -1 if it had to be killed. */
static int run_self(const char *var, const char *value, const char *out,
                    const char *err, double limit) {
  double end = now_s() + limit;
  int st;
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
      _exit(120);
    setpgid(0, 0);
    setenv(var, value, 1);
    execl("/proc/self/exe", "core_traps", (char *)NULL);
    _exit(121);
  }
  if (pid < 0)
    return -2;
  while (now_s() < end) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(20000);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

static void test_forgotten_worker_main(void) {
  char dir[] = "/tmp/pebble-traps-XXXXXX", count[96], out[96], err[96];
  char text[8192], errtext[8192], *line;
  int rc, starts, pool_status = 0, oneshot_status = 0;
  const char *why = "the worker program did not call pebble_worker_main()";
  if (mkdtemp(dir) == NULL) {
    CU_FAIL("mkdtemp");
    return;
  }
  snprintf(count, sizeof count, "%s/starts", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(err, sizeof err, "%s/err", dir);
  rc = run_self(FORGETFUL_ENV, count, out, err, 120);
  starts = count_lines(count);
  slurp(out, text, sizeof text);
  slurp(err, errtext, sizeof errtext);
  if (rc != 0 || starts > FORGETFUL_MAX_EXPECTED)
    printf("(exit %d, %d runs of the program; output: %s; stderr: %.300s) ",
           rc, starts, text, errtext);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(starts >= 2);
  CU_ASSERT(starts <= FORGETFUL_MAX_EXPECTED);
  /* The pool is broken by it; the one-shot task's process died of it. */
  line = strstr(text, "pool ");
  CU_ASSERT_PTR_NOT_NULL(line);
  if (line != NULL) {
    sscanf(line, "pool %d", &pool_status);
    CU_ASSERT_EQUAL(pool_status, PEBBLE_EBROKEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, why));
  }
  line = strstr(text, "oneshot ");
  CU_ASSERT_PTR_NOT_NULL(line);
  if (line != NULL) {
    sscanf(line, "oneshot %d", &oneshot_status);
    CU_ASSERT_EQUAL(oneshot_status, PEBBLE_EDIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, why));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "exited with code 70"));
  }
  /* And the operator sees it. */
  CU_ASSERT_PTR_NOT_NULL(strstr(errtext, why));
  unlink(count);
  unlink(out);
  unlink(err);
  rmdir(dir);
}

/* ---- typed getters refuse a result of another type ---- */

static const struct {
  pebble_task_fn fn;
  const char *name; /* as the messages name it */
} makers[] = {{give_int, "an int"},
              {give_double, "a double"},
              {give_string, "a string"},
              {give_raw, "raw bytes"},
              {give_raw_text, "raw bytes"}};

/* Every getter on a future of `kind` resolved by each maker. */
static void check_getters(pebble_kind kind, pebble_pool *pool) {
  size_t i;
  for (i = 0; i < sizeof makers / sizeof makers[0]; i++) {
    pebble_future *f;
    int64_t iv = -1;
    double dv = -1;
    const char *sv = NULL;
    const void *data;
    size_t size;
    int rc;
    if (pool != NULL)
      rc = pebble_pool_schedule(pool, makers[i].fn, NULL, 0, NULL, &f);
    else
      rc = pebble_run(kind, makers[i].fn, NULL, 0, NULL, &f);
    CU_ASSERT_EQUAL_FATAL(rc, PEBBLE_OK);
    /* The raw bytes are always there. */
    CU_ASSERT_EQUAL(pebble_future_get(f, PEBBLE_SEC(60), &data, &size),
                    PEBBLE_OK);
    rc = pebble_future_get_int(f, 0, &iv);
    if (makers[i].fn == give_int) {
      CU_ASSERT_EQUAL(rc, PEBBLE_OK);
      CU_ASSERT_EQUAL(iv, 42);
    } else {
      CU_ASSERT_EQUAL(rc, PEBBLE_EINVAL);
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), makers[i].name));
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "not an int"));
    }
    rc = pebble_future_get_double(f, 0, &dv);
    if (makers[i].fn == give_double) {
      CU_ASSERT_EQUAL(rc, PEBBLE_OK);
      CU_ASSERT(dv == 2.5);
    } else {
      CU_ASSERT_EQUAL(rc, PEBBLE_EINVAL);
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), makers[i].name));
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "not a double"));
    }
    rc = pebble_future_get_string(f, 0, &sv);
    if (makers[i].fn == give_string) {
      CU_ASSERT_EQUAL(rc, PEBBLE_OK);
      CU_ASSERT(sv != NULL && strcmp(sv, "pebble") == 0);
    } else {
      CU_ASSERT_EQUAL(rc, PEBBLE_EINVAL);
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), makers[i].name));
      CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "not a string"));
    }
    pebble_future_release(f);
  }
}

static void test_typed_getters(void) {
  pebble_pool *pool;
  pebble_pool_options o;
  check_getters(PEBBLE_THREAD, NULL);
  check_getters(PEBBLE_PROCESS, NULL);
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&pool, PEBBLE_THREAD, NULL),
                        PEBBLE_OK);
  check_getters(PEBBLE_THREAD, pool);
  pebble_pool_destroy(pool);
  pebble_pool_options_init(&o);
  o.workers = 1;
  CU_ASSERT_EQUAL_FATAL(pebble_pool_create(&pool, PEBBLE_PROCESS, &o),
                        PEBBLE_OK);
  check_getters(PEBBLE_PROCESS, pool);
  pebble_pool_destroy(pool);
}

int main(void) {
  CU_TestInfo tests[] = {
      {"typed getters refuse another type", test_typed_getters},
      {"a worker program that forgets pebble_worker_main()",
       test_forgotten_worker_main},
      CU_TEST_INFO_NULL};
  const char *forgetful = getenv(FORGETFUL_ENV);
  REGISTER_TASK(give_int);
  REGISTER_TASK(give_double);
  REGISTER_TASK(give_string);
  REGISTER_TASK(give_raw);
  REGISTER_TASK(give_raw_text);
  REGISTER_TASK(square);
  /* The program a new user writes: no pebble_worker_main(). */
  if (forgetful != NULL)
    return forgetful_main(forgetful);
  /* Under the spawn start method this program is also its workers. */
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "worker: %s\n", pebble_last_error());
    return 2;
  }
  return run_suite("traps", tests);
}
