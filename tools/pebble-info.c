/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pebble-info -- what Pebble finds on this system: its version, every
 * backend it can load (built in or as a module, with its path and whether
 * it passed its checks), the directories it searched for modules, and
 * which one a program would get, and why.
 */
#include <stdio.h>
#include <string.h>

#include <pebble.h>

static void caps_text(unsigned caps, char *buf, size_t len) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{PEBBLE_CAP_THREADS, "threads"},
               {PEBBLE_CAP_PROCESSES, "processes"},
               {PEBBLE_CAP_FORK, "fork"},
               {PEBBLE_CAP_KILL_GROUP, "kill-group"},
               {PEBBLE_CAP_PIDFD, "pidfd"},
               {PEBBLE_CAP_PDEATHSIG, "parent-death-signal"},
               {PEBBLE_CAP_SPAWN, "spawn"},
               {PEBBLE_CAP_FORKSERVER, "forkserver"}};
  size_t i;
  buf[0] = '\0';
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (caps & names[i].bit) {
      if (buf[0])
        strncat(buf, " ", len - strlen(buf) - 1);
      strncat(buf, names[i].name, len - strlen(buf) - 1);
    }
}

static void show(const pebble_backend_info *info, void *user) {
  char caps[256];
  (void)user;
  caps_text(info->caps, caps, sizeof caps);
  printf("  %-8s %s\n", info->name, info->path ? info->path : "(built in)");
  if (info->usable)
    printf("           %s; ABI %u.%u; %s\n",
           info->description ? info->description : "", info->abi_major,
           info->abi_minor, caps);
  else
    printf("           not usable: %s\n", info->error ? info->error : "?");
}

static void show_dir(const char *dir, const char *origin, void *user) {
  (void)user;
  printf("  %s (%s)\n", dir, origin);
}

int main(int argc, char **argv) {
  const char *name, *reason;
  int rc;
  if (argc > 1 && (strcmp(argv[1], "--version") == 0)) {
    printf("pebble-info %s\n", pebble_version());
    return 0;
  }
  if (argc > 1) {
    printf("usage: pebble-info [--version]\n"
           "Prints the Pebble library version, the directories it searches "
           "for backend\nmodules, the backends it can find and which one "
           "would be selected, and why.\nHonours "
           "PEBBLE_BACKEND and PEBBLE_BACKEND_PATH.\n");
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  printf("Pebble %s\n", pebble_version());
  printf("module directories searched, in order:\n");
  pebble_backend_dirs(show_dir, NULL);
  printf("backends found:\n");
  pebble_backend_foreach(show, NULL);
  pebble_backend_choice(&name, &reason);
  printf("selected: %s (%s)\n", name, reason);
  rc = pebble_init();
  if (rc != PEBBLE_OK) {
    printf("it does not start: %s\n", pebble_last_error());
    return 1;
  }
  printf("started: %s\n", pebble_backend_name());
  pebble_shutdown();
  return 0;
}
