/* SPDX-License-Identifier: Apache-2.0 */
/* The public headers compile cleanly as strict C99 (-std=c99 -Wpedantic);
 * the backend contract also on its own, first. */
#include <pebble/backend.h>
#include <pebble.h>

int main(void) {
  pebble_task_options o;
  pebble_task_options_init(&o);
  return o.struct_size == sizeof o && PEBBLE_VERSION_AT_LEAST(0, 1, 0) &&
                 PEBBLE_BACKEND_ABI_MAJOR == 1u
             ? 0
             : 1;
}
