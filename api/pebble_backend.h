/* SPDX-License-Identifier: Apache-2.0 */
/* The backend contract, by its in-tree name: the header itself is
 * api/pebble/backend.h, installed as <pebble/backend.h>. */
#include "pebble/backend.h"
