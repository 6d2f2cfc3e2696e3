// SPDX-License-Identifier: Apache-2.0
#pragma once
// Softmax over the last axis (each row), with an optional scale and additive mask.
//
//   x [rows, cols]; mask [mask_rows, cols] with rows = mask_rows * group; scale s (default 1)
//   y_r = softmax(s x_r + mask_{floor(r / group)})
// The mask broadcasts over consecutive groups of rows: attention scores laid out as
// [batch, heads, seq] rows by seq columns take a [batch, seq] padding mask with group = heads * seq.
// The mask is a constant (0 to keep, a large negative number to drop); it receives no gradient.
// The scale is attention's 1/sqrt(head_dim), applied here so the scaled scores are never stored.
// Backward (accumulating), from the cached output:  dx_r += s y_r * (dy_r - <dy_r, y_r>)

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

namespace detail {
template <class Scalar>
var<Scalar> softmax_rows(tape<Scalar>& t, const var<Scalar>& x, const Scalar* mask, index_t group, Scalar scale) {
  const index_t cols = x.cols();
  var<Scalar> y = t.make(x.rows(), cols, any_needs_gradient(t, x));
  for_each_chunk(x.rows(), row_grain(cols), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      auto out = flat(y.value_data(), r * cols, (r + 1) * cols);
      out = scale * flat(x.value_data(), r * cols, (r + 1) * cols);
      if (mask != nullptr) out += flat(mask, (r / group) * cols, (r / group + 1) * cols);
      out = (out - out.maxCoeff()).exp();
      out /= out.sum();
    }
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      for_each_chunk(y.rows(), row_grain(cols), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
          const auto out = flat(y.value_data(), r * cols, (r + 1) * cols);
          const auto dy = flat(y.adjoint_data(), r * cols, (r + 1) * cols);
          const Scalar dot = (dy * out).sum();
          flat(x.adjoint_data(), r * cols, (r + 1) * cols) += scale * out * (dy - dot);
        }
      });
    });
  }
  return y;
}
}  // namespace detail

template <class Scalar>
var<Scalar> softmax(tape<Scalar>& t, const var<Scalar>& x) {
  return detail::softmax_rows(t, x, static_cast<const Scalar*>(nullptr), 1, Scalar(1));
}

template <class Scalar>
var<Scalar> softmax(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& additive_mask,
                    index_t rows_per_mask_row, Scalar scale = Scalar(1)) {
  if (rows_per_mask_row < 1) {
    throw shape_error(fmt::format("softmax: argument 'rows_per_mask_row' is {}, expected at least 1",
                                  rows_per_mask_row));
  }
  if (x.rows() % rows_per_mask_row != 0) {
    throw shape_error(fmt::format("softmax: argument 'x' has {} rows, expected a multiple of "
                                  "rows_per_mask_row = {}", x.rows(), rows_per_mask_row));
  }
  check_shape("softmax", "additive_mask", additive_mask.shape(), {x.rows() / rows_per_mask_row, x.cols()});
  return detail::softmax_rows(t, x, additive_mask.value_data(), rows_per_mask_row, scale);
}

}  // namespace earlybert
