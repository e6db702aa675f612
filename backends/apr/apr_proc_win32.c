/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apr_proc_win32.c -- process workers on Windows: spawn, channel, Job
 * object, exit.  Replaces apr_proc.c, apr_spawn.c and apr_lifeline.c
 * there, where APR cannot do what the contract needs: apr_file_inherit_set
 * does nothing on NT, apr_poll takes no pipes, and APR has no process
 * groups (docs/backends.md, "Windows").
 *
 * - Start: CreateProcess of the running program (spawn only; Windows has
 *   no fork), suspended until it is in its Job object.  The channel's two
 *   pipe ends are the only library handles it inherits: they go in
 *   PROC_THREAD_ATTRIBUTE_HANDLE_LIST with its standard handles, and
 *   their values in PEBBLE_WORKER_CHANNEL as "apr:READ,WRITE".
 * - The Job object (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, its handle in
 *   this process only) holds the worker and everything it starts: a kill
 *   ends them all, and when this process dies, however it dies, the
 *   system closes the handle and ends them too (no lifeline needed).
 * - The channel: a reader thread per worker moves bytes from the worker's
 *   pipe into a buffer proc_read takes from, and a writer thread moves
 *   what proc_write left in a buffer into the pipe, so the manager never
 *   blocks on a pipe.  Each wakes the waitset when what it moved makes an
 *   event ready.
 * - The exit: a wait on the process handle in the system's thread pool
 *   (RegisterWaitForSingleObject) records the exit code, once the reader
 *   has all the worker wrote, and wakes the waitset.  An exit code that is an exception's NTSTATUS (0xC0000005,
 *   an access violation) is reported as the "signal" that ended it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "apr_internal.h"

#define PBA_RING ((DWORD)64 << 10)       /* bytes buffered each way */
#define PBA_PIPE_SIZE ((DWORD)64 << 10)  /* the system's pipe buffer */
#define PBA_CHANNEL_PREFIX "apr:"
/* The exit code of a worker Pebble ends (TerminateJobObject has no
 * signal to send): the numbers of SIGKILL and SIGTERM, as APR uses. */
#define PBA_KILL_CODE 9u
#define PBA_TERM_CODE 15u

typedef struct ring {
  unsigned char *buf;
  size_t head, count; /* bytes at buf[head], wrapping */
} ring;

struct pebble_bk_proc {
  CRITICAL_SECTION lock;
  CONDITION_VARIABLE changed; /* room in `in`, bytes in `out`, stopping */
  HANDLE process, job;
  DWORD pid;
  HANDLE to_child, from_child;  /* this process's ends */
  HANDLE child_rd, child_wr;    /* the child's ends, until it started */
  HANDLE reader, writer;        /* the I/O threads */
  HANDLE exit_wait;             /* the registered wait on `process` */
  /* Under lock: */
  ring in, out;
  int in_eof, out_broken, stopping, exited, reaped;
  unsigned long in_moves; /* bytes into or out of `in`, counted */
  pebble_bk_exit exit;
  pebble_bk_waitset *ws;
};

