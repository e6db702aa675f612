#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Conformance matrix row: backend apr, start method spawn.
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" apr spawn
