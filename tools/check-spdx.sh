#!/bin/sh
# Every source file names its licence (SPDX-License-Identifier: Apache-2.0);
# tools/spdx.sh --apply adds the lines that are missing.
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
exec sh "$top_srcdir/tools/spdx.sh" --check
