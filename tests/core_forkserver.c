/* SPDX-License-Identifier: Apache-2.0 */
/* core_forkserver.c -- the forkserver start method itself (POSIX backend):
 * where workers come from, that the server goes with the application,
 * what a crash of the server does, that shutdown leaves nothing behind,
 * the application's own forks, and the identity workers get.  The shared
 * suites also run under it in the conformance matrix (posix-forkserver);
 * these are the things particular to it.  Every case runs in a forked
 * child, which starts the library (and so its server) afresh. */
#include "core_util.h"

#include <sys/resource.h>

static int my_ppid(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, (int64_t)getppid());
}
static int my_euid(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg, (void)size;
  return pebble_result_int(ctx, (int64_t)geteuid());
}
static int sleeps(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)ctx, (void)arg, (void)size;
  for (;;)
    pause();
  return 0;
}
/* Writes its pid to the descriptor it is given, then sleeps.  The
 * descriptor must be open before the server starts: workers have what
 * the server has. */
static int reports_pid(pebble_ctx *ctx, const void *arg, size_t size) {
  pid_t me = getpid();
  (void)size;
  (void)!write(*(const int *)arg, &me, sizeof me);
  return sleeps(ctx, NULL, 0);
}
/* Starts reports_pid and returns its worker's pid (0 on failure). */
static pid_t start_sleeper(const int pipe_fds[2], pebble_future **f) {
  pid_t pid = 0;
  if (pebble_run(PEBBLE_PROCESS, reports_pid, &pipe_fds[1],
                 sizeof pipe_fds[1], NULL, f) != PEBBLE_OK ||
      read(pipe_fds[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
    return 0;
  return pid;
}

/* The parent of a process, from /proc (0 if it cannot be read). */
static pid_t parent_of(pid_t pid) {
  char path[64], buf[512], *p;
  FILE *f;
  long ppid = 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  if ((f = fopen(path, "r")) == NULL)
    return 0;
  if (fgets(buf, sizeof buf, f) != NULL && (p = strrchr(buf, ')')) != NULL)
    sscanf(p + 1, " %*c %ld", &ppid);
  fclose(f);
  return (pid_t)ppid;
}

/* Gone, or a zombie waiting for whoever inherited it: not running. */
static int dead_within(pid_t pid, double seconds) {
  double end = now_s() + seconds;
  do {
    char path[64], buf[512], *p;
    FILE *f;
    int zombie = 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
      return 1;
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
      return 1;
    if (fgets(buf, sizeof buf, f) != NULL &&
        (p = strrchr(buf, ')')) != NULL)
      zombie = p[1] == ' ' && p[2] == 'Z';
    fclose(f);
    if (zombie)
      return 1;
    usleep(10000);
  } while (now_s() < end);
  return 0;
}

static int64_t run_int(pebble_task_fn fn, int *status) {
  pebble_future *f;
  int64_t out = -1;
  *status = pebble_run(PEBBLE_PROCESS, fn, NULL, 0, NULL, &f);
  if (*status != PEBBLE_OK)
    return -1;
  *status = pebble_future_get_int(f, PEBBLE_SEC(30), &out);
  pebble_future_release(f);
  return out;
}

/* The server: the parent of a worker. */
static pid_t server_pid(void) {
  int st;
  int64_t ppid = run_int(my_ppid, &st);
  return st == PEBBLE_OK ? (pid_t)ppid : 0;
}

static void start_forkserver(void) {
  setenv("PEBBLE_START_METHOD", "forkserver", 1);
}

/* Start the server, run one task through it and stop the server once that
 * worker is reaped: each kill of a worker's remains at its reap continues
 * the server (its end must be reported), which would undo a stop sent
 * before.  The server's pid, or the calling child exits with `fail`. */
static pid_t stop_server_after_reap(int fail) {
  pebble_exit_info x;
  pebble_future *f;
  int64_t server = 0;
  start_forkserver();
  if (pebble_run(PEBBLE_PROCESS, my_ppid, NULL, 0, NULL, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &server) != PEBBLE_OK ||
      server <= 0 || !exit_info_within(f, &x, 30))
    _exit(fail);
  pebble_future_release(f);
  if (kill((pid_t)server, SIGSTOP) != 0)
    _exit(fail);
  return (pid_t)server;
}

/* Workers are the server's children, and the server is ours: one server
 * for one-shot tasks and pool workers alike. */
static void from_server_body(void) {
  pebble_pool *p;
  pebble_future *f;
  int64_t pool_ppid = 0;
  pid_t s1, s2;
  start_forkserver();
  s1 = server_pid();
  s2 = server_pid();
  if (s1 <= 0 || s1 == getpid())
    _exit(1);
  if (s2 != s1 || parent_of(s1) != getpid())
    _exit(2);
  if (pebble_pool_create(&p, PEBBLE_PROCESS, NULL) != PEBBLE_OK ||
      pebble_pool_schedule(p, my_ppid, NULL, 0, NULL, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &pool_ppid) != PEBBLE_OK)
    _exit(3);
  pebble_future_release(f);
  pebble_pool_destroy(p);
  _exit(pool_ppid == (int64_t)s1 ? 0 : 4);
}
static void test_from_server(void) { CU_ASSERT(in_child(from_server_body)); }

/* The application goes (killed, or exits without shutting down): its
 * server and workers go too, even while a child it forked lives on. */
static int pids_pipe[2];
static void dies_body(int how) {
  pebble_future *f;
  pid_t pids[3];
  int worker_pipe[2];
  if (pipe(worker_pipe) != 0)
    _exit(1);
  start_forkserver();
  pids[0] = server_pid();
  pids[1] = start_sleeper(worker_pipe, &f);
  /* A child of ours that outlives us and never uses Pebble. */
  pids[2] = fork();
  if (pids[2] == 0) {
    for (;;)
      pause();
  }
  (void)!write(pids_pipe[1], pids, sizeof pids);
  if (how == 0)
    exit(0); /* no shutdown */
  for (;;)
    pause(); /* until killed */
}
static void test_dies_with_app(void) {
  int how, kids = count_children();
  for (how = 0; how < 2; how++) {
    pid_t app, pids[3] = {0, 0, 0};
    int st;
    CU_ASSERT_EQUAL_FATAL(pipe(pids_pipe), 0);
    app = fork();
    if (app == 0) {
      close(pids_pipe[0]);
      dies_body(how);
    }
    close(pids_pipe[1]);
    CU_ASSERT_EQUAL(read(pids_pipe[0], pids, sizeof pids),
                    (ssize_t)sizeof pids);
    close(pids_pipe[0]);
    if (how == 1)
      kill(app, SIGKILL);
    waitpid(app, &st, 0);
    CU_ASSERT(pids[0] > 0 && dead_within(pids[0], 30));
    CU_ASSERT(pids[1] > 0 && dead_within(pids[1], 30));
    if (pids[2] > 0)
      kill(pids[2], SIGKILL);
  }
  CU_ASSERT_EQUAL(count_children(), kids);
}

/* The server is killed: the running task resolves as crashed, new
 * process tasks fail at once with an error that says why, thread tasks
 * go on, and after pebble_shutdown() a new server serves again. */
static void crash_body(void) {
  pebble_future *running, *f;
  pid_t server, worker;
  int64_t v = 0;
  int worker_pipe[2];
  if (pipe(worker_pipe) != 0)
    _exit(1);
  start_forkserver();
  server = server_pid();
  worker = start_sleeper(worker_pipe, &running);
  if (server <= 0 || worker <= 0)
    _exit(1);
  kill(server, SIGKILL);
  if (pebble_future_wait(running, PEBBLE_SEC(30)) != PEBBLE_OK ||
      pebble_future_status(running) != PEBBLE_EDIED)
    _exit(2);
  pebble_future_release(running);
  if (!dead_within(worker, 30))
    _exit(9); /* it died with its server */
  if (pebble_run(PEBBLE_PROCESS, my_ppid, NULL, 0, NULL, &f) != PEBBLE_OK)
    _exit(3);
  if (pebble_future_get_int(f, PEBBLE_SEC(30), &v) != PEBBLE_ESYSTEM ||
      pebble_future_sys_errno(f) == 0) {
    printf("[%s] ", pebble_future_message(f));
    _exit(4);
  }
  pebble_future_release(f);
  if (pebble_run(PEBBLE_THREAD, my_ppid, NULL, 0, NULL, &f) != PEBBLE_OK ||
      pebble_future_get_int(f, PEBBLE_SEC(30), &v) != PEBBLE_OK)
    _exit(5);
  pebble_future_release(f);
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(6);
  if (!dead_within(server, 1))
    _exit(7);
  /* A new life of the library starts a new server. */
  v = (int64_t)server_pid();
  _exit(v > 0 && v != (int64_t)server ? 0 : 8);
}
static void test_server_crash(void) { CU_ASSERT(in_child(crash_body)); }

/* The server is stopped from outside (SIGSTOP) and a process task asks
 * it for a worker: after the time a server has to answer (10 s) it is
 * taken for hung and killed, the task fails with an error that says so,
 * nothing hangs, and after pebble_shutdown() a new server serves. */
static void stopped_body(void) {
  pebble_future *f;
  pid_t server = stop_server_after_reap(1);
  int64_t v = 0;
  double t0 = now_s();
  if (pebble_run(PEBBLE_PROCESS, my_ppid, NULL, 0, NULL, &f) != PEBBLE_OK)
    _exit(2);
  if (pebble_future_get_int(f, PEBBLE_SEC(120), &v) != PEBBLE_ESYSTEM ||
      pebble_future_sys_errno(f) != ETIMEDOUT ||
      strstr(pebble_future_message(f), "(start method forkserver)") == NULL) {
    printf("[%s: %s] ", pebble_status_name(pebble_future_status(f)),
           pebble_future_message(f));
    _exit(3);
  }
  if (now_s() - t0 < 9)
    _exit(4); /* it was given its time */
  pebble_future_release(f);
  if (!dead_within(server, 30))
    _exit(5);
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(6);
  v = (int64_t)server_pid();
  _exit(v > 0 && v != (int64_t)server ? 0 : 7);
}
static void test_server_stopped(void) {
  CU_ASSERT(in_child(stopped_body));
}

/* A server stopped from outside when the library shuts down, its
 * workers all reaped, is continued so that it reads the end of its
 * socket and goes: shutdown does not wait for an operator's SIGCONT.
 * (While a worker of a stopped server lives, its exit, which the server
 * reports, waits for the server, and so do the waits for it.) */
static void stopped_at_shutdown_body(void) {
  pid_t server = stop_server_after_reap(1);
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(3);
  _exit(kill(server, 0) != 0 ? 0 : 4);
}
static void test_server_stopped_at_shutdown(void) {
  CU_ASSERT(in_child(stopped_at_shutdown_body));
}

/* While the server is stopped from outside, the ends of its workers that
 * Pebble brings about itself (a timeout, a cancel, a pool destroyed) are
 * still seen: the server, which reports them, is continued by the kill.
 * (An end from outside waits, as for a stopped worker, for whoever
 * stopped the server to continue it: docs/backends.md.) */
static int stopped_kills_fds[2];
static pid_t read_pid(void) {
  pid_t pid = 0;
  if (read(stopped_kills_fds[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
    return 0;
  return pid;
}
static void stopped_kills_body(void) {
  const int *wr = &stopped_kills_fds[1];
  pebble_task_options o;
  pebble_exit_info x;
  pebble_future *f;
  pebble_pool *p;
  pid_t server, worker;
  double t0;
  start_forkserver();
  if (pipe(stopped_kills_fds) != 0 || (server = server_pid()) <= 0)
    _exit(1);

  /* A one-shot task's timeout: its exit is reported, then reaped. */
  pebble_task_options_init(&o);
  o.timeout = PEBBLE_MSEC(300);
  if (pebble_run(PEBBLE_PROCESS, reports_pid, wr, sizeof *wr, &o, &f) !=
          PEBBLE_OK ||
      (worker = read_pid()) <= 0 || kill(server, SIGSTOP) != 0)
    _exit(2);
  if (pebble_future_wait(f, PEBBLE_SEC(60)) != PEBBLE_OK ||
      pebble_future_status(f) != PEBBLE_ETIMEDOUT)
    _exit(3);
  if (!exit_info_within(f, &x, 20) || x.pid != (long)worker ||
      x.signal != SIGKILL)
    _exit(4);
  pebble_future_release(f);

  /* A cancel in a pool, then the pool destroyed. */
  if (pebble_pool_create(&p, PEBBLE_PROCESS, NULL) != PEBBLE_OK ||
      pebble_pool_schedule(p, reports_pid, wr, sizeof *wr, NULL, &f) !=
          PEBBLE_OK ||
      (worker = read_pid()) <= 0 || kill(server, SIGSTOP) != 0)
    _exit(5);
  if (pebble_future_cancel(f) != PEBBLE_OK)
    _exit(6);
  pebble_future_release(f);
  t0 = now_s();
  if (pebble_pool_destroy(p) != PEBBLE_OK || now_s() - t0 > 20 ||
      !dead_within(worker, 20))
    _exit(7);

  /* A pool destroyed with its task running: cancelled, nothing waits. */
  if (pebble_pool_create(&p, PEBBLE_PROCESS, NULL) != PEBBLE_OK ||
      pebble_pool_schedule(p, reports_pid, wr, sizeof *wr, NULL, &f) !=
          PEBBLE_OK ||
      (worker = read_pid()) <= 0 || kill(server, SIGSTOP) != 0)
    _exit(8);
  t0 = now_s();
  if (pebble_pool_destroy(p) != PEBBLE_OK || now_s() - t0 > 20 ||
      pebble_future_state(f) != PEBBLE_CANCELLED)
    _exit(9);
  pebble_future_release(f);
  _exit(pebble_shutdown() == PEBBLE_OK ? 0 : 10);
}
static void test_server_stopped_kills(void) {
  CU_ASSERT(in_child(stopped_kills_body));
}

/* pebble_shutdown() ends the server and its workers and reaps them: no
 * child of ours is left, not even a zombie. */
static void shutdown_body(void) {
  pebble_future *f[4];
  pid_t server;
  int i;
  start_forkserver();
  server = server_pid();
  for (i = 0; i < 4; i++)
    if (pebble_run(PEBBLE_PROCESS, i < 2 ? my_ppid : sleeps, NULL, 0, NULL,
                   &f[i]) != PEBBLE_OK)
      _exit(1);
  for (i = 0; i < 2; i++)
    pebble_future_wait(f[i], PEBBLE_SEC(30));
  for (i = 0; i < 4; i++) {
    pebble_future_cancel(f[i]);
    pebble_future_release(f[i]);
  }
  if (pebble_shutdown() != PEBBLE_OK)
    _exit(2);
  if (count_children() != 0)
    _exit(3);
  if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
    _exit(4); /* a zombie of ours */
  _exit(server > 0 && kill(server, 0) != 0 ? 0 : 5);
}
static void test_shutdown_no_zombies(void) {
  int kids = count_children();
  CU_ASSERT(in_child(shutdown_body));
  CU_ASSERT_EQUAL(count_children(), kids);
}

/* The application forks: the child gets a server of its own when it
 * uses Pebble; the parent's server is untouched and still serves. */
static void after_fork_body(void) {
  pid_t mine, child;
  int st;
  start_forkserver();
  mine = server_pid();
  if (mine <= 0)
    _exit(1);
  child = fork();
  if (child == 0) {
    pid_t theirs = server_pid();
    if (theirs <= 0 || theirs == mine || parent_of(theirs) != getpid())
      _exit(1);
    _exit(0);
  }
  if (child < 0 || waitpid(child, &st, 0) != child || !WIFEXITED(st) ||
      WEXITSTATUS(st) != 0)
    _exit(2);
  _exit(server_pid() == mine ? 0 : 3);
}
static void test_after_fork(void) { CU_ASSERT(in_child(after_fork_body)); }

/* The application drops privileges after the server started (as root):
 * workers run as the application is now, never as it was. */
static void identity_body(void) {
  int st;
  int64_t euid;
  start_forkserver();
  if (server_pid() <= 0)
    _exit(1);
  if (setgid(65534) != 0 || setuid(65534) != 0)
    _exit(2);
  euid = run_int(my_euid, &st);
  if (st != PEBBLE_OK || euid != 65534) {
    printf("[worker euid %lld: %s] ", (long long)euid,
           pebble_status_name(st));
    _exit(3);
  }
  _exit(0);
}
static void test_identity(void) {
  if (geteuid() != 0 && skip_test(__func__, "needs root to drop privileges"))
    return;
  CU_ASSERT(in_child(identity_body));
}

int main(void) {
  CU_TestInfo tests[] = {
      {"workers are the server's children", test_from_server},
      {"the server goes with the application", test_dies_with_app},
      {"a crash of the server", test_server_crash},
      {"a server stopped from outside does not hang a start",
       test_server_stopped},
      {"a server stopped from outside does not hang shutdown",
       test_server_stopped_at_shutdown},
      {"a server stopped from outside: the library's kills are seen",
       test_server_stopped_kills},
      {"shutdown leaves no process and no zombie", test_shutdown_no_zombies},
      {"the application forks", test_after_fork},
      {"workers take on the application's identity", test_identity},
      CU_TEST_INFO_NULL};
  REGISTER_TASK(my_ppid);
  REGISTER_TASK(my_euid);
  REGISTER_TASK(sleeps);
  REGISTER_TASK(reports_pid);
  /* The server is the POSIX backend's; whatever the run chose, these
   * cases choose it themselves. */
  unsetenv("PEBBLE_BACKEND");
  unsetenv("PEBBLE_BACKEND_PATH");
  unsetenv("PEBBLE_START_METHOD");
  if (!(active_caps() & PEBBLE_CAP_FORKSERVER)) {
    printf("SKIP: the backend has no forkserver start method\n");
    return 77;
  }
  return run_suite("forkserver", tests);
}
