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

// The same range, read-only.
template <class Scalar>
Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> flat(const Scalar* data, index_t begin, index_t end) {
  return {data + begin, end - begin};
}

// Scalars per task for flat element-wise loops.
inline constexpr index_t flat_grain = 16384;

// f(begin, end) over [0, n) in parallel chunks of flat element-wise work.
template <class F>
void for_each_flat(index_t n, F&& f) {
  for_each_chunk(n, flat_grain, std::forward<F>(f));
}

// f(c0, c1) over disjoint column ranges covering [0, cols), one task each. This is the split for
// reductions over rows (parameter gradients): each task owns its columns and walks the rows in order,
// so every sum is formed in the same order whatever the thread count.
template <class F>
void for_each_column_part(index_t cols, F&& f) {
  const index_t parts = std::clamp<index_t>(cols / 64, 1, num_threads());
  for_each_part(parts, [&](index_t p) {
    const auto [c0, c1] = part_range(cols, parts, p);
    f(c0, c1);
  });
}

// dst[j] += sum over r of src[r, j] for a row-major [rows, cols] src.
template <class Scalar>
void add_column_sums(const Scalar* src, index_t rows, index_t cols, Scalar* dst) {
  for_each_column_part(cols, [&](index_t c0, index_t c1) {
    auto out = flat(dst, c0, c1);
    for (index_t r = 0; r < rows; ++r) out += flat(src + r * cols, c0, c1);
  });
}

// dst[j] += sum over r of a[r, j] * b[r, j].
template <class Scalar>
void add_column_dots(const Scalar* a, const Scalar* b, index_t rows, index_t cols, Scalar* dst) {
  for_each_column_part(cols, [&](index_t c0, index_t c1) {
    auto out = flat(dst, c0, c1);
    for (index_t r = 0; r < rows; ++r) out += flat(a + r * cols, c0, c1) * flat(b + r * cols, c0, c1);
  });
}

}  // namespace earlybert::detail
