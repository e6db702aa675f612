/* values.c -- helpers for results and arguments made of one value. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "internal.h"

int pebble_result_int(pebble_ctx *ctx, int64_t value) {
  return pebble_result_set(ctx, &value, sizeof value);
}

int pebble_result_double(pebble_ctx *ctx, double value) {
  return pebble_result_set(ctx, &value, sizeof value);
}

int pebble_result_string(pebble_ctx *ctx, const char *text) {
  if (text == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_result_string: text is NULL");
  return pebble_result_set(ctx, text, strlen(text) + 1);
}

static int fixed(const void *arg, size_t size, void *out, size_t want,
                 const char *fname) {
  if (out == NULL || arg == NULL)
    return pb_error(PEBBLE_EINVAL, "%s: NULL argument", fname);
  if (size != want)
    return pb_error(PEBBLE_EINVAL, "%s: value has %zu bytes, expected %zu",
                    fname, size, want);
  memcpy(out, arg, want);
  return PEBBLE_OK;
}

int pebble_arg_int(const void *arg, size_t size, int64_t *value) {
  return fixed(arg, size, value, sizeof *value, "pebble_arg_int");
}

int pebble_arg_double(const void *arg, size_t size, double *value) {
  return fixed(arg, size, value, sizeof *value, "pebble_arg_double");
}

int pebble_arg_string(const void *arg, size_t size, const char **text) {
  if (arg == NULL || text == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_arg_string: NULL argument");
  if (size == 0 || ((const char *)arg)[size - 1] != '\0')
    return pb_error(PEBBLE_EINVAL,
                    "pebble_arg_string: value does not end with a NUL byte");
  *text = arg;
  return PEBBLE_OK;
}

int pebble_future_get_int(pebble_future *f, pebble_time_t timeout,
                          int64_t *value) {
  const void *data;
  size_t size;
  int rc = pebble_future_get(f, timeout, &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return fixed(data, size, value, sizeof *value, "pebble_future_get_int");
}

int pebble_future_get_double(pebble_future *f, pebble_time_t timeout,
                             double *value) {
  const void *data;
  size_t size;
  int rc = pebble_future_get(f, timeout, &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return fixed(data, size, value, sizeof *value, "pebble_future_get_double");
}

int pebble_future_get_string(pebble_future *f, pebble_time_t timeout,
                             const char **text) {
  const void *data;
  size_t size;
  int rc = pebble_future_get(f, timeout, &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return pebble_arg_string(data, size, text);
}
