#!/bin/sh
# Conformance matrix row: backend apr, start method spawn.
exec "${SHELL:-/bin/sh}" "${top_srcdir:-.}/tests/matrix-row.sh" apr spawn
