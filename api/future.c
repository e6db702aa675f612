/* SPDX-License-Identifier: Apache-2.0 */
/*
 * future.c -- the task/result store.
 *
 * A future changes state once: the first resolver wins a compare-and-swap
 * into an internal "settling" state, writes the outcome, then publishes
 * the final state under the future's stripe lock and wakes the waiters.
 * Futures share a small table of lock/condition pairs (stripes) so that
 * creating one allocates no lock.  No lock is held while user code runs.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- bindings: a callback and its user data, shared and counted ---- */

pb_binding *pb_binding_new(pebble_callback_fn fn, void *user_data,
                           void (*destroy)(void *)) {
  pb_binding *b = malloc(sizeof *b);
  if (b == NULL)
    return NULL;
  atomic_init(&b->refs, 1);
  b->fn = fn;
  b->user_data = user_data;
  b->destroy = destroy;
  return b;
}

pb_binding *pb_binding_ref(pb_binding *b) {
  if (b != NULL)
    atomic_fetch_add(&b->refs, 1);
  return b;
}

void pb_binding_unref(pb_binding *b) {
  if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1) {
    if (b->destroy != NULL)
      b->destroy(b->user_data);
    free(b);
  }
}

/* ---- life cycle ---- */

static int is_final(int st) {
  return st == PEBBLE_DONE || st == PEBBLE_FAILED || st == PEBBLE_CANCELLED;
}

/* Sequentially consistent: settle's handshake with watchers needs it
 * (and it costs no more than an acquire load where it matters). */
int pb_future_is_resolved(const pebble_future *f) {
  return is_final(atomic_load(&((pebble_future *)f)->state));
}

void pb_stripe_lock(pebble_future *f) {
  f->lib->bk->mutex_lock(f->lib->stripes[PB_STRIPE(f)].mutex);
}
void pb_stripe_unlock(pebble_future *f) {
  f->lib->bk->mutex_unlock(f->lib->stripes[PB_STRIPE(f)].mutex);
}

/* Allocated by whichever thread first needs it; the others use the
 * winner's. */
