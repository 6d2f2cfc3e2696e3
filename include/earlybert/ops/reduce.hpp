// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reductions to a [1, 1] scalar.
//
//   sum(x)       s = sum_i x_i                    dx_i += ds
//   mean(x)      s = sum_i x_i / n                dx_i += ds / n
//   l1_norm(x)   s = sum_i |x_i|                  dx_i += ds sign(x_i), with sign(0) = 0
// The L1 subgradient at 0 is 0, so a coefficient pruned to exactly zero is not pushed either way.
// Sums run serially in index order: bit-identical for every thread count.

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> sum(tape<Scalar>& t, const var<Scalar>& x) {
  var<Scalar> s = t.make(1, 1, any_needs_gradient(t, x));
  *s.value_data() = detail::flat(x.value_data(), 0, x.size()).sum();
  if (s.needs_gradient()) {
    t.on_backward([=] {
      const Scalar ds = *s.adjoint_data();
      detail::for_each_flat(x.size(), [&](index_t i0, index_t i1) { detail::flat(x.adjoint_data(), i0, i1) += ds; });
    });
  }
  return s;
}

template <class Scalar>
var<Scalar> mean(tape<Scalar>& t, const var<Scalar>& x) {
  if (x.size() == 0) throw shape_error("mean: argument 'x' has shape [0, 0], expected at least one element");
  var<Scalar> s = t.make(1, 1, any_needs_gradient(t, x));
  *s.value_data() = detail::flat(x.value_data(), 0, x.size()).sum() / static_cast<Scalar>(x.size());
  if (s.needs_gradient()) {
    t.on_backward([=] {
      const Scalar ds = *s.adjoint_data() / static_cast<Scalar>(x.size());
      detail::for_each_flat(x.size(), [&](index_t i0, index_t i1) { detail::flat(x.adjoint_data(), i0, i1) += ds; });
    });
  }
  return s;
}

template <class Scalar>
var<Scalar> l1_norm(tape<Scalar>& t, const var<Scalar>& x) {
  var<Scalar> s = t.make(1, 1, any_needs_gradient(t, x));
  *s.value_data() = detail::flat(x.value_data(), 0, x.size()).abs().sum();
  if (s.needs_gradient()) {
    t.on_backward([=] {
      const Scalar ds = *s.adjoint_data();
      detail::for_each_flat(x.size(), [&](index_t i0, index_t i1) {
        detail::flat(x.adjoint_data(), i0, i1) += ds * detail::flat(x.value_data(), i0, i1).sign();
      });
    });
  }
  return s;
}

}  // namespace earlybert
