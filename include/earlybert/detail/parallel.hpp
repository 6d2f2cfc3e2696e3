// SPDX-License-Identifier: Apache-2.0
#pragma once
// Parallel loops (internal), following the policy in core/threading.hpp.
//
// for_each_chunk(n, grain, f) calls f(begin, end) over disjoint chunks covering [0, n). Each chunk
// is independent work whose result does not depend on how [0, n) was cut, so results are identical
// whatever the scheduling. Loops smaller than one grain run inline with no task overhead.
//
// for_each_part(parts, f) calls f(part) for part in [0, parts), one task each: the fixed split used
// for reductions and GEMM panels, whose boundaries depend only on the thread count.

#include <algorithm>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "earlybert/core/threading.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/detail/blas.hpp"

namespace earlybert::detail {

template <class F>
void for_each_chunk(index_t n, index_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<index_t>(grain, 1);
  if (n <= grain || num_threads() == 1) {
    f(index_t{0}, n);
    return;
  }
  oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<index_t>(0, n, grain),
                            [&](const oneapi::tbb::blocked_range<index_t>& r) { f(r.begin(), r.end()); });
}

template <class F>
void for_each_part(index_t parts, F&& f) {
  if (parts <= 1) {
    if (parts == 1) f(index_t{0});
    return;
  }
  oneapi::tbb::parallel_for(
      oneapi::tbb::blocked_range<index_t>(0, parts, 1),
      [&](const oneapi::tbb::blocked_range<index_t>& r) {
        for (index_t p = r.begin(); p != r.end(); ++p) f(p);
      },
      oneapi::tbb::simple_partitioner());
}

// [begin, end) of part `p` when [0, n) is cut into `parts` near-equal pieces.
inline std::pair<index_t, index_t> part_range(index_t n, index_t parts, index_t p) {
  const index_t base = n / parts, extra = n % parts;
  const index_t begin = p * base + std::min(p, extra);
  return {begin, begin + base + (p < extra ? 1 : 0)};
}

// Grain for row loops: rows of `cols` scalars, aiming at >= ~16k scalars per task so that task
// overhead stays negligible.
inline index_t row_grain(index_t cols) { return std::max<index_t>(1, 16384 / std::max<index_t>(cols, 1)); }

// GEMMs below this many multiply-adds run on one thread: splitting costs more than it saves.
inline constexpr double parallel_gemm_min_madds = 1 << 21;

// C = alpha op(A) op(B) + beta C, split into num_threads() panels along the larger of m and n, each
// panel a one-thread BLAS call in its own TBB task.
template <class Scalar>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, Scalar alpha, const Scalar* a,
          index_t lda, const Scalar* b, index_t ldb, Scalar beta, Scalar* c, index_t ldc) {
  const index_t threads = num_threads();
  const double madds = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (threads == 1 || madds < parallel_gemm_min_madds) {
    gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (m >= n) {
    // Row panels of C are row panels of op(A): rows of A, or columns of A when it is transposed.
    const index_t parts = std::min(threads, m);
    for_each_part(parts, [&](index_t p) {
      const auto [r0, r1] = part_range(m, parts, p);
      const Scalar* a_panel = trans_a ? a + r0 : a + r0 * lda;
      gemm_serial(trans_a, trans_b, r1 - r0, n, k, alpha, a_panel, lda, b, ldb, beta, c + r0 * ldc, ldc);
    });
  } else {
    // Column panels of C are column panels of op(B): columns of B, or rows of B when transposed.
    const index_t parts = std::min(threads, n);
    for_each_part(parts, [&](index_t p) {
      const auto [c0, c1] = part_range(n, parts, p);
      const Scalar* b_panel = trans_b ? b + c0 * ldb : b + c0;
      gemm_serial(trans_a, trans_b, m, c1 - c0, k, alpha, a, lda, b_panel, ldb, beta, c + c0, ldc);
    });
  }
}

}  // namespace earlybert::detail