pb_future_rare *pb_future_rare_get(pebble_future *f) {
  pb_future_rare *r = pb_future_rare_of(f), *fresh;
  if (r != NULL)
    return r;
  if ((fresh = calloc(1, sizeof *fresh)) == NULL)
    return NULL;
  if (atomic_compare_exchange_strong_explicit(&f->rare, &r, fresh,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  free(fresh);
  return r;
}

uint64_t pb_future_seq_of(const pebble_future *f) {
  pb_future_rare *r = pb_future_rare_of((pebble_future *)f);
  return r != NULL ? r->seq : 0;
}

const char *pb_future_name_of(const pebble_future *f) {
  pb_future_rare *r = pb_future_rare_of((pebble_future *)f);
  return r != NULL ? r->name : NULL;
}

int pb_future_new(pb_lib *lib, const char *name, uint64_t seq,
                  pb_binding *binding, pebble_future **out) {
  return pb_future_new_extra(lib, name, seq, binding, 0, out, NULL);
}

int pb_future_new_extra(pb_lib *lib, const char *name, uint64_t seq,
                        pb_binding *binding, size_t extra,
                        pebble_future **out, void **extra_out) {
  return pb_future_new_in(lib, NULL, 0, name, seq, binding, extra, out,
                          extra_out);
}

int pb_future_new_in(pb_lib *lib, void *block, uint64_t id, const char *name,
                     uint64_t seq, pb_binding *binding, size_t extra,
                     pebble_future **out, void **extra_out) {
  pebble_future *f;
  pb_future_rare *rare = NULL;
  int in_block = extra > 0 && PB_FUTURE_SPAN + extra <= PB_BLOCK_SIZE;
  if (block != NULL && !in_block) {
    pb_blocks_put(&lib->blocks, lib->bk, block); /* does not fit */
    block = NULL;
    id = 0;
  }
  if (in_block) {
    f = block != NULL ? block : pb_blocks_get(&lib->blocks, lib->bk);
    if (f != NULL)
      memset(f, 0, PB_BLOCK_SIZE);
  } else {
    f = calloc(1, extra ? PB_FUTURE_SPAN + extra : sizeof *f);
  }
  if (f == NULL)
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a future");
  f->in_block = in_block;
  if (extra_out != NULL)
    *extra_out = extra ? (char *)f + PB_FUTURE_SPAN : NULL;
  if ((name != NULL || seq != 0 || binding != NULL) &&
      ((rare = calloc(1, sizeof *rare)) == NULL ||
       (name != NULL && (rare->name = pb_strdup(name)) == NULL))) {
    free(rare);
    if (in_block)
      pb_blocks_put(&lib->blocks, lib->bk, f);
    else
      free(f);
    return pb_error(PEBBLE_ENOMEM, "out of memory creating a future");
  }
  f->lib = lib;
  f->gen = (uint32_t)lib->gen;
  f->id = id != 0 ? id : atomic_fetch_add(&lib->next_id, 1);
  atomic_init(&f->refs, 1);
  atomic_init(&f->user_refs, 0);
  atomic_init(&f->state, PEBBLE_PENDING);
  atomic_init(&f->watched, 0);
  atomic_init(&f->exit_due, 0);
  atomic_init(&f->callbacks_pending, binding != NULL && binding->fn != NULL);
  f->status = PEBBLE_ENOTREADY;
  if (rare != NULL) {
    rare->seq = seq;
    rare->binding = binding; /* takes the caller's reference */
  }
  atomic_init(&f->rare, rare);
  *out = f;
  return PEBBLE_OK;
}

static void rare_free(pb_future_rare *r) {
  pb_callback *c, *next;
  if (r == NULL)
    return;
  for (c = r->callbacks; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  pb_binding_unref(r->binding);
  free(r->message);
  free(r->name);
  free(r->exit);
  free(r);
}

static void future_free(pebble_future *f) {
  rare_free(pb_future_rare_of(f));
  if (!f->result_inline)
    pb_result_free(f->result, f->result_size, f->result_mapped);
  if (f->in_block)
    pb_blocks_put(&f->lib->blocks, f->lib->bk, f);
  else
    free(f);
}

void pb_future_hold(pebble_future *f) { atomic_fetch_add(&f->refs, 1); }

/* No other thread has seen f yet (it is published by the queue or lock
 * that hands it on): plain stores, not read-modify-writes, each of which
 * would wait for the new future's cold stores to reach the cache. */
void pb_future_ref_new(pebble_future *f) {
  atomic_store_explicit(&f->refs,
                        atomic_load_explicit(&f->refs, memory_order_relaxed) +
                            1,
                        memory_order_relaxed);
  atomic_store_explicit(&f->user_refs, 1, memory_order_relaxed);
  pb_lib_hold(f->lib);
}

void pb_future_put(pebble_future *f) {
  if (atomic_fetch_sub(&f->refs, 1) == 1)
    future_free(f);
}

pebble_future *pebble_future_ref(pebble_future *f) {
  if (f == NULL)
    return NULL;
  atomic_fetch_add(&f->refs, 1);
  if (atomic_fetch_add(&f->user_refs, 1) == 0)
    pb_lib_hold(f->lib);
  return f;
}

void pebble_future_release(pebble_future *f) {
  if (f == NULL)
    return;
  /* In the child of a fork the parent's futures are left alone: their
   * callbacks' user data belongs to the parent. */
  if (pb_future_forked(f))
    return;
  if (atomic_load_explicit(&f->refs, memory_order_acquire) == 1) {
    /* The last reference, and it is the caller's: no other thread can
     * reach f, and what they wrote before letting go is visible. */
    pb_lib_drop(f->lib);
    future_free(f);
    return;
  }
  if (atomic_fetch_sub(&f->user_refs, 1) == 1)
    pb_lib_drop(f->lib);
  pb_future_put(f);
}

int pb_future_start(pebble_future *f) {
  int expected = PEBBLE_PENDING;
  return atomic_compare_exchange_strong(&f->state, &expected, PEBBLE_RUNNING);
}

void pb_outcome_discard(pb_outcome *o) {
  if (!o->result_inline && !o->result_borrowed)
    pb_result_free(o->result, o->result_size, o->result_mapped);
  free(o->message);
  o->result = NULL;
  o->message = NULL;
}

void pb_outcome_own(pb_outcome *o) {
  char *p;
  if (!o->result_borrowed)
    return;
  o->result_borrowed = 0;
  if ((p = malloc(o->result_size + 1)) != NULL) {
    memcpy(p, o->result, o->result_size);
    p[o->result_size] = '\0';
    o->result = p;
    return;
  }
  o->result = NULL;
  o->result_size = 0;
  o->state = PEBBLE_FAILED;
  o->status = PEBBLE_ENOMEM;
  free(o->message);
  o->message = pb_strdup("out of memory for the task's result");
}

/* Stripe lock held: threads asleep on a worker's page for f (they leave
 * the list under this lock before the page may go). */
static void wake_page_waiters(pb_lib *L, const pebble_future *f) {
  pb_page_waiter *pw;
  for (pw = L->stripes[PB_STRIPE(f)].page_waiters; pw != NULL; pw = pw->next)
    if (pw->f == f)
      pb_page_wake(pw->page);
}

/* Win the right to resolve f and publish the outcome; 1 if won.  A
 * cancel keeps the runner to stop the task with; any other resolver is
 * the task's own side, which is done with it. */
static int settle(pebble_future *f, pb_outcome *o, int keep_runner) {
  _Static_assert(PB_VALUE_TYPE_MAX <= 3, "result_type has two bits");
  pb_runner *runner;
  int st = atomic_load(&f->state);
  pb_lib *L = f->lib;
  for (;;) {
    if (st != PEBBLE_PENDING && st != PEBBLE_RUNNING)
      return 0;
    if (atomic_compare_exchange_weak(&f->state, &st, PB_STATE_SETTLING))
      break;
  }
  f->ran = st == PEBBLE_RUNNING; /* st: what the swap replaced */
  f->status = o->status;
  f->result = o->result;
  f->result_size = o->result_size;
  f->result_mapped = o->result_mapped != 0;
  f->result_type = (unsigned char)o->result_type & 3;
  f->result_inline = o->result_inline != 0;
  if (o->message != NULL) {
    /* Out of memory for it: the status's own text stands in. */
    pb_future_rare *r = pb_future_rare_get(f);
    if (r != NULL)
      r->message = o->message;
    else
      free(o->message);
  }
  f->task_code = o->task_code;
  f->sys_errno = o->sys_errno;
  o->result = NULL;
  o->message = NULL;
  runner = atomic_load(&f->runner);
  if (runner != NULL && runner->ops->settled != NULL)
    runner->ops->settled(runner);
  if (!keep_runner) /* seen before the state below, as that publishes */
    atomic_store_explicit(&f->runner, NULL, memory_order_release);
  /* Publish, then look for watchers (both sequentially consistent, as a
   * watcher's flag and check are): either a watcher sees the final state,
   * or this sees its flag and wakes it under the lock it waits with.  A
   * future nobody watches settles without a lock. */
  atomic_store(&f->state, o->state);
  if (atomic_load(&f->watched)) {
    /* Taking the lock waits out a waiter between its check and its
     * sleep, and a callback being added between its check and its
     * append (after_settle, next, must see that callback).  Only the
     * wake-up may wait (pb_future_defer_wakes): it comes after, so the
     * woken waiter does not find the lock still held. */
    pb_stripe_lock(f);
    if (L->stripes[PB_STRIPE(f)].page_waiters != NULL)
      wake_page_waiters(L, f);
    pb_stripe_unlock(f);
    if (pb_role.defer_wakes &&
        (pb_role.wake_lib == NULL || pb_role.wake_lib == L)) {
      pb_role.wake_lib = L;
      pb_role.wake_stripes |= (uint32_t)1 << PB_STRIPE(f);
      return 1;
    }
    L->bk->cond_broadcast(L->stripes[PB_STRIPE(f)].cond);
  }
  return 1;
}

_Static_assert(PB_STRIPES <= 32, "wake_stripes has a bit for each stripe");

void pb_future_defer_wakes(void) { pb_role.defer_wakes = 1; }

void pb_future_flush_wakes(void) {
  uint32_t s = pb_role.wake_stripes;
  unsigned i;
  pb_role.defer_wakes = 0;
  pb_role.wake_stripes = 0;
  for (i = 0; s != 0; i++, s >>= 1)
    if (s & 1u) /* settle took and released the lock already */
      pb_role.wake_lib->bk->cond_broadcast(pb_role.wake_lib->stripes[i].cond);
  pb_role.wake_lib = NULL;
}

/* Stripe lock held: from now on a settle takes the lock and wakes the
 * stripe's waiters (see settle). */
static void watch(pebble_future *f) { atomic_store(&f->watched, 1); }

void pb_future_page_wait_begin(pebble_future *f, pb_page_waiter *pw) {
  pb_lib *L = f->lib;
  pw->f = f;
  pb_stripe_lock(f);
  watch(f); /* settle takes the lock, and sees pw */
  pw->next = L->stripes[PB_STRIPE(f)].page_waiters;
  L->stripes[PB_STRIPE(f)].page_waiters = pw;
  pb_stripe_unlock(f);
}

void pb_future_page_wait_end(pebble_future *f, pb_page_waiter *pw) {
  pb_lib *L = f->lib;
  pb_page_waiter **pp;
  pb_stripe_lock(f);
  for (pp = &L->stripes[PB_STRIPE(f)].page_waiters; *pp != NULL;
       pp = &(*pp)->next)
    if (*pp == pw) {
      *pp = pw->next;
      break;
    }
  pb_stripe_unlock(f);
}

void pb_future_track(pebble_future *f) {
  f->tracked = 1;
  pb_lib_task_open(f->lib);
}

void pb_future_untrack(pebble_future *f) {
  if (f->tracked) {
    f->tracked = 0;
    pb_lib_task_done(f->lib);
  }
}

/* Everything attached before the future resolved has run: wake the
 * waiters that wait for that (the same handshake as settle's), and let
 * pebble_shutdown() count the task as over. */
static void callbacks_done(pebble_future *f) {
  if (atomic_load_explicit(&f->callbacks_pending, memory_order_relaxed)) {
    atomic_store(&f->callbacks_pending, 0);
    if (atomic_load(&f->watched)) {
      pb_lib *L = f->lib;
      pb_stripe_lock(f);
      pb_stripe_unlock(f);
      L->bk->cond_broadcast(L->stripes[PB_STRIPE(f)].cond);
    }
  }
  pb_future_untrack(f);
}

static int has_callbacks(const pb_future_rare *r) {
  return r != NULL &&
         ((r->binding != NULL && r->binding->fn != NULL) ||
          r->callbacks != NULL);
}

/* After settling, the callback list and binding belong to whoever runs
 * them: add_callback no longer appends once it sees the final state. */
void pb_future_run_callbacks(pebble_future *f) {
  pb_future_rare *r = pb_future_rare_of(f);
  pb_binding *b = r != NULL ? r->binding : NULL;
  pb_callback *c = r != NULL ? r->callbacks : NULL, *next;
  const void *owner = pb_role.callback_owner;
  if (r != NULL) {
    r->binding = NULL;
    r->callbacks = NULL;
  }
  pb_role.callbacks++;
  pb_role.callback_owner = f->owner;
  if (b != NULL && b->fn != NULL)
    b->fn(f, b->user_data);
  for (; c != NULL; c = next) {
    next = c->next;
    c->fn(f, c->user_data);
    free(c);
  }
  pb_role.callback_owner = owner;
  pb_role.callbacks--;
  pb_binding_unref(b);
  callbacks_done(f);
}

static void after_settle(pebble_future *f, int inline_callbacks) {
  pb_dispatch *d;
  pb_future_rare *r = pb_future_rare_of(f);
  if (!has_callbacks(r)) {
    if (r != NULL) {
      pb_binding_unref(r->binding);
      r->binding = NULL;
    }
    callbacks_done(f);
    return;
  }
  if (!inline_callbacks && (d = pb_lib_dispatch(f->lib)) != NULL) {
    pb_dispatch_post(d, f);
    return;
  }
  if (!inline_callbacks)
    pb_log(PEBBLE_LOG_ERROR,
           "no callback thread could be started; running the callbacks of "
           "future %llu here",
           (unsigned long long)f->id);
  pb_future_run_callbacks(f);
}

int pb_future_resolve(pebble_future *f, pb_outcome *o, int inline_callbacks) {
  if (!settle(f, o, 0))
    return 0;
  after_settle(f, inline_callbacks);
  return 1;
}

void pb_future_set_exit(pebble_future *f, const pebble_exit_info *exit) {
  pebble_exit_info *copy = malloc(sizeof *copy), *old;
  pb_future_rare *r = pb_future_rare_get(f);
  if (copy == NULL || r == NULL) {
    free(copy);
    pb_log(PEBBLE_LOG_ERROR, "out of memory recording how the process of "
                             "future %llu ended",
           (unsigned long long)f->id);
    return;
  }
  *copy = *exit;
  pb_stripe_lock(f);
  old = r->exit;
  r->exit = copy;
  pb_stripe_unlock(f);
  free(old);
}

/* ---- the public side ---- */

#define CHECK_FUTURE(f, fname)                                               \
  do {                                                                       \
    if ((f) == NULL)                                                         \
      return pb_error(PEBBLE_EINVAL, fname ": future is NULL");              \
    if (pb_future_forked(f))                                                 \
      return pb_forked_error();                                              \
  } while (0)

uint64_t pebble_future_id(const pebble_future *f) { return f ? f->id : 0; }
uint64_t pebble_future_seq(const pebble_future *f) {
  return f ? pb_future_seq_of(f) : 0;
}
const char *pebble_future_name(const pebble_future *f) {
  return f ? pb_future_name_of(f) : NULL;
}

pebble_state pebble_future_state(const pebble_future *f) {
  int st;
  if (f == NULL)
    return PEBBLE_PENDING;
  st = atomic_load_explicit(&((pebble_future *)f)->state,
                            memory_order_acquire);
  /* Settling is still "not resolved" for a reader. */
  return st == PB_STATE_SETTLING ? PEBBLE_RUNNING : (pebble_state)st;
}

/* A wait from the application's own threads returns only once the
 * callbacks attached before the future resolved have run, so that a
 * program that waits and then returns from main() has seen them all.
 * Pebble's own threads (a task, a callback, the callback thread) wait
 * for the outcome only: the callbacks may be queued behind the very
 * callback that waits, or need the thread that waits. */
static int wait_includes_callbacks(void) {
  return !pb_role.callbacks && pb_role.running_future == NULL &&
         pb_role.pool == NULL && !pb_role.library_thread;
}

/* Resolved, and, if `with_callbacks`, its callbacks have run. */
static int settled(pebble_future *f, int with_callbacks) {
  return pb_future_is_resolved(f) &&
         (!with_callbacks || !atomic_load(&f->callbacks_pending));
}

typedef struct wait_target {
  pebble_future *f;
  int with_callbacks;
} wait_target;

static pb_spin wait_spin = PB_SPIN_INIT; /* callers waiting for futures */
/* Worth watching while the task runs, or is about to: a future still
 * queued after a thousand turns (some microseconds) waits behind other
 * tasks. */
static int future_ready(void *arg, unsigned turn) {
  wait_target *w = arg;
  int st = atomic_load(&w->f->state);
  if (st == PEBBLE_DONE || st == PEBBLE_FAILED || st == PEBBLE_CANCELLED)
    return !w->with_callbacks || !atomic_load(&w->f->callbacks_pending);
  return st == PEBBLE_PENDING && turn >= 1024 ? -1 : 0;
}

/* A wait's timeout: PEBBLE_FOREVER or not negative. */
static int check_wait_timeout(const char *fname, pebble_time_t timeout) {
  if (timeout < 0 && timeout != PEBBLE_FOREVER)
    return pb_error(PEBBLE_EINVAL,
                    "%s: timeout %lld is negative (use PEBBLE_FOREVER to "
                    "wait without limit)",
                    fname, (long long)timeout);
  return PEBBLE_OK;
}

int pebble_future_wait(pebble_future *f, pebble_time_t timeout) {
  pb_lib *L;
  uint64_t deadline, gave_up = 0;
  int rc = PEBBLE_OK;
  wait_target target;

  CHECK_FUTURE(f, "pebble_future_wait");
  if ((rc = check_wait_timeout("pebble_future_wait", timeout)) != PEBBLE_OK)
    return rc;
  target.f = f;
  target.with_callbacks = wait_includes_callbacks();
  if (settled(f, target.with_callbacks))
    return PEBBLE_OK;
  if (pb_future_is_resolved(f)) {
    if (timeout == PEBBLE_NOWAIT)
      return PEBBLE_OK; /* the outcome is there; not waiting was asked */
  } else {
    if (pb_role.running_future == f)
      return pb_error(PEBBLE_EDEADLK,
                      "pebble_future_wait: called from the task that "
                      "resolves this future");
    if (timeout == PEBBLE_NOWAIT)
      return pb_error(PEBBLE_ENOTREADY, "future %llu is not resolved yet",
                      (unsigned long long)f->id);
  }
  L = f->lib;
  deadline = pb_deadline_after(L->bk, timeout);
  /* A process pool's task: the caller may read the outcome itself, which
   * saves the wake-up of the manager thread (pool_processes.c).  Then on
   * as below, for the callbacks. */
  if (f->process && f->owner != NULL && target.with_callbacks) {
    rc = pb_processes_wait_direct(f, deadline);
    if (rc == PEBBLE_ENOTREADY)
      return pb_error(rc, "future %llu did not resolve within %lld us",
                      (unsigned long long)f->id, (long long)timeout);
    rc = PEBBLE_OK;
  }
  /* A spin never outlasts the caller's timeout (PEBBLE_SPIN may be long).
   * For a process task only with CPUs to spare: its result comes through
   * the manager thread, which a spinning caller could keep from a CPU. */
  if ((!f->process || pb_spin_for_processes()) &&
      (timeout == PEBBLE_FOREVER ||
       (uint64_t)timeout > pb_spin_ns() / 1000u) &&
      pb_spin_wait(L->bk, &wait_spin, future_ready, &target, &gave_up))
    return PEBBLE_OK;
  pb_stripe_lock(f);
  watch(f);
  while (!settled(f, target.with_callbacks)) {
    if (L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                         L->stripes[PB_STRIPE(f)].mutex,
                         deadline) == PEBBLE_ENOTREADY &&
        !settled(f, target.with_callbacks)) {
      /* Out of time: resolved (its callbacks still running) is done. */
      if (!pb_future_is_resolved(f))
        rc = PEBBLE_ENOTREADY;
      break;
    }
  }
  pb_stripe_unlock(f);
  pb_spin_slept(L->bk, &wait_spin, gave_up);
  if (rc != PEBBLE_OK)
    return pb_error(rc, "future %llu did not resolve within %lld us",
                    (unsigned long long)f->id, (long long)timeout);
  return PEBBLE_OK;
}

int pebble_future_get(pebble_future *f, pebble_time_t timeout,
                      const void **data, size_t *size) {
  int rc = pebble_future_wait(f, timeout);
  if (rc != PEBBLE_OK)
    return rc;
  if (f->status != PEBBLE_OK)
    return pb_error(f->status, "%s", pebble_future_message(f));
  if (data != NULL)
    *data = f->result != NULL ? f->result : (const void *)"";
  if (size != NULL)
    *size = f->result_size;
  return PEBBLE_OK;
}

int pebble_future_status(const pebble_future *f) {
  if (f == NULL)
    return PEBBLE_EINVAL;
  return pb_future_is_resolved(f) ? f->status : PEBBLE_ENOTREADY;
}

const char *pebble_future_message(const pebble_future *f) {
  pb_future_rare *r;
  if (f == NULL || !pb_future_is_resolved(f))
    return "";
  /* No memory was left for the message: the status says what it can. */
  r = pb_future_rare_of((pebble_future *)f);
  if (r == NULL || r->message == NULL)
    return f->status != PEBBLE_OK ? pebble_strerror(f->status) : "";
  return r->message;
}

int pebble_future_task_code(const pebble_future *f) {
  return f != NULL && pb_future_is_resolved(f) ? f->task_code : 0;
}

int pebble_future_sys_errno(const pebble_future *f) {
  return f != NULL && pb_future_is_resolved(f) ? f->sys_errno : 0;
}

int pebble_future_exit_info(const pebble_future *cf, pebble_exit_info *info) {
  pebble_future *f = (pebble_future *)cf;
  pebble_exit_info copy;
  int has;
  size_t n;
  CHECK_FUTURE(f, "pebble_future_exit_info");
  if (info == NULL || info->struct_size == 0)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_future_exit_info: info is NULL or its "
                    "struct_size is not set");
  pb_stripe_lock(f);
  {
    pb_future_rare *r = pb_future_rare_of(f);
    has = r != NULL && r->exit != NULL;
    if (has)
      copy = *r->exit;
  }
  pb_stripe_unlock(f);
  if (!has)
    return pb_error(PEBBLE_ENOTFOUND,
                    "no process has ended for future %llu (yet)",
                    (unsigned long long)f->id);
  n = info->struct_size < sizeof copy ? info->struct_size : sizeof copy;
  copy.struct_size = info->struct_size;
  memcpy(info, &copy, n);
  return PEBBLE_OK;
}

void pb_future_exit_due_locked(pebble_future *f) {
  atomic_store_explicit(&f->exit_due, 1, memory_order_relaxed);
}

void pb_future_exit_over_locked(pebble_future *f) {
  atomic_store_explicit(&f->exit_due, 0, memory_order_relaxed);
  if (atomic_load(&f->watched))
    f->lib->bk->cond_broadcast(f->lib->stripes[PB_STRIPE(f)].cond);
}

int pebble_future_wait_exit(pebble_future *f, pebble_time_t timeout) {
  pb_lib *L;
  uint64_t deadline;
  int rc, late = 0;
  CHECK_FUTURE(f, "pebble_future_wait_exit");
  if ((rc = check_wait_timeout("pebble_future_wait_exit", timeout)) !=
      PEBBLE_OK)
    return rc;
  if (!f->process)
    return pb_error(PEBBLE_ENOTFOUND,
                    "future %llu is a thread task's: no process ends for it",
                    (unsigned long long)f->id);
  /* (Its own task cannot call this: it runs in the process, where the
   * future is the parent's, PEBBLE_EFORKED.) */
  L = f->lib;
  deadline = pb_deadline_after(L->bk, timeout);
  pb_stripe_lock(f);
  watch(f); /* the reap and the settle wake this (exit_over, settle) */
  for (;;) {
    pb_future_rare *r = pb_future_rare_of(f);
    /* Recorded, and resolved too: an end recorded before the future
     * resolves (a crash) is followed by the settle at once. */
    if (r != NULL && r->exit != NULL && pb_future_is_resolved(f)) {
      rc = PEBBLE_OK;
      break;
    }
    if (!atomic_load_explicit(&f->exit_due, memory_order_relaxed) &&
        pb_future_is_resolved(f)) {
      rc = PEBBLE_ENOTFOUND;
      break;
    }
    if (late || timeout == PEBBLE_NOWAIT) {
      rc = PEBBLE_ENOTREADY;
      break;
    }
    if (L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                         L->stripes[PB_STRIPE(f)].mutex,
                         deadline) == PEBBLE_ENOTREADY)
      late = 1; /* one more look, then out of time */
  }
  pb_stripe_unlock(f);
  if (rc == PEBBLE_ENOTFOUND)
    return pb_error(rc,
                    "no process ended for the task of future %llu: a pool's "
                    "worker finished it and lives on, or no process ever "
                    "took it (cancelled first, or refused by the system), or "
                    "its end could not be recorded (out of memory)",
                    (unsigned long long)f->id);
  if (rc == PEBBLE_ENOTREADY)
    return pb_error(rc,
                    "the process of future %llu was not reaped within "
                    "%lld us",
                    (unsigned long long)f->id, (long long)timeout);
  return PEBBLE_OK;
}