static void close_handle(HANDLE *h) {
  if (*h != NULL && *h != INVALID_HANDLE_VALUE)
    CloseHandle(*h);
  *h = NULL;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- what the rest of the backend expects of a process layer ---- */
int pba_lifeline_start(void) { return PEBBLE_OK; } /* the Job does it */
void pba_lifeline_stop(void) {}
void pba_fd_ops_begin(void) {}
void pba_fd_ops_end(void) {}
void pba_fork_prepare(void) {}
void pba_fork_parent(void) {}
void pba_fork_child(void) {}
void pba_proc_atfork_once(void) {}
uint64_t pba_proc_fork_generation(void) { return 0; }
void pba_fd_track(apr_file_t *f) { (void)f; }
void pba_fd_untrack(apr_file_t *f) { (void)f; }

int pba_proc_start(pebble_bk_proc **out, pebble_child_main_fn child_main,
                   void *arg, int *sys_errno) {
  (void)out, (void)child_main, (void)arg;
  if (sys_errno != NULL)
    *sys_errno = 0;
  return PEBBLE_ENOTSUP; /* no fork on Windows */
}

/* ---- waking the waitset ---- */
unsigned pba_proc_ready(pebble_bk_proc *p) {
  unsigned ev = 0;
  EnterCriticalSection(&p->lock);
  if (p->in.count > 0 || p->in_eof)
    ev |= PEBBLE_EV_READ;
  if (p->out.count < PBA_RING || p->out_broken)
    ev |= PEBBLE_EV_WRITE;
  if (p->exited)
    ev |= PEBBLE_EV_EXIT;
  LeaveCriticalSection(&p->lock);
  return ev;
}

pebble_bk_waitset *pba_proc_notify_to(pebble_bk_proc *p,
                                      pebble_bk_waitset *ws) {
  pebble_bk_waitset *old;
  EnterCriticalSection(&p->lock);
  old = p->ws;
  p->ws = ws;
  LeaveCriticalSection(&p->lock);
  return old;
}

/* Lock held: the waitset to wake after unlocking. */
static pebble_bk_waitset *changed_locked(pebble_bk_proc *p) {
  WakeAllConditionVariable(&p->changed);
  return p->ws;
}

static void wake(pebble_bk_waitset *ws) {
  if (ws != NULL)
    pba_waitset_wake(ws);
}

/* ---- the I/O threads ---- */
static DWORD WINAPI reader_main(LPVOID arg) {
  pebble_bk_proc *p = arg;
  for (;;) {
    size_t tail, room;
    DWORD n = 0;
    BOOL ok;
    pebble_bk_waitset *ws;
    EnterCriticalSection(&p->lock);
    while (p->in.count == PBA_RING && !p->stopping)
      SleepConditionVariableCS(&p->changed, &p->lock, INFINITE);
    if (p->stopping) {
      LeaveCriticalSection(&p->lock);
      return 0;
    }
    /* Only free bytes are written here; proc_read takes only full ones. */
    tail = (p->in.head + p->in.count) % PBA_RING;
    room = min_size(PBA_RING - p->in.count, PBA_RING - tail);
    LeaveCriticalSection(&p->lock);
    ok = ReadFile(p->from_child, p->in.buf + tail, (DWORD)room, &n, NULL);
    EnterCriticalSection(&p->lock);
    if (ok) {
      p->in.count += n;
      p->in_moves += n;
    } else
      p->in_eof = 1; /* ERROR_BROKEN_PIPE: the worker's end is closed */
    ws = changed_locked(p);
    LeaveCriticalSection(&p->lock);
    wake(ws);
    if (!ok)
      return 0;
  }
}

static DWORD WINAPI writer_main(LPVOID arg) {
  pebble_bk_proc *p = arg;
  for (;;) {
    size_t len;
    DWORD n = 0;
    BOOL ok;
    pebble_bk_waitset *ws;
    EnterCriticalSection(&p->lock);
    while (p->out.count == 0 && !p->stopping)
      SleepConditionVariableCS(&p->changed, &p->lock, INFINITE);
    if (p->stopping) {
      LeaveCriticalSection(&p->lock);
      return 0;
    }
    len = min_size(p->out.count, PBA_RING - p->out.head);
    LeaveCriticalSection(&p->lock);
    ok = WriteFile(p->to_child, p->out.buf + p->out.head, (DWORD)len, &n,
                   NULL);
    EnterCriticalSection(&p->lock);
    if (ok) {
      p->out.head = (p->out.head + n) % PBA_RING;
      p->out.count -= n;
    } else {
      p->out_broken = 1; /* the worker's end is closed */
      p->out.count = 0;
    }
    ws = changed_locked(p);
    LeaveCriticalSection(&p->lock);
    wake(ws);
    if (!ok)
      return 0;
  }
}

/* An exception's NTSTATUS, not a code the program chose: error severity
 * with no facility (the system's own exceptions, 0xC0000005 and the
 * like), and the two warnings a crash can end with. */
static int is_exception(DWORD code) {
  return (code & 0xFF000000u) == 0xC0000000u || code == 0x80000002u ||
         code == 0x80000003u;
}

/* An exit is reported once the reader has reached the end of the
 * worker's output, so that a result written before the exit is read
 * first, as on Unix, where a dead process's bytes are all in the pipe
 * already.  The end comes as soon as the output is read, unless a
 * process started by other means inherited the pipe's end in the instant
 * it was inheritable: then the exit is reported once no byte has moved
 * for this long. */
#define PBA_EXIT_DRAIN_MS 2000

static VOID CALLBACK exit_seen(PVOID arg, BOOLEAN timed_out) {
  pebble_bk_proc *p = arg;
  pebble_bk_waitset *ws;
  DWORD code = 0, start = GetTickCount();
  unsigned long moves;
  (void)timed_out;
  EnterCriticalSection(&p->lock);
  moves = p->in_moves;
  while (!p->in_eof && !p->stopping) {
    DWORD spent;
    if (p->in_moves != moves) { /* still moving: wait on */
      moves = p->in_moves;
      start = GetTickCount();
    }
    spent = GetTickCount() - start;
    if (spent >= PBA_EXIT_DRAIN_MS)
      break;
    SleepConditionVariableCS(&p->changed, &p->lock, PBA_EXIT_DRAIN_MS - spent);
  }
  memset(&p->exit, 0, sizeof p->exit);
  if (GetExitCodeProcess(p->process, &code)) {
    p->exit.status_known = 1;
    if (is_exception(code)) {
      p->exit.signal = (int)code;
    } else {
      p->exit.exited = 1;
      p->exit.exit_code = (int)code;
    }
  }
  p->exited = 1;
  ws = changed_locked(p);
  LeaveCriticalSection(&p->lock);
  wake(ws);
}

/* ---- the parent's side ---- */
static void proc_free(pebble_bk_proc *p) {
  close_handle(&p->to_child);
  close_handle(&p->from_child);
  close_handle(&p->child_rd);
  close_handle(&p->child_wr);
  close_handle(&p->process);
  close_handle(&p->job); /* ends whatever is left in it */
  DeleteCriticalSection(&p->lock);
  free(p->in.buf);
  free(p->out.buf);
  free(p);
}

static int proc_new(pebble_bk_proc **out, int *sys_errno) {
  pebble_bk_proc *p = calloc(1, sizeof *p);
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
  if (p == NULL)
    return PEBBLE_ENOMEM;
  InitializeCriticalSection(&p->lock);
  InitializeConditionVariable(&p->changed);
  p->in.buf = malloc(PBA_RING);
  p->out.buf = malloc(PBA_RING);
  if (p->in.buf == NULL || p->out.buf == NULL) {
    proc_free(p);
    return PEBBLE_ENOMEM;
  }
  /* Not inheritable: only the child's ends are, for its CreateProcess. */
  memset(&limits, 0, sizeof limits);
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!CreatePipe(&p->child_rd, &p->to_child, NULL, PBA_PIPE_SIZE) ||
      !CreatePipe(&p->from_child, &p->child_wr, NULL, PBA_PIPE_SIZE) ||
      (p->job = CreateJobObjectW(NULL, NULL)) == NULL ||
      !SetInformationJobObject(p->job, JobObjectExtendedLimitInformation,
                               &limits, sizeof limits)) {
    *sys_errno = (int)GetLastError();
    proc_free(p);
    return PEBBLE_ESYSTEM;
  }
  *out = p;
  return PEBBLE_OK;
}

