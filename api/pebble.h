/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file pebble.h
 * @brief The one header of Pebble for C.
 *
 * Pebble runs functions in threads and in separate processes and hands
 * their results back through futures.  Everything a program needs is
 * declared here; every type is opaque or carries its own size.
 *
 * Conventions used by every function below:
 *   - Functions that can fail return an int: #PEBBLE_OK (0) or a negative
 *     PEBBLE_E* code.  After a failure, pebble_last_error() returns a
 *     message for the calling thread that names what was wrong.
 *   - Time is always a #pebble_time_t in microseconds.  #PEBBLE_FOREVER
 *     means "no limit"; 0 means "do not wait".  In options, #PEBBLE_DEFAULT
 *     means "the default where the task runs".  Any other negative value
 *     is rejected with #PEBBLE_EINVAL.  A time too large for the clock to
 *     count (up to INT64_MAX) means "a very long time": it is the same as
 *     #PEBBLE_FOREVER, never a deadline that has already passed.  Deadlines
 *     run on a monotonic clock, so changing the wall clock never moves
 *     them.
 *   - Option structs are filled in by their *_init() function, which sets
 *     struct_size and every default; a struct that was not initialised is
 *     rejected with #PEBBLE_EINVAL.
 *   - Ownership: what a function returns through a pointer is the
 *     library's unless its entry says the caller owns it; objects the
 *     caller creates (futures, task definitions, pools, maps, queues) are
 *     released with their own release or destroy function.
 *
 * Thread safety: every function may be called from any thread, unless its
 * comment says otherwise.  Fork safety: see @ref pebble_after_fork.
 */
/**
 * @defgroup pebble_library Library: versions, set-up, backends, logging
 * @brief The library as a whole: its version, starting and stopping it,
 * choosing and configuring a backend, the log hook and the message limit.
 *
 * @defgroup pebble_values Values and errors: status codes and time
 * @brief The status codes every function returns, their names and
 * messages, and the time type with its constants.
 *
 * @defgroup pebble_runs One-shot runs, task definitions and the registry
 * @brief Running a function once in a new thread or process, binding a
 * function to its options, and finding tasks by name.
 *
 * @defgroup pebble_inside Inside a task: arguments, results, failures
 * @brief What the code of a task calls: reading its argument, setting its
 * result, failing with a message, and asking whether to stop.
 *
 * @defgroup pebble_futures Futures
 * @brief Waiting for an outcome, reading results and failures, callbacks,
 * cancellation and the process behind a task.
 *
 * @defgroup pebble_pools Pools and map
 * @brief Pools of threads or processes that run many tasks, their
 * options and state, and map over many items.
 *
 * @defgroup pebble_cqueues Waiting on many futures; completion queues
 * @brief Waiting for several futures at once, and completion queues whose
 * OS handle an event loop can watch.
 */
