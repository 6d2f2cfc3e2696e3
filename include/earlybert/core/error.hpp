// SPDX-License-Identifier: Apache-2.0
#pragma once
// Errors thrown by the library, and the debug-only invariant check.
//
// Every error thrown at an API boundary derives from earlybert::error and says, in one line, where it
// happened (the op, function or file), what was found and what was expected:
//
//   matmul: argument 'b' has shape [5, 3], expected [4, *]
//
// shape_error   a size, shape or index that does not fit (only visible at run time; mismatches the types
//               can see are static_asserts instead)
// config_error  a setting outside its legal range (a probability of 1.5, a negative learning rate)
// io_error      a file that cannot be read or written, or whose contents are malformed
// numerical_error  a loss or gradient that is not finite (training stops at that step)

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "earlybert/core/types.hpp"

namespace earlybert {

class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class shape_error : public error {
 public:
  using error::error;
};

class config_error : public error {
 public:
  using error::error;
};

class io_error : public error {
 public:
  using error::error;
};

// A non-finite loss or gradient during training, naming the step and the tensor.
class numerical_error : public error {
 public:
  using error::error;
};

// A two-dimensional shape for messages; a negative extent means "any" and prints as '*'.
struct shape2 {
  index_t rows;
  index_t cols;
  static constexpr index_t any = -1;
};

inline std::string to_string(shape2 shape) {
  const auto extent = [](index_t n) { return n < 0 ? std::string("*") : std::to_string(n); };
  return fmt::format("[{}, {}]", extent(shape.rows), extent(shape.cols));
}

// True when `found` matches `expected`, treating negative extents of `expected` as wildcards.
inline bool shape_matches(shape2 found, shape2 expected) {
  return (expected.rows < 0 || found.rows == expected.rows) &&
         (expected.cols < 0 || found.cols == expected.cols);
}

// Throws shape_error "<where>: argument '<argument>' has shape [r, c], expected [r', c']".
inline void check_shape(std::string_view where, std::string_view argument, shape2 found,
                        shape2 expected) {
  if (!shape_matches(found, expected)) {
    throw shape_error(fmt::format("{}: argument '{}' has shape {}, expected {}", where, argument,
                                  to_string(found), to_string(expected)));
  }
}

}  // namespace earlybert

// EARLYBERT_ASSERT(condition): an internal invariant, checked in debug builds only (NDEBUG unset).
// A failure is a bug in the library, never a user error: those throw.
#ifdef NDEBUG
#define EARLYBERT_ASSERT(condition) static_cast<void>(0)
#else
#define EARLYBERT_ASSERT(condition)                                                              \
  ((condition) ? static_cast<void>(0)                                                          \
               : (std::fprintf(stderr, "earlybert: internal invariant failed: %s (%s:%d)\n",    \
                               #condition, __FILE__, __LINE__),                                  \
                  std::abort()))
#endif