/* An inheritable copy of h for the child (NULL if h is not usable). */
static HANDLE inheritable_copy(HANDLE h) {
  HANDLE copy = NULL;
  if (h == NULL || h == INVALID_HANDLE_VALUE ||
      !DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &copy, 0,
                       TRUE, DUPLICATE_SAME_ACCESS))
    return NULL;
  return copy;
}

static HANDLE open_null(DWORD access) {
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  HANDLE h = CreateFileA("NUL", access, FILE_SHARE_READ | FILE_SHARE_WRITE,
                         &sa, OPEN_EXISTING, 0, NULL);
  return h == INVALID_HANDLE_VALUE ? NULL : h;
}

static int named(const char *entry, const char *name) {
  size_t n = strlen(name);
  return _strnicmp(entry, name, n) == 0 && entry[n] == '=';
}

/* The environment block: this process's, without any worker variables,
 * plus this worker's.  malloc'd; NULL when out of memory. */
static char *worker_environment(const char *channel) {
  char *env = GetEnvironmentStringsA(), *block, *q;
  const char *e;
  size_t size = 0;
  char backend[] = PBA_BACKEND_ENV "=apr";
  if (env == NULL)
    return NULL;
  for (e = env; *e != '\0'; e += strlen(e) + 1)
    size += strlen(e) + 1;
  size += sizeof backend + strlen(PBA_CHANNEL_ENV) + strlen(channel) + 3;
  if ((block = malloc(size)) != NULL) {
    q = block;
    for (e = env; *e != '\0'; e += strlen(e) + 1)
      if (!named(e, PBA_CHANNEL_ENV) && !named(e, PBA_BACKEND_ENV)) {
        memcpy(q, e, strlen(e) + 1);
        q += strlen(e) + 1;
      }
    memcpy(q, backend, sizeof backend);
    q += sizeof backend;
    q += sprintf(q, "%s=%s", PBA_CHANNEL_ENV, channel) + 1;
    *q = '\0';
  }
  FreeEnvironmentStringsA(env);
  return block;
}

