#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Conformance matrix row: the example backend of examples/backend, built
# in this tree (a backend that runs threads only, no start method).
PEBBLE_MATRIX_MODULE_DIR="${top_builddir:-.}/examples/backend/.libs"
export PEBBLE_MATRIX_MODULE_DIR
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" example threads
