/* SPDX-License-Identifier: Apache-2.0 */
/*
 * echo.h -- the task the process benchmarks time: it returns its integer
 * argument, so each result is checked, never only counted.
 */
#ifndef BENCH_ECHO_H
#define BENCH_ECHO_H

#include <stddef.h>
#include <stdint.h>

#include "pebble.h"

/* Returns its int64_t argument; fails on any other argument. */
int bench_echo(pebble_ctx *ctx, const void *arg, size_t size);

/* One echo of v on pool, waited for; the program ends, naming `what`,
 * unless v comes back. */
void bench_echo_once(pebble_pool *pool, int64_t v, const char *what);

/* n echoes (0 .. n-1) scheduled at once into f[], then each waited for
 * in order, checked and released; the program ends, naming `what` and
 * the task, on the first error. */
void bench_echo_burst(pebble_pool *pool, pebble_future **f, size_t n,
                      const char *what);

#endif
