// SPDX-License-Identifier: Apache-2.0
#pragma once
// Element-wise arithmetic: add, multiply (Hadamard), scale by a constant, the broadcast bias add, and
// a choice between two rows by a flag per row.
//
// Shapes and backward (all accumulating):
//   add(a, b)        a, b [rows, cols]      c = a + b        da += dc; db += dc
//   multiply(a, b)   a, b [rows, cols]      c = a * b        da += dc * b; db += dc * a
//   scale(x, s)      x [rows, cols], s      y = s x          dx += s dy
//   add_bias(x, b)   x [rows, cols], b [1, cols]
//                                           y = x + 1 b      dx += dy; db += sum over rows of dy
//   choose_rows(f, a, b)   f [rows] flags, a, b [rows, cols]
//                                           y_r = f_r ? a_r : b_r
//                                                            da_r += dy_r where f_r; db_r += dy_r elsewhere
//                          (a token that has left an early-exit encoder keeps its state: nn/early_exit.hpp)

#include <algorithm>
#include <span>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> add(tape<Scalar>& t, const var<Scalar>& a, const var<Scalar>& b) {
  check_shape("add", "b", b.shape(), a.shape());
  var<Scalar> c = t.make(a.rows(), a.cols(), any_needs_gradient(t, a, b));
  detail::for_each_flat(c.size(), [&](index_t i0, index_t i1) {
    detail::flat(c.value_data(), i0, i1) =
        detail::flat(a.value_data(), i0, i1) + detail::flat(b.value_data(), i0, i1);
  });
  if (c.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(c.size(), [&](index_t i0, index_t i1) {
        const auto dc = detail::flat(c.adjoint_data(), i0, i1);
        if (a.needs_gradient()) detail::flat(a.adjoint_data(), i0, i1) += dc;
        if (b.needs_gradient()) detail::flat(b.adjoint_data(), i0, i1) += dc;
      });
    });
  }
  return c;
}

template <class Scalar>
var<Scalar> multiply(tape<Scalar>& t, const var<Scalar>& a, const var<Scalar>& b) {
  check_shape("multiply", "b", b.shape(), a.shape());
  var<Scalar> c = t.make(a.rows(), a.cols(), any_needs_gradient(t, a, b));
  detail::for_each_flat(c.size(), [&](index_t i0, index_t i1) {
    detail::flat(c.value_data(), i0, i1) =
        detail::flat(a.value_data(), i0, i1) * detail::flat(b.value_data(), i0, i1);
  });
  if (c.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(c.size(), [&](index_t i0, index_t i1) {
        const auto dc = detail::flat(c.adjoint_data(), i0, i1);
        if (a.needs_gradient()) detail::flat(a.adjoint_data(), i0, i1) += dc * detail::flat(b.value_data(), i0, i1);
        if (b.needs_gradient()) detail::flat(b.adjoint_data(), i0, i1) += dc * detail::flat(a.value_data(), i0, i1);
      });
    });
  }
  return c;
}

template <class Scalar>
var<Scalar> scale(tape<Scalar>& t, const var<Scalar>& x, Scalar factor) {
  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
    detail::flat(y.value_data(), i0, i1) = factor * detail::flat(x.value_data(), i0, i1);
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
        detail::flat(x.adjoint_data(), i0, i1) += factor * detail::flat(y.adjoint_data(), i0, i1);
      });
    });
  }
  return y;
}

template <class Scalar>
var<Scalar> add_bias(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& bias) {
  check_shape("add_bias", "bias", bias.shape(), {1, x.cols()});
  var<Scalar> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x, bias));
  const index_t cols = x.cols();
  detail::for_each_chunk(x.rows(), detail::row_grain(cols), [&](index_t r0, index_t r1) {
    const auto b = detail::flat(bias.value_data(), 0, cols);
    for (index_t r = r0; r < r1; ++r) {
      detail::flat(y.value_data(), r * cols, (r + 1) * cols) =
          detail::flat(x.value_data(), r * cols, (r + 1) * cols) + b;
    }
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      if (x.needs_gradient()) {
        detail::for_each_flat(y.size(), [&](index_t i0, index_t i1) {
          detail::flat(x.adjoint_data(), i0, i1) += detail::flat(y.adjoint_data(), i0, i1);
        });
      }
      if (bias.needs_gradient()) detail::add_column_sums(y.adjoint_data(), y.rows(), cols, bias.adjoint_data());
    });
  }
  return y;
}

template <class Scalar>
var<Scalar> choose_rows(tape<Scalar>& t, std::span<const std::uint8_t> from_a, const var<Scalar>& a, const var<Scalar>& b) {
  check_shape("choose_rows", "b", b.shape(), a.shape());
  if (static_cast<index_t>(from_a.size()) != a.rows()) {
    throw shape_error(fmt::format("choose_rows: argument 'from_a' holds {} flags, expected {} (one per row)", from_a.size(), a.rows()));
  }
  var<Scalar> y = t.make(a.rows(), a.cols(), any_needs_gradient(t, a, b));
  std::uint8_t* flags = t.template scratch<std::uint8_t>(a.rows());
  std::copy(from_a.begin(), from_a.end(), flags);
  const index_t cols = a.cols();
  detail::for_each_chunk(a.rows(), detail::row_grain(cols), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const Scalar* source = (flags[r] != 0 ? a : b).value_data();
      detail::flat(y.value_data(), r * cols, (r + 1) * cols) = detail::flat(source, r * cols, (r + 1) * cols);
    }
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      detail::for_each_chunk(y.rows(), detail::row_grain(cols), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
          const var<Scalar>& chosen = flags[r] != 0 ? a : b;
          if (chosen.needs_gradient()) {
            detail::flat(chosen.adjoint_data(), r * cols, (r + 1) * cols) += detail::flat(y.adjoint_data(), r * cols, (r + 1) * cols);
          }
        }
      });
    });
  }
  return y;
}

}  // namespace earlybert
