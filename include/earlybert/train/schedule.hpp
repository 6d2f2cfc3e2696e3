// SPDX-License-Identifier: Apache-2.0
#pragma once
// Learning-rate schedules and gradient-norm clipping.
//
// linear_schedule: linear warm-up from 0 to the peak, then linear decay to 0 at total_steps, as
// HuggingFace's get_linear_schedule_with_warmup. rate(s) is the rate of the optimizer step that
// follows s completed steps, so the first step (s = 0) runs at 0 when there is a warm-up:
//   s < warmup:  peak * s / warmup
//   otherwise:   peak * max(0, (total - s) / (total - warmup))
//
// clip_gradient_norm: the global L2 norm over every trainable parameter's gradient; if it exceeds
// max_norm, every gradient is scaled by max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_.

#include <algorithm>
#include <cmath>
#include <span>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

class linear_schedule {
 public:
  linear_schedule(double peak, long warmup_steps, long total_steps)
      : peak_(peak), warmup_(warmup_steps), total_(total_steps) {
    if (!(peak >= 0)) throw config_error(fmt::format("linear_schedule: peak rate is {}, expected a non-negative value", peak));
    if (total_steps < 1) throw config_error(fmt::format("linear_schedule: total steps is {}, expected at least 1", total_steps));
    if (warmup_steps < 0 || warmup_steps > total_steps) {
      throw config_error(fmt::format("linear_schedule: warm-up is {} steps, expected a value in [0, {}]", warmup_steps, total_steps));
    }
  }

  double rate(long completed_steps) const {
    const auto s = static_cast<double>(completed_steps);
    if (completed_steps < warmup_) return peak_ * s / static_cast<double>(warmup_);
    if (total_ == warmup_) return 0;
    return peak_ * std::max(0.0, static_cast<double>(total_ - completed_steps) / static_cast<double>(total_ - warmup_));
  }

  double peak() const noexcept { return peak_; }
  long warmup_steps() const noexcept { return warmup_; }
  long total_steps() const noexcept { return total_; }

 private:
  double peak_;
  long warmup_;
  long total_;
};

// Returns the norm before clipping. max_norm <= 0 measures without clipping. Sums run serially in
// parameter order, so the result is the same for every thread count.
// The global L2 norm over every trainable parameter's gradient (parallel, deterministic).
template <class Scalar>
double gradient_norm(std::span<parameter<Scalar>* const> parameters) {
  double squares = 0;
  for (const parameter<Scalar>* p : parameters) {
    if (p->trainable) squares += detail::sum_of_squares(p->gradient.data(), p->gradient.size());
  }
  return std::sqrt(squares);
}

// The factor clipping multiplies every gradient by: max_norm / (norm + 1e-6) when norm exceeds
// max_norm > 0, else 1 (torch.nn.utils.clip_grad_norm_).
inline double clip_factor(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

// Scales the gradients in place by clip_factor and returns the norm before clipping. The trainer
// does not call this: it hands the factor to AdamW, which applies it while it reads the gradient.
template <class Scalar>
double clip_gradient_norm(std::span<parameter<Scalar>* const> parameters, double max_norm) {
  const double norm = gradient_norm(parameters);
  const double factor = clip_factor(norm, max_norm);
  if (factor != 1.0) {
    for (parameter<Scalar>* p : parameters) {
      if (p->trainable) p->gradient *= static_cast<Scalar>(factor);
    }
  }
  return norm;
}

}  // namespace earlybert
