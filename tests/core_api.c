/* SPDX-License-Identifier: Apache-2.0 */
/* core_api.c -- versions, status codes, options, bad input, logging. */
#include "core_util.h"

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifdef PEBBLE_BIND_NOW
#include <elf.h>
#include <link.h>
#endif

static int noop(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  return 0;
}

static void test_version(void) {
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", PEBBLE_VERSION_MAJOR,
           PEBBLE_VERSION_MINOR, PEBBLE_VERSION_PATCH);
  CU_ASSERT_STRING_EQUAL(pebble_version(), buf);
  CU_ASSERT_STRING_EQUAL(PEBBLE_VERSION_STRING, buf);
  CU_ASSERT_EQUAL(pebble_version_hex(), PEBBLE_VERSION_HEX);
  CU_ASSERT(PEBBLE_VERSION_AT_LEAST(0, 0, 1));
  CU_ASSERT(!PEBBLE_VERSION_AT_LEAST(99, 0, 0));
}

static void test_status_codes(void) {
  static const int codes[] = {
#define CODE_(name, value, text) PEBBLE_##name,
      PEBBLE_STATUS_MAP(CODE_)
#undef CODE_
  };
  size_t i, j, n = sizeof codes / sizeof codes[0];
  for (i = 0; i < n; i++) {
    CU_ASSERT(codes[i] <= 0);
    CU_ASSERT_STRING_NOT_EQUAL(pebble_status_name(codes[i]),
                               "PEBBLE_UNKNOWN");
    CU_ASSERT(strlen(pebble_strerror(codes[i])) > 0);
    for (j = i + 1; j < n; j++) {
      CU_ASSERT(codes[i] != codes[j]);
      CU_ASSERT_STRING_NOT_EQUAL(pebble_status_name(codes[i]),
                                 pebble_status_name(codes[j]));
    }
  }
  CU_ASSERT_STRING_EQUAL(pebble_status_name(PEBBLE_EINVAL), "PEBBLE_EINVAL");
  CU_ASSERT_STRING_EQUAL(pebble_status_name(-12345), "PEBBLE_UNKNOWN");
  CU_ASSERT_PTR_NOT_NULL(pebble_strerror(-12345));
  CU_ASSERT_STRING_EQUAL(pebble_signal_name(SIGSEGV), "SIGSEGV");
  CU_ASSERT_STRING_EQUAL(pebble_signal_name(SIGKILL), "SIGKILL");
  CU_ASSERT_STRING_EQUAL(pebble_signal_name(9999), "SIG?");
}

static void test_options(void) {
  pebble_task_options o;
  pebble_pool_options po;
  pebble_future *f = (pebble_future *)1;
  CU_ASSERT_EQUAL(pebble_task_options_init(&o), PEBBLE_OK);
  CU_ASSERT_EQUAL(o.struct_size, sizeof o);
  CU_ASSERT_EQUAL(o.timeout, PEBBLE_DEFAULT);
  CU_ASSERT_EQUAL(o.kill_grace, 0);
  CU_ASSERT_EQUAL(o.max_message_size, pebble_max_message_size());
  CU_ASSERT_EQUAL(o.queue_wait, PEBBLE_FOREVER);
  CU_ASSERT(pebble_max_message_size() >= ((size_t)1 << 30));
  CU_ASSERT_EQUAL(pebble_pool_options_init(&po), PEBBLE_OK);
  CU_ASSERT(po.workers >= 1);
  CU_ASSERT_EQUAL(po.task_timeout, PEBBLE_FOREVER);
  /* A struct that was never initialised is refused, not half-used. */
  memset(&o, 0, sizeof o);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, noop, NULL, 0, &o, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NULL(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "pebble_task_options_init"));
  pebble_task_options_init(&o);
  o.timeout = -7;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, noop, NULL, 0, &o, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "timeout"));
  pebble_task_options_init(&o);
  o.kill_grace = -1;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_PROCESS, noop, NULL, 0, &o, &f),
                  PEBBLE_EINVAL);
}

