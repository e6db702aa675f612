#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Conformance matrix row: backend posix, start method fork.
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" posix fork
