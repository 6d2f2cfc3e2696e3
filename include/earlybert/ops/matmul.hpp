// SPDX-License-Identifier: Apache-2.0
#pragma once
// Matrix products: one GEMM (matmul), a fully connected layer (affine), and a batch of equal-sized
// GEMMs (batched_matmul, the per-(sequence, head) attention products).
//
// op(X) is X or X^T as the transpose flag says; the stored operands are row-major.
//   matmul:          C [m, n] = op(A) [m, k] * op(B) [k, n]
//   affine:          Y [m, n] = X [m, k] * W^T + b, W [n, k], b [1, n] broadcast over rows
//   batched_matmul:  A, B and C are `batches` equal blocks of rows stacked vertically,
//                    C_i = op(A_i) * op(B_i) for every block i.
// Backward (accumulating; docs/tape.md derives it):
//   d op(A) += dC * op(B)^T        d op(B) += op(A)^T * dC
// mapped back through the transposes so that every product is a single GEMM with beta = 1.

#include <utility>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"
#include "earlybert/detail/parallel.hpp"

namespace earlybert {

enum class transpose : bool { no = false, yes = true };

namespace detail {

struct product_extents {
  index_t m, n, k;
};

// Validates op(A) [m, k] * op(B) [k, n] for stored shapes a [ra, ca] and b [rb, cb].
inline product_extents product_shape(const char* op, shape2 a, transpose ta, shape2 b, transpose tb) {
  const index_t m = ta == transpose::yes ? a.cols : a.rows;
  const index_t k = ta == transpose::yes ? a.rows : a.cols;
  const index_t n = tb == transpose::yes ? b.rows : b.cols;
  const shape2 expected_b = tb == transpose::yes ? shape2{shape2::any, k} : shape2{k, shape2::any};
  check_shape(op, "b", b, expected_b);
  return {m, n, k};
}

// The three GEMMs of a product and its backward, on raw blocks. `serial` picks one-thread BLAS (used
// inside the batched product's tasks) or the panel-parallel GEMM.
template <class Scalar>
void product_forward(bool serial, transpose ta, transpose tb, product_extents e, const Scalar* a,
                     index_t lda, const Scalar* b, index_t ldb, Scalar* c) {
  const bool ta_ = ta == transpose::yes, tb_ = tb == transpose::yes;
  if (serial) gemm_serial(ta_, tb_, e.m, e.n, e.k, Scalar(1), a, lda, b, ldb, Scalar(0), c, e.n);
  else gemm(ta_, tb_, e.m, e.n, e.k, Scalar(1), a, lda, b, ldb, Scalar(0), c, e.n);
}

template <class Scalar>
void product_backward(bool serial, transpose ta, transpose tb, product_extents e, const Scalar* a,
                      Scalar* da, index_t lda, const Scalar* b, Scalar* db, index_t ldb, const Scalar* dc) {
  const bool ta_ = ta == transpose::yes, tb_ = tb == transpose::yes;
  auto run = [serial](bool x, bool y, index_t m, index_t n, index_t k, const Scalar* p, index_t ldp,
                      const Scalar* q, index_t ldq, Scalar* r, index_t ldr) {
    if (serial) gemm_serial(x, y, m, n, k, Scalar(1), p, ldp, q, ldq, Scalar(1), r, ldr);
    else gemm(x, y, m, n, k, Scalar(1), p, ldp, q, ldq, Scalar(1), r, ldr);
  };
  if (da != nullptr) {
    if (!ta_) run(false, !tb_, e.m, e.k, e.n, dc, e.n, b, ldb, da, lda);  // dA += dC op(B)^T
    else run(tb_, true, e.k, e.m, e.n, b, ldb, dc, e.n, da, lda);         // dA += op(B) dC^T
  }
  if (db != nullptr) {
    if (!tb_) run(!ta_, false, e.k, e.n, e.m, a, lda, dc, e.n, db, ldb);  // dB += op(A)^T dC
    else run(true, ta_, e.n, e.k, e.m, dc, e.n, a, lda, db, ldb);         // dB += dC^T op(A)
  }
}

}  // namespace detail

// C [m, n] = op(a) * op(b). Large products are split across threads (core/threading.hpp).
template <class Scalar>
var<Scalar> matmul(tape<Scalar>& t, const var<Scalar>& a, const var<Scalar>& b,
                   transpose transpose_a = transpose::no, transpose transpose_b = transpose::no) {
  const auto e = detail::product_shape("matmul", a.shape(), transpose_a, b.shape(), transpose_b);
  var<Scalar> c = t.make(e.m, e.n, any_needs_gradient(t, a, b));
  detail::product_forward(false, transpose_a, transpose_b, e, a.value_data(), a.cols(),
                          b.value_data(), b.cols(), c.value_data());
  if (c.needs_gradient()) {
    t.on_backward([=] {
      detail::product_backward(false, transpose_a, transpose_b, e, a.value_data(), a.adjoint_data(),
                               a.cols(), b.value_data(), b.adjoint_data(), b.cols(),
                               c.adjoint_data());
    });
  }
  return c;
}

// y [m, n] = x [m, k] w^T + b, with w [n, k] (nn.Linear's layout) and b [1, n]: matmul followed by
// add_bias in one op. The bias fills y and the GEMM accumulates onto it (beta = 1), so there is no
// intermediate [m, n] product, no second adjoint to clear and no extra pass over y either way.
// Backward: dx += dy w, dw += dy^T x, db += the column sums of dy.
template <class Scalar>
var<Scalar> affine(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& w, const var<Scalar>& b) {
  const auto e = detail::product_shape("affine", x.shape(), transpose::no, w.shape(), transpose::yes);
  check_shape("affine", "bias", b.shape(), {1, e.n});
  var<Scalar> y = t.make(e.m, e.n, any_needs_gradient(t, x, w, b));
  detail::for_each_chunk(e.m, detail::row_grain(e.n), [&](index_t r0, index_t r1) {
    const auto bias = detail::flat(b.value_data(), 0, e.n);
    for (index_t r = r0; r < r1; ++r) detail::flat(y.value_data(), r * e.n, (r + 1) * e.n) = bias;
  });
  detail::gemm(false, true, e.m, e.n, e.k, Scalar(1), x.value_data(), e.k, w.value_data(), e.k, Scalar(1), y.value_data(), e.n);
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::product_backward(false, transpose::no, transpose::yes, e, x.value_data(), x.adjoint_data(), e.k, w.value_data(),
                               w.adjoint_data(), e.k, y.adjoint_data());
      if (b.needs_gradient()) detail::add_column_sums(y.adjoint_data(), e.m, e.n, b.adjoint_data());
    });
  }
  return y;
}

