// SPDX-License-Identifier: Apache-2.0
#pragma once
// Matrix products: one GEMM (matmul), a fully connected layer (affine), a batch of equal-sized GEMMs
// (batched_matmul), and attention's per-(sequence, head) products read and written in place in the
// projections' [tokens, heads * head_dim] layout (head_scores, head_context), queries as many as the
// keys or fewer.
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
                     index_t lda, const Scalar* b, index_t ldb, Scalar* c, index_t ldc) {
  const bool ta_ = ta == transpose::yes, tb_ = tb == transpose::yes;
  if (serial) gemm_serial(ta_, tb_, e.m, e.n, e.k, Scalar(1), a, lda, b, ldb, Scalar(0), c, ldc);
  else gemm(ta_, tb_, e.m, e.n, e.k, Scalar(1), a, lda, b, ldb, Scalar(0), c, ldc);
}

template <class Scalar>
void product_backward(bool serial, transpose ta, transpose tb, product_extents e, const Scalar* a,
                      Scalar* da, index_t lda, const Scalar* b, Scalar* db, index_t ldb, const Scalar* dc, index_t ldc) {
  const bool ta_ = ta == transpose::yes, tb_ = tb == transpose::yes;
  auto run = [serial](bool x, bool y, index_t m, index_t n, index_t k, const Scalar* p, index_t ldp,
                      const Scalar* q, index_t ldq, Scalar* r, index_t ldr) {
    if (serial) gemm_serial(x, y, m, n, k, Scalar(1), p, ldp, q, ldq, Scalar(1), r, ldr);
    else gemm(x, y, m, n, k, Scalar(1), p, ldp, q, ldq, Scalar(1), r, ldr);
  };
  if (da != nullptr) {
    if (!ta_) run(false, !tb_, e.m, e.k, e.n, dc, ldc, b, ldb, da, lda);  // dA += dC op(B)^T
    else run(tb_, true, e.k, e.m, e.n, b, ldb, dc, ldc, da, lda);         // dA += op(B) dC^T
  }
  if (db != nullptr) {
    if (!tb_) run(!ta_, false, e.k, e.n, e.m, a, lda, dc, ldc, db, ldb);  // dB += op(A)^T dC
    else run(true, ta_, e.n, e.k, e.m, dc, ldc, a, lda, db, ldb);         // dB += dC^T op(A)
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
                          b.value_data(), b.cols(), c.value_data(), e.n);
  if (c.needs_gradient()) {
    t.on_backward([=] {
      detail::product_backward(false, transpose_a, transpose_b, e, a.value_data(), a.adjoint_data(),
                               a.cols(), b.value_data(), b.adjoint_data(), b.cols(),
                               c.adjoint_data(), e.n);
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
                               w.adjoint_data(), e.k, y.adjoint_data(), e.n);
      if (b.needs_gradient()) detail::add_column_sums(y.adjoint_data(), e.m, e.n, b.adjoint_data());
    });
  }
  return y;
}

