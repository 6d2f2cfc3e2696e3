// SPDX-License-Identifier: Apache-2.0
#pragma once
// Small parallel kernels shared by the ops (internal).

#include <algorithm>
#include <array>

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

// Chunk boundaries of flat loops fall on multiples of this many scalars. Eigen evaluates a range
// in SIMD packets from its first aligned address and in scalar code before and after, and with
// EIGEN_FAST_MATH some packet functions (sqrt, exp) differ from their scalar versions in the last
// bit; boundaries at multiples of 64 scalars of an aligned buffer (Eigen's and the arena's are)
// never split a packet, so every element takes the same path whatever the chunking.
inline constexpr index_t flat_alignment = 64;

// f(begin, end) over [0, n) in parallel chunks of flat element-wise work; begin is a multiple of
// flat_alignment, and so is end unless it is n.
template <class F>
void for_each_flat(index_t n, F&& f) {
  if (n <= 0) return;
  if (n <= flat_grain || num_threads() == 1) {
    f(index_t{0}, n);
    return;
  }
  const index_t blocks = (n + flat_alignment - 1) / flat_alignment;
  for_each_chunk(blocks, flat_grain / flat_alignment,
                 [&](index_t b0, index_t b1) { f(b0 * flat_alignment, std::min(n, b1 * flat_alignment)); });
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

// Sum of squares of data[0, n), in double. The buffer is cut into fixed blocks whose boundaries
// depend only on n (never on the thread count), each block is summed in Scalar with Eigen's
// vectorised reduction, and the block sums are added in order, so the result is the same bits
// whatever the scheduling. Parallel over at most `max_parts` parts; no heap.
template <class Scalar>
double sum_of_squares(const Scalar* data, index_t n) {
  constexpr index_t block = 4096, max_parts = 64;
  if (n <= 0) return 0;
  const index_t blocks = (n + block - 1) / block;
  const index_t parts = std::min(blocks, max_parts);
  const auto part_sum = [&](index_t p) {
    const auto [b0, b1] = part_range(blocks, parts, p);
    double sum = 0;
    for (index_t b = b0; b < b1; ++b) {
      const index_t begin = b * block, end = std::min(n, begin + block);
      sum += static_cast<double>(flat(data, begin, end).square().sum());
    }
    return sum;
  };
  if (parts == 1) return part_sum(0);
  std::array<double, max_parts> sums{};
  for_each_part(parts, [&](index_t p) { sums[static_cast<std::size_t>(p)] = part_sum(p); });
  double total = 0;
  for (index_t p = 0; p < parts; ++p) total += sums[static_cast<std::size_t>(p)];
  return total;
}

}  // namespace earlybert::detail
