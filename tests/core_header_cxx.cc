// SPDX-License-Identifier: Apache-2.0
// The public headers compile cleanly as C++ (-Wall -Wextra -Wpedantic),
// the backend contract after pebble.h.
#include <pebble.h>
#include <pebble/backend.h>

static int task(pebble_ctx *ctx, const void *arg, size_t size) {
  (void)arg;
  (void)size;
  return pebble_result_int(ctx, 1);
}

int main() {
  pebble_task_options o;
  pebble_future *f = nullptr;
  int64_t v = 0;
  pebble_task_options_init(&o);
  if (pebble_run(PEBBLE_THREAD, task, nullptr, 0, &o, &f) != PEBBLE_OK)
    return 1;
  int rc = pebble_future_get_int(f, PEBBLE_SEC(30), &v);
  pebble_future_release(f);
  return rc == PEBBLE_OK && v == 1 && PEBBLE_VERSION_AT_LEAST(0, 1, 0) &&
                 sizeof(pebble_backend) > 0
             ? 0
             : 1;
}
