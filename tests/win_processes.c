/* SPDX-License-Identifier: Apache-2.0 */
/*
 * win_processes.c -- the process side of the contract on Windows (run
 * under Wine by make check), spawn being the only start method there:
 * one-shot process tasks (a result, a megabyte each way, no inherited
 * handle but the worker's own, a task's error, a crash named by its
 * exception with the worker's pid, an exit code, a timeout that ends the
 * worker and the process it started, cancel), a process pool that
 * survives a crash and sleeps when idle, and workers that end with a
 * parent that dies.
 * Plain C with no CUnit; the last lines are CUnit's summary, which the
 * matrix counts.
 *
 * The program is its own worker (pebble_worker_main), and with an
 * argument it plays two more parts: "--sleeper NAME" holds a named mutex
 * and sleeps (a process a task starts), "--parent NAME" runs a process
 * task and is then killed (the parent that dies).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <tlhelp32.h>

#include <pebble.h>

static int n_run, n_failed;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
      return 1;                                                              \
    }                                                                        \
  } while (0)

static void run(const char *name, int (*test)(void)) {
  int failed;
  printf("-- %s\n", name);
  failed = test();
  n_run++;
  n_failed += failed != 0;
  printf("%s: %s\n", failed ? "FAILED" : "passed", name);
}

/* ---- helpers: named mutexes mark a process that is alive ---- */

static int mutex_exists(const char *name) {
  HANDLE h = OpenMutexA(SYNCHRONIZE, FALSE, name);
  if (h == NULL)
    return 0;
  CloseHandle(h);
  return 1;
}

/* Waits up to `seconds` for the mutex to exist (want 1) or be gone (0). */
static int wait_mutex(const char *name, int want, int seconds) {
  int i;
  for (i = 0; i < seconds * 20; i++) {
    if (mutex_exists(name) == want)
      return 1;
    Sleep(50);
  }
  return 0;
}

/* Processes whose parent was `pid`, from a snapshot of the system. */
static int children_of(DWORD pid) {
  PROCESSENTRY32 e;
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  int n = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return -1;
  e.dwSize = sizeof e;
  if (Process32First(snap, &e))
    do
      n += e.th32ParentProcessID == pid;
    while (Process32Next(snap, &e));
  CloseHandle(snap);
  return n;
}

/* Starts this program with the arguments, inheriting nothing. */
static HANDLE start_self(const char *args, DWORD *pid) {
  char path[MAX_PATH], cmd[2 * MAX_PATH];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  GetModuleFileNameA(NULL, path, sizeof path);
  snprintf(cmd, sizeof cmd, "\"%s\" %s", path, args);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessA(path, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
    return NULL;
  CloseHandle(pi.hThread);
  if (pid != NULL)
    *pid = pi.dwProcessId;
  return pi.hProcess;
}

static double cpu_seconds(void) {
  FILETIME c, e, k, u;
  ULARGE_INTEGER kk, uu;
  GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u);
  kk.LowPart = k.dwLowDateTime, kk.HighPart = k.dwHighDateTime;
  uu.LowPart = u.dwLowDateTime, uu.HighPart = u.dwHighDateTime;
  return (double)(kk.QuadPart + uu.QuadPart) / 1e7;
}

/* ---- task functions (registered: spawned workers find them by name) ---- */

static int add(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an int");
  return pebble_result_int(ctx, v + 1);
}

static int fails(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_fail(ctx, 42, "failed on purpose in process %lu",
                     (unsigned long)GetCurrentProcessId());
}

static int null_deref(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  *(volatile int *)0 = 1;
  return 0;
}

static int exits_3(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  exit(3);
}

static int sleeps(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  Sleep(60000);
  return pebble_result_int(ctx, 0);
}

/* Starts a "--sleeper NAME" process (NAME is the argument), then sleeps:
 * a timeout must end both. */
static int starts_child(pebble_ctx *ctx, const void *arg, size_t size) {
  char args[160];
  HANDLE h;
  snprintf(args, sizeof args, "--sleeper %.*s", (int)size, (const char *)arg);
  if ((h = start_self(args, NULL)) == NULL)
    return pebble_fail(ctx, 1, "CreateProcess: %lu",
                       (unsigned long)GetLastError());
  CloseHandle(h);
  Sleep(60000);
  return pebble_result_int(ctx, 0);
}

/* Holds the mutex named by the argument, then sleeps. */
static int holds_mutex(pebble_ctx *ctx, const void *arg, size_t size) {
  char name[128];
  snprintf(name, sizeof name, "%.*s", (int)size, (const char *)arg);
  CreateMutexA(NULL, TRUE, name);
  Sleep(60000);
  return pebble_result_int(ctx, 0);
}

