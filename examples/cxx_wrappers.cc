// SPDX-License-Identifier: Apache-2.0
//
// cxx_wrappers.cc -- Pebble from C++ (C++11): the library, a pool and a
// future as small move-only classes whose destructors release what they
// hold, and the wrapper a C++ task needs at its boundary.
//
// Exceptions and tasks: Pebble is a C library and cannot catch a C++
// exception.  An exception that leaves a thread task unwinds into C code
// and ends in std::terminate(): the whole program stops.  One that leaves
// a process task stops that child (SIGABRT): its future fails with
// PEBBLE_EDIED.  So every C++ task body goes through task<>() below, which
// catches at the boundary and fails the future with the exception's
// what() text (pebble_fail); the caller reads it as PEBBLE_ETASK and
// pebble_future_message(), here as a pebblexx::error.
//
// Built when configure finds a C++ compiler.
#include <cinttypes>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pebble.h>

namespace pebblexx {

// A failed call or outcome: the status code and the library's message.
class error : public std::runtime_error {
 public:
  error(int status, const std::string &what)
      : std::runtime_error(what), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

inline void check(int status, const char *call) {
  if (status != PEBBLE_OK)
    throw error(status, std::string(call) + ": " + pebble_last_error());
}

// Initialised on construction, shut down on destruction.  Declare it
// first, so that every pool and future (declared after it) is gone when
// it shuts down.
class library {
 public:
  library() { check(pebble_init(), "pebble_init"); }
  ~library() {
    int status = pebble_shutdown(); // a destructor does not throw: say it
    if (status != PEBBLE_OK)
      std::fprintf(stderr, "pebble_shutdown: %s\n", pebble_last_error());
  }
  library(const library &) = delete;
  library &operator=(const library &) = delete;
};

// One reference to a future; moving hands it over.
class future {
 public:
  explicit future(pebble_future *f) noexcept : f_(f) {}
  future(future &&other) noexcept : f_(other.f_) { other.f_ = nullptr; }
  future &operator=(future &&other) noexcept {
    if (this != &other) {
      reset();
      std::swap(f_, other.f_);
    }
    return *this;
  }
  future(const future &) = delete;
  future &operator=(const future &) = delete;
  ~future() { reset(); }

  // The value of a pebble_result_int() result, waiting up to timeout;
  // any other outcome throws error with its status and message.
  std::int64_t get_int(pebble_time_t timeout = PEBBLE_FOREVER) const {
    std::int64_t value = 0;
    int status = pebble_future_get_int(f_, timeout, &value);
    if (status != PEBBLE_OK) {
      std::string text = pebble_strerror(status);
      const char *message = pebble_future_message(f_);
      if (message != nullptr && *message != '\0')
        text += std::string(": ") + message;
      throw error(status, text);
    }
    return value;
  }
  int status() const noexcept { return pebble_future_status(f_); }
  int task_code() const noexcept { return pebble_future_task_code(f_); }
  std::string message() const { return pebble_future_message(f_); }

 private:
  void reset() noexcept {
    pebble_future_release(f_); // NULL is ignored
    f_ = nullptr;
  }
  pebble_future *f_;
};

// A thread or process pool; destroyed (stopped, joined) on destruction.
class pool {
 public:
  explicit pool(pebble_kind kind, unsigned workers = 0) {
    pebble_pool_options opts;
    pebble_pool_options_init(&opts);
    if (workers > 0)
      opts.workers = workers;
    check(pebble_pool_create(&p_, kind, &opts), "pebble_pool_create");
  }
  pool(pool &&other) noexcept : p_(other.p_) { other.p_ = nullptr; }
  pool &operator=(pool &&other) noexcept {
    if (this != &other) {
      pebble_pool_destroy(p_);
      p_ = other.p_;
      other.p_ = nullptr;
    }
    return *this;
  }
  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;
  ~pool() { pebble_pool_destroy(p_); } // NULL is ignored