// `batches` independent products: a is [batches * ra, ca], b is [batches * rb, cb], and block i of
// the result, [m, n], is op(a_i) * op(b_i). Parallel over blocks, one-thread GEMMs inside.
template <class Scalar>
var<Scalar> batched_matmul(tape<Scalar>& t, const var<Scalar>& a, const var<Scalar>& b, index_t batches,
                           transpose transpose_a = transpose::no,
                           transpose transpose_b = transpose::no) {
  if (batches < 1) {
    throw shape_error(fmt::format("batched_matmul: argument 'batches' is {}, expected at least 1", batches));
  }
  for (const auto& [name, rows] : {std::pair{"a", a.rows()}, std::pair{"b", b.rows()}}) {
    if (rows % batches != 0) {
      throw shape_error(fmt::format("batched_matmul: argument '{}' has {} rows, expected a multiple "
                                    "of batches = {}", name, rows, batches));
    }
  }
  const shape2 block_a{a.rows() / batches, a.cols()}, block_b{b.rows() / batches, b.cols()};
  const auto e = detail::product_shape("batched_matmul (per block)", block_a, transpose_a, block_b, transpose_b);
  var<Scalar> c = t.make(batches * e.m, e.n, any_needs_gradient(t, a, b));

  const index_t a_stride = block_a.rows * block_a.cols, b_stride = block_b.rows * block_b.cols;
  const index_t c_stride = e.m * e.n;
  detail::for_each_chunk(batches, 1, [&](index_t begin, index_t end) {
    for (index_t i = begin; i < end; ++i) {
      detail::product_forward(true, transpose_a, transpose_b, e, a.value_data() + i * a_stride,
                              a.cols(), b.value_data() + i * b_stride, b.cols(),
                              c.value_data() + i * c_stride);
    }
  });
  if (c.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_chunk(batches, 1, [&](index_t begin, index_t end) {
        for (index_t i = begin; i < end; ++i) {
          Scalar* da = a.needs_gradient() ? a.adjoint_data() + i * a_stride : nullptr;
          Scalar* db = b.needs_gradient() ? b.adjoint_data() + i * b_stride : nullptr;
          detail::product_backward(true, transpose_a, transpose_b, e, a.value_data() + i * a_stride,
                                   da, a.cols(), b.value_data() + i * b_stride, db, b.cols(),
                                   c.adjoint_data() + i * c_stride);
        }
      });
    });
  }
  return c;
}

}  // namespace earlybert
