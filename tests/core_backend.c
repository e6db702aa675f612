/* SPDX-License-Identifier: Apache-2.0 */
/* core_backend.c -- backend selection and module loading.  Selection is
 * process-wide, so each case runs in a fresh forked child. */
#include "core_util.h"
#include "pebble_backend.h"

static int add_one(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v = 0;
  pebble_arg_int(arg, size, &v);
  return pebble_result_int(ctx, v + 1);
}

static int works(pebble_kind kind) {
  pebble_future *f;
  int64_t v = 1, out = 0;
  if (pebble_run(kind, add_one, &v, sizeof v, NULL, &f) != PEBBLE_OK)
    return 0;
  if (pebble_future_get_int(f, PEBBLE_SEC(30), &out) != PEBBLE_OK)
    out = 0;
  pebble_future_release(f);
  return out == 2;
}

static const char *module_dir(void) {
  const char *d = getenv("PEBBLE_TEST_MODULE_DIR");
  return d ? d : "backends/posix/.libs";
}

/* A --disable-shared build has no module files (libtool builds no shared
 * object then): the tests that load one are skipped, by name. */
static int no_module(const char *test, const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/pebble_%s.so", dir, name);
  if (access(path, F_OK) == 0)
    return 0;
  return skip_test(test, "no module files in a --disable-shared build");
}
static const char *test_module_dir(void) {
  static char dir[4096];
  const char *top = getenv("top_builddir");
  snprintf(dir, sizeof dir, "%s/tests/modules/.libs", top ? top : ".");
  return dir;
}

static void default_body(void) {
  const char *name, *reason;
  unsetenv("PEBBLE_BACKEND");
  unsetenv("PEBBLE_BACKEND_PATH");
  if (pebble_backend_name() != NULL)
    _exit(1); /* nothing active before first use */
  pebble_backend_choice(&name, &reason);
  if (strcmp(name, "posix") || strcmp(reason, "built-in default"))
    _exit(2);
  if (!works(PEBBLE_PROCESS) || strcmp(pebble_backend_name(), "posix"))
    _exit(3);
  _exit(0);
}
static void test_default(void) { CU_ASSERT(in_child(default_body)); }

static void env_body(void) {
  const char *name, *reason;
  setenv("PEBBLE_BACKEND", "posix", 1);
  pebble_backend_choice(&name, &reason);
  if (strcmp(name, "posix") || !strstr(reason, "PEBBLE_BACKEND"))
    _exit(1);
  _exit(works(PEBBLE_THREAD) ? 0 : 2);
}
static void test_env(void) { CU_ASSERT(in_child(env_body)); }

static void code_body(void) {
  const char *name, *reason;
  setenv("PEBBLE_BACKEND", "nosuch", 1); /* code wins over the variable */
  if (pebble_backend_select("posix") != PEBBLE_OK)
    _exit(1);
  pebble_backend_choice(&name, &reason);
  if (strcmp(name, "posix") || !strstr(reason, "from code"))
    _exit(2);
  _exit(works(PEBBLE_PROCESS) ? 0 : 3);
}
static void test_code(void) { CU_ASSERT(in_child(code_body)); }

static void unknown_env_body(void) {
  pebble_future *f = NULL;
  setenv("PEBBLE_BACKEND", "nosuch", 1);
  /* Asked for explicitly: no silent fallback. */
  if (pebble_run(PEBBLE_THREAD, add_one, NULL, 0, NULL, &f) !=
      PEBBLE_EBACKEND)
    _exit(1);
  _exit(strstr(pebble_last_error(), "posix") ? 0 : 2);
}
static void test_unknown_env(void) { CU_ASSERT(in_child(unknown_env_body)); }

static void test_unknown_and_bad_names(void) {
  CU_ASSERT_EQUAL(pebble_backend_select("nosuch"), PEBBLE_EBACKEND);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "nosuch"));
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "available: posix"));
  CU_ASSERT_EQUAL(pebble_backend_select("../posix"), PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "path separator"));
  CU_ASSERT_EQUAL(pebble_backend_select("a\\b"), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_backend_select(""), PEBBLE_EINVAL);
}

