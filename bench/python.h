/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python.h -- running the Python Pebble reference (py_pebble.py) from a
 * benchmark, once per repetition so that it interleaves with the C
 * systems.  The interpreter is $BENCH_PYTHON (bench/run picks one that
 * can import pebble), else python3; the script is in $BENCH_SRC, else
 * next to the program.
 */
#ifndef BENCH_PYTHON_H
#define BENCH_PYTHON_H

#include <stddef.h>

/* NULL when the reference can run, else why its lines are skipped. */
const char *bench_python_missing(void);
/* Run `py_pebble.py mode n` and read up to `max` numbers it prints.
 * Returns how many were read (0 on failure). */
int bench_python(const char *mode, size_t n, double *out, int max);
/* The same with `workers` worker processes and `warm` warm-up tasks. */
int bench_python_with(const char *mode, size_t n, unsigned workers,
                      size_t warm, double *out, int max);

#endif /* BENCH_PYTHON_H */
