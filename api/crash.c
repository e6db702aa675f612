/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crash.c -- how a process that did not exit is described: killed by a
 * signal on POSIX, ended by an exception on Windows.
 *
 * A Windows process that crashes ends with the exception's NTSTATUS as
 * its exit code (0xC0000005 for an access violation); the backend reports
 * that code as the "signal" that ended it, and it is named here from a
 * table of the common ones, or by the system's own text for the others.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>

#include "internal.h"

#ifdef _WIN32
#include <windows.h>

static const struct {
  unsigned code;
  const char *name;
} exceptions[] = {
    {0x80000002u, "datatype misalignment"},
    {0x80000003u, "breakpoint"},
    {0xC0000005u, "access violation"},
    {0xC0000006u, "in-page error"},
    {0xC0000017u, "out of memory"},
    {0xC000001Du, "illegal instruction"},
    {0xC0000025u, "noncontinuable exception"},
    {0xC0000026u, "invalid disposition"},
    {0xC000008Cu, "array bounds exceeded"},
    {0xC000008Du, "floating-point denormal operand"},
    {0xC000008Eu, "floating-point division by zero"},
    {0xC000008Fu, "floating-point inexact result"},
    {0xC0000090u, "floating-point invalid operation"},
    {0xC0000091u, "floating-point overflow"},
    {0xC0000092u, "floating-point stack check"},
    {0xC0000093u, "floating-point underflow"},
    {0xC0000094u, "integer division by zero"},
    {0xC0000095u, "integer overflow"},
    {0xC0000096u, "privileged instruction"},
    {0xC00000FDu, "stack overflow"},
    {0xC0000135u, "DLL not found"},
    {0xC0000139u, "entry point not found"},
    {0xC000013Au, "terminated by Ctrl+C"},
    {0xC0000142u, "DLL initialization failed"},
    {0xC0000374u, "heap corruption"},
    {0xC0000409u, "stack buffer overrun (fail fast)"},
    {0xC0000417u, "invalid parameter to a C runtime function"},
};

/* The system's text for an NTSTATUS it knows (ntdll's message table). */
static const char *system_text(unsigned code) {
  static PB_TLS char text[128];
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  DWORD n;
  if (ntdll == NULL)
    return NULL;
  n = FormatMessageA(FORMAT_MESSAGE_FROM_HMODULE |
                         FORMAT_MESSAGE_IGNORE_INSERTS,
                     ntdll, code, 0, text, sizeof text, NULL);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
                   text[n - 1] == ' ' || text[n - 1] == '.'))
    text[--n] = '\0';
  return n > 0 ? text : NULL;
}

const char *pb_exception_name(int code) {
  size_t i;
  for (i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
    if (exceptions[i].code == (unsigned)code)
      return exceptions[i].name;
  return (unsigned)code >= 0x80000000u ? system_text((unsigned)code) : NULL;
}
#endif

void pb_crash_phrase(char *buf, size_t size, int sig) {
#ifdef _WIN32
  if ((unsigned)sig >= 0x80000000u) {
    const char *name = pb_exception_name(sig);
    snprintf(buf, size, "crashed: %s (0x%08X)", name ? name : "exception",
             (unsigned)sig);
    return;
  }
#endif
  snprintf(buf, size, "was killed by signal %d (%s)", sig,
           pebble_signal_name(sig));
}
