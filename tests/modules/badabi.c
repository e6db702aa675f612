/* SPDX-License-Identifier: Apache-2.0 */
/* A backend module built for an ABI this library does not speak: the
 * loader must refuse it with a message naming the file and both
 * versions, and never call into it. */
#include "pebble_backend.h"

static const pebble_backend table = {.abi_major = 999,
                                     .abi_minor = 0,
                                     .struct_size = sizeof(pebble_backend),
                                     .name = "badabi",
                                     .description = "test module"};

PEBBLE_BACKEND_ENTRY(badabi) { return &table; }