/* Start the program suspended with the handles given and nothing else
 * inherited, in the Job, then let it run. */
static int create_worker(pebble_bk_proc *p, const char *path,
                         const char *argv0, char *env, HANDLE std_in,
                         HANDLE std_out, HANDLE std_err) {
  HANDLE handles[5];
  STARTUPINFOEXA si;
  PROCESS_INFORMATION pi;
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
  SIZE_T attrs_size = 0;
  char *cmdline;
  DWORD err = 0;
  BOOL ok;
  handles[0] = p->child_rd;
  handles[1] = p->child_wr;
  handles[2] = std_in;
  handles[3] = std_out;
  handles[4] = std_err;
  /* The command line is argv[0], quoted; the worker reads no arguments. */
  if ((cmdline = malloc(strlen(argv0) + 3)) == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  sprintf(cmdline, "\"%s\"", argv0);
  InitializeProcThreadAttributeList(NULL, 1, 0, &attrs_size);
  if ((attrs = malloc(attrs_size)) == NULL) {
    free(cmdline);
    return ERROR_NOT_ENOUGH_MEMORY;
  }
  if (!InitializeProcThreadAttributeList(attrs, 1, 0, &attrs_size)) {
    err = GetLastError();
    free(attrs);
    free(cmdline);
    return err;
  }
  ok = UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                 handles, sizeof handles, NULL, NULL);
  if (ok) {
    memset(&si, 0, sizeof si);
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std_in;
    si.StartupInfo.hStdOutput = std_out;
    si.StartupInfo.hStdError = std_err;
    si.lpAttributeList = attrs;
    /* The channel's ends are inheritable only for this call; the list
     * keeps them from this program's other children. */
    SetHandleInformation(p->child_rd, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    SetHandleInformation(p->child_wr, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    ok = CreateProcessA(path, cmdline, NULL, NULL, TRUE,
                        CREATE_SUSPENDED | EXTENDED_STARTUPINFO_PRESENT, env,
                        NULL, &si.StartupInfo, &pi);
    if (!ok)
      err = GetLastError();
  } else {
    err = GetLastError();
  }
  DeleteProcThreadAttributeList(attrs);
  free(attrs);
  free(cmdline);
  if (!ok)
    return err;
  /* In the Job before it runs a single instruction of its own, so
   * nothing it starts escapes a kill. */
  if (!AssignProcessToJobObject(p->job, pi.hProcess)) {
    err = GetLastError();
    TerminateProcess(pi.hProcess, PBA_KILL_CODE);
    WaitForSingleObject(pi.hProcess, INFINITE);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return err;
  }
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  p->process = pi.hProcess;
  p->pid = pi.dwProcessId;
  return 0;
}

/* After the start: the I/O threads and the exit wait. */
static int watch_worker(pebble_bk_proc *p, int *sys_errno) {
  /* Small stacks: each thread only moves bytes. */
  DWORD stack_flags = STACK_SIZE_PARAM_IS_A_RESERVATION;
  if ((p->reader = CreateThread(NULL, 64 << 10, reader_main, p, stack_flags,
                                NULL)) == NULL ||
      (p->writer = CreateThread(NULL, 64 << 10, writer_main, p, stack_flags,
                                NULL)) == NULL ||
      !RegisterWaitForSingleObject(&p->exit_wait, p->process, exit_seen, p,
                                   INFINITE,
                                   WT_EXECUTEONLYONCE |
                                       WT_EXECUTELONGFUNCTION)) {
    *sys_errno = (int)GetLastError();
    p->exit_wait = NULL;
    return PEBBLE_ESYSTEM;
  }
  return PEBBLE_OK;
}

int pba_proc_spawn(pebble_bk_proc **out, const char *program,
                   const char *argv0, int *sys_errno) {
  pebble_bk_proc *p;
  char self[MAX_PATH + 1], channel[64], *env;
  const char *path = program;
  HANDLE std_in, std_out, std_err;
  DWORD err;
  int rc, ignored;
  if (sys_errno == NULL)
    sys_errno = &ignored;
  *sys_errno = 0;
  if (out == NULL || (program != NULL && *program == '\0'))
    return PEBBLE_EINVAL;
  *out = NULL;
  if (path == NULL) {
    DWORD n = GetModuleFileNameA(NULL, self, sizeof self);
    if (n == 0 || n >= sizeof self) {
      *sys_errno = (int)GetLastError();
      return PEBBLE_ESYSTEM;
    }
    path = self;
  }
  if ((rc = proc_new(&p, sys_errno)) != PEBBLE_OK)
    return rc;
  snprintf(channel, sizeof channel, PBA_CHANNEL_PREFIX "%llu,%llu",
           (unsigned long long)(uintptr_t)p->child_rd,
           (unsigned long long)(uintptr_t)p->child_wr);
  env = worker_environment(channel);
  /* Standard input from NUL, output and error the application's (NUL
   * when it has none, as a program without a console). */
  std_in = open_null(GENERIC_READ);
  if ((std_out = inheritable_copy(GetStdHandle(STD_OUTPUT_HANDLE))) == NULL)
    std_out = open_null(GENERIC_WRITE);
  if ((std_err = inheritable_copy(GetStdHandle(STD_ERROR_HANDLE))) == NULL)
    std_err = open_null(GENERIC_WRITE);
  if (env == NULL)
    err = ERROR_NOT_ENOUGH_MEMORY;
  else if (std_in == NULL || std_out == NULL || std_err == NULL)
    err = GetLastError();
  else
    err = (DWORD)create_worker(p, path, argv0 != NULL ? argv0 : path, env,
                               std_in, std_out, std_err);
  close_handle(&std_in);
  close_handle(&std_out);
  close_handle(&std_err);
  free(env);
  /* The child's ends are the child's now. */
  close_handle(&p->child_rd);
  close_handle(&p->child_wr);
  if (err != 0) {
    *sys_errno = (int)err;
    proc_free(p);
    return err == ERROR_NOT_ENOUGH_MEMORY ? PEBBLE_ENOMEM : PEBBLE_ESYSTEM;
  }
  if ((rc = watch_worker(p, sys_errno)) != PEBBLE_OK) {
    pba_proc_destroy(p);
    return rc;
  }
  *out = p;
  return PEBBLE_OK;
}

long pba_proc_pid(const pebble_bk_proc *p) { return (long)p->pid; }

int pba_proc_read(pebble_bk_proc *p, void *buf, size_t len, size_t *done) {
  unsigned char *dst = buf;
  int rc = PEBBLE_OK;
  *done = 0;
  EnterCriticalSection(&p->lock);
  if (p->in.count == 0) {
    rc = p->in_eof ? PEBBLE_OK : PEBBLE_ENOTREADY; /* *done 0: end of file */
  } else {
    size_t n = min_size(len, p->in.count);
    size_t first = min_size(n, PBA_RING - p->in.head);
    memcpy(dst, p->in.buf + p->in.head, first);
    memcpy(dst + first, p->in.buf, n - first);
    p->in.head = (p->in.head + n) % PBA_RING;
    p->in.count -= n;
    p->in_moves += n;
    *done = n;
    WakeAllConditionVariable(&p->changed); /* room for the reader */
  }
  LeaveCriticalSection(&p->lock);
  return rc;
}

int pba_proc_write(pebble_bk_proc *p, const void *buf, size_t len,
                   size_t *done) {
  const unsigned char *src = buf;
  int rc = PEBBLE_OK;
  *done = 0;
  EnterCriticalSection(&p->lock);
  /* A worker that has ended takes nothing: accepted into the ring, a task
   * would count as handed over, and be charged with an exit that came
   * before it (the writer thread finds the pipe broken only later).  As a
   * write to a closed pipe fails on POSIX, the task then goes to another
   * worker. */
  if (p->out_broken || p->exited ||
      WaitForSingleObject(p->process, 0) == WAIT_OBJECT_0) {
    rc = PEBBLE_EDIED;
  } else if (p->out.count == PBA_RING) {
    rc = PEBBLE_ENOTREADY;
  } else {
    size_t n = min_size(len, PBA_RING - p->out.count);
    size_t tail = (p->out.head + p->out.count) % PBA_RING;
    size_t first = min_size(n, PBA_RING - tail);
    memcpy(p->out.buf + tail, src, first);
    memcpy(p->out.buf, src + first, n - first);
    p->out.count += n;
    *done = n;
    WakeAllConditionVariable(&p->changed); /* bytes for the writer */
  }
  LeaveCriticalSection(&p->lock);
  return rc;
}

/* No grace on Windows: a request to end is a kill, of the whole Job. */
int pba_proc_kill(pebble_bk_proc *p, int force) {
  int rc = PEBBLE_OK;
  EnterCriticalSection(&p->lock);
  if (!p->reaped &&
      !TerminateJobObject(p->job, force ? PBA_KILL_CODE : PBA_TERM_CODE) &&
      !p->exited)
    rc = PEBBLE_ESYSTEM;
  LeaveCriticalSection(&p->lock);
  return rc;
}

int pba_proc_reap(pebble_bk_proc *p, pebble_bk_exit *exit) {
  int rc = PEBBLE_OK;
  EnterCriticalSection(&p->lock);
  if (!p->exited) {
    rc = PEBBLE_ENOTREADY;
  } else {
    if (!p->reaped) /* what the worker started and left behind */
      TerminateJobObject(p->job, PBA_KILL_CODE);
    p->reaped = 1;
    *exit = p->exit;
  }
  LeaveCriticalSection(&p->lock);
  return rc;
}

void pba_proc_destroy(pebble_bk_proc *p) {
  if (p == NULL)
    return;
  pba_waitset_forget_proc(p);
  if (p->process != NULL) {
    TerminateJobObject(p->job, PBA_KILL_CODE);
    WaitForSingleObject(p->process, INFINITE);
  }
  EnterCriticalSection(&p->lock);
  p->stopping = 1;
  WakeAllConditionVariable(&p->changed);
  LeaveCriticalSection(&p->lock);
  /* Waits for a callback that is running (it stops waiting for the
   * reader once `stopping` is set). */
  if (p->exit_wait != NULL)
    UnregisterWaitEx(p->exit_wait, INVALID_HANDLE_VALUE);
  /* A thread in ReadFile or WriteFile returns with ERROR_BROKEN_PIPE: the
   * only other end was in the Job, which is gone. */
  if (p->reader != NULL) {
    WaitForSingleObject(p->reader, INFINITE);
    CloseHandle(p->reader);
  }
  if (p->writer != NULL) {
    WaitForSingleObject(p->writer, INFINITE);
    CloseHandle(p->writer);
  }
  proc_free(p);
}

/* ---- the worker's side ---- */
static pebble_bk_chan adopted;

static LPTOP_LEVEL_EXCEPTION_FILTER app_filter;

/* The application's own filter first (a crash reporter, say); then the
 * worker ends, with the exception's code as its exit code. */
static LONG WINAPI end_on_crash(EXCEPTION_POINTERS *e) {
  if (app_filter != NULL) {
    LONG r = app_filter(e);
    if (r != EXCEPTION_CONTINUE_SEARCH)
      return r;
  }
  return EXCEPTION_EXECUTE_HANDLER;
}

static int parse_handle(const char **s, void **out) {
  char *end;
  unsigned long long v = _strtoui64(*s, &end, 10);
  if (end == *s || v == 0)
    return 0;
  *out = (void *)(uintptr_t)v;
  *s = end;
  return 1;
}

int pba_chan_adopt(pebble_bk_chan **out) {
  const char *value, *s;
  void *rd, *wr;
  DWORD flags;
  if (out == NULL)
    return PEBBLE_EINVAL;
  *out = NULL;
  if ((value = getenv(PBA_CHANNEL_ENV)) == NULL)
    return PEBBLE_ENOTFOUND;
  s = value;
  if (strncmp(s, PBA_CHANNEL_PREFIX, sizeof PBA_CHANNEL_PREFIX - 1) != 0)
    return PEBBLE_EINVAL; /* another backend's channel */
  s += sizeof PBA_CHANNEL_PREFIX - 1;
  if (!parse_handle(&s, &rd) || *s++ != ',' || !parse_handle(&s, &wr) ||
      *s != '\0' || !GetHandleInformation(rd, &flags) ||
      !GetHandleInformation(wr, &flags)) {
    _putenv(PBA_CHANNEL_ENV "=");
    return PEBBLE_EINVAL;
  }
  /* A crash ends the worker at once with its exception's code, which the
   * parent reports: no error dialog, no debugger waiting for a user (Wine
   * starts one whatever the error mode; a last filter stops it). */
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX |
               SEM_NOOPENFILEERRORBOX);
  app_filter = SetUnhandledExceptionFilter(end_on_crash);
  /* Ours now: this worker's own children are ordinary programs. */
  SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
  SetHandleInformation(wr, HANDLE_FLAG_INHERIT, 0);
  _putenv(PBA_CHANNEL_ENV "=");
  _putenv(PBA_BACKEND_ENV "=");
  adopted.rd = rd;
  adopted.wr = wr;
  *out = &adopted;
  return PEBBLE_OK;
}

int pba_chan_write_all(pebble_bk_chan *chan, const void *buf, size_t len) {
  const char *q = buf;
  while (len > 0) {
    DWORD n = 0;
    if (!WriteFile(chan->wr, q, (DWORD)min_size(len, 1u << 30), &n, NULL))
      return GetLastError() == ERROR_BROKEN_PIPE ||
                     GetLastError() == ERROR_NO_DATA
                 ? PEBBLE_EDIED
                 : PEBBLE_ESYSTEM;
    q += n;
    len -= n;
  }
  return PEBBLE_OK;
}

int pba_chan_read_all(pebble_bk_chan *chan, void *buf, size_t len) {
  char *q = buf;
  while (len > 0) {
    DWORD n = 0;
    if (!ReadFile(chan->rd, q, (DWORD)min_size(len, 1u << 30), &n, NULL))
      return GetLastError() == ERROR_BROKEN_PIPE ? PEBBLE_EDIED
                                                 : PEBBLE_ESYSTEM;
    q += n;
    len -= n;
  }
  return PEBBLE_OK;
}
