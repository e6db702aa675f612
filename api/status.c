/* SPDX-License-Identifier: Apache-2.0 */
/* status.c -- status codes, their names and texts, per-thread messages. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static PB_TLS char last_error[512];

const char *pebble_strerror(int status) {
  switch (status) {
#define PB_TEXT_(name, value, text)                                          \
  case value:                                                                \
    return text;
    PEBBLE_STATUS_MAP(PB_TEXT_)
#undef PB_TEXT_
  default:
    return "unknown status code";
  }
}

const char *pebble_status_name(int status) {
  switch (status) {
#define PB_NAME_(name, value, text)                                          \
  case value:                                                                \
    return "PEBBLE_" #name;
    PEBBLE_STATUS_MAP(PB_NAME_)
#undef PB_NAME_
  default:
    return "PEBBLE_UNKNOWN";
  }
}

const char *pebble_last_error(void) { return last_error; }

int pb_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

char *pb_strdup(const char *s) {
  size_t n;
  char *p;
  if (s == NULL)
    return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

char *pb_format(const char *fmt, ...) {
  char buf[PB_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return pb_strdup(buf);
}

const char *pebble_version(void) { return PEBBLE_VERSION_STRING; }

unsigned pebble_version_hex(void) { return PEBBLE_VERSION_HEX; }

/* Names by the platform's own numbers, so they are right on every
 * system; a name the platform lacks is left out. */
const char *pebble_signal_name(int sig) {
#ifdef _WIN32
  const char *exception = pb_exception_name(sig);
  if (exception != NULL)
    return exception;
#endif
#define PB_SIG_(name)                                                        \
  if (sig == name)                                                           \
    return #name;
  PB_SIG_(SIGABRT) PB_SIG_(SIGFPE) PB_SIG_(SIGILL) PB_SIG_(SIGINT)
  PB_SIG_(SIGSEGV) PB_SIG_(SIGTERM)
#ifdef SIGKILL
  PB_SIG_(SIGKILL)
#endif
#ifdef SIGHUP
  PB_SIG_(SIGHUP)
#endif
#ifdef SIGQUIT
  PB_SIG_(SIGQUIT)
#endif
#ifdef SIGTRAP
  PB_SIG_(SIGTRAP)
#endif
#ifdef SIGBUS
  PB_SIG_(SIGBUS)
#endif
#ifdef SIGUSR1
  PB_SIG_(SIGUSR1)
#endif
#ifdef SIGUSR2
  PB_SIG_(SIGUSR2)
#endif
#ifdef SIGPIPE
  PB_SIG_(SIGPIPE)
#endif
#ifdef SIGALRM
  PB_SIG_(SIGALRM)
#endif
#ifdef SIGCHLD
  PB_SIG_(SIGCHLD)
#endif
#ifdef SIGCONT
  PB_SIG_(SIGCONT)
#endif
#ifdef SIGSTOP
  PB_SIG_(SIGSTOP)
#endif
#ifdef SIGTSTP
  PB_SIG_(SIGTSTP)
#endif
#ifdef SIGTTIN
  PB_SIG_(SIGTTIN)
#endif
#ifdef SIGTTOU
  PB_SIG_(SIGTTOU)
#endif
#ifdef SIGURG
  PB_SIG_(SIGURG)
#endif
#ifdef SIGXCPU
  PB_SIG_(SIGXCPU)
#endif
#ifdef SIGXFSZ
  PB_SIG_(SIGXFSZ)
#endif
#ifdef SIGVTALRM
  PB_SIG_(SIGVTALRM)
#endif
#ifdef SIGPROF
  PB_SIG_(SIGPROF)
#endif
#ifdef SIGWINCH
  PB_SIG_(SIGWINCH)
#endif
#ifdef SIGSYS
  PB_SIG_(SIGSYS)
#endif
#ifdef SIGPWR
  PB_SIG_(SIGPWR)
#endif
#undef PB_SIG_
  return "SIG?";
}
