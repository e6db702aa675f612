/* SPDX-License-Identifier: Apache-2.0 */
/* The public header compiles cleanly as strict C99 (-std=c99 -Wpedantic). */
#include <pebble.h>

int main(void) {
  pebble_task_options o;
  pebble_task_options_init(&o);
  return o.struct_size == sizeof o && PEBBLE_VERSION_AT_LEAST(0, 1, 0) ? 0 : 1;
}