/* A task sent ahead to a process worker is skipped by the worker if the
 * manager's request reaches it first: wait for the request to be written,
 * so that once cancel returns the task can start only if its worker had
 * got to it already.  Not on the manager thread, which writes it; bounded
 * in case the pool is going away. */
static void wait_skip_sent(pebble_future *f) {
  pb_lib *L = f->lib;
  uint64_t deadline;
  if (pb_role.manager_thread)
    return;
  deadline = L->bk->now_ns() + PB_SKIP_WAIT_NS;
  pb_stripe_lock(f);
  while (f->skip_wait)
    if (L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                         L->stripes[PB_STRIPE(f)].mutex,
                         deadline) == PEBBLE_ENOTREADY)
      break;
  pb_stripe_unlock(f);
}

/* The skip request of f, cancelled, is written (or f's task is gone). */
void pb_future_skip_sent(pebble_future *f) {
  pb_stripe_lock(f);
  pb_future_skip_sent_locked(f);
  pb_stripe_unlock(f);
}

void pb_future_skip_sent_locked(pebble_future *f) {
  if (f->skip_wait) {
    f->skip_wait = 0;
    f->lib->bk->cond_broadcast(f->lib->stripes[PB_STRIPE(f)].cond);
  }
}

void pb_future_wait_settled_locked(pebble_future *f) {
  pb_lib *L = f->lib;
  if (atomic_load(&f->state) != PB_STATE_SETTLING)
    return;
  watch(f); /* then look again: settle wakes a watcher it sees */
  while (atomic_load(&f->state) == PB_STATE_SETTLING)
    L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                     L->stripes[PB_STRIPE(f)].mutex, PEBBLE_BK_FOREVER);
}