static void test_bad_input(void) {
  pebble_future *f = NULL;
  pebble_task *t = NULL;
  pebble_pool *p = NULL;
  pebble_pool_options po;
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, NULL, NULL, 0, NULL, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "fn"));
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, noop, NULL, 0, NULL, NULL),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, noop, NULL, 5, NULL, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_run((pebble_kind)0, noop, NULL, 0, NULL, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_run((pebble_kind)99, noop, NULL, 0, NULL, &f),
                  PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "99"));
  CU_ASSERT_EQUAL(pebble_task_create(&t, PEBBLE_THREAD, NULL, NULL),
                  PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_task_launch(NULL, NULL, 0, &f), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_task_set_callback(NULL, NULL, NULL, NULL),
                  PEBBLE_EINVAL);
  pebble_task_destroy(NULL);
  CU_ASSERT_EQUAL(pebble_future_wait(NULL, 0), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_future_cancel(NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_future_add_callback(NULL, NULL, NULL),
                  PEBBLE_EINVAL);
  pebble_future_release(NULL);
  CU_ASSERT_EQUAL(pebble_set_max_message_size(0), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_task_options_init(NULL), PEBBLE_EINVAL);
  pebble_pool_options_init(&po);
  po.workers = 0;
  CU_ASSERT_EQUAL(pebble_pool_create(&p, PEBBLE_THREAD, &po), PEBBLE_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(pebble_last_error(), "workers"));
  /* A negative wait time is refused. */
  CU_ASSERT_EQUAL(pebble_run(PEBBLE_THREAD, noop, NULL, 0, NULL, &f), 0);
  CU_ASSERT_EQUAL(pebble_future_wait(f, -5), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_future_get(f, -5, NULL, NULL), PEBBLE_EINVAL);
  CU_ASSERT_EQUAL(pebble_future_wait(f, PEBBLE_FOREVER), PEBBLE_OK);
  pebble_future_release(f);
}

static int log_lines;
static void logger(int level, const char *msg, void *user) {
  (void)level, (void)msg;
  *(int *)user += 1;
}
static int crash(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  raise(SIGSEGV);
  return 0;
}
/* Nothing reaches stderr, even when things go wrong; the hook hears. */
static void quiet_body(void) {
  pebble_future *f;
  int fd = open("/dev/null", 0), p[2];
  char c;
  if (pipe(p) != 0)
    _exit(9);
  dup2(p[1], 2);
  close(p[1]);
  pebble_set_log_handler(logger, &log_lines, PEBBLE_LOG_DEBUG);
  pebble_backend_select("nosuch");
  pebble_run(PEBBLE_PROCESS, crash, NULL, 0, NULL, &f);
  pebble_future_wait(f, PEBBLE_SEC(30));
  pebble_future_release(f);
  pebble_shutdown();
  close(2);
  (void)fd;
  {
    /* Sanitizer runtimes write their own lines ("==pid==..."); the
     * library writes none at all. */
    FILE *in = fdopen(p[0], "r");
    char line[1024];
    while (in != NULL && fgets(line, sizeof line, in) != NULL)
      if (strncmp(line, "==", 2) != 0 && strstr(line, "Sanitizer") == NULL) {
        printf("written to stderr: %s", line);
        fflush(stdout);
        _exit(1); /* something was written to stderr */
      }
    (void)c;
  }
  _exit(log_lines > 0 ? 0 : 2);
}
static void test_quiet(void) { CU_ASSERT(in_child(quiet_body)); }

#ifdef PEBBLE_BIND_NOW
/* Where the linker can, the library binds every symbol when it is loaded:
 * a forked process task then looks nothing up and writes no relocation
 * into a page its parent shares (docs/performance.md, section 4). */
struct bind_seen {
  int found, bound;
};
static int find_flags(struct dl_phdr_info *info, size_t size, void *data) {
  struct bind_seen *seen = data;
  int i;
  (void)size;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libpebble") == NULL)
    return 0;
  seen->found = 1;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Dyn) *d;
    if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
      continue;
    d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    for (; d->d_tag != DT_NULL; d++)
      if ((d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW)) ||
          (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW)))
        seen->bound = 1;
  }
  return 1; /* found the library: stop */
}

static void test_bound_at_load(void) {
  struct bind_seen seen = {0, 0};
  CU_ASSERT_PTR_NOT_NULL(pebble_version()); /* the library is loaded */
  dl_iterate_phdr(find_flags, &seen);
  /* Not found: linked statically (--disable-shared), into this program,
   * whose own link flags decide. */
  if (seen.found)
    CU_ASSERT(seen.bound);
}
#endif

int main(void) {
  CU_TestInfo tests[] = {
      /* First: forks before this process has any library thread. */
      {"log hook, nothing on stderr", test_quiet},
      {"version", test_version},
      {"status codes", test_status_codes},
      {"options", test_options},
      {"bad input", test_bad_input},
#ifdef PEBBLE_BIND_NOW
      {"bound at load time", test_bound_at_load},
#endif
      CU_TEST_INFO_NULL};
  return run_suite("api", tests);
}
