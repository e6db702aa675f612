/* SPDX-License-Identifier: Apache-2.0 */
/* python.c -- see python.h. */
#include "python.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static const char *interpreter(void) {
  const char *p = getenv("BENCH_PYTHON");
  return p != NULL ? p : "python3";
}

static void script(char *out, size_t len) {
  const char *dir = getenv("BENCH_SRC");
  snprintf(out, len, "%s/py_pebble.py", dir != NULL ? dir : "bench");
}

int bench_python(const char *mode, size_t n, double *out, int max) {
  return bench_python_with(mode, n, 2, 20, out, max);
}

int bench_python_with(const char *mode, size_t n, unsigned workers,
                      size_t warm, double *out, int max) {
  char path[4096], count[32], nworkers[32], nwarm[32], text[512];
  int fds[2], status, got = 0;
  size_t len = 0;
  ssize_t r;
  pid_t pid;
  char *p, *end;

  if (*interpreter() == '\0')
    return 0;
  script(path, sizeof path);
  snprintf(count, sizeof count, "%zu", n);
  snprintf(nworkers, sizeof nworkers, "%u", workers);
  snprintf(nwarm, sizeof nwarm, "%zu", warm);
  if (pipe(fds) != 0)
    return 0;
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    return 0;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp(interpreter(), interpreter(), path, mode, count, nworkers, nwarm,
           (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  while (len < sizeof text - 1 &&
         (r = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
    len += (size_t)r;
  text[len] = '\0';
  close(fds[0]);
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    return 0;
  for (p = text; got < max; p = end) {
    double v = strtod(p, &end);
    if (end == p)
      break;
    out[got++] = v;
  }
  return got;
}

const char *bench_python_missing(void) {
  static int checked;
  static const char *why;
  double v[2];
  if (checked)
    return why;
  checked = 1;
  if (*interpreter() == '\0')
    why = "no python3 with the pebble module (Debian: python3-pebble)";
  else if (bench_python("check", 0, v, 2) < 1)
    why = "py_pebble.py did not run (is python3-pebble installed?)";
  return why;
}
