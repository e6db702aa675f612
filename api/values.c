/* SPDX-License-Identifier: Apache-2.0 */
/* values.c -- helpers for results and arguments made of one value. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "internal.h"

/* A result set by one of the helpers below carries its type. */
static int set_typed(pebble_ctx *ctx, const void *data, size_t size,
                     int type) {
  int rc = pebble_result_set(ctx, data, size);
  if (rc == PEBBLE_OK)
    ctx->result_type = type;
  return rc;
}

int pebble_result_int(pebble_ctx *ctx, int64_t value) {
  return set_typed(ctx, &value, sizeof value, PB_VALUE_INT);
}

int pebble_result_double(pebble_ctx *ctx, double value) {
  return set_typed(ctx, &value, sizeof value, PB_VALUE_DOUBLE);
}

int pebble_result_string(pebble_ctx *ctx, const char *text) {
  if (text == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_result_string: text is NULL");
  return set_typed(ctx, text, strlen(text) + 1, PB_VALUE_STRING);
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

/* How a result of each type was made, for messages. */
static const char *type_name(int type) {
  switch (type) {
  case PB_VALUE_INT:
    return "an int (pebble_result_int)";
  case PB_VALUE_DOUBLE:
    return "a double (pebble_result_double)";
  case PB_VALUE_STRING:
    return "a string (pebble_result_string)";
  default:
    return "raw bytes (pebble_result_set or pebble_result_alloc)";
  }
}

/* The result of f, if it is a value of type `want`.  Eight bytes of an
 * int read as a double (or raw bytes read as either) would be garbage:
 * the type travels with the result and is checked here. */
static int get_typed(pebble_future *f, pebble_time_t timeout, int want,
                     const char *fname, const void **data, size_t *size) {
  int rc = pebble_future_get(f, timeout, data, size);
  if (rc != PEBBLE_OK)
    return rc;
  if (f->result_type != want)
    return pb_error(PEBBLE_EINVAL,
                    "%s: the result is %s of %zu bytes, not %s (use "
                    "pebble_future_get for raw bytes)",
                    fname, type_name(f->result_type), *size,
                    type_name(want));
  return PEBBLE_OK;
}

int pebble_future_get_int(pebble_future *f, pebble_time_t timeout,
                          int64_t *value) {
  const void *data;
  size_t size;
  int rc = get_typed(f, timeout, PB_VALUE_INT, "pebble_future_get_int",
                     &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return fixed(data, size, value, sizeof *value, "pebble_future_get_int");
}

int pebble_future_get_double(pebble_future *f, pebble_time_t timeout,
                             double *value) {
  const void *data;
  size_t size;
  int rc = get_typed(f, timeout, PB_VALUE_DOUBLE, "pebble_future_get_double",
                     &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return fixed(data, size, value, sizeof *value, "pebble_future_get_double");
}

int pebble_future_get_string(pebble_future *f, pebble_time_t timeout,
                             const char **text) {
  const void *data;
  size_t size;
  int rc = get_typed(f, timeout, PB_VALUE_STRING, "pebble_future_get_string",
                     &data, &size);
  if (rc != PEBBLE_OK)
    return rc;
  return pebble_arg_string(data, size, text);
}