/* pebble_future_cancel and _cancel_ex; *was_running (may be NULL) says
 * whether the task had started when its future resolved. */
static int cancel(pebble_future *f, int *was_running) {
  pb_outcome o;
  pb_runner *runner;
  int st;
  pb_lib *L = f->lib;

  if (was_running != NULL)
    *was_running = 0;
  /* A process task that has ended already, its outcome on its way, keeps
   * that outcome: nothing is killed (worker_page.c).  Not on the manager
   * thread, which delivers it. */
  if (!pb_role.manager_thread && atomic_load(&f->state) == PEBBLE_RUNNING) {
    int ended = 0;
    pb_stripe_lock(f);
    runner = f->runner;
    if (runner != NULL && runner->ops->ended_locked != NULL &&
        atomic_load(&f->state) == PEBBLE_RUNNING)
      ended = runner->ops->ended_locked(runner);
    if (ended) {
      watch(f);
      while ((st = atomic_load(&f->state)) == PEBBLE_RUNNING ||
             st == PB_STATE_SETTLING)
        L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                         L->stripes[PB_STRIPE(f)].mutex, PEBBLE_BK_FOREVER);
    }
    pb_stripe_unlock(f);
    if (ended) {
      if (was_running != NULL)
        *was_running = f->ran;
      if (st == PEBBLE_CANCELLED) /* another cancel came first */
        return PEBBLE_OK;
      return pb_error(PEBBLE_EALREADY,
                      "pebble_future_cancel: the task of future %llu had "
                      "already ended",
                      (unsigned long long)f->id);
    }
  }
  memset(&o, 0, sizeof o);
  o.state = PEBBLE_CANCELLED;
  o.status = PEBBLE_ECANCELED;
  o.message = pb_strdup("the task was cancelled");
  if (!settle(f, &o, 1)) {
    pb_outcome_discard(&o);
    /* Another resolver is settling or has settled: wait for its state. */
    pb_stripe_lock(f);
    watch(f);
    while ((st = atomic_load(&f->state)) == PB_STATE_SETTLING)
      L->bk->cond_wait(L->stripes[PB_STRIPE(f)].cond,
                       L->stripes[PB_STRIPE(f)].mutex, PEBBLE_BK_FOREVER);
    pb_stripe_unlock(f);
    if (was_running != NULL)
      *was_running = f->ran;
    if (st == PEBBLE_CANCELLED)
      return PEBBLE_OK;
    return pb_error(PEBBLE_EALREADY,
                    "pebble_future_cancel: future %llu had already resolved",
                    (unsigned long long)f->id);
  }
  /* Stop what runs: flag a thread, kill a process group. */
  pb_stripe_lock(f);
  runner = f->runner;
  if (runner != NULL)
    runner->ops->cancel_locked(runner);
  pb_stripe_unlock(f);
  after_settle(f, 0);
  wait_skip_sent(f);
  if (was_running != NULL)
    *was_running = f->ran;
  return PEBBLE_OK;
}

