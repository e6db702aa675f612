/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster_map.c -- one process pool whose workers are started through a
 * launcher (srun, mpirun, ssh: docs/cluster.md), and a map of 10,000
 * items over it.  Item 4242 crashes its worker (SIGSEGV) on purpose: its
 * outcome names the host and the signal, and every other item's result
 * comes back, in order.
 *
 *   cluster_map [LAUNCHER [WORKERS]]
 *
 * LAUNCHER is the pool's `launcher` option, e.g. (in an sbatch script)
 *   "srun --nodes=1 --ntasks=1 --exact --quiet --unbuffered"
 * and "" or no argument leaves it to PEBBLE_LAUNCHER, or to this host.
 * WORKERS defaults to 4.  Prints "item I = I*I (host H)" for each item,
 * in order, "item 4242 crashed: MESSAGE" for the crash, and a summary;
 * exits 0 only when every result is right and the crash was reported
 * with its host and signal.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pebble.h>

#define ITEMS 10000
#define CRASHING_ITEM 4242

/* A result: the square and the host that computed it. */
struct answer {
  int64_t square;
  char host[64];
};

static int square_here(pebble_ctx *ctx, const void *arg, size_t size) {
  int64_t n;
  struct answer *a;
  if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
    return pebble_fail(ctx, 1, "expected an integer");
  if (n == CRASHING_ITEM)
    raise(SIGSEGV); /* on purpose: the worker dies, the pool goes on */
  a = pebble_result_alloc(ctx, sizeof *a);
  if (a == NULL)
    return pebble_fail(ctx, 1, "out of memory");
  memset(a, 0, sizeof *a);
  a->square = n * n;
  if (gethostname(a->host, sizeof a->host - 1) != 0)
    strcpy(a->host, "?");
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  static int64_t values[ITEMS];
  static pebble_item items[ITEMS];
  pebble_pool_options po;
  pebble_pool *pool = NULL;
  pebble_map *map = NULL;
  pebble_pool_stats st;
  char hosts[16][64];
  size_t i, nhosts = 0, ok = 0, wrong = 0;
  int crash_seen = 0, launched, rc;
  double t0, took;

  /* Workers run this same program: register first, then serve. */
  pebble_register("square_here", square_here);
  if (pebble_worker_main() != PEBBLE_OK) {
    fprintf(stderr, "cluster_map: %s\n", pebble_last_error());
    return 1;
  }

  pebble_pool_options_init(&po);
  po.workers = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
  if (argc > 1 && argv[1][0] != '\0')
    po.launcher = argv[1]; /* the start method is then spawn */
  else
    po.start_method = PEBBLE_START_SPAWN;
  launched = po.launcher != NULL || (getenv("PEBBLE_LAUNCHER") != NULL &&
                                     getenv("PEBBLE_LAUNCHER")[0] != '\0');
  t0 = now_s();
  if ((rc = pebble_pool_create(&pool, PEBBLE_PROCESS, &po)) != PEBBLE_OK) {
    fprintf(stderr, "cluster_map: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 0; i < ITEMS; i++) {
    values[i] = (int64_t)i;
    items[i].data = &values[i];
    items[i].size = sizeof values[i];
  }
  rc = pebble_pool_map(pool, square_here, items, ITEMS, NULL, &map);
  if (rc != PEBBLE_OK) {
    fprintf(stderr, "cluster_map: map: %s\n", pebble_last_error());
    return 1;
  }
  for (i = 0; i < ITEMS; i++) {
    const struct answer *a = NULL;
    size_t size = 0;
    rc = pebble_map_get(map, i, PEBBLE_SEC(600), (const void **)&a, &size);
    if (rc == PEBBLE_OK && size == sizeof *a && a->square == (int64_t)(i * i)) {
      size_t h;
      printf("item %zu = %lld (host %s)\n", i, (long long)a->square, a->host);
      ok++;
      for (h = 0; h < nhosts && strcmp(hosts[h], a->host) != 0; h++)
        ;
      if (h == nhosts && nhosts < 16)
        snprintf(hosts[nhosts++], sizeof hosts[0], "%s", a->host);
    } else if (i == CRASHING_ITEM && rc == PEBBLE_EDIED) {
      const char *msg = pebble_map_message(map, i);
      printf("item %zu crashed: %s\n", i, msg);
      /* A worker started through a launcher is named with its host; one
       * of this host's, without (the host is this one). */
      crash_seen = strstr(msg, "SIGSEGV") != NULL &&
                   (strstr(msg, " on host ") != NULL || !launched);
    } else {
      printf("item %zu: WRONG: %s (%s)\n", i, pebble_status_name(rc),
             pebble_map_message(map, i));
      wrong++;
    }
  }
  took = now_s() - t0;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  pebble_pool_stats_get(pool, &st);
  printf("cluster_map: %zu of %d results right and in order, %zu wrong; "
         "item %d's crash %s; %.2f s; workers replaced %llu (started "
         "through a launcher %llu, lost %llu); hosts:",
         ok, ITEMS - 1, wrong, CRASHING_ITEM,
         crash_seen ? "reported with its host and signal" : "NOT reported",
         took, (unsigned long long)st.worker_restarts,
         (unsigned long long)st.remote_restarts,
         (unsigned long long)st.remote_lost);
  for (i = 0; i < nhosts; i++)
    printf(" %s", hosts[i]);
  printf("\n");
  pebble_map_release(map);
  pebble_pool_close(pool);
  pebble_pool_join(pool, PEBBLE_SEC(120));
  pebble_pool_destroy(pool);
  return ok == ITEMS - 1 && wrong == 0 && crash_seen ? 0 : 1;
}
