// SPDX-License-Identifier: Apache-2.0
#pragma once
// Persistent trainable state: a parameter's value, its gradient and its optimizer state.
//
// Parameters live outside the tape and outlive every step. A tape refers to a parameter through a
// var whose value is the parameter's value and whose adjoint is the parameter's gradient, so the
// backward pass accumulates straight into `gradient`; the optimizer reads it and clears it in the
// same pass (adamw::step), and zero_gradient() clears it outside training. Per-step intermediate values never live here: they are in the arena.

#include <string>
#include <utility>

#include "earlybert/core/types.hpp"

namespace earlybert {

template <class Scalar>
struct parameter {
  static_assert(is_supported_scalar<Scalar>, "earlybert::parameter: Scalar must be float or double");

  std::string name;       // HuggingFace tensor name where one exists, e.g. "bert.pooler.dense.weight"
  matrix<Scalar> value;   // [rows, cols], row-major
  matrix<Scalar> gradient;  // same shape; accumulated by backward, cleared by zero_gradient()

  // Optimizer state: AdamW's first and second moments, sized by the optimizer on first use so that
  // a parameter that is never optimised costs nothing. Compaction slices them with the value.
  matrix<Scalar> first_moment;
  matrix<Scalar> second_moment;

  bool trainable = true;     // false: frozen, the tape records no gradient for it
  bool weight_decay = true;  // false for biases, LayerNorm weights and slimming coefficients

  parameter() = default;
  parameter(std::string parameter_name, index_t rows, index_t cols, bool decays = true)
      : name(std::move(parameter_name)),
        value(matrix<Scalar>::Zero(rows, cols)),
        gradient(matrix<Scalar>::Zero(rows, cols)),
        weight_decay(decays) {}

  index_t rows() const noexcept { return value.rows(); }
  index_t cols() const noexcept { return value.cols(); }
  index_t size() const noexcept { return value.size(); }

  void zero_gradient() noexcept { gradient.setZero(); }

  // Applies f(matrix&) to each of the four tensors that share the parameter's layout (value, gradient,
  // first and second moment), skipping moments the optimizer has not sized yet: the one place where
  // masking or slicing a parameter keeps its optimizer state in step with its value.
  template <class F>
  void for_each_tensor(F&& f) {
    for (matrix<Scalar>* m : {&value, &gradient, &first_moment, &second_moment}) {
      if (m->size() != 0) f(*m);
    }
  }
};

}  // namespace earlybert
