// SPDX-License-Identifier: Apache-2.0
#pragma once
// Inverted dropout, deterministic for a key.
//
//   x [rows, cols], probability p in [0, 1)
//   keep_i = (u_i >= p) with u_i = counter_rng(key).uniform(i),  y_i = keep_i x_i / (1 - p)
// Element i's decision depends only on (key, i), so the mask is the same for every thread count.
// The caller derives a fresh key per call site and step (derive_key). Backward (accumulating):
//   dx_i += keep_i dy_i / (1 - p)
// With p = 0 the op is the identity and returns x itself. Whether dropout runs at all (training
// versus evaluation) is the caller's decision, not the tape's recording state.

#include <cstdint>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> dropout(tape<Scalar>& t, const var<Scalar>& x, Scalar probability, std::uint64_t key) {
  if (!(probability >= Scalar(0) && probability < Scalar(1))) {
    throw config_error(fmt::format("dropout: argument 'probability' is {}, expected a value in [0, 1)",
                                   probability));
  }
  if (probability == Scalar(0)) return x;

  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  // The scaled mask (0 or 1/(1-p)) is cached for backward; it is what multiplies both ways.
  Scalar* factor = t.template scratch<Scalar>(x.size());
  const Scalar keep_scale = Scalar(1) / (Scalar(1) - probability);
  const counter_rng random(key);
  detail::for_each_flat(x.size(), [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const bool keep = static_cast<Scalar>(random.uniform(static_cast<std::uint64_t>(i))) >= probability;
      factor[i] = keep ? keep_scale : Scalar(0);
    }
    detail::flat(y.value_data(), i0, i1) = detail::flat(x.value_data(), i0, i1) * detail::flat(factor, i0, i1);
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
        detail::flat(x.adjoint_data(), i0, i1) += detail::flat(y.adjoint_data(), i0, i1) * detail::flat(factor, i0, i1);
      });
    });
  }
  return y;
}

}  // namespace earlybert