/* Returns its argument with every byte plus one. */
static int echo_plus_one(pebble_ctx *ctx, const void *arg, size_t size) {
  unsigned char *out = malloc(size ? size : 1);
  size_t i;
  int rc;
  if (out == NULL)
    return pebble_fail(ctx, 1, "out of memory");
  for (i = 0; i < size; i++)
    out[i] = (unsigned char)(((const unsigned char *)arg)[i] + 1);
  rc = pebble_result_set(ctx, out, size);
  free(out);
  return rc;
}

/* Signals the event whose handle value is the argument, if this process
 * has that handle: it must not, since a worker inherits nothing but its
 * channel and standard handles. */
static int signals_handle(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t v;
  DWORD flags;
  if (pebble_arg_int(arg, size, &v) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected a handle value");
  if (GetHandleInformation((HANDLE)(intptr_t)v, &flags))
    SetEvent((HANDLE)(intptr_t)v);
  return pebble_result_int(ctx, 0);
}

/* ---- one-shot process tasks ---- */

static int test_result(void) {
  pebble_future *f;
  pebble_exit_info x;
  int64_t v = 0, in = 41;
  CHECK(pebble_run(PEBBLE_PROCESS, add, &in, sizeof in, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_OK);
  CHECK(v == 42);
  x.struct_size = sizeof x;
  CHECK(pebble_future_wait_exit(f, PEBBLE_SEC(30)) == PEBBLE_OK);
  CHECK(pebble_future_exit_info(f, &x) == PEBBLE_OK);
  CHECK(x.status_known && x.exited && x.exit_code == 0 && x.signal == 0);
  CHECK(x.pid != 0 && x.pid != (long)GetCurrentProcessId());
  pebble_future_release(f);
  return 0;
}

/* A megabyte each way: many times the 64 KiB the pipes and the rings
 * hold, so both directions wait for room. */
static int test_large_data(void) {
  enum { N = 1 << 20 };
  unsigned char *in = malloc(N);
  const unsigned char *out;
  pebble_future *f;
  size_t size = 0, i;
  int rc;
  CHECK(in != NULL);
  for (i = 0; i < N; i++)
    in[i] = (unsigned char)(i * 7);
  CHECK(pebble_run(PEBBLE_PROCESS, echo_plus_one, in, N, NULL, &f) ==
        PEBBLE_OK);
  rc = pebble_future_get(f, PEBBLE_SEC(60), (const void **)&out, &size);
  if (rc != PEBBLE_OK)
    printf("  %s: %s\n", pebble_status_name(rc), pebble_future_message(f));
  CHECK(rc == PEBBLE_OK);
  CHECK(size == N);
  for (i = 0; i < N; i++)
    if (out[i] != (unsigned char)(in[i] + 1))
      break;
  CHECK(i == N);
  pebble_future_release(f);
  free(in);
  return 0;
}

/* An inheritable handle of the application's is not inherited by a
 * worker (PROC_THREAD_ATTRIBUTE_HANDLE_LIST). */
static int test_inherits_only_its_channel(void) {
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  HANDLE event = CreateEventA(&sa, TRUE, FALSE, NULL);
  pebble_future *f;
  int64_t v = 0, h = (int64_t)(intptr_t)event;
  CHECK(event != NULL);
  CHECK(pebble_run(PEBBLE_PROCESS, signals_handle, &h, sizeof h, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_OK);
  CHECK(WaitForSingleObject(event, 0) == WAIT_TIMEOUT);
  pebble_future_release(f);
  CloseHandle(event);
  return 0;
}

static int test_task_error(void) {
  pebble_future *f;
  int64_t v;
  CHECK(pebble_run(PEBBLE_PROCESS, fails, NULL, 0, NULL, &f) == PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_ETASK);
  CHECK(pebble_future_task_code(f) == 42);
  printf("  message: %s\n", pebble_future_message(f));
  CHECK(strstr(pebble_future_message(f), "failed on purpose in process"));
  pebble_future_release(f);
  return 0;
}

static int test_crash(void) {
  pebble_future *f;
  pebble_exit_info x;
  char pid[32];
  int64_t v;
  CHECK(pebble_run(PEBBLE_PROCESS, null_deref, NULL, 0, NULL, &f) ==
        PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_EDIED);
  printf("  message: %s\n", pebble_future_message(f));
  x.struct_size = sizeof x;
  CHECK(pebble_future_exit_info(f, &x) == PEBBLE_OK);
  CHECK(x.status_known && !x.exited && x.signal == (int)0xC0000005u);
  CHECK(!x.killed_by_library);
  CHECK(strcmp(pebble_signal_name(x.signal), "access violation") == 0);
  CHECK(strstr(pebble_future_message(f), "access violation (0xC0000005)"));
  snprintf(pid, sizeof pid, " %ld ", x.pid);
  CHECK(strstr(pebble_future_message(f), pid));
  pebble_future_release(f);
  return 0;
}

static int test_exit_code(void) {
  pebble_future *f;
  pebble_exit_info x;
  int64_t v;
  CHECK(pebble_run(PEBBLE_PROCESS, exits_3, NULL, 0, NULL, &f) == PEBBLE_OK);
  CHECK(pebble_future_get_int(f, PEBBLE_SEC(60), &v) == PEBBLE_EDIED);
  printf("  message: %s\n", pebble_future_message(f));
  x.struct_size = sizeof x;
  CHECK(pebble_future_exit_info(f, &x) == PEBBLE_OK);
  CHECK(x.status_known && x.exited && x.exit_code == 3 && x.signal == 0);
  CHECK(strstr(pebble_future_message(f), "exited with code 3"));
  pebble_future_release(f);
  return 0;
}

/* The worker starts a process of its own and is timed out: the Job ends
 * both, and no process the worker started is left. */
static int test_timeout_kills_what_it_started(void) {
  pebble_future *f;
  pebble_task_options o;
  pebble_exit_info x;
  char name[64];
  int i;
  snprintf(name, sizeof name, "pebble-win-sleeper-%lu",
           (unsigned long)GetCurrentProcessId());
  pebble_task_options_init(&o);
  o.timeout = PEBBLE_SEC(4); /* a Wine process start takes up to a second */
  CHECK(pebble_run(PEBBLE_PROCESS, starts_child, name, strlen(name), &o,
                   &f) == PEBBLE_OK);
  CHECK(wait_mutex(name, 1, 30)); /* the grandchild runs */
  CHECK(pebble_future_wait(f, PEBBLE_SEC(60)) == PEBBLE_OK);
  CHECK(pebble_future_status(f) == PEBBLE_ETIMEDOUT);
  x.struct_size = sizeof x;
  CHECK(pebble_future_wait_exit(f, PEBBLE_SEC(30)) == PEBBLE_OK);
  CHECK(pebble_future_exit_info(f, &x) == PEBBLE_OK);
  CHECK(x.killed_by_library);
  printf("  worker %ld: %s\n", x.pid, pebble_future_message(f));
  CHECK(wait_mutex(name, 0, 20)); /* the grandchild is gone */
  for (i = 0; i < 200 && children_of((DWORD)x.pid) != 0; i++)
    Sleep(50);
  printf("  processes the worker started, still running: %d\n",
         children_of((DWORD)x.pid));
  CHECK(children_of((DWORD)x.pid) == 0);
  pebble_future_release(f);
  return 0;
}

static int test_cancel(void) {
  pebble_future *f;
  pebble_exit_info x;
  CHECK(pebble_run(PEBBLE_PROCESS, sleeps, NULL, 0, NULL, &f) == PEBBLE_OK);
  Sleep(500);
  CHECK(pebble_future_cancel(f) == PEBBLE_OK);
  CHECK(pebble_future_status(f) == PEBBLE_ECANCELED);
  x.struct_size = sizeof x;
  CHECK(pebble_future_wait_exit(f, PEBBLE_SEC(30)) == PEBBLE_OK);
  CHECK(pebble_future_exit_info(f, &x) == PEBBLE_OK && x.killed_by_library);
  pebble_future_release(f);
  return 0;
}

/* ---- a process pool ---- */

static int test_pool_survives_crash(void) {
  pebble_pool *p;
  pebble_pool_options po;
  pebble_future *f[12], *crash;
  int64_t in, v;
  double c0, cpu, wall;
  DWORD t0;
  int i;
  pebble_pool_options_init(&po);
  po.workers = 3;
  CHECK(pebble_pool_create(&p, PEBBLE_PROCESS, &po) == PEBBLE_OK);
  for (i = 0; i < 6; i++) {
    in = i;
    CHECK(pebble_pool_schedule(p, add, &in, sizeof in, NULL, &f[i]) ==
          PEBBLE_OK);
  }
  CHECK(pebble_pool_schedule(p, null_deref, NULL, 0, NULL, &crash) ==
        PEBBLE_OK);
  for (i = 6; i < 12; i++) {
    in = i;
    CHECK(pebble_pool_schedule(p, add, &in, sizeof in, NULL, &f[i]) ==
          PEBBLE_OK);
  }
  CHECK(pebble_future_get_int(crash, PEBBLE_SEC(60), &v) == PEBBLE_EDIED);
  printf("  crash: %s\n", pebble_future_message(crash));
  CHECK(strstr(pebble_future_message(crash), "access violation (0xC0000005)"));
  for (i = 0; i < 12; i++) {
    CHECK(pebble_future_get_int(f[i], PEBBLE_SEC(60), &v) == PEBBLE_OK);
    CHECK(v == i + 1);
    pebble_future_release(f[i]);
  }
  pebble_future_release(crash);
  /* The pool goes on with a new worker. */
  in = 100;
  CHECK(pebble_pool_schedule(p, add, &in, sizeof in, NULL, &f[0]) ==
        PEBBLE_OK);
  CHECK(pebble_future_get_int(f[0], PEBBLE_SEC(60), &v) == PEBBLE_OK);
  CHECK(v == 101);
  pebble_future_release(f[0]);
  /* Idle workers cost the application no CPU: their reader and writer
   * threads and the manager sleep until something happens. */
  Sleep(200);
  c0 = cpu_seconds();
  t0 = GetTickCount();
  Sleep(3000);
  cpu = cpu_seconds() - c0;
  wall = (GetTickCount() - t0) / 1000.0;
  printf("  idle pool of 3 workers: %.3f s CPU in %.3f s\n", cpu, wall);
  CHECK(cpu < 0.01 * wall);
  CHECK(pebble_pool_destroy(p) == PEBBLE_OK);
  return 0;
}

/* ---- the parent dies ---- */

/* "--parent NAME": a process task holds the mutex NAME; this process is
 * then killed by the test, and the worker must end with it. */
static int parent_part(const char *name) {
  pebble_future *f;
  if (pebble_run(PEBBLE_PROCESS, holds_mutex, name, strlen(name), NULL,
                 &f) != PEBBLE_OK)
    return 1;
  pebble_future_wait(f, PEBBLE_SEC(120));
  return 0;
}

static int test_parent_death(void) {
  char name[64], args[96];
  HANDLE parent;
  DWORD parent_pid = 0;
  snprintf(name, sizeof name, "pebble-win-orphan-%lu",
           (unsigned long)GetCurrentProcessId());
  snprintf(args, sizeof args, "--parent %s", name);
  CHECK((parent = start_self(args, &parent_pid)) != NULL);
  CHECK(wait_mutex(name, 1, 60)); /* its worker runs */
  CHECK(children_of(parent_pid) == 1);
  TerminateProcess(parent, 1);
  WaitForSingleObject(parent, INFINITE);
  CloseHandle(parent);
  CHECK(wait_mutex(name, 0, 20)); /* and is gone with it */
  return 0;
}

static int test_shutdown(void) {
  CHECK(pebble_shutdown() == PEBBLE_OK);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (pebble_register("add", add) != PEBBLE_OK ||
      pebble_register("fails", fails) != PEBBLE_OK ||
      pebble_register("echo_plus_one", echo_plus_one) != PEBBLE_OK ||
      pebble_register("signals_handle", signals_handle) != PEBBLE_OK ||
      pebble_register("null_deref", null_deref) != PEBBLE_OK ||
      pebble_register("exits_3", exits_3) != PEBBLE_OK ||
      pebble_register("sleeps", sleeps) != PEBBLE_OK ||
      pebble_register("starts_child", starts_child) != PEBBLE_OK ||
      pebble_register("holds_mutex", holds_mutex) != PEBBLE_OK)
    return 99;
  pebble_worker_main(); /* a worker never returns from here */
  if (argc == 3 && strcmp(argv[1], "--sleeper") == 0) {
    CreateMutexA(NULL, TRUE, argv[2]);
    Sleep(60000);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--parent") == 0)
    return parent_part(argv[2]);
  run("process task result", test_result);
  run("a megabyte each way", test_large_data);
  run("a worker inherits only its own handles", test_inherits_only_its_channel);
  run("process task error", test_task_error);
  run("NULL dereference is an access violation, with its pid", test_crash);
  run("exit code", test_exit_code);
  run("timeout ends the worker and what it started",
      test_timeout_kills_what_it_started);
  run("cancel", test_cancel);
  run("process pool survives a crash, idle uses no CPU",
      test_pool_survives_crash);
  run("workers end with their parent", test_parent_death);
  run("shutdown", test_shutdown);
  printf("Run Summary:    Type  Total    Ran Passed Failed Inactive\n");
  printf("               tests  %5d  %5d  %5d  %5d        0\n", n_run, n_run,
         n_run - n_failed, n_failed);
  return n_failed ? 1 : 0;
}
