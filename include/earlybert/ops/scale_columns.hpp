// SPDX-License-Identifier: Apache-2.0
#pragma once
// Scaling groups of columns by one coefficient each: the slimming coefficients of EarlyBERT.
//
//   x [rows, groups * group_size], c [1, groups]
//   y[r, g*group_size + i] = c[g] * x[r, g*group_size + i]
// A head's coefficient scales its head_dim columns of the merged attention context (group_size =
// head_dim), which is the same as scaling its attention probabilities; an FFN neuron's coefficient
// scales its column of the GELU output (group_size = 1). Backward (accumulating):
//   dx[r, j] += c[j / group_size] dy[r, j]
//   dc[g]    += sum over r and the group's columns of dy * x
// The column sums run per column part in row order and are added per group serially, so dc is the
// same for every thread count.

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> scale_columns(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& coefficients, index_t group_size) {
  if (group_size < 1 || x.cols() % group_size != 0) {
    throw shape_error(fmt::format("scale_columns: group size {} does not divide the {} columns of 'x'", group_size, x.cols()));
  }
  const index_t rows = x.rows(), cols = x.cols(), groups = cols / group_size;
  check_shape("scale_columns", "coefficients", coefficients.shape(), {1, groups});
  var<Scalar> y = t.make(rows, cols, any_needs_gradient(t, x, coefficients));
  // The coefficient of every column, [cols], so both passes are plain element-wise products.
  Scalar* per_column = t.template scratch<Scalar>(cols);
  for (index_t j = 0; j < cols; ++j) per_column[j] = coefficients.value_data()[j / group_size];
  detail::for_each_chunk(rows, detail::row_grain(cols), [&](index_t r0, index_t r1) {
    const auto c = detail::flat(static_cast<const Scalar*>(per_column), 0, cols);
    for (index_t r = r0; r < r1; ++r) {
      detail::flat(y.value_data(), r * cols, (r + 1) * cols) = detail::flat(x.value_data(), r * cols, (r + 1) * cols) * c;
    }
  });
  if (y.needs_gradient()) {
    Scalar* column_dots = coefficients.needs_gradient() ? t.template scratch<Scalar>(cols) : nullptr;
    t.on_backward([=] {
      if (x.needs_gradient()) {
        detail::for_each_chunk(rows, detail::row_grain(cols), [&](index_t r0, index_t r1) {
          const auto c = detail::flat(static_cast<const Scalar*>(per_column), 0, cols);
          for (index_t r = r0; r < r1; ++r) {
            detail::flat(x.adjoint_data(), r * cols, (r + 1) * cols) += detail::flat(y.adjoint_data(), r * cols, (r + 1) * cols) * c;
          }
        });
      }
      if (column_dots != nullptr) {
        std::fill(column_dots, column_dots + cols, Scalar(0));
        detail::add_column_dots(y.adjoint_data(), x.value_data(), rows, cols, column_dots);
        for (index_t j = 0; j < cols; ++j) coefficients.adjoint_data()[j / group_size] += column_dots[j];
      }
    });
  }
  return y;
}

}  // namespace earlybert
