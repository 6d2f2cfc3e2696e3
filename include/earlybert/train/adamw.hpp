// SPDX-License-Identifier: Apache-2.0
#pragma once
// AdamW: Adam with decoupled weight decay (Loshchilov and Hutter, "Decoupled Weight Decay
// Regularization", ICLR 2019), as torch.optim.AdamW.
//
// For each trainable parameter w with gradient g, at step t = 1, 2, ...:
//   w  <- w - lr * weight_decay * w          (only if the parameter decays; biases, LayerNorm
//                                              weights and slimming coefficients do not)
//   m  <- beta1 m + (1 - beta1) g
//   v  <- beta2 v + (1 - beta2) g^2
//   w  <- w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)
// The moments live in the parameter (first_moment, second_moment), sized on first use, so that
// compaction can slice them with the weights. The step allocates nothing after the first call.
//
// step() consumes the gradients: g above is gradient_scale times the stored gradient (the factor of
// gradient-norm clipping), and the stored gradient is zero when step() returns, ready for the next
// backward. Reading, scaling and clearing in the one pass over the parameter saves two passes over
// memory, which for a small model's 30522-row embedding table is a measurable part of a step.

#include <algorithm>
#include <cmath>
#include <span>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

struct adamw_options {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.01;
};

template <class Scalar>
class adamw {
 public:
  explicit adamw(adamw_options options = {}) : options_(options) {
    const auto check = [](const char* name, double value, bool ok, const char* expected) {
      if (!ok) throw config_error(fmt::format("adamw: option '{}' is {}, expected {}", name, value, expected));
    };
    check("beta1", options.beta1, options.beta1 >= 0 && options.beta1 < 1, "a value in [0, 1)");
    check("beta2", options.beta2, options.beta2 >= 0 && options.beta2 < 1, "a value in [0, 1)");
    check("epsilon", options.epsilon, options.epsilon > 0, "a positive value");
    check("weight_decay", options.weight_decay, options.weight_decay >= 0, "a non-negative value");
  }

  // One update of every trainable parameter with learning rate `learning_rate`, from its gradient
  // times `gradient_scale`; clears the gradients.
  void step(std::span<parameter<Scalar>* const> parameters, double learning_rate, double gradient_scale = 1.0) {
    if (!(learning_rate >= 0)) {
      throw config_error(fmt::format("adamw: argument 'learning_rate' is {}, expected a non-negative value", learning_rate));
    }
    ++steps_;
    const double correction1 = 1 - std::pow(options_.beta1, static_cast<double>(steps_));
    const double correction2 = 1 - std::pow(options_.beta2, static_cast<double>(steps_));
    const auto b1 = static_cast<Scalar>(options_.beta1), b2 = static_cast<Scalar>(options_.beta2);
    const auto step_size = static_cast<Scalar>(learning_rate / correction1);
    const auto inv_sqrt_c2 = static_cast<Scalar>(1 / std::sqrt(correction2));
    const auto eps = static_cast<Scalar>(options_.epsilon);
    const auto scale = static_cast<Scalar>(gradient_scale);
    for (parameter<Scalar>* p : parameters) {
      if (!p->trainable) continue;
      if (p->first_moment.size() != p->size()) {
        p->first_moment.setZero(p->rows(), p->cols());
        p->second_moment.setZero(p->rows(), p->cols());
      }
      const auto decay = static_cast<Scalar>(p->weight_decay ? 1 - learning_rate * options_.weight_decay : 1);
      detail::for_each_flat(p->size(), [&](index_t i0, index_t i1) {
        auto w = detail::flat(p->value.data(), i0, i1);
        auto stored = detail::flat(p->gradient.data(), i0, i1);
        auto m = detail::flat(p->first_moment.data(), i0, i1);
        auto v = detail::flat(p->second_moment.data(), i0, i1);
        // In blocks that stay in L1: the scaled gradient is formed once, used twice, then cleared.
        constexpr index_t block = 1024;
        for (index_t b0 = 0; b0 < i1 - i0; b0 += block) {
          const index_t n = std::min(block, i1 - i0 - b0);
          auto g = stored.segment(b0, n);
          auto ms = m.segment(b0, n);
          auto vs = v.segment(b0, n);
          if (scale != Scalar(1)) g *= scale;
          ms = b1 * ms + (1 - b1) * g;
          vs = b2 * vs + (1 - b2) * g.square();
          w.segment(b0, n) = decay * w.segment(b0, n) - step_size * ms / (vs.sqrt() * inv_sqrt_c2 + eps);
          g.setZero();
        }
      });
    }
  }

  long steps_taken() const noexcept { return steps_; }
  // Continues the bias correction of moments carried over from another optimizer (EarlyBERT's
  // restart from the draw step keeps the sliced moments and their step count).
  void set_steps_taken(long steps) {
    if (steps < 0) throw config_error(fmt::format("adamw: steps taken is {}, expected a non-negative count", steps));
    steps_ = steps;
  }
  const adamw_options& options() const noexcept { return options_; }

 private:
  adamw_options options_;
  long steps_ = 0;
};

}  // namespace earlybert