  // The argument's bytes are copied, so it must be a plain value.
  template <typename Arg>
  future schedule(pebble_task_fn fn, const Arg &arg) {
    static_assert(std::is_trivially_copyable<Arg>::value,
                  "a task argument travels as bytes");
    pebble_future *f = nullptr;
    check(pebble_pool_schedule(p_, fn, &arg, sizeof arg, nullptr, &f),
          "pebble_pool_schedule");
    return future(f);
  }

 private:
  pebble_pool *p_ = nullptr;
};

// The task code an exception fails its future with (read back with
// future::task_code()).
const int exception_task_code = 70;

// The boundary between the C library and C++ task code: reads the
// integer argument, runs Body, sets its value as the result, and turns
// any exception into a failed future carrying the what() text.  Nothing
// is thrown past it into the library.
template <std::int64_t (*Body)(std::int64_t)>
int task(pebble_ctx *ctx, const void *arg, size_t size) noexcept {
  try {
    std::int64_t n;
    if (pebble_arg_int(arg, size, &n) != PEBBLE_OK)
      throw std::invalid_argument("the argument is not an integer");
    return pebble_result_int(ctx, Body(n));
  } catch (const std::exception &e) {
    return pebble_fail(ctx, exception_task_code, "%s", e.what());
  } catch (...) {
    return pebble_fail(ctx, exception_task_code, "an exception that is not a std::exception");
  }
}

} // namespace pebblexx

static std::int64_t square(std::int64_t n) { return n * n; }

static std::int64_t integer_sqrt(std::int64_t n) {
  if (n < 0)
    throw std::runtime_error("no square root of a negative number: " +
                             std::to_string(n));
  std::int64_t r = 0;
  while ((r + 1) * (r + 1) <= n)
    r++;
  return r;
}

// A throwing task on a pool of this kind: its future must fail with
// PEBBLE_ETASK, the wrapper's code and the what() text.
static bool thrown_becomes_failure(pebble_kind kind, const char *name) {
  pebblexx::pool pool(kind, 1);
  pebblexx::future good = pool.schedule(pebblexx::task<integer_sqrt>, std::int64_t(49));
  pebblexx::future bad = pool.schedule(pebblexx::task<integer_sqrt>, std::int64_t(-4));
  std::int64_t root = good.get_int();
  try {
    bad.get_int();
    std::printf("%s pool: no exception from the failed future\n", name);
    return false;
  } catch (const pebblexx::error &e) {
    std::printf("%s pool: sqrt(49) = %" PRId64 "; sqrt(-4) threw in the task -> "
                "status %d (%s), task code %d, message \"%s\"\n",
                name, root, e.status(), pebble_strerror(e.status()),
                bad.task_code(), bad.message().c_str());
    return root == 7 && e.status() == PEBBLE_ETASK &&
           bad.task_code() == pebblexx::exception_task_code &&
           bad.message() == "no square root of a negative number: -4";
  }
}

int main() {
  try {
    pebblexx::library library; // first in, last out
    bool ok = true;
    {
      pebblexx::pool pool(PEBBLE_THREAD, 2);
      std::vector<pebblexx::future> futures;
      for (std::int64_t i = 1; i <= 10; i++)
        futures.push_back(pool.schedule(pebblexx::task<square>, i));
      std::int64_t total = 0;
      for (const pebblexx::future &f : futures)
        total += f.get_int();
      std::printf("sum of squares 1..10 = %" PRId64 "\n", total);
      ok = ok && total == 385;
    } // the futures, then the pool, released here
    ok = thrown_becomes_failure(PEBBLE_THREAD, "thread") && ok;
    ok = thrown_becomes_failure(PEBBLE_PROCESS, "process") && ok;
    std::printf("%s\n", ok ? "all checks passed" : "a check FAILED");
    return ok ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "cxx_wrappers: %s\n", e.what());
    return 1;
  }
}
