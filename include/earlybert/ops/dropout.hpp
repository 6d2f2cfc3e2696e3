// SPDX-License-Identifier: Apache-2.0
#pragma once
// Inverted dropout, deterministic for a key.
//
//   x [rows, cols], probability p in [0, 1), rounded to q = min(round(p 2^16), 2^16 - 1) / 2^16
//   keep_i = (u_i >= q),  y_i = keep_i x_i / (1 - q)
// u_i is a 16-bit uniform: 16-bit lane i mod 4 of counter_rng(key).stream_bits(i / 4), so one hash
// decides four elements (the hash, not the memory traffic, was the op's cost). Rounding p to a
// multiple of 2^-16 (0.1 -> 0.100006) and scaling by the rounded value keeps E[y] = x exactly.
// Element i's decision depends only on (key, i), so the mask is the same for every thread count.
// The decisions are cached as one byte each. The caller derives a fresh key per call site and step
// (derive_key). Backward (accumulating):
//   dx_i += keep_i dy_i / (1 - q)
// With p = 0 the op is the identity and returns x itself. Whether dropout runs at all (training
// versus evaluation) is the caller's decision, not the tape's recording state.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

namespace detail {
// out[i] (+)= in[i] * keep[i] * scale over n elements. Restrict-qualified so that the byte mask, which
// may alias anything as far as the compiler knows, does not stop the loop from vectorising.
template <class Scalar>
void scale_by_mask(const Scalar* __restrict in, const std::uint8_t* __restrict keep, Scalar scale, index_t n,
                   Scalar* __restrict out, bool accumulate) {
  if (accumulate) {
    for (index_t i = 0; i < n; ++i) out[i] += in[i] * (scale * static_cast<Scalar>(keep[i]));
  } else {
    for (index_t i = 0; i < n; ++i) out[i] = in[i] * (scale * static_cast<Scalar>(keep[i]));
  }
}
}  // namespace detail

template <class Scalar>
var<Scalar> dropout(tape<Scalar>& t, const var<Scalar>& x, Scalar probability, std::uint64_t key) {
  if (!(probability >= Scalar(0) && probability < Scalar(1))) {
    throw config_error(fmt::format("dropout: argument 'probability' is {}, expected a value in [0, 1)",
                                   probability));
  }
  if (probability == Scalar(0)) return x;

  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  // The keep decisions, one byte each, are cached for backward (a quarter of a scaled float mask).
  std::uint8_t* keep = t.template scratch<std::uint8_t>(x.size());
  const auto threshold = std::min<std::uint64_t>(static_cast<std::uint64_t>(std::lround(static_cast<double>(probability) * 65536.0)), 65535);
  const Scalar keep_scale = static_cast<Scalar>(65536.0 / static_cast<double>(65536 - threshold));
  const counter_rng random(key);
  const auto decide = [&](index_t i, std::uint64_t lane) { keep[i] = (lane & 0xFFFF) >= threshold; };
  detail::for_each_flat(x.size(), [&](index_t i0, index_t i1) {
    // Whole groups of four unrolled; partial groups only at the ends.
    const index_t whole_begin = std::min((i0 + 3) / 4 * 4, i1), whole_end = std::max(i1 / 4 * 4, whole_begin);
    for (index_t i = i0; i < whole_begin; ++i) decide(i, random.stream_bits(static_cast<std::uint64_t>(i / 4)) >> (16 * (i % 4)));
    for (index_t group = whole_begin / 4; group < whole_end / 4; ++group) {
      const std::uint64_t bits = random.stream_bits(static_cast<std::uint64_t>(group));
      decide(group * 4, bits);
      decide(group * 4 + 1, bits >> 16);
      decide(group * 4 + 2, bits >> 32);
      decide(group * 4 + 3, bits >> 48);
    }
    for (index_t i = whole_end; i < i1; ++i) decide(i, random.stream_bits(static_cast<std::uint64_t>(i / 4)) >> (16 * (i % 4)));
    detail::scale_by_mask(x.value_data() + i0, keep + i0, keep_scale, i1 - i0, y.value_data() + i0, false);
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
        detail::scale_by_mask(y.adjoint_data() + i0, keep + i0, keep_scale, i1 - i0, x.adjoint_data() + i0, true);
      });
    });
  }
  return y;
}

}  // namespace earlybert
