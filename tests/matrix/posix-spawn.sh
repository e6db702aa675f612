#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Conformance matrix row: backend posix, start method spawn.
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" posix spawn
