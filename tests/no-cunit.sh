#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Stands in for the test suite when configure did not find CUnit.
echo "make check needs CUnit: install libcunit1-dev (Debian/Ubuntu), or CUnit" >&2
echo ">= 2.1 with its pkg-config file elsewhere, then run ./configure again." >&2
exit 1