static int module_seen;
static void visit(const pebble_backend_info *info, void *user) {
  (void)user;
  if (info->path != NULL && strcmp(info->name, "posix") == 0 && info->usable)
    module_seen = 1;
}
static void module_body(void) {
  setenv("PEBBLE_BACKEND_PATH", module_dir(), 1);
  setenv("PEBBLE_BACKEND", "posix", 1);
  module_seen = 0;
  pebble_backend_foreach(visit, NULL);
  if (!module_seen)
    _exit(1);
  if (!works(PEBBLE_PROCESS) || !works(PEBBLE_THREAD))
    _exit(2);
  _exit(0);
}
static void test_module(void) {
  if (!no_module("module from PEBBLE_BACKEND_PATH", module_dir(), "posix"))
    CU_ASSERT(in_child(module_body));
}

static void busy_body(void) {
  pebble_future *f;
  int64_t v = 1;
  unsetenv("PEBBLE_BACKEND_PATH");
  if (pebble_run(PEBBLE_THREAD, add_one, &v, sizeof v, NULL, &f) != 0)
    _exit(1);
  pebble_future_wait(f, PEBBLE_SEC(30));
  /* The module is another backend: switching needs an idle library. */
  setenv("PEBBLE_BACKEND_PATH", module_dir(), 1);
  if (pebble_backend_select("posix") != PEBBLE_EBUSY)
    _exit(2);
  if (!strstr(pebble_last_error(), "alive") &&
      !strstr(pebble_last_error(), "held"))
    _exit(3);
  pebble_future_release(f);
  if (pebble_backend_select("posix") != PEBBLE_OK)
    _exit(4);
  _exit(works(PEBBLE_PROCESS) ? 0 : 5);
}
static void test_busy(void) {
  if (!no_module("switching while objects live", module_dir(), "posix"))
    CU_ASSERT(in_child(busy_body));
}

static void badabi_body(void) {
  char dir[4096];
  const char *msg;
  setenv("PEBBLE_BACKEND_PATH", test_module_dir(), 1);
  if (pebble_backend_select("badabi") != PEBBLE_EABI)
    _exit(1);
  msg = pebble_last_error();
  snprintf(dir, sizeof dir, "%u.%u", PEBBLE_BACKEND_ABI_MAJOR,
           PEBBLE_BACKEND_ABI_MINOR);
  if (!strstr(msg, "pebble_badabi") || !strstr(msg, "999") ||
      !strstr(msg, dir))
    _exit(2);
  /* Nothing was switched: the default still works. */
  _exit(works(PEBBLE_PROCESS) ? 0 : 3);
}
static void test_badabi(void) {
  if (!no_module("module with the wrong ABI", test_module_dir(), "badabi"))
    CU_ASSERT(in_child(badabi_body));
}

static void no_dir_body(void) {
  setenv("PEBBLE_BACKEND_PATH", "/nonexistent/pebble/modules", 1);
  if (pebble_backend_select("nosuch") != PEBBLE_EBACKEND ||
      !strstr(pebble_last_error(), "posix"))
    _exit(1);
  if (pebble_backend_select("posix") != PEBBLE_OK)
    _exit(2);
  _exit(works(PEBBLE_PROCESS) ? 0 : 3);
}
static void test_no_module_dir(void) { CU_ASSERT(in_child(no_dir_body)); }

static void shutdown_body(void) {
  pebble_future *f;
  int64_t v = 1;
  if (pebble_run(PEBBLE_PROCESS, add_one, &v, sizeof v, NULL, &f) != 0)
    _exit(1);
  pebble_future_wait(f, PEBBLE_SEC(30));
  if (pebble_shutdown() != PEBBLE_EBUSY)
    _exit(2);
  pebble_future_release(f);
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(3);
  if (pebble_backend_name() != NULL)
    _exit(4);
  if (!works(PEBBLE_PROCESS) || pebble_shutdown() != PEBBLE_OK)
    _exit(5);
  _exit(0);
}
static void test_shutdown(void) { CU_ASSERT(in_child(shutdown_body)); }

int main(void) {
  CU_TestInfo tests[] = {
      {"built-in default", test_default},
      {"PEBBLE_BACKEND", test_env},
      {"selected from code", test_code},
      {"unknown name from the environment", test_unknown_env},
      {"unknown and bad names", test_unknown_and_bad_names},
      {"module from PEBBLE_BACKEND_PATH", test_module},
      {"switching while objects live", test_busy},
      {"module with the wrong ABI", test_badabi},
      {"no module directory", test_no_module_dir},
      {"shutdown and init again", test_shutdown},
      CU_TEST_INFO_NULL};
  /* These tests choose backends themselves; the one the conformance
   * matrix runs under must not leak into them. */
  unsetenv("PEBBLE_BACKEND");
  /* Nor the start method: these tasks are not registered by name. */
  unsetenv("PEBBLE_START_METHOD");
  return run_suite("backends", tests);
}
