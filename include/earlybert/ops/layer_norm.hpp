// SPDX-License-Identifier: Apache-2.0
#pragma once
// Layer normalisation over the last axis (each row), as BERT's LayerNorm, and the same after a
// residual connection (add_layer_norm), which is how every BERT sub-layer ends.
//
//   layer_norm:      z = x                 add_layer_norm:  z = x + residual (never stored)
//   x, residual [rows, cols], gamma [1, cols], beta [1, cols]
//   mean_r = mean(z_r), var_r = mean((z_r - mean_r)^2)          (biased, as PyTorch)
//   rstd_r = 1 / sqrt(var_r + eps),  zhat_r = (z_r - mean_r) rstd_r,  y_r = gamma * zhat_r + beta
// Caches zhat [rows, cols] and rstd [rows] in the arena. Backward (accumulating):
//   dbeta += sum_r dy_r;  dgamma += sum_r dy_r * zhat_r;  g_r = dy_r * gamma
//   dz_r = rstd_r (g_r - mean(g_r) - zhat_r mean(g_r * zhat_r)),  dx_r += dz_r,  dresidual_r += dz_r

#include <cmath>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

namespace detail {
// LayerNorm of x + residual, or of x alone when residual is null.
template <class Scalar>
var<Scalar> normalise_rows(tape<Scalar>& t, const char* op, const var<Scalar>& x, const var<Scalar>* residual,
                           const var<Scalar>& gamma, const var<Scalar>& beta, Scalar epsilon) {
  const index_t rows = x.rows(), cols = x.cols();
  if (residual != nullptr) check_shape(op, "residual", residual->shape(), x.shape());
  check_shape(op, "gamma", gamma.shape(), {1, cols});
  check_shape(op, "beta", beta.shape(), {1, cols});
  if (!(epsilon > Scalar(0))) {
    throw config_error(fmt::format("{}: argument 'epsilon' is {}, expected a positive value", op, epsilon));
  }
  const var<Scalar> r = residual != nullptr ? *residual : var<Scalar>();
  const bool has_residual = residual != nullptr;
  var<Scalar> y = t.make(rows, cols, any_needs_gradient(t, x, gamma, beta) || (has_residual && any_needs_gradient(t, r)));
  const bool backward = y.needs_gradient();
  Scalar* zhat = backward ? t.template scratch<Scalar>(rows * cols) : nullptr;
  Scalar* rstd = backward ? t.template scratch<Scalar>(rows) : nullptr;

  for_each_chunk(rows, row_grain(cols), [&](index_t r0, index_t r1) {
    const auto g = flat(gamma.value_data(), 0, cols);
    const auto b = flat(beta.value_data(), 0, cols);
    for (index_t row = r0; row < r1; ++row) {
      auto out = flat(y.value_data(), row * cols, (row + 1) * cols);
      out = flat(x.value_data(), row * cols, (row + 1) * cols);
      if (has_residual) out += flat(r.value_data(), row * cols, (row + 1) * cols);
      out -= out.mean();  // centred input, normalised below
      const Scalar inv_std = Scalar(1) / std::sqrt(out.square().mean() + epsilon);
      out *= inv_std;
      if (backward) {
        flat(zhat, row * cols, (row + 1) * cols) = out;
        rstd[row] = inv_std;
      }
      out = out * g + b;
    }
  });

  if (backward) {
    t.on_backward([=] {
      if (beta.needs_gradient()) add_column_sums(y.adjoint_data(), rows, cols, beta.adjoint_data());
      if (gamma.needs_gradient()) add_column_dots(y.adjoint_data(), zhat, rows, cols, gamma.adjoint_data());
      Scalar* dx = x.adjoint_data();
      Scalar* dr = has_residual ? r.adjoint_data() : nullptr;
      if (dx == nullptr && dr == nullptr) return;
      for_each_chunk(rows, row_grain(cols), [&](index_t r0, index_t r1) {
        const auto g = flat(gamma.value_data(), 0, cols);
        for (index_t row = r0; row < r1; ++row) {
          const auto dy = flat(y.adjoint_data(), row * cols, (row + 1) * cols);
          const auto zh = flat(zhat, row * cols, (row + 1) * cols);
          const Scalar mean_g = (dy * g).mean();
          const Scalar mean_gz = (dy * g * zh).mean();
          const auto dz = rstd[row] * (dy * g - mean_g - zh * mean_gz);
          if (dx != nullptr) flat(dx, row * cols, (row + 1) * cols) += dz;
          if (dr != nullptr) flat(dr, row * cols, (row + 1) * cols) += dz;
        }
      });
    });
  }
  return y;
}
}  // namespace detail

template <class Scalar>
var<Scalar> layer_norm(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& gamma,
                       const var<Scalar>& beta, Scalar epsilon) {
  return detail::normalise_rows(t, "layer_norm", x, static_cast<const var<Scalar>*>(nullptr), gamma, beta, epsilon);
}

// LayerNorm(x + residual) without storing the sum or its adjoint.
template <class Scalar>
var<Scalar> add_layer_norm(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& residual, const var<Scalar>& gamma,
                           const var<Scalar>& beta, Scalar epsilon) {
  return detail::normalise_rows(t, "add_layer_norm", x, &residual, gamma, beta, epsilon);
}

}  // namespace earlybert