int pebble_future_cancel(pebble_future *f) {
  CHECK_FUTURE(f, "pebble_future_cancel");
  return cancel(f, NULL);
}

/* ---- observing a task ---- */

int pebble_future_cancel_ex(pebble_future *f, int *was_running) {
  if (was_running != NULL)
    *was_running = 0;
  CHECK_FUTURE(f, "pebble_future_cancel_ex");
  if (was_running == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_future_cancel_ex: was_running "
                                   "is NULL (use pebble_future_cancel)");
  return cancel(f, was_running);
}

int pebble_future_pid(const pebble_future *cf, long *pid) {
  pebble_future *f = (pebble_future *)cf;
  long found;
  if (pid != NULL)
    *pid = 0;
  CHECK_FUTURE(f, "pebble_future_pid");
  if (pid == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_future_pid: pid is NULL");
  if (!f->process)
    return pb_error(PEBBLE_EINVAL,
                    "pebble_future_pid: future %llu is a thread task's; it "
                    "runs in this process",
                    (unsigned long long)f->id);
  pb_stripe_lock(f);
  found = f->pid;
  pb_stripe_unlock(f);
  if (found != 0) {
    *pid = found;
    return PEBBLE_OK;
  }
  if (!pb_future_is_resolved(f))
    return pb_error(PEBBLE_ESTATE,
                    "pebble_future_pid: future %llu has not started in a "
                    "process yet",
                    (unsigned long long)f->id);
  return pb_error(PEBBLE_ENOTFOUND,
                  "pebble_future_pid: future %llu resolved without starting "
                  "in a process",
                  (unsigned long long)f->id);
}

int pebble_future_add_callback(pebble_future *f, pebble_callback_fn fn,
                               void *user_data) {
  pb_callback *c, **tail;
  pb_future_rare *r = NULL;
  CHECK_FUTURE(f, "pebble_future_add_callback");
  if (fn == NULL)
    return pb_error(PEBBLE_EINVAL, "pebble_future_add_callback: fn is NULL");
  c = malloc(sizeof *c);
  /* Resolved stays resolved: a future unresolved under the lock below
   * has its rare fields from here. */
  if (c == NULL ||
      (!pb_future_is_resolved(f) && (r = pb_future_rare_get(f)) == NULL)) {
    free(c);
    return pb_error(PEBBLE_ENOMEM, "out of memory adding a callback");
  }
  c->fn = fn;
  c->user_data = user_data;
  c->next = NULL;
  pb_stripe_lock(f);
  watch(f);
  if (!pb_future_is_resolved(f)) { /* settling counts: it will look */
    for (tail = &r->callbacks; *tail != NULL; tail = &(*tail)->next)
      ;
    *tail = c;
    atomic_store(&f->callbacks_pending, 1);
    pb_stripe_unlock(f);
    return PEBBLE_OK;
  }
  pb_stripe_unlock(f);
  free(c);
  {
    const void *owner = pb_role.callback_owner;
    pb_role.callbacks++;
    pb_role.callback_owner = f->owner;
    fn(f, user_data);
    pb_role.callback_owner = owner;
    pb_role.callbacks--;
  }
  return PEBBLE_OK;
}
