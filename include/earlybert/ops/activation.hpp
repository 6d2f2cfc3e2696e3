// SPDX-License-Identifier: Apache-2.0
#pragma once
// Activations, element-wise.
//
//   gelu(x)   BERT's exact form  y = x Phi(x) = x/2 (1 + erf(x / sqrt 2))
//             dx += dy (Phi(x) + x phi(x)),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
//   tanh(x)   y = tanh x          dx += dy (1 - y^2)      (the pooler's activation)
// The backward of gelu recomputes Phi from x (kept by the tape) instead of caching it.

#include <numbers>

#include <unsupported/Eigen/SpecialFunctions>

#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> gelu(tape<Scalar>& t, const var<Scalar>& x) {
  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  constexpr Scalar inv_sqrt2 = Scalar(1) / std::numbers::sqrt2_v<Scalar>;
  detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
    const auto v = detail::flat(x.value_data(), i0, i1);
    detail::flat(y.value_data(), i0, i1) = Scalar(0.5) * v * (Scalar(1) + (v * inv_sqrt2).erf());
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      constexpr Scalar inv_sqrt_2pi = std::numbers::inv_sqrtpi_v<Scalar> * inv_sqrt2;
      detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
        const auto v = detail::flat(x.value_data(), i0, i1);
        const auto cdf = Scalar(0.5) * (Scalar(1) + (v * inv_sqrt2).erf());
        const auto pdf = inv_sqrt_2pi * (Scalar(-0.5) * v.square()).exp();
        detail::flat(x.adjoint_data(), i0, i1) += detail::flat(y.adjoint_data(), i0, i1) * (cdf + v * pdf);
      });
    });
  }
  return y;
}

template <class Scalar>
var<Scalar> tanh(tape<Scalar>& t, const var<Scalar>& x) {
  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
    detail::flat(y.value_data(), i0, i1) = detail::flat(x.value_data(), i0, i1).tanh();
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
        const auto v = detail::flat(y.value_data(), i0, i1);
        detail::flat(x.adjoint_data(), i0, i1) += detail::flat(y.adjoint_data(), i0, i1) * (Scalar(1) - v.square());
      });
    });
  }
  return y;
}

}  // namespace earlybert
