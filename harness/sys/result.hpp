// Result<T>: a value or the std::error_code saying why there is none.
// Low-level calls return it instead of throwing: a failed syscall is an
// outcome the caller acts on, not an exceptional condition.
#pragma once

#include <cassert>
#include <cerrno>
#include <system_error>
#include <utility>
#include <variant>

namespace reclaim::sys {

template <class T>
class Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(std::error_code error) : state_(std::in_place_index<1>, error) {}  // NOLINT: implicit by design

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition for value()/operator->/operator*: ok().
  T& value() & { assert(ok()); return std::get<0>(state_); }
  const T& value() const& { assert(ok()); return std::get<0>(state_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error; an empty error_code when ok().
  std::error_code error() const { return ok() ? std::error_code{} : std::get<1>(state_); }

 private:
  std::variant<T, std::error_code> state_;
};

// The error of the last failed libc call.
inline std::error_code last_error() { return {errno, std::system_category()}; }

}  // namespace reclaim::sys