#ifndef PEBBLE_H
#define PEBBLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @addtogroup pebble_library
 * @{
 */

/**
 * @def PEBBLE_API
 * @brief Marks a function the library exports (visibility or DLL
 * import/export); it expands to nothing where no marking is needed.
 * Define PEBBLE_STATIC on Windows to link the static library.
 */
#if defined(_WIN32) && defined(PEBBLE_BUILDING_DLL)
#define PEBBLE_API __declspec(dllexport)
#elif defined(_WIN32) && !defined(PEBBLE_STATIC)
#define PEBBLE_API __declspec(dllimport)
#elif defined(__GNUC__)
#define PEBBLE_API __attribute__((visibility("default")))
#else
#define PEBBLE_API
#endif

/**
 * @def PEBBLE_PRINTF(f, a)
 * @brief Lets the compiler check a printf-style format: argument @p f is
 * the format, arguments from @p a on are its values.
 */
#if defined(__GNUC__) && defined(__MINGW32__)
/* The library formats with mingw's C99 printf (%zu), not msvcrt's. */
#define PEBBLE_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define PEBBLE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PEBBLE_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------ */
/* Versions                                                            */
/* ------------------------------------------------------------------ */

/* PEBBLE_VERSION_MAJOR, _MINOR, _PATCH and _STRING (e.g. "1.2.3"), made by
   configure from the version in configure.ac. */
#include "pebble_version.h"
/**
 * @brief The version of the headers as one number:
 * (major << 16) | (minor << 8) | patch.
 */
#define PEBBLE_VERSION_HEX                                                   \
  ((PEBBLE_VERSION_MAJOR << 16) | (PEBBLE_VERSION_MINOR << 8) |              \
   PEBBLE_VERSION_PATCH)
/** @brief True when the headers are at least version a.b.c. */
#define PEBBLE_VERSION_AT_LEAST(a, b, c)                                     \
  (PEBBLE_VERSION_HEX >= (((a) << 16) | ((b) << 8) | (c)))

/**
 * @brief The version of the library actually loaded.
 * @return A string such as "0.1.0", owned by the library (never freed).
 */
PEBBLE_API const char *pebble_version(void);
/**
 * @brief The version of the library actually loaded, as a number.
 * @return The version laid out like #PEBBLE_VERSION_HEX.
 */
PEBBLE_API unsigned pebble_version_hex(void);

/** @} */

/* ------------------------------------------------------------------ */
/* Status codes                                                        */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_values
 * @{
 */

/**
 * @brief The list of status codes: X(name, value, message) for each.
 *
 * One list, never renumbered.  The first group are errors of a call; the
 * second group (from #PEBBLE_ETASK on) are outcomes of a task, reported
 * by pebble_future_status().  Each entry becomes the enum value
 * PEBBLE_<name> of #pebble_status; the message is what pebble_strerror()
 * returns for it.
 */
#define PEBBLE_STATUS_MAP(X)                                                 \
  X(OK, 0, "success")                                                        \
  X(EINVAL, -1, "invalid argument")                                          \
  X(ENOMEM, -2, "out of memory")                                             \
  X(ENOTREADY, -3, "not resolved within the time given")                     \
  X(EBUSY, -4, "busy: library objects are still alive or work is running")   \
  X(EBACKEND, -5, "backend not available")                                   \
  X(EABI, -6, "backend module has an incompatible ABI")                      \
  X(EFORKED, -7, "object belongs to the parent of a fork")                   \
  X(EDEADLK, -8, "waiting here would never end")                             \
  X(ENOTFOUND, -9, "no such name")                                           \
  X(EEXIST, -10, "name already taken")                                       \
  X(EALREADY, -11, "already resolved")                                       \
  X(ENOTSUP, -12, "not supported by this backend")                           \
  X(ESTATE, -13, "not allowed in the current state")                         \
  X(ECLOSED, -14, "closed to new work")                                      \
  X(EBROKEN, -15, "broken: workers cannot be started")                       \
  X(EWOULDBLOCK, -16, "queue full")                                          \
  X(ETASK, -100, "the task reported a failure")                              \
  X(ETIMEDOUT, -101, "the task passed its deadline")                         \
  X(ECANCELED, -102, "the task was cancelled")                               \
  X(EDIED, -103, "the process running the task died")                        \
  X(ESYSTEM, -104, "the system refused a resource")                          \
  X(ETOOBIG, -105, "message larger than the maximum message size")           \
  X(EPROTO, -106, "the worker broke the message protocol")

/**
 * @brief The status codes, one per entry of #PEBBLE_STATUS_MAP.
 *
 * Errors of a call run from PEBBLE_EINVAL (-1) to PEBBLE_EWOULDBLOCK
 * (-16); outcomes of a task (pebble_future_status()) from PEBBLE_ETASK
 * (-100) to PEBBLE_EPROTO (-106).  pebble_strerror() gives each one's
 * sentence, pebble_status_name() its name.
 */
enum pebble_status {
/** @brief An entry of #PEBBLE_STATUS_MAP as an enum value (undefined after
 *  use). */
#define PEBBLE_STATUS_ENUM_(name, value, text) PEBBLE_##name = (value),
  PEBBLE_STATUS_MAP(PEBBLE_STATUS_ENUM_)
#undef PEBBLE_STATUS_ENUM_
  PEBBLE_STATUS_END_ = 1 /**< Not a status: ends the list. */
};
/** @var PEBBLE_OK
 *  @brief Success (0). */
/** @var PEBBLE_EINVAL
 *  @brief Invalid argument (-1). */
/** @var PEBBLE_ENOMEM
 *  @brief Out of memory (-2). */
/** @var PEBBLE_ENOTREADY
 *  @brief Not resolved within the time given (-3). */
/** @var PEBBLE_EBUSY
 *  @brief Busy: library objects are still alive or work is running (-4). */
/** @var PEBBLE_EBACKEND
 *  @brief Backend not available (-5). */
/** @var PEBBLE_EABI
 *  @brief Backend module has an incompatible ABI (-6). */
/** @var PEBBLE_EFORKED
 *  @brief Object belongs to the parent of a fork (-7). */
/** @var PEBBLE_EDEADLK
 *  @brief Waiting here would never end (-8). */
/** @var PEBBLE_ENOTFOUND
 *  @brief No such name (-9). */
/** @var PEBBLE_EEXIST
 *  @brief Name already taken (-10). */
/** @var PEBBLE_EALREADY
 *  @brief Already resolved (-11). */
/** @var PEBBLE_ENOTSUP
 *  @brief Not supported by this backend (-12). */
/** @var PEBBLE_ESTATE
 *  @brief Not allowed in the current state (-13). */
/** @var PEBBLE_ECLOSED
 *  @brief Closed to new work (-14). */
/** @var PEBBLE_EBROKEN
 *  @brief Broken: workers cannot be started (-15). */
/** @var PEBBLE_EWOULDBLOCK
 *  @brief Queue full (-16). */
/** @var PEBBLE_ETASK
 *  @brief The task reported a failure (-100). */
/** @var PEBBLE_ETIMEDOUT
 *  @brief The task passed its deadline (-101). */
/** @var PEBBLE_ECANCELED
 *  @brief The task was cancelled (-102). */
/** @var PEBBLE_EDIED
 *  @brief The process running the task died (-103). */
/** @var PEBBLE_ESYSTEM
 *  @brief The system refused a resource (-104). */
/** @var PEBBLE_ETOOBIG
 *  @brief Message larger than the maximum message size (-105). */
/** @var PEBBLE_EPROTO
 *  @brief The worker broke the message protocol (-106). */

/**
 * @brief A short sentence for a status code.
 * @param status A PEBBLE_* code (any int is accepted).
 * @return The code's message, e.g. "invalid argument"; never NULL; a
 * static string owned by the library.
 */
PEBBLE_API const char *pebble_strerror(int status);
/**
 * @brief The name of a status code.
 * @param status A PEBBLE_* code (any int is accepted).
 * @return The code's name ("PEBBLE_EINVAL"), or "PEBBLE_UNKNOWN" for other
 * values; a static string owned by the library.
 */
PEBBLE_API const char *pebble_status_name(int status);
/**
 * @brief The message of the last failed call made by this thread.
 *
 * The message names what was wrong (e.g. "pebble_run: fn is NULL").
 * @return The message, owned by the library and valid until this
 * thread's next failing call; "" when no call has failed in this thread.
 */
PEBBLE_API const char *pebble_last_error(void);

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

typedef int64_t pebble_time_t; /**< A time or duration in microseconds. */
/** @brief No limit: wait for ever, or no timeout. */
#define PEBBLE_FOREVER ((pebble_time_t)-1)
/** @brief Do not wait. */
#define PEBBLE_NOWAIT ((pebble_time_t)0)
/**
 * @brief In options: "the default of where the task runs" (no timeout for
 * a one-shot task, the pool's default timeout in a pool).
 */
#define PEBBLE_DEFAULT ((pebble_time_t)-2)
/** @brief @p n microseconds as a #pebble_time_t. */
#define PEBBLE_USEC(n) ((pebble_time_t)(n))
/** @brief @p n milliseconds as a #pebble_time_t. */
#define PEBBLE_MSEC(n) ((pebble_time_t)(n) * 1000)
/** @brief @p n seconds as a #pebble_time_t. */
#define PEBBLE_SEC(n) ((pebble_time_t)(n) * 1000000)

/** @} */

/* ------------------------------------------------------------------ */
/* Library set-up, backends, logging                                   */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_library
 * @{
 */

/**
 * @brief Initialise the library: choose and start the backend.
 *
 * Optional: every other call initialises the library on first use.
 * Calling it again is harmless.  Starts no thread and no process.
 * @return #PEBBLE_OK, #PEBBLE_EBACKEND (unknown name; the message lists
 * the available backends) or #PEBBLE_EABI (module built for another
 * version).
 */
PEBBLE_API int pebble_init(void);

/**
 * @brief Stop the library's threads and release the backend.
 *
 * Fails at once with #PEBBLE_EBUSY while the application holds futures,
 * task definitions, pools or queues; release them first.  Tasks launched
 * and let go (pebble_run() with a callback, then pebble_future_release():
 * "fire and forget") are waited for: shutdown returns once each has
 * resolved and its callbacks have run, including tasks those callbacks
 * launch (a thread task that never returns makes it wait for ever).  Then
 * it fails with #PEBBLE_EBUSY if task code may still run although its
 * future has resolved (a timed-out or cancelled thread task that has not
 * returned), else it waits for what is finishing (joins, reaps) and
 * returns #PEBBLE_OK.  The library can be initialised again afterwards.
 * Must not be called from a task or a callback (#PEBBLE_EDEADLK), nor
 * while other threads still call Pebble.
 * @return #PEBBLE_OK, #PEBBLE_EBUSY or #PEBBLE_EDEADLK as above.
 */
PEBBLE_API int pebble_shutdown(void);

/**
 * @brief Choose the backend by name ("posix", "apr", ...).
 *
 * The choice made here wins over the PEBBLE_BACKEND environment variable.
 * Before the library is initialised it is simply recorded; afterwards the
 * active backend is replaced.  There is no silent fallback.
 * @param name The backend's name (copied); NULL returns to the default
 * order (environment, then built-in).
 * @return #PEBBLE_OK; #PEBBLE_EBACKEND (unknown name); #PEBBLE_EINVAL (a
 * name with a path separator, or too long); #PEBBLE_EBUSY (replacing the active
 * backend while library objects exist).
 */
PEBBLE_API int pebble_backend_select(const char *name);

/**
 * @brief Hand a setting to one backend before it starts.
 *
 * For instance the APR pool an application wants Pebble tied to:
 * @code
 * pebble_backend_configure("apr", "parent_pool", my_apr_pool);
 * @endcode
 * Safe from any thread (serialised with initialisation); not from a task
 * or a callback of that backend, which is running by definition.
 * @param backend The backend's name; it is found (and its module loaded)
 * as pebble_backend_select() finds it, but not selected.
 * @param key The setting's name (docs/backends.md lists every key).
 * @param value The setting; the backend keeps the pointer as given.  What
 * it points to stays the caller's, and must live as the key's
 * documentation says.
 * @return #PEBBLE_OK; #PEBBLE_EBACKEND (unknown backend); #PEBBLE_ENOTSUP
 * (a key the backend does not know, or a backend without settings);
 * #PEBBLE_EINVAL (NULL name or key, or a value the backend refuses);
 * #PEBBLE_EBUSY (that backend is running: shut the library down first).
 */
PEBBLE_API int pebble_backend_configure(const char *backend, const char *key,
                                        void *value);

/**
 * @brief The name of the active backend.
 * @return The name, owned by the library, or NULL when none is active yet.
 */
PEBBLE_API const char *pebble_backend_name(void);

/** @brief Capability flag: thread tasks. */
#define PEBBLE_CAP_THREADS 0x01u
/** @brief Capability flag: process tasks. */
#define PEBBLE_CAP_PROCESSES 0x02u
/** @brief Capability flag: the fork start method. */
#define PEBBLE_CAP_FORK 0x04u
/**
 * @brief Capability flag: kills a task's whole process group, at a
 * timeout or cancellation and when the application dies (even by
 * SIGKILL); a process the task moves out of the group (setsid) escapes it.
 */
#define PEBBLE_CAP_KILL_GROUP 0x08u
/** @brief Capability flag: waits for exits through pidfd. */
#define PEBBLE_CAP_PIDFD 0x10u
/** @brief Capability flag: workers die with their parent. */
#define PEBBLE_CAP_PDEATHSIG 0x20u
/** @brief Capability flag: the spawn start method (re-execution). */
#define PEBBLE_CAP_SPAWN 0x40u
/** @brief Capability flag: the forkserver start method. */
#define PEBBLE_CAP_FORKSERVER 0x80u

/**
 * @brief What pebble_backend_foreach() says of one backend.
 *
 * The strings are the library's, valid during the visit only.
 */
typedef struct pebble_backend_info {
  size_t struct_size;      /**< set by the caller: sizeof(pebble_backend_info) */
  const char *name;        /**< "posix" */
  const char *description; /**< one line */
  const char *path;        /**< module file, or NULL when built in */
  unsigned caps;           /**< PEBBLE_CAP_* */
  unsigned abi_major, abi_minor;
  int usable;              /**< 1 if it loaded and passed the checks */
  const char *error;       /**< why not usable, else NULL */
} pebble_backend_info;
/** @var pebble_backend_info::abi_major
 *  @brief The major ABI version the backend was built for (docs/abi.md). */
/** @var pebble_backend_info::abi_minor
 *  @brief The minor ABI version the backend was built for (docs/abi.md). */

/**
 * @brief A visitor for pebble_backend_foreach(), called on the calling
 * thread.
 * @param info One backend; valid during the call only.
 * @param user_data As given to pebble_backend_foreach().
 */
typedef void (*pebble_backend_visit_fn)(const pebble_backend_info *info,
                                        void *user_data);
/**
 * @brief Call fn once for every backend that could be selected.
 *
 * The built-in ones, then every module file found (PEBBLE_BACKEND_PATH,
 * then the install directory).  Modules are loaded to be checked but
 * never unloaded.  fn runs on the calling thread; the info strings are
 * valid during the call only.  Works before and after initialisation.
 * @param fn The visitor.
 * @param user_data Passed to fn.
 * @return #PEBBLE_OK or #PEBBLE_EINVAL (fn is NULL).
 */
PEBBLE_API int pebble_backend_foreach(pebble_backend_visit_fn fn,
                                      void *user_data);

/**
 * @brief A visitor for pebble_backend_dirs(), called on the calling thread.
 * @param dir A directory searched for modules; valid during the call only.
 * @param origin Why it is searched: "PEBBLE_BACKEND_PATH" or
 * "install directory"; valid during the call only.
 * @param user_data As given to pebble_backend_dirs().
 */
typedef void (*pebble_backend_dir_fn)(const char *dir, const char *origin,
                                      void *user_data);
/**
 * @brief Call fn once for every directory searched for backend modules,
 * in the order they are searched.
 *
 * Each entry of PEBBLE_BACKEND_PATH (origin "PEBBLE_BACKEND_PATH"; none if
 * it is unset or ignored because the program runs set-user-ID), then the
 * install directory this library was built for (origin "install
 * directory").  fn runs on the calling thread; the strings are the
 * library's, valid during the call only.  Works before and after
 * initialisation.
 * @param fn The visitor.
 * @param user_data Passed to fn.
 * @return #PEBBLE_OK or #PEBBLE_EINVAL (fn is NULL).
 */
PEBBLE_API int pebble_backend_dirs(pebble_backend_dir_fn fn, void *user_data);

/**
 * @brief Which backend would be (or was) selected, and why.
 * @param[out] name The backend's name; a string owned by the library,
 * valid until the next selection.
 * @param[out] reason Why it is chosen (e.g. "PEBBLE_BACKEND environment
 * variable"); owned by the library, valid until the next selection.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (name or reason is NULL).
 */
PEBBLE_API int pebble_backend_choice(const char **name, const char **reason);

/** @brief Log levels for the logging hook (pebble_set_log_handler()). */
enum pebble_log_level {
  PEBBLE_LOG_ERROR = 1, /**< something failed */
  PEBBLE_LOG_WARN = 2,  /**< something looks wrong */
  PEBBLE_LOG_INFO = 3,  /**< what the library does */
  PEBBLE_LOG_DEBUG = 4  /**< details for debugging */
};
/**
 * @brief A log handler (pebble_set_log_handler()).
 *
 * May be called from any thread, including the library's own, and must
 * not call back into Pebble.
 * @param level A #pebble_log_level.
 * @param message The line, without newline; valid during the call only.
 * @param user_data As given to pebble_set_log_handler().
 */
typedef void (*pebble_log_fn)(int level, const char *message,
                              void *user_data);
/**
 * @brief Send the library's log lines at max_level or more severe to fn.
 *
 * fn may be called from any thread, including the library's own, and
 * must not call back into Pebble.  The library never writes to stderr by
 * itself.
 * @param fn The handler; NULL (the default) discards the lines.
 * @param user_data Passed to fn.
 * @param max_level The least severe #pebble_log_level passed on.
 */
PEBBLE_API void pebble_set_log_handler(pebble_log_fn fn, void *user_data,
                                       int max_level);

/**
 * @brief Set the largest argument or result, in bytes (default: 1 GiB).
 *
 * A larger argument fails the launch with #PEBBLE_ETOOBIG; a larger
 * result resolves the future with #PEBBLE_ETOOBIG.  Applies to later
 * launches.  The limit bounds what a worker may send; memory for it is
 * taken as its bytes arrive, never on the word of a message header.
 * @param bytes The limit; SIZE_MAX means no limit but the process's own
 * (a result of SIZE_MAX bytes, with no room for its NUL, is still
 * #PEBBLE_ETOOBIG).
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL for 0.
 */
PEBBLE_API int pebble_set_max_message_size(size_t bytes);
/**
 * @brief The largest argument or result, in bytes
 * (pebble_set_max_message_size()).
 * @return The current limit.
 */
PEBBLE_API size_t pebble_max_message_size(void);

/** @} */

/* ------------------------------------------------------------------ */
/* Tasks                                                               */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_futures
 * @{
 */
/**
 * @brief A future: the outcome of one launched task (opaque).
 *
 * Made by pebble_run(), pebble_task_launch(), pebble_pool_schedule() and
 * their kin with one reference the caller owns; pebble_future_ref() takes
 * another, pebble_future_release() drops one, the last frees it.
 */
typedef struct pebble_future pebble_future;
/** @} */
/**
 * @addtogroup pebble_inside
 * @{
 */
/**
 * @brief The context of a running task (opaque), passed to its
 * #pebble_task_fn; owned by the library and valid until the task returns.
 */
typedef struct pebble_ctx pebble_ctx;
/** @} */
/**
 * @addtogroup pebble_runs
 * @{
 */
/**
 * @brief A task definition (opaque): a function bound to how it runs and
 * its options (pebble_task_create()); freed with pebble_task_destroy().
 */
typedef struct pebble_task pebble_task;

/** @brief How process workers are started (per pool, or per one-shot task). */
typedef enum pebble_start_method {
  /** fork where the backend can, else spawn; PEBBLE_START_METHOD=fork,
   * spawn or forkserver in the environment changes this for a run */
  PEBBLE_START_DEFAULT = 0,
  /** a copy of the application (fast; see docs/process-tasks.md for fork
   * safety) */
  PEBBLE_START_FORK = 1,
  /** a fresh run of a program that calls pebble_worker_main(); tasks are
   * found by their registered names */
  PEBBLE_START_SPAWN = 2,
  /** forked by a small single-threaded server process, itself forked from
   * the application once (at the library's start when the environment
   * asks for it, else at the first such worker).  Fork's speed without
   * forking the application's threads again.  Workers see the program
   * (memory, descriptors, signal settings reset to default) as it was
   * when the server started, but the application's current user and
   * group ids and resource limits; tasks and initializers are found by
   * registered name.  POSIX backend only (PEBBLE_CAP_FORKSERVER); others
   * refuse it with PEBBLE_ENOTSUP.  See docs/backends.md. */
  PEBBLE_START_FORKSERVER = 3
} pebble_start_method;

/**
 * @brief How a task runs.  Changing one for the other is the one-word
 * switch.
 */
typedef enum pebble_kind {
  PEBBLE_THREAD = 1, /**< in a thread of this process */
  PEBBLE_PROCESS = 2 /**< in a separate process */
} pebble_kind;

/**
 * @brief The one task signature, for threads and processes alike.
 *
 * A task returns 0 on success, with the result set through
 * pebble_result_*() (no result set: an empty result), or any other value
 * to fail with that code (see pebble_fail() to attach a message).  A
 * thread task runs on a thread of the library (a new one for
 * pebble_run(), a pool worker in a pool); a process task runs in a child
 * process, where `ctx` and `arg` live.
 *
 * C++: no exception may leave a task (nor a callback).  The library cannot
 * catch one: leaving a thread task it ends in std::terminate() and stops
 * the whole program; leaving a process task it kills the child (the future
 * fails with PEBBLE_EDIED).  Catch at the task's boundary and return
 * pebble_fail(ctx, code, "%s", e.what()): the future then fails with
 * PEBBLE_ETASK and that message (docs/threads-and-callbacks.md,
 * examples/cxx_wrappers.cc).
 * @param ctx The task's context, for pebble_result_*(), pebble_fail()
 * and pebble_should_stop(); owned by the library.
 * @param arg The library's private copy of the argument given at launch;
 * it stays valid until the task returns and must not be freed.
 * @param arg_size The argument's size in bytes.
 * @return 0 on success, else the task's failure code.
 */
typedef int (*pebble_task_fn)(pebble_ctx *ctx, const void *arg,
                              size_t arg_size);
/** @} */

/**
 * @addtogroup pebble_futures
 * @{
 */
/**
 * @brief A done-callback.
 *
 * It runs exactly once per future and launch, after the future has
 * resolved, on:
 *   - the thread that ran a thread task, right after the task returned
 *     (when that return resolved the future);
 *   - the library's callback thread for every other outcome: process
 *     tasks, timeouts, cancellations and failures to start;
 *   - the calling thread, when pebble_future_add_callback() is given an
 *     already resolved future.
 *
 * Never on the thread that enforces deadlines, reaps processes or reads
 * results, and never with a library lock held.  It may call any Pebble
 * function (get the result, launch more work, cancel other futures)
 * except pebble_shutdown().  An application thread waiting for the future
 * (pebble_future_wait(), pebble_future_get(), pebble_wait_all(),
 * pebble_wait_any()) returns after its callbacks have run, and
 * pebble_shutdown() waits for the callbacks of tasks whose futures were
 * released.
 * @param future The resolved future, valid during the call; take a
 * reference with pebble_future_ref() to keep it longer.
 * @param user_data As given with the callback.
 */
typedef void (*pebble_callback_fn)(pebble_future *future, void *user_data);
/** @} */

/**
 * @addtogroup pebble_runs
 * @{
 */
/**
 * @brief Options of a task: filled by pebble_task_options_init(), then
 * changed field by field.
 */
typedef struct pebble_task_options {
  size_t struct_size;       /**< set by pebble_task_options_init() */
  pebble_time_t timeout;    /**< from the task code's start (in a process,
                               its own clock right before the function
                               runs, docs/process-tasks.md); default
                               PEBBLE_DEFAULT (none, or the pool's) */
  pebble_time_t kill_grace; /**< process tasks: 0 (default) kills with
                               SIGKILL at the deadline; > 0 sends SIGTERM
                               first and SIGKILL after this grace.  The
                               future resolves at the deadline either way. */
  pebble_callback_fn callback; /**< default NULL */
  void *callback_data;         /**< passed to callback; default NULL */
  const char *name;         /**< for messages and the registry; copied;
                               default NULL */
  size_t max_message_size;  /**< default: pebble_max_message_size() */
  pebble_time_t queue_wait; /**< pools: how long scheduling may wait for room
                               in a full queue before PEBBLE_EWOULDBLOCK;
                               default PEBBLE_FOREVER */
  int start_method;         /**< one-shot process tasks: a
                               pebble_start_method; default
                               PEBBLE_START_DEFAULT.  With
                               PEBBLE_START_SPAWN the task runs in a fresh
                               run of this program (see
                               pebble_worker_main) and must be registered;
                               pools use their own start_method. */
} pebble_task_options;

/**
 * @brief Fill opts with the defaults above.
 * @param[out] opts The options to initialise.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL for NULL.
 */
PEBBLE_API int pebble_task_options_init(pebble_task_options *opts);

/**
 * @brief Run fn once, now, in a new thread or a new process.
 *
 * A process that cannot be started resolves the future with
 * #PEBBLE_ESYSTEM instead of failing this call, since processes start on
 * the library's thread.
 * @param kind #PEBBLE_THREAD or #PEBBLE_PROCESS.
 * @param fn The task.
 * @param arg The argument bytes, copied before this returns (may be NULL
 * when arg_size is 0).
 * @param arg_size The argument's size in bytes.
 * @param opts The options (copied), or NULL for the defaults.
 * @param[out] future On success holds one reference, which the caller
 * releases with pebble_future_release().
 * @return #PEBBLE_OK; #PEBBLE_EINVAL (NULL fn or future, bad option);
 * #PEBBLE_ETOOBIG (argument over the maximum message size);
 * #PEBBLE_ENOTSUP (the backend cannot run this kind or start method);
 * #PEBBLE_ENOTFOUND (spawn start method and fn is not registered);
 * #PEBBLE_ESYSTEM (no thread could be created).
 */
PEBBLE_API int pebble_run(pebble_kind kind, pebble_task_fn fn,
                          const void *arg, size_t arg_size,
                          const pebble_task_options *opts,
                          pebble_future **future);

/* ------------------------------------------------------------------ */
/* Task definitions: the C form of @thread / @process                  */
/* ------------------------------------------------------------------ */

/**
 * @brief Bind fn to how it runs and its options (the C form of
 * \@thread / \@process).
 *
 * When opts->name is set and fn is not registered yet, fn is registered
 * under that name (see pebble_register()).
 * @param[out] task The new definition, owned by the caller: free it with
 * pebble_task_destroy().
 * @param kind #PEBBLE_THREAD or #PEBBLE_PROCESS.
 * @param fn The task.
 * @param opts The options, copied; NULL for the defaults.
 * @return #PEBBLE_OK, #PEBBLE_EINVAL, #PEBBLE_ENOMEM, or #PEBBLE_EEXIST
 * (the name is registered to another function).
 */
PEBBLE_API int pebble_task_create(pebble_task **task, pebble_kind kind,
                                  pebble_task_fn fn,
                                  const pebble_task_options *opts);

/**
 * @brief Launch the task with these argument bytes.
 *
 * The callback in force at this moment is the one the future will run.
 * Futures are numbered per definition from 0 (pebble_future_seq()).
 * @param task The definition.
 * @param arg The argument bytes, copied (may be NULL when arg_size is 0).
 * @param arg_size The argument's size in bytes.
 * @param[out] future On success holds one reference, which the caller
 * releases with pebble_future_release().
 * @return As pebble_run().
 */
PEBBLE_API int pebble_task_launch(pebble_task *task, const void *arg,
                                  size_t arg_size, pebble_future **future);

/**
 * @brief Replace the callback and its user data in one atomic step.
 *
 * Later launches use the new pair, futures already launched keep theirs.
 * @param task The definition.
 * @param callback The new callback (see #pebble_callback_fn for the
 * thread it runs on); NULL to launch without a callback.
 * @param user_data Passed to callback.
 * @param destroy If not NULL, called with user_data once no launch and no
 * future uses this pair any more (so it is safe to free `self` there).
 * @return #PEBBLE_OK, #PEBBLE_EINVAL (NULL task), #PEBBLE_ENOMEM, or
 * #PEBBLE_EFORKED (a definition of the parent of a fork).
 */
PEBBLE_API int pebble_task_set_callback(pebble_task *task,
                                        pebble_callback_fn callback,
                                        void *user_data,
                                        void (*destroy)(void *user_data));

/**
 * @brief Release the definition.  Futures already launched are
 * unaffected.
 * @param task The definition; NULL is ignored.
 */
PEBBLE_API void pebble_task_destroy(pebble_task *task);

/* ------------------------------------------------------------------ */
/* Named task registry                                                 */
/* ------------------------------------------------------------------ */

/**
 * @brief Register fn under name so that a worker that cannot share the
 * caller's memory (a re-executed program, another platform's process
 * model) can find it.
 *
 * Registering the same pair twice is harmless.
 * @param name 1-63 characters of [A-Za-z0-9_.:-]; copied.
 * @param fn The task.
 * @return #PEBBLE_OK, #PEBBLE_EINVAL (bad name or NULL fn),
 * #PEBBLE_EEXIST (name taken by another function) or #PEBBLE_ENOMEM.
 */
PEBBLE_API int pebble_register(const char *name, pebble_task_fn fn);
/**
 * @brief Look a registered name up.
 * @param name The name.
 * @param[out] fn Set to the registered function.
 * @return #PEBBLE_OK, or #PEBBLE_ENOTFOUND.
 */
PEBBLE_API int pebble_lookup(const char *name, pebble_task_fn *fn);
/**
 * @brief Run a registered task by name, as pebble_run() does.
 * @param kind #PEBBLE_THREAD or #PEBBLE_PROCESS.
 * @param name The registered name.
 * @param arg The argument bytes, copied (may be NULL when arg_size is 0).
 * @param arg_size The argument's size in bytes.
 * @param opts The options, or NULL for the defaults.
 * @param[out] future On success holds one reference, which the caller
 * releases with pebble_future_release().
 * @return As pebble_run(); #PEBBLE_ENOTFOUND for unknown names.
 */
PEBBLE_API int pebble_run_named(pebble_kind kind, const char *name,
                                const void *arg, size_t arg_size,
                                const pebble_task_options *opts,
                                pebble_future **future);
/** @} */

/* ------------------------------------------------------------------ */
/* Inside a task                                                       */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_inside
 * @{
 */

/**
 * @brief Get a result buffer owned by the library; the task fills it.
 *
 * The buffer is aligned for any type and valid until the task returns
 * or calls this again, which replaces the previous result (a small one
 * is kept in the task's context, with no allocation).  In a process
 * task, a buffer of 1 MiB or more is memory shared with the parent where the
 * system allows: the result is handed over without being copied
 * (docs/process-tasks.md).
 * @param ctx The task's context.
 * @param size The result's size in bytes.
 * @return The buffer, owned by the library (never freed by the task); NULL
 * when size is over the maximum message size or is SIZE_MAX (the future
 * then resolves with #PEBBLE_ETOOBIG whatever the task returns) or memory
 * is short (#PEBBLE_ENOMEM).
 */
PEBBLE_API void *pebble_result_alloc(pebble_ctx *ctx, size_t size);
/**
 * @brief Copy size bytes as the result.
 * @param ctx The task's context.
 * @param data The bytes, copied.
 * @param size Their number.
 * @return #PEBBLE_OK, #PEBBLE_ETOOBIG, #PEBBLE_ENOMEM, or #PEBBLE_EINVAL
 * (NULL ctx, or NULL data with size > 0).
 */
PEBBLE_API int pebble_result_set(pebble_ctx *ctx, const void *data,
                                 size_t size);
/**
 * @brief Set an integer as the result, read back with
 * pebble_future_get_int().
 * @param ctx The task's context.
 * @param value The value.
 * @return #PEBBLE_OK, #PEBBLE_ETOOBIG or #PEBBLE_ENOMEM.
 */
PEBBLE_API int pebble_result_int(pebble_ctx *ctx, int64_t value);
/**
 * @brief Set a double as the result, read back with
 * pebble_future_get_double().
 * @param ctx The task's context.
 * @param value The value.
 * @return #PEBBLE_OK, #PEBBLE_ETOOBIG or #PEBBLE_ENOMEM.
 */
PEBBLE_API int pebble_result_double(pebble_ctx *ctx, double value);
/**
 * @brief Set a string as the result, read back with
 * pebble_future_get_string().
 * @param ctx The task's context.
 * @param text The NUL-terminated string, copied.
 * @return #PEBBLE_OK, #PEBBLE_ETOOBIG, #PEBBLE_ENOMEM, or #PEBBLE_EINVAL
 * (NULL text).
 */
PEBBLE_API int pebble_result_string(pebble_ctx *ctx, const char *text);

/**
 * @brief Attach a message to a failure and return the code.
 *
 * So a task can write:
 * @code
 * return pebble_fail(ctx, 2, "bad input %d", x);
 * @endcode
 * @param ctx The task's context.
 * @param code The failure code; 0 becomes 1.
 * @param fmt A printf format; the message is cut at 1023 bytes.
 * @param ... The format's values.
 * @return code (1 for 0), for the task to return.
 */
PEBBLE_API int pebble_fail(pebble_ctx *ctx, int code, const char *fmt, ...)
    PEBBLE_PRINTF(3, 4);

/**
 * @brief Cooperative stop for thread tasks (a running thread cannot be
 * killed safely).
 *
 * The future is already resolved once this says stop, and any result the
 * task still produces is discarded.
 * @param ctx The task's context.
 * @return #PEBBLE_OK while the task should go on, #PEBBLE_ECANCELED once
 * its future was cancelled, #PEBBLE_ETIMEDOUT once it passed its
 * deadline.  In a process task it always returns #PEBBLE_OK: the process
 * is killed instead.
 */
PEBBLE_API int pebble_should_stop(pebble_ctx *ctx);

/**
 * @brief The id of the future this task resolves.
 * @param ctx The task's context.
 * @return The id, as pebble_future_id() gives it.
 */
PEBBLE_API uint64_t pebble_ctx_future_id(const pebble_ctx *ctx);
/**
 * @brief The sequence number of the future this task resolves.
 * @param ctx The task's context.
 * @return The number, as pebble_future_seq() gives it.
 */
PEBBLE_API uint64_t pebble_ctx_seq(const pebble_ctx *ctx);

/**
 * @brief Read an argument made of one integer (as the launcher passed an
 * int64_t).
 * @param arg The task's argument.
 * @param arg_size Its size.
 * @param[out] value The integer.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL arg or value, or arg_size
 * does not match).
 */
PEBBLE_API int pebble_arg_int(const void *arg, size_t arg_size,
                              int64_t *value);
/**
 * @brief Read an argument made of one double.
 * @param arg The task's argument.
 * @param arg_size Its size.
 * @param[out] value The double.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL arg or value, or arg_size
 * does not match).
 */
PEBBLE_API int pebble_arg_double(const void *arg, size_t arg_size,
                                 double *value);
/**
 * @brief Read an argument made of one NUL-terminated string.
 * @param arg The task's argument.
 * @param arg_size Its size, the NUL included.
 * @param[out] text Points into arg (valid while the task runs).
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL arg or text, or a value that
 * does not end with a NUL byte).
 */
PEBBLE_API int pebble_arg_string(const void *arg, size_t arg_size,
                                 const char **text);
/** @} */

/* ------------------------------------------------------------------ */
/* Futures                                                             */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_futures
 * @{
 */

/** @brief The state of a future (pebble_future_state()). */
typedef enum pebble_state {
  PEBBLE_PENDING = 0,  /**< accepted, not started */
  PEBBLE_RUNNING = 1,  /**< started (docs/pools.md says when); never back */
  PEBBLE_DONE = 2,     /**< resolved with a result */
  PEBBLE_FAILED = 3,   /**< resolved with an error (task, timeout, death...) */
  PEBBLE_CANCELLED = 4 /**< resolved by pebble_future_cancel() */
} pebble_state;

/**
 * @brief A unique id of the future.
 *
 * Unique among the futures of the library's run.  A pool hands out ids a
 * batch at a time, so they do not follow the order of scheduling across
 * pools (docs/pools.md, "A stash per pool").
 * @param future The future.
 * @return The id, never 0.
 */
PEBBLE_API uint64_t pebble_future_id(const pebble_future *future);
/**
 * @brief The sequence number of the future within its definition.
 * @param future The future.
 * @return The number, from 0 per task definition (pebble_task_launch());
 * 0 for pebble_run().
 */
PEBBLE_API uint64_t pebble_future_seq(const pebble_future *future);
/**
 * @brief The name given in the task options.
 * @param future The future.
 * @return The name, owned by the future (valid until its last reference is
 * released), or NULL.
 */
PEBBLE_API const char *pebble_future_name(const pebble_future *future);
/**
 * @brief The state of the future now, without waiting.
 * @param future The future.
 * @return A #pebble_state.
 */
PEBBLE_API pebble_state pebble_future_state(const pebble_future *future);

/**
 * @brief Wait until the future resolves, at most timeout.
 *
 * Called from an application thread, it returns only once the callbacks
 * added before the future resolved have also run (on whatever thread runs
 * them), so a program that waits and then returns from main() loses none;
 * if the time runs out while they run, it returns #PEBBLE_OK (the outcome
 * is there), and a timeout of 0 never waits for them.  Called from
 * Pebble's own threads (a task, any callback) it waits for the outcome
 * only: the callbacks may be queued behind the caller.  From inside the
 * future's own callback it returns #PEBBLE_OK at once: callbacks run only
 * after resolution, so there is nothing to wait for and no way to hang.
 * While the task runs, the caller first watches for the outcome for up to
 * 50 us before it sleeps (CPU time it spends; PEBBLE_SPIN=N microseconds,
 * 0 never; for a process task only on four CPUs or more; see
 * docs/pools.md).  For a process pool's running task (Linux), an
 * application thread reads the worker's outcomes itself while it waits,
 * and sleeps until the worker's next message: the outcome then wakes two
 * threads, not three.  Outcomes of other futures it reads meanwhile are
 * delivered as the library's thread would (their callbacks still run on
 * the callback thread).
 * @param future The future.
 * @param timeout The longest wait; #PEBBLE_FOREVER or 0 (do not wait).
 * @return #PEBBLE_OK once it is resolved (whatever the outcome),
 * #PEBBLE_ENOTREADY when the time ran out, #PEBBLE_EDEADLK when called
 * from the thread task that resolves this very future (it would wait for
 * itself), #PEBBLE_EFORKED in the child of a fork, #PEBBLE_EINVAL for a
 * bad timeout.
 */
PEBBLE_API int pebble_future_wait(pebble_future *future, pebble_time_t timeout);

/**
 * @brief Wait like pebble_future_wait(), then return the outcome.
 * @param future The future.
 * @param timeout The longest wait.
 * @param[out] data The result (may be NULL): valid until the last
 * reference to the future is released, owned by the future; never NULL,
 * an empty result points at a zero byte.
 * @param[out] size The result's size (may be NULL).
 * @return #PEBBLE_OK with *data and *size set to the result; or the
 * outcome code (#PEBBLE_ETASK, #PEBBLE_ETIMEDOUT, #PEBBLE_ECANCELED,
 * #PEBBLE_EDIED, #PEBBLE_ESYSTEM, #PEBBLE_ETOOBIG, #PEBBLE_ENOMEM,
 * #PEBBLE_EPROTO); or a wait error (#PEBBLE_ENOTREADY, #PEBBLE_EDEADLK,
 * #PEBBLE_EINVAL).
 */
PEBBLE_API int pebble_future_get(pebble_future *future, pebble_time_t timeout,
                                 const void **data, size_t *size);
/**
 * @brief As pebble_future_get(), reading the integer of
 * pebble_result_int().
 *
 * The type travels with the result: a result made by another helper or
 * raw bytes (pebble_result_set(), pebble_result_alloc(); read those with
 * pebble_future_get()) is #PEBBLE_EINVAL, with a message naming both
 * types, never a reinterpretation of its bytes.
 * @param future The future.
 * @param timeout The longest wait.
 * @param[out] value The integer.
 * @return As pebble_future_get(); #PEBBLE_EINVAL for a result of another
 * type.
 */
PEBBLE_API int pebble_future_get_int(pebble_future *future,
                                     pebble_time_t timeout, int64_t *value);
/**
 * @brief As pebble_future_get(), reading the double of
 * pebble_result_double().
 *
 * The type travels with the result, as for pebble_future_get_int().
 * @param future The future.
 * @param timeout The longest wait.
 * @param[out] value The double.
 * @return As pebble_future_get(); #PEBBLE_EINVAL for a result of another
 * type.
 */
PEBBLE_API int pebble_future_get_double(pebble_future *future,
                                        pebble_time_t timeout, double *value);
/**
 * @brief As pebble_future_get(), reading the string of
 * pebble_result_string().
 *
 * The type travels with the result, as for pebble_future_get_int().
 * @param future The future.
 * @param timeout The longest wait.
 * @param[out] text The string, owned by the future: valid until its last
 * reference is released.
 * @return As pebble_future_get(); #PEBBLE_EINVAL for a result of another
 * type.
 */
PEBBLE_API int pebble_future_get_string(pebble_future *future,
                                        pebble_time_t timeout,
                                        const char **text);

/**
 * @brief The outcome without waiting.
 * @param future The future.
 * @return #PEBBLE_OK (done), an outcome code, or #PEBBLE_ENOTREADY while
 * unresolved.
 */
PEBBLE_API int pebble_future_status(const pebble_future *future);

/**
 * @brief A message describing a failed outcome.
 * @param future The future.
 * @return The task's own message for #PEBBLE_ETASK, else what happened
 * (e.g. "process 4242 was killed by signal 11 (SIGSEGV)");
 * pebble_strerror()'s text when no memory was left for more; "" for a
 * result or an unresolved future.  Owned by the future: valid until the
 * last reference is released.
 */
PEBBLE_API const char *pebble_future_message(const pebble_future *future);
/**
 * @brief The code the task failed with.
 * @param future The future.
 * @return The task's code for #PEBBLE_ETASK, else 0.
 */
PEBBLE_API int pebble_future_task_code(const pebble_future *future);
/**
 * @brief The errno behind #PEBBLE_ESYSTEM.
 * @param future The future.
 * @return The errno for #PEBBLE_ESYSTEM, else 0.
 */
PEBBLE_API int pebble_future_sys_errno(const pebble_future *future);

/** @brief How the process that ran a task ended (pebble_future_exit_info()). */
typedef struct pebble_exit_info {
  size_t struct_size;    /**< set by the caller: sizeof(pebble_exit_info) */
  long pid;              /**< process that ran the task, 0 for threads */
  int status_known;      /**< 0 if the exit status could not be read (the
                            application reaped the child or ignores
                            SIGCHLD) */
  int exited;            /**< 1: it called exit(); exit_code is set */
  int exit_code;         /**< the exit status, when exited is 1 */
  int signal;            /**< signal that ended it, 0 if none; on Windows
                            the exception that ended it (its NTSTATUS,
                            0xC0000005 for an access violation) */
  int core_dumped;       /**< 1: it left a core dump */
  int killed_by_library; /**< 1: Pebble killed it (timeout or cancel) */
} pebble_exit_info;
/**
 * @brief How the process that ran a task ended, for every process task
 * once the library has reaped it.
 *
 * A future that resolves with #PEBBLE_EDIED has it before it resolves;
 * after a timeout or a cancellation it arrives a little after the
 * resolution (the kill is sent at resolution, the reap follows the exit),
 * and so it may after a result: a one-shot future resolves when its
 * result is read, and the child, which exits right after sending it, is
 * reaped when its exit is seen.
 * @param future The future.
 * @param[in,out] info Filled in; the caller sets info->struct_size first.
 * @return #PEBBLE_OK, #PEBBLE_ENOTFOUND (no process has ended for this
 * future yet, or it is a thread task) or #PEBBLE_EINVAL.
 */
PEBBLE_API int pebble_future_exit_info(const pebble_future *future,
                                       pebble_exit_info *info);
/**
 * @brief Wait until the process that ran a process task has ended for it
 * and been reaped, or until it is known that none will.
 *
 * A one-shot process task (pebble_run(), pebble_task_launch(),
 * pebble_run_named() with #PEBBLE_PROCESS) resolves when its result is
 * read or at its timeout or cancel, and its process is reaped a little
 * later.  A pool's worker outlives the tasks it finishes, and ends for a
 * task only when the task crashes it or it is killed for the task's
 * timeout or cancel, or for the pool's stop; the future of a timeout or
 * cancel resolves before that kill.  This waits, by event, for that reap:
 * once it returns #PEBBLE_OK the process has ended (none of its code runs
 * any more) and its exit status has been collected, the future has
 * resolved, and pebble_future_exit_info() says how the process ended.
 * Its pid is released with the reap (under the forkserver start method by
 * the server, a moment later).  After a timeout or a cancel that is after
 * the kill, and after the kill grace if one was given.  A pool's task
 * cancelled after it was sent ahead to a busy worker is known to be
 * skipped only when that worker comes to it (docs/pools.md).  Any thread
 * may call it, any number of times; the caller keeps its reference.
 * @param future The future of a process task.
 * @param timeout How long to wait, in microseconds (#PEBBLE_NOWAIT: only
 * look; #PEBBLE_FOREVER: no limit).
 * @return #PEBBLE_OK; #PEBBLE_ENOTFOUND once the future has resolved and
 * no process has ended for the task nor will (a pool's worker that
 * finished it and lives on; a task cancelled before any process took it;
 * a process the system refused), and at once for a thread task;
 * #PEBBLE_ENOTREADY if the timeout passed first; #PEBBLE_EINVAL for a
 * NULL future or a negative timeout other than #PEBBLE_FOREVER;
 * #PEBBLE_EFORKED in the child of a fork (the task's own process
 * included).
 */
PEBBLE_API int pebble_future_wait_exit(pebble_future *future,
                                       pebble_time_t timeout);
/**
 * @brief The name of a signal.
 * @param signal A signal number.
 * @return "SIGSEGV" for 11 and so on; "SIG?" for unknown numbers; a static
 * string.  On Windows also an exception's name: "access violation" for
 * (int)0xC0000005.
 */
PEBBLE_API const char *pebble_signal_name(int signal);

/**
 * @brief Cancel the task.
 *
 * A task not started yet never starts.  A task a process pool sent ahead
 * to a busy worker (docs/pools.md) is skipped by that worker: this returns
 * once the request to skip it is written, so it starts only if the
 * worker had reached it already (it is then stopped as a running task).
 * A running process task's process group (its process alone with a
 * backend without #PEBBLE_CAP_KILL_GROUP, such as APR) is sent SIGKILL
 * before this returns (its exit is reaped later by the library).  A
 * process pool's worker is killed only while it still runs this task: a
 * task that has already returned in its worker, its outcome not yet read
 * by the pool, is not stopped; nothing is killed (not the task its worker
 * may have started since), and this waits for that outcome and returns
 * #PEBBLE_EALREADY (on the library's manager thread, which delivers it,
 * the future is resolved as cancelled instead, still killing nothing).  A
 * running thread task is flagged (pebble_should_stop()) and keeps its
 * thread until it returns.  Otherwise the future is resolved as
 * #PEBBLE_CANCELLED before this returns, and its callbacks run on the
 * library's callback thread.
 * @param future The future.
 * @return #PEBBLE_OK when the future is cancelled (also if it already
 * was), #PEBBLE_EALREADY when it had already resolved otherwise, or its
 * process task had already returned (cancel lost to completion: the
 * result stands).
 */
PEBBLE_API int pebble_future_cancel(pebble_future *future);

/* ---- Observing a task: its process, and cancel that says whether it
 * had started ---- */

/**
 * @brief Cancel as pebble_future_cancel() does (same effects, same
 * returns), and tell whether the task had started.
 *
 * A task sent ahead that its worker had begun just before the request to
 * skip it arrived is killed as a running task, but counts as not started
 * here (see docs/pools.md).  Any thread.
 * @param future The future.
 * @param[out] was_running 1 when the future was #PEBBLE_RUNNING as it
 * resolved (a thread task was flagged, a process task's process was
 * killed: its code may have run, in part), 0 when it had not started
 * (queued; or sent ahead to a busy process worker and skipped there).  On
 * #PEBBLE_EALREADY it says the same of the outcome that won (1: the task
 * ran to that outcome); on a repeated cancel, of the first.  Must not be
 * NULL; it is set to 0 on any error.
 * @return As pebble_future_cancel(); #PEBBLE_EINVAL for NULL arguments.
 */
PEBBLE_API int pebble_future_cancel_ex(pebble_future *future,
                                       int *was_running);

/**
 * @brief The id of the process that runs, or ran, a process task.
 *
 * For a one-shot task its own process from its start, for a pool task the
 * worker process that took it (a worker runs many tasks; a task sent
 * ahead gets its pid once the worker starts it).  It stays readable after
 * the future resolves; the process may have ended by then and the number
 * been reused (pebble_future_exit_info() says how it ended).  Any thread;
 * it does not wait.
 * @param future The future.
 * @param[out] pid The process id; 0 on every error.
 * @return #PEBBLE_OK with *pid set; #PEBBLE_ESTATE while the task has not
 * started in a process yet (pending, or the process is being started; or,
 * its future RUNNING, waiting for another worker after its worker died
 * before beginning it: docs/pools.md);
 * #PEBBLE_ENOTFOUND when the future resolved without ever starting in one
 * (cancelled while queued, a broken pool, a refused start);
 * #PEBBLE_EINVAL for a thread task's future (it runs in this process) or
 * NULL arguments.
 */
PEBBLE_API int pebble_future_pid(const pebble_future *future, long *pid);

/**
 * @brief Add a done-callback.
 *
 * See #pebble_callback_fn for the thread it runs on.  If the future is
 * already resolved, fn runs in the calling thread before this returns.
 * @param future The future.
 * @param fn The callback.
 * @param user_data Passed to fn; stays the caller's.
 * @return #PEBBLE_OK, #PEBBLE_EINVAL or #PEBBLE_ENOMEM.
 */
PEBBLE_API int pebble_future_add_callback(pebble_future *future,
                                          pebble_callback_fn fn,
                                          void *user_data);

/**
 * @brief Take one more reference.
 * @param future The future.
 * @return future.
 */
PEBBLE_API pebble_future *pebble_future_ref(pebble_future *future);
/**
 * @brief Drop one reference; the last one frees the future and its
 * result.  Releasing does not cancel a running task.
 * @param future The future; NULL is ignored.
 */
PEBBLE_API void pebble_future_release(pebble_future *future);

/** @} */

/* ------------------------------------------------------------------ */
/* Pools                                                               */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_pools
 * @{
 */

/**
 * @brief A pool of thread or process workers (opaque): made by
 * pebble_pool_create(), freed by pebble_pool_destroy().
 */
typedef struct pebble_pool pebble_pool;

/**
 * @brief Options of a pool: filled by pebble_pool_options_init(), then
 * changed field by field.
 */
typedef struct pebble_pool_options {
  size_t struct_size;      /**< set by pebble_pool_options_init() */
  unsigned workers;        /**< default: the number of online CPUs */
  unsigned max_tasks;      /**< tasks a worker runs before it is replaced;
                              0 (default): never replaced */
  pebble_task_fn initializer; /**< runs first in every new worker; a failure
                              (non-zero return) breaks the pool; its
                              result is ignored.  Default NULL. */
  const void *initializer_arg; /**< copied at creation */
  size_t initializer_arg_size; /**< the size of initializer_arg in bytes */
  pebble_time_t task_timeout; /**< for tasks scheduled with PEBBLE_DEFAULT;
                              default PEBBLE_FOREVER */
  pebble_time_t kill_grace;   /**< process pools, as in pebble_task_options */
  size_t max_queued;       /**< tasks waiting for a worker before scheduling
                              waits; default 16777216 */
  int start_eagerly;       /**< 1: start every worker at creation; 0
                              (default): start workers as work arrives */
  unsigned max_abandoned;  /**< thread pools: extra threads allowed while
                              timed-out or cancelled tasks still run;
                              default: workers */
  size_t max_message_size; /**< default: pebble_max_message_size() */
  int start_method;        /**< process pools: a pebble_start_method;
                              default PEBBLE_START_DEFAULT */
  const char *worker_program; /**< spawn: the program to run as a worker
                              (it must call pebble_worker_main());
                              default NULL: this program itself */
  int send_ahead;          /**< process pools: a pebble_send_ahead; default
                              PEBBLE_SEND_AHEAD_AUTO */
  const char *launcher;    /**< process pools, spawn start method: a shell
                              command line that starts each worker,
                              possibly on another host ("ssh node7",
                              "srun -N1 -n1 --exact --quiet --unbuffered",
                              "mpirun -n 1 --quiet --hostfile hosts");
                              docs/cluster.md.  It takes precedence over
                              PEBBLE_LAUNCHER.  Copied at creation (the
                              caller's buffer may go afterwards).  With a
                              launcher, PEBBLE_START_DEFAULT means spawn.
                              pebble_pool_create() fails with
                              #PEBBLE_EINVAL, its message naming the
                              field, for an empty (or blank) string, a
                              thread pool, or a start method other than
                              spawn; with #PEBBLE_ENOTSUP where the backend
                              cannot start workers through a launcher
                              (APR).  Default NULL: PEBBLE_LAUNCHER if set,
                              else workers start on this host. */
  pebble_time_t launcher_heartbeat; /**< launched workers: the interval of
                              the heartbeats both ways, whole seconds from
                              PEBBLE_SEC(1) to PEBBLE_SEC(3600); a link
                              silent for three of them is lost.  Default
                              #PEBBLE_DEFAULT: PEBBLE_LAUNCHER_HEARTBEAT,
                              else 5 s.  Another value, or one set for a
                              thread pool or a start method other than
                              spawn: #PEBBLE_EINVAL naming the field. */
  pebble_time_t launcher_start_timeout; /**< launched workers: how long a
                              worker may take to say its first word (a
                              Slurm queue may need long), whole seconds
                              from PEBBLE_SEC(1) to PEBBLE_SEC(86400), or
                              #PEBBLE_FOREVER for no bound.  Default
                              #PEBBLE_DEFAULT: PEBBLE_LAUNCHER_START_TIMEOUT,
                              else 120 s.  Errors as for
                              launcher_heartbeat. */
} pebble_pool_options;

/**
 * @brief Sending ahead (process pools).
 *
 * A busy worker may be sent up to 32
 * queued tasks behind the one it runs, so that it starts each as soon as
 * it has returned the last, without waiting for the pool's manager thread
 * (several times the throughput for short tasks); up to 512 while the
 * recent tasks are so short that as many add up to at most 2 ms (with
 * ALWAYS: always up to 512).  Such a task stays
 * PEBBLE_PENDING until its worker starts it; cancelled before that, the
 * worker skips it; if the worker dies first, it goes back to the queue
 * and is not counted as started.  The cost: a task sent ahead waits for
 * the tasks before it on that worker, even if another worker becomes
 * idle.  AUTO therefore sends ahead only while the pool's recent tasks
 * took under 0.5 ms and the worker's current task has not run longer,
 * and never a task with a timeout, a task with an argument over 4 KiB,
 * or behind a task with a timeout, nor beyond max_tasks.  ALWAYS drops
 * the two time conditions (for tasks known to be short); NEVER sends a
 * task only to an idle worker.  Backends without the needed channel
 * operation (APR) never send ahead, nor does a pool to a worker that
 * shares no memory page with it (a launched worker; docs/backends.md):
 * the page says which task the worker runs, so that the kill of a cancel
 * or a timeout hits only the task it was meant for, never the next one
 * the worker was sent ahead and has started.
 */
typedef enum pebble_send_ahead {
  PEBBLE_SEND_AHEAD_AUTO = 0,  /**< while recent tasks are short (above) */
  PEBBLE_SEND_AHEAD_NEVER = 1, /**< only to an idle worker */
  PEBBLE_SEND_AHEAD_ALWAYS = 2 /**< without the two time conditions */
} pebble_send_ahead;

/**
 * @brief Fill opts with the defaults above.
 * @param[out] opts The options to initialise.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL for NULL.
 */
PEBBLE_API int pebble_pool_options_init(pebble_pool_options *opts);

/**
 * @brief Serve tasks when this program runs as a spawned worker.
 *
 * The spawn start method runs a program afresh as a worker.  Such a
 * program calls pebble_worker_main() early in main(), after registering
 * (pebble_register()) every task and initializer it may be asked to run:
 * in a worker it serves tasks and never returns (the process exits);
 * in an ordinary run it returns #PEBBLE_OK at once.  Code that runs before
 * the call runs in every worker too.  The marker that makes a worker is
 * removed from the environment once read, so a worker's own children are
 * ordinary programs.  A task name the worker does not know resolves that
 * task with #PEBBLE_ENOTFOUND.  A spawned worker whose program calls
 * anything that starts the library before pebble_worker_main() (or never
 * calls it) would run main() again, with its own pools and workers: it
 * is stopped at that first call instead, writes "the worker program did
 * not call pebble_worker_main()" to its stderr and exits with status 70;
 * the parent's pool breaks with that message (#PEBBLE_EBROKEN), a one-shot
 * task resolves #PEBBLE_EDIED with it and the exit status.  Registering
 * tasks, selecting or configuring the backend and setting the log
 * handler before the call are fine.
 * @return #PEBBLE_OK in an ordinary run; in a worker it does not return.
 */
PEBBLE_API int pebble_worker_main(void);

/**
 * @brief Create a pool of threads or of processes.
 * @param[out] pool The new pool, owned by the caller: free it with
 * pebble_pool_destroy().
 * @param kind #PEBBLE_THREAD or #PEBBLE_PROCESS workers.
 * @param opts The options (copied), or NULL for the defaults.
 * @return #PEBBLE_OK, #PEBBLE_EINVAL (bad option, e.g. workers 0),
 * #PEBBLE_ENOMEM, #PEBBLE_ENOTSUP or #PEBBLE_ESYSTEM (eager start failed).
 */
PEBBLE_API int pebble_pool_create(pebble_pool **pool, pebble_kind kind,
                                  const pebble_pool_options *opts);

/**
 * @brief Queue fn(arg) for a worker.
 *
 * With the queue full, waits up to opts->queue_wait for room.  The task
 * runs on a worker thread of the pool (thread pools) or in a worker
 * process; callbacks run as #pebble_callback_fn says.
 * @param pool The pool.
 * @param fn The task.
 * @param arg The argument bytes, copied (may be NULL when arg_size is 0).
 * @param arg_size The argument's size in bytes.
 * @param opts The options, or NULL; a timeout of #PEBBLE_DEFAULT takes
 * the pool's task_timeout, counted from when a worker starts the task.
 * @param[out] future Holds one reference, which the caller releases with
 * pebble_future_release().
 * @return #PEBBLE_OK; #PEBBLE_EINVAL; #PEBBLE_ETOOBIG; #PEBBLE_EWOULDBLOCK
 * (queue still full); #PEBBLE_ECLOSED (closed or stopped);
 * #PEBBLE_EBROKEN (the initializer failed; the message says why).
 */
PEBBLE_API int pebble_pool_schedule(pebble_pool *pool, pebble_task_fn fn,
                                    const void *arg, size_t arg_size,
                                    const pebble_task_options *opts,
                                    pebble_future **future);
/**
 * @brief Queue a task definition for a worker: its function, options and
 * callback, as pebble_pool_schedule() does.
 * @param pool The pool.
 * @param task The definition.
 * @param arg The argument bytes, copied (may be NULL when arg_size is 0).
 * @param arg_size The argument's size in bytes.
 * @param[out] future Holds one reference, which the caller releases with
 * pebble_future_release().
 * @return As pebble_pool_schedule().
 */
PEBBLE_API int pebble_pool_schedule_task(pebble_pool *pool, pebble_task *task,
                                         const void *arg, size_t arg_size,
                                         pebble_future **future);

/**
 * @brief No new work; queued tasks still run.
 * @param pool The pool.
 * @return #PEBBLE_OK (also if already closed or stopped).
 */
PEBBLE_API int pebble_pool_close(pebble_pool *pool);
/**
 * @brief No new work, and cancel what has not finished.
 *
 * Queued tasks resolve as cancelled, running process tasks are killed and
 * running thread tasks are flagged, all resolving as cancelled before
 * this returns.  May be called from a task or a callback.
 * @param pool The pool.
 * @return #PEBBLE_OK.
 */
PEBBLE_API int pebble_pool_stop(pebble_pool *pool);
/**
 * @brief Wait up to timeout for every worker to end after close or stop.
 * @param pool The pool.
 * @param timeout The longest wait.
 * @return #PEBBLE_OK (no worker thread or process remains),
 * #PEBBLE_ENOTREADY (still busy: call again), #PEBBLE_ESTATE (the pool is
 * still open), #PEBBLE_EDEADLK (called from a task or a callback of this
 * pool; other pools may be joined from anywhere).
 */
PEBBLE_API int pebble_pool_join(pebble_pool *pool, pebble_time_t timeout);
/**
 * @brief Stop, join and free the pool.  Futures it produced stay valid.
 * @param pool The pool; NULL is ignored.
 * @return #PEBBLE_OK, or #PEBBLE_EDEADLK from a task or a callback of
 * this pool (the pool is then left alone).
 */
PEBBLE_API int pebble_pool_destroy(pebble_pool *pool);

/** @brief A snapshot of a pool's counters (pebble_pool_stats_get()). */
typedef struct pebble_pool_stats {
  size_t struct_size; /**< set by the caller */
  unsigned workers_alive; /**< worker threads or processes alive */
  unsigned workers_abandoned; /**< threads still running a task that timed
                                 out or was cancelled */
  uint64_t queued, running;
  uint64_t done, failed, timed_out, cancelled;
  uint64_t worker_restarts; /**< workers replaced: after max_tasks tasks, or
                               after a death, a timeout or a cancellation */
  uint64_t sent_ahead; /**< process pools: tasks sent to a busy worker */
  uint64_t remote_restarts; /**< process pools: workers started through a
                               launcher that were replaced (counted in
                               worker_restarts too) */
  uint64_t remote_lost; /**< process pools: workers started through a
                           launcher that were lost without their remote
                           side's report, not ended by the pool: the
                           launcher died or failed, or its link stayed
                           silent past the heartbeats' or the start's
                           bound.  A remote worker that crashed or was
                           killed on its host is reported, so it counts
                           in remote_restarts only. */
} pebble_pool_stats;
/** @var pebble_pool_stats::queued
 *  @brief Tasks waiting for a worker. */
/** @var pebble_pool_stats::running
 *  @brief Tasks a worker is running. */
/** @var pebble_pool_stats::done
 *  @brief Tasks resolved with a result. */
/** @var pebble_pool_stats::failed
 *  @brief Tasks resolved with a failure other than a timeout or a
 *  cancellation. */
/** @var pebble_pool_stats::timed_out
 *  @brief Tasks that passed their deadline. */
/** @var pebble_pool_stats::cancelled
 *  @brief Tasks cancelled. */
/**
 * @brief A snapshot of the pool's counters; readable at any time.
 *
 * A task's outcome (done, failed, timed_out, cancelled) is counted before
 * its future shows it resolved: once a waiter has seen a future of this
 * pool resolve, a snapshot taken after that counts it.  queued, running
 * and workers_alive follow the workers and may lag the futures by a turn
 * of the pool's manager thread.
 * @param pool The pool.
 * @param[in,out] stats Filled in; the caller sets stats->struct_size
 * first.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL or uninitialised stats).
 */
PEBBLE_API int pebble_pool_stats_get(pebble_pool *pool,
                                     pebble_pool_stats *stats);

/* ---- Observing a pool: its state and its worker processes ---- */

/** @brief The state of a pool (pebble_pool_state_get()). */
typedef enum pebble_pool_state {
  PEBBLE_POOL_OPEN = 0,    /**< takes new work */
  PEBBLE_POOL_CLOSED = 1,  /**< pebble_pool_close(): no new work; queued and
                              running tasks still finish.  Whether that is
                              over: pebble_pool_join(pool, 0) == PEBBLE_OK */
  PEBBLE_POOL_STOPPED = 2, /**< pebble_pool_stop() (or destroy): everything
                              not finished was cancelled */
  PEBBLE_POOL_BROKEN = 3   /**< the initializer failed: scheduling fails with
                              PEBBLE_EBROKEN and its message; a broken
                              pool that is then stopped shows STOPPED */
} pebble_pool_state;

/**
 * @brief The pool's state.
 *
 * The state only moves forward: OPEN -> CLOSED -> STOPPED, with BROKEN
 * from OPEN or CLOSED.  Any thread, any time, also from the pool's tasks
 * and callbacks.
 * @param pool The pool.
 * @param[out] state The state.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL pool or state).
 */
PEBBLE_API int pebble_pool_state_get(pebble_pool *pool,
                                     pebble_pool_state *state);

/**
 * @brief The process ids of a process pool's workers, for logs and
 * operators.
 *
 * Every worker process the pool has started and not yet reaped (idle,
 * busy, starting, a spare, one told to quit or killed), in no particular
 * order.  A worker that ends leaves the list once the pool has reaped it.
 * Any thread; it does not wait.
 * @param pool The pool.
 * @param[out] pids The caller's array of cap entries (NULL when cap is 0);
 * at most cap are written.
 * @param cap The array's length.
 * @param[out] count The number of workers, which may be more than cap:
 * call again with a larger array to get them all.
 * @return #PEBBLE_OK; #PEBBLE_EINVAL for NULL pool or count, pids NULL
 * with cap > 0, or a thread pool (its workers are threads of this
 * process; *count is then 0).
 */
PEBBLE_API int pebble_pool_worker_pids(pebble_pool *pool, long *pids,
                                       size_t cap, size_t *count);

/* ------------------------------------------------------------------ */
/* Map                                                                 */
/* ------------------------------------------------------------------ */

/**
 * @brief The items and outcomes of one pebble_pool_map() (opaque), freed
 * by pebble_map_release().
 */
typedef struct pebble_map pebble_map;

/** @brief One input item: size bytes at data, copied when the map starts. */
typedef struct pebble_item {
  const void *data; /**< the item's bytes (the caller's) */
  size_t size;      /**< their number */
} pebble_item;

/**
 * @brief Produces the items of a map one at a time.
 *
 * Called from pebble_pool_map_source() only, in the calling thread.
 * @param user_data As given to pebble_pool_map_source().
 * @param index The item's index, from 0.
 * @param[out] item The item; its bytes are copied before the next call.
 * @return 1 with *item set, or 0 when there are no more.
 */
typedef int (*pebble_item_source_fn)(void *user_data, size_t index,
                                     pebble_item *item);

/**
 * @brief Options of a map: filled by pebble_map_options_init(), then
 * changed field by field.
 */
typedef struct pebble_map_options {
  size_t struct_size;         /**< set by pebble_map_options_init() */
  size_t chunk_size;          /**< items per task; default 1; 0 is invalid */
  pebble_time_t chunk_timeout; /**< per chunk; default PEBBLE_DEFAULT (the
                                  pool's task_timeout) */
} pebble_map_options;
/**
 * @brief Fill opts with the defaults above.
 * @param[out] opts The options to initialise.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL for NULL.
 */
PEBBLE_API int pebble_map_options_init(pebble_map_options *opts);

/**
 * @brief Apply fn to every item, in chunks of chunk_size items per task.
 *
 * fn is called once per item, with the item as its argument, and its
 * result or failure is kept for that item.  A chunk that times out,
 * crashes or is cancelled gives that outcome to each of its items.
 * Chunks already scheduled when scheduling fails are cancelled.
 * @param pool The pool.
 * @param fn The task, called once per item.
 * @param items The items, copied (the array stays the caller's).
 * @param count Their number.
 * @param opts The options, or NULL for the defaults.
 * @param[out] map The map, owned by the caller: release it with
 * pebble_map_release().
 * @return #PEBBLE_OK with *map set, or a scheduling error (#PEBBLE_EINVAL,
 * #PEBBLE_ECLOSED, #PEBBLE_EBROKEN, #PEBBLE_ETOOBIG, #PEBBLE_EWOULDBLOCK).
 */
PEBBLE_API int pebble_pool_map(pebble_pool *pool, pebble_task_fn fn,
                               const pebble_item *items, size_t count,
                               const pebble_map_options *opts,
                               pebble_map **map);
/**
 * @brief As pebble_pool_map(), pulling the items from source until it
 * returns 0.
 * @param pool The pool.
 * @param fn The task, called once per item.
 * @param source Produces the items, on the calling thread.
 * @param user_data Passed to source.
 * @param opts The options, or NULL for the defaults.
 * @param[out] map The map, owned by the caller: release it with
 * pebble_map_release().
 * @return As pebble_pool_map().
 */
PEBBLE_API int pebble_pool_map_source(pebble_pool *pool, pebble_task_fn fn,
                                      pebble_item_source_fn source,
                                      void *user_data,
                                      const pebble_map_options *opts,
                                      pebble_map **map);
/**
 * @brief The number of items.
 * @param map The map.
 * @return The number of items.
 */
PEBBLE_API size_t pebble_map_count(const pebble_map *map);
/**
 * @brief The outcome of one item, waiting up to timeout for its chunk.
 * @param map The map.
 * @param index The item's index (input order).
 * @param timeout The longest wait.
 * @param[out] data The item's result: valid until pebble_map_release(),
 * aligned for any type like malloc'd memory; owned by the map.
 * @param[out] size The result's size.
 * @return #PEBBLE_OK with *data and *size; or the item's error
 * (#PEBBLE_ETASK, #PEBBLE_ETIMEDOUT, #PEBBLE_ECANCELED, #PEBBLE_EDIED,
 * ...; see pebble_map_message()); or #PEBBLE_ENOTREADY; or
 * #PEBBLE_EINVAL for an index out of range.
 */
PEBBLE_API int pebble_map_get(pebble_map *map, size_t index,
                              pebble_time_t timeout, const void **data,
                              size_t *size);
/**
 * @brief The message of an item's error.
 * @param map The map.
 * @param index The item's index.
 * @return The message, owned by the map ("" if none or not resolved).
 */
PEBBLE_API const char *pebble_map_message(pebble_map *map, size_t index);
/**
 * @brief The code an item's task failed with.
 * @param map The map.
 * @param index The item's index.
 * @return The code for #PEBBLE_ETASK, else 0.
 */
PEBBLE_API int pebble_map_task_code(pebble_map *map, size_t index);
/**
 * @brief As-completed iteration: the index of the next item whose chunk
 * has resolved, in completion order, each index once.
 *
 * Use pebble_map_get() on the index (it does not wait).
 * @param map The map.
 * @param timeout The longest wait.
 * @param[out] index The item's index.
 * @return #PEBBLE_OK, #PEBBLE_ENOTREADY (timeout), or #PEBBLE_ENOTFOUND
 * once every item was returned.
 */
PEBBLE_API int pebble_map_next_completed(pebble_map *map,
                                         pebble_time_t timeout,
                                         size_t *index);
/**
 * @brief Cancel every chunk not resolved yet.
 * @param map The map.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL map).
 */
PEBBLE_API int pebble_map_cancel(pebble_map *map);
/**
 * @brief Release the map and its results.  Does not cancel.
 * @param map The map; NULL is ignored.
 */
PEBBLE_API void pebble_map_release(pebble_map *map);

/** @} */

/* ------------------------------------------------------------------ */
/* Waiting on many futures; completion queues for event loops          */
/* ------------------------------------------------------------------ */

/**
 * @addtogroup pebble_cqueues
 * @{
 */

/**
 * @brief Wait until every future of the array has resolved, at most
 * timeout (for the whole array).
 *
 * The last future is waited for first (a batch tends to resolve in
 * order), then the others.  Each is waited for as pebble_future_wait()
 * does, so from an application thread their callbacks have run when it
 * returns.
 * @param futures The futures; the array stays the caller's and no
 * reference is taken.
 * @param count Their number.
 * @param timeout The longest wait for them all.
 * @return #PEBBLE_OK, #PEBBLE_ENOTREADY (timeout), #PEBBLE_EINVAL (a NULL
 * entry, found before any waiting), #PEBBLE_EDEADLK.
 */
PEBBLE_API int pebble_wait_all(pebble_future *const *futures, size_t count,
                               pebble_time_t timeout);
/**
 * @brief Wait until at least one future of the array has resolved, at
 * most timeout.
 * @param futures The futures; the array stays the caller's and no
 * reference is taken.
 * @param count Their number.
 * @param timeout The longest wait.
 * @param[out] index May be NULL; gets the lowest index of a resolved
 * future, whose callbacks have run as with pebble_future_wait().
 * @return #PEBBLE_OK, #PEBBLE_ENOTREADY, #PEBBLE_EINVAL (count 0 or NULL
 * entries).
 */
PEBBLE_API int pebble_wait_any(pebble_future *const *futures, size_t count,
                               pebble_time_t timeout, size_t *index);

/**
 * @brief A completion queue (opaque): collects futures as they resolve,
 * from any pool or one-shot launch, in the order they resolve.
 *
 * Its OS handle (a file
 * descriptor on POSIX) is readable, level-triggered, while resolved
 * futures wait in it, so an application's poll/epoll, libuv or libevent
 * loop can watch it and drain without blocking a thread.  On Windows the
 * handle is an Event HANDLE (cast it back: (HANDLE)handle), signalled
 * while resolved futures wait, for WaitForMultipleObjects or a loop's
 * handle watcher.  It also works as
 * an as-completed iterator with pebble_cqueue_wait().
 * Thread safety: any thread may add and drain.
 */
typedef struct pebble_cqueue pebble_cqueue;
/**
 * @brief Create a completion queue.
 * @param[out] queue The new queue, owned by the caller: free it with
 * pebble_cqueue_destroy().
 * @return #PEBBLE_OK, #PEBBLE_EINVAL (NULL queue), #PEBBLE_ENOMEM or
 * #PEBBLE_ESYSTEM.
 */
PEBBLE_API int pebble_cqueue_create(pebble_cqueue **queue);
/**
 * @brief Release the queue.
 *
 * Futures still in it are released; futures that resolve later are not
 * delivered.
 * @param queue The queue; NULL is ignored.
 */
PEBBLE_API void pebble_cqueue_destroy(pebble_cqueue *queue);
/**
 * @brief The queue's OS handle, for an event loop to watch.
 * @param queue The queue.
 * @param[out] handle The handle (a file descriptor on POSIX, an Event
 * HANDLE on Windows), created on first call and owned by the queue: do
 * not read or close it.
 * @return #PEBBLE_OK, or #PEBBLE_ENOTSUP if the backend has no notifier.
 */
PEBBLE_API int pebble_cqueue_handle(pebble_cqueue *queue, intptr_t *handle);
/**
 * @brief Deliver future to the queue when it resolves (at once if it has).
 * @param queue The queue.
 * @param future The future; the queue takes its own reference.
 * @return #PEBBLE_OK or #PEBBLE_EINVAL.
 */
PEBBLE_API int pebble_cqueue_add(pebble_cqueue *queue, pebble_future *future);
/**
 * @brief Take up to cap resolved futures without waiting.
 *
 * The handle stops being readable once the queue is empty.
 * @param queue The queue.
 * @param[out] futures The caller's array of cap entries; the caller owns
 * one reference to each future written and releases it.
 * @param cap The array's length.
 * @param[out] count How many were taken.
 * @return #PEBBLE_OK, or #PEBBLE_EINVAL (NULL argument).
 */
PEBBLE_API int pebble_cqueue_drain(pebble_cqueue *queue,
                                   pebble_future **futures, size_t cap,
                                   size_t *count);
/**
 * @brief Take the next resolved future, waiting up to timeout.
 * @param queue The queue.
 * @param timeout The longest wait.
 * @param[out] future The future; the caller owns a reference and releases
 * it.
 * @return #PEBBLE_OK, #PEBBLE_ENOTREADY, or #PEBBLE_EINVAL (NULL argument
 * or a bad timeout).
 */
PEBBLE_API int pebble_cqueue_wait(pebble_cqueue *queue, pebble_time_t timeout,
                                  pebble_future **future);

/** @} */

/**
 * @page pebble_after_fork After fork
 *
 * When the application forks while Pebble is in use, the
 * child inherits objects it cannot use: calls on them return
 * #PEBBLE_EFORKED.  The child may use Pebble afresh: its first call
 * initialises a new library state.  Process tasks run in such a forked
 * child and may use Pebble themselves.  Fork mode is unsafe for
 * applications that use libraries which are not fork-safe.
 */

#ifdef __cplusplus
}
#endif

#endif /* PEBBLE_H */
