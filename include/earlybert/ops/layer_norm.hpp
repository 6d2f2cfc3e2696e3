// SPDX-License-Identifier: Apache-2.0
#pragma once
// Layer normalisation over the last axis (each row), as BERT's LayerNorm.
//
//   x [rows, cols], gamma [1, cols], beta [1, cols]
//   mean_r = mean(x_r), var_r = mean((x_r - mean_r)^2)          (biased, as PyTorch)
//   rstd_r = 1 / sqrt(var_r + eps),  xhat_r = (x_r - mean_r) rstd_r,  y_r = gamma * xhat_r + beta
// Caches xhat [rows, cols] and rstd [rows] in the arena. Backward (accumulating):
//   dbeta += sum_r dy_r;  dgamma += sum_r dy_r * xhat_r;  g_r = dy_r * gamma
//   dx_r += rstd_r (g_r - mean(g_r) - xhat_r mean(g_r * xhat_r))

#include <cmath>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> layer_norm(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& gamma,
                       const var<Scalar>& beta, Scalar epsilon) {
  const index_t rows = x.rows(), cols = x.cols();
  check_shape("layer_norm", "gamma", gamma.shape(), {1, cols});
  check_shape("layer_norm", "beta", beta.shape(), {1, cols});
  if (!(epsilon > Scalar(0))) {
    throw config_error(fmt::format("layer_norm: argument 'epsilon' is {}, expected a positive value", epsilon));
  }
  var<Scalar> y = t.make(rows, cols, any_needs_gradient(t, x, gamma, beta));
  const bool backward = y.needs_gradient();
  Scalar* xhat = backward ? t.template scratch<Scalar>(rows * cols) : nullptr;
  Scalar* rstd = backward ? t.template scratch<Scalar>(rows) : nullptr;

  detail::for_each_chunk(rows, detail::row_grain(cols), [&](index_t r0, index_t r1) {
    const auto g = detail::flat(gamma.value_data(), 0, cols);
    const auto b = detail::flat(beta.value_data(), 0, cols);
    for (index_t r = r0; r < r1; ++r) {
      const auto in = detail::flat(x.value_data(), r * cols, (r + 1) * cols);
      auto out = detail::flat(y.value_data(), r * cols, (r + 1) * cols);
      const Scalar mean = in.mean();
      out = in - mean;  // centred input, normalised below
      const Scalar inv_std = Scalar(1) / std::sqrt(out.square().mean() + epsilon);
      out *= inv_std;
      if (backward) {
        detail::flat(xhat, r * cols, (r + 1) * cols) = out;
        rstd[r] = inv_std;
      }
      out = out * g + b;
    }
  });

  if (backward) {
    t.on_backward([=] {
      if (beta.needs_gradient()) detail::add_column_sums(y.adjoint_data(), rows, cols, beta.adjoint_data());
      if (gamma.needs_gradient()) detail::add_column_dots(y.adjoint_data(), xhat, rows, cols, gamma.adjoint_data());
      if (!x.needs_gradient()) return;
      detail::for_each_chunk(rows, detail::row_grain(cols), [&](index_t r0, index_t r1) {
        const auto g = detail::flat(gamma.value_data(), 0, cols);
        for (index_t r = r0; r < r1; ++r) {
          const auto dy = detail::flat(y.adjoint_data(), r * cols, (r + 1) * cols);
          const auto xh = detail::flat(xhat, r * cols, (r + 1) * cols);
          const Scalar mean_g = (dy * g).mean();
          const Scalar mean_gx = (dy * g * xh).mean();
          detail::flat(x.adjoint_data(), r * cols, (r + 1) * cols) +=
              rstd[r] * (dy * g - mean_g - xh * mean_gx);
        }
      });
    });
  }
  return y;
}

}  // namespace earlybert
