// SPDX-License-Identifier: Apache-2.0
#pragma once
// Splitting the hidden axis into attention heads, and merging it back.
//
//   split_heads(x)   x [batch*seq, heads*head_dim]  ->  y [batch*heads*seq, head_dim]
//                    y[(b*heads + h)*seq + s, :] = x[b*seq + s, h*head_dim : (h+1)*head_dim]
//   merge_heads(y)   the inverse permutation.
// After split_heads each (sequence, head) pair is one contiguous [seq, head_dim] block, which is what
// batched_matmul takes. Both are permutations, so each one's backward is the other applied to the
// adjoint (accumulating).

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

namespace detail {
struct head_layout {
  index_t batch, seq, heads, head_dim;
};

// Copies (or, with accumulate, adds) between the [batch*seq, heads*head_dim] layout `merged` and the
// [batch*heads*seq, head_dim] layout `split`, in the direction `to_split` says.
template <class Scalar>
void permute_heads(head_layout l, Scalar* merged, Scalar* split, bool to_split, bool accumulate) {
  const index_t hidden = l.heads * l.head_dim;
  for_each_chunk(l.batch * l.heads, 1, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const index_t b = p / l.heads, h = p % l.heads;
      for (index_t s = 0; s < l.seq; ++s) {
        Scalar* m = merged + (b * l.seq + s) * hidden + h * l.head_dim;
        Scalar* sp = split + (p * l.seq + s) * l.head_dim;
        Scalar* dst = to_split ? sp : m;
        const Scalar* src = to_split ? m : sp;
        if (accumulate) flat(dst, 0, l.head_dim) += flat(src, 0, l.head_dim);
        else flat(dst, 0, l.head_dim) = flat(src, 0, l.head_dim);
      }
    }
  });
}

inline head_layout check_head_layout(const char* op, shape2 found, bool merged_input, index_t batch,
                                     index_t seq, index_t heads) {
  if (batch < 1 || seq < 1 || heads < 1) {
    throw shape_error(fmt::format("{}: batch, seq and heads must be at least 1, got batch = {}, seq = {}, heads = {}",
                                  op, batch, seq, heads));
  }
  if (merged_input) {
    if (found.cols % heads != 0) {
      throw shape_error(fmt::format("{}: argument 'x' has {} columns, expected a multiple of heads = {}",
                                    op, found.cols, heads));
    }
    check_shape(op, "x", found, {batch * seq, shape2::any});
    return {batch, seq, heads, found.cols / heads};
  }
  check_shape(op, "x", found, {batch * heads * seq, shape2::any});
  return {batch, seq, heads, found.cols};
}
}  // namespace detail

template <class Scalar>
var<Scalar> split_heads(tape<Scalar>& t, const var<Scalar>& x, index_t batch, index_t seq, index_t heads) {
  const auto l = detail::check_head_layout("split_heads", x.shape(), true, batch, seq, heads);
  var<Scalar> y = t.make(batch * heads * seq, l.head_dim, any_needs_gradient(t, x));
  detail::permute_heads(l, x.value_data(), y.value_data(), true, false);
  if (y.needs_gradient()) {
    t.on_backward([=] { detail::permute_heads(l, x.adjoint_data(), y.adjoint_data(), false, true); });
  }
  return y;
}

template <class Scalar>
var<Scalar> merge_heads(tape<Scalar>& t, const var<Scalar>& x, index_t batch, index_t seq, index_t heads) {
  const auto l = detail::check_head_layout("merge_heads", x.shape(), false, batch, seq, heads);
  var<Scalar> y = t.make(batch * seq, heads * l.head_dim, any_needs_gradient(t, x));
  detail::permute_heads(l, y.value_data(), x.value_data(), false, false);
  if (y.needs_gradient()) {
    t.on_backward([=] { detail::permute_heads(l, y.adjoint_data(), x.adjoint_data(), true, true); });
  }
  return y;
}

}  // namespace earlybert