namespace detail {
// Where block i of a batched operand lies in its [rows, cols] storage: `per_band` blocks of
// [block_rows, block_cols] side by side in every band of block_rows rows, row stride `ld`:
//   block i starts at (i / per_band) * block_rows * ld + (i % per_band) * block_cols.
// Blocks stacked vertically (batched_matmul) are per_band = 1, ld = block_cols; the heads of a
// [batch * seq, heads * head_dim] projection (head_scores, head_context) are per_band = heads,
// ld = heads * head_dim: each (sequence, head) block is read and written in place, with no copy.
struct block_view {
  index_t block_rows, block_cols, ld, per_band;
  index_t offset(index_t i) const noexcept { return (i / per_band) * block_rows * ld + (i % per_band) * block_cols; }
  shape2 block() const noexcept { return {block_rows, block_cols}; }
};

inline block_view stacked(shape2 whole, index_t batches) { return {whole.rows / batches, whole.cols, whole.cols, 1}; }

// C_i = op(A_i) op(B_i) for i < batches, into a new [c_rows, c_cols] var whose blocks `vc` describes.
// Parallel over blocks, a one-thread GEMM each; blocks of C (and of dA, dB) never overlap.
template <class Scalar>
var<Scalar> blocked_product(tape<Scalar>& t, const char* op, index_t batches, const var<Scalar>& a, block_view va,
                            transpose ta, const var<Scalar>& b, block_view vb, transpose tb, shape2 c_shape, block_view vc) {
  const auto e = product_shape(op, va.block(), ta, vb.block(), tb);
  EARLYBERT_ASSERT(e.m == vc.block_rows && e.n == vc.block_cols);
  var<Scalar> c = t.make(c_shape.rows, c_shape.cols, any_needs_gradient(t, a, b));
  for_each_chunk(batches, 1, [&](index_t begin, index_t end) {
    for (index_t i = begin; i < end; ++i) {
      product_forward(true, ta, tb, e, a.value_data() + va.offset(i), va.ld, b.value_data() + vb.offset(i), vb.ld,
                      c.value_data() + vc.offset(i), vc.ld);
    }
  });
  if (c.needs_gradient()) {
    t.on_backward([=] {
      for_each_chunk(batches, 1, [&](index_t begin, index_t end) {
        for (index_t i = begin; i < end; ++i) {
          Scalar* da = a.needs_gradient() ? a.adjoint_data() + va.offset(i) : nullptr;
          Scalar* db = b.needs_gradient() ? b.adjoint_data() + vb.offset(i) : nullptr;
          product_backward(true, ta, tb, e, a.value_data() + va.offset(i), da, va.ld, b.value_data() + vb.offset(i), db, vb.ld,
                           c.adjoint_data() + vc.offset(i), vc.ld);
        }
      });
    });
  }
  return c;
}

// Checks that x is [batch * seq, heads * head_dim] for some seq and returns its heads' view.
inline block_view head_view(const char* op, const char* name, shape2 x, index_t batch, index_t heads) {
  if (batch < 1 || heads < 1) {
    throw shape_error(fmt::format("{}: batch and heads must be at least 1, got batch = {}, heads = {}", op, batch, heads));
  }
  if (x.rows % batch != 0 || x.cols % heads != 0) {
    throw shape_error(fmt::format("{}: argument '{}' has shape [{}, {}], expected [batch * seq, heads * head_dim] with batch = {}, "
                                  "heads = {}", op, name, x.rows, x.cols, batch, heads));
  }
  return {x.rows / batch, x.cols / heads, x.cols, heads};
}
}  // namespace detail

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
  const detail::block_view va = detail::stacked(a.shape(), batches), vb = detail::stacked(b.shape(), batches);
  const auto e = detail::product_shape("batched_matmul (per block)", va.block(), transpose_a, vb.block(), transpose_b);
  return detail::blocked_product(t, "batched_matmul (per block)", batches, a, va, transpose_a, b, vb, transpose_b,
                                 {batches * e.m, e.n}, detail::stacked({batches * e.m, e.n}, batches));
}

// Attention scores of every (sequence, head), read in place from the projections:
//   q [batch * queries, heads * head_dim] (rows b * queries + i, columns h * head_dim + j)
//   k [batch * seq, heads * head_dim]
//   scores [batch * heads * queries, seq], block (b, h) = Q_bh K_bh^T
// where Q_bh is rows b*queries .. (b+1)*queries and columns h*head_dim .. (h+1)*head_dim of q, and
// K_bh likewise with seq rows. Self-attention has queries = seq; fewer queries than keys are the
// positions still computed while the others only serve as keys and values (nn/early_exit.hpp). The
// layout of the scores is the one softmax's broadcast padding mask expects (group = heads * queries).
template <class Scalar>
var<Scalar> head_scores(tape<Scalar>& t, const var<Scalar>& q, const var<Scalar>& k, index_t batch, index_t heads) {
  const detail::block_view vq = detail::head_view("head_scores", "q", q.shape(), batch, heads);
  const detail::block_view vk = detail::head_view("head_scores", "k", k.shape(), batch, heads);
  check_shape("head_scores", "k", k.shape(), {shape2::any, q.cols()});
  const index_t queries = vq.block_rows, seq = vk.block_rows;
  return detail::blocked_product(t, "head_scores", batch * heads, q, vq, transpose::no, k, vk, transpose::yes,
                                 {batch * heads * queries, seq}, detail::stacked({batch * heads * queries, seq}, batch * heads));
}

// The heads' contexts, written in place into the merged layout:
//   probabilities [batch * heads * queries, seq], v [batch * seq, heads * head_dim]
//   context [batch * queries, heads * head_dim], block (b, h) = P_bh V_bh
template <class Scalar>
var<Scalar> head_context(tape<Scalar>& t, const var<Scalar>& probabilities, const var<Scalar>& v, index_t batch, index_t heads) {
  const detail::block_view vv = detail::head_view("head_context", "v", v.shape(), batch, heads);
  const index_t seq = vv.block_rows;
  if (probabilities.rows() % (batch * heads) != 0) {
    throw shape_error(fmt::format("head_context: argument 'probabilities' has {} rows, expected batch * heads * queries with batch = {}, heads = {}",
                                  probabilities.rows(), batch, heads));
  }
  const index_t queries = probabilities.rows() / (batch * heads);
  check_shape("head_context", "probabilities", probabilities.shape(), {batch * heads * queries, seq});
  const shape2 context{batch * queries, v.cols()};
  return detail::blocked_product(t, "head_context", batch * heads, probabilities, detail::stacked(probabilities.shape(), batch * heads),
                                 transpose::no, v, vv, transpose::no, context, detail::block_view{queries, vv.block_cols, vv.ld, heads});
}

}  // namespace earlybert
