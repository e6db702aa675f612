/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pingpong.c -- one byte there and back between two processes over two
 * pipes (see procs.h): the least a process round trip can cost here.
 */
#include "procs.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

struct pingpong {
  int to, from;
  pid_t pid;
};

pingpong *pingpong_start(void) {
  pingpong *p = calloc(1, sizeof *p);
  int there[2], back[2];
  if (p == NULL)
    bench_die("out of memory");
  if (pipe(there) != 0 || pipe(back) != 0)
    bench_die("pipe failed");
  p->pid = fork();
  if (p->pid < 0)
    bench_die("fork failed");
  if (p->pid == 0) {
    char c;
    bench_close_others(there[0], back[1]);
    while (read(there[0], &c, 1) == 1)
      if (write(back[1], &c, 1) != 1)
        _exit(4);
    _exit(0);
  }
  close(there[0]);
  close(back[1]);
  p->to = there[1];
  p->from = back[0];
  return p;
}

void pingpong_round_trip(pingpong *p) {
  char c = 'x';
  if (write(p->to, &c, 1) != 1 || read(p->from, &c, 1) != 1)
    bench_die("ping-pong failed");
}

void pingpong_stop(pingpong *p) {
  close(p->to);
  waitpid(p->pid, NULL, 0);
  close(p->from);
  free(p);
}
