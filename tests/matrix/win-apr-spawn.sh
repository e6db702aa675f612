#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Conformance matrix row: Windows (mingw-w64, under Wine), backend apr,
# start method spawn (the only one there; see tests/matrix-row.sh for
# what runs in it today).
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" apr spawn win-apr-spawn
