// SPDX-License-Identifier: Apache-2.0
#pragma once
// Small parallel kernels shared by the ops (internal).

#include <algorithm>

#include <Eigen/Core>

#include "earlybert/core/types.hpp"
#include "earlybert/detail/parallel.hpp"

namespace earlybert::detail {

template <class Scalar>
using flat_array = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;

// A contiguous range [begin, end) of a buffer seen as a 1-D array.
template <class Scalar>
flat_array<Scalar> flat(Scalar* data, index_t begin, index_t end) {
  return flat_array<Scalar>(data + begin, end - begin);
}

// Scalars per task for flat element-wise loops.
inline constexpr index_t flat_grain = 16384;

// f(begin, end) over [0, n) in parallel chunks of flat element-wise work.
template <class F>
void for_each_flat(index_t n, F&& f) {
  for_each_chunk(n, flat_grain, std::forward<F>(f));
}

// dst[j] += sum over r of src[r, j] for a row-major [rows, cols] src. Columns are split across
// threads; each column is summed in row order, so the result does not depend on the thread count.
template <class Scalar>
void add_column_sums(const Scalar* src, index_t rows, index_t cols, Scalar* dst) {
  const index_t parts = std::clamp<index_t>(cols / 64, 1, num_threads());
  for_each_part(parts, [&](index_t p) {
    const auto [c0, c1] = part_range(cols, parts, p);
    auto out = flat(dst, c0, c1);
    for (index_t r = 0; r < rows; ++r) out += flat(const_cast<Scalar*>(src) + r * cols, c0, c1);
  });
}

// dst[j] += sum over r of a[r, j] * b[r, j], split and ordered as add_column_sums.
template <class Scalar>
void add_column_dots(const Scalar* a, const Scalar* b, index_t rows, index_t cols, Scalar* dst) {
  const index_t parts = std::clamp<index_t>(cols / 64, 1, num_threads());
  for_each_part(parts, [&](index_t p) {
    const auto [c0, c1] = part_range(cols, parts, p);
    auto out = flat(dst, c0, c1);
    for (index_t r = 0; r < rows; ++r) {
      out += flat(const_cast<Scalar*>(a) + r * cols, c0, c1) *
             flat(const_cast<Scalar*>(b) + r * cols, c0, c1);
    }
  });
}

}  // namespace earlybert::detail
