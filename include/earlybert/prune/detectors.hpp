// SPDX-License-Identifier: Apache-2.0
#pragma once
// Early-bird detection: when to draw the ticket.
//
// The early_bird_detector concept: observe(masks, step) -> bool, called at every check of the search
// with the mask the draw rule would produce now; true means "draw now".
//
//   mask_distance_detector  You et al. 2020: a FIFO of the last `window` masks (K = 5); fires when the
//                           distances from the newest mask to each of the K - 1 older ones are all
//                           <= epsilon (0.1). Heads and FFN neurons are tracked separately and both must
//                           be ready (or, joint, as one concatenated mask). The largest distance from
//                           the newest mask in the window is reported per kind for the logs.
//   fixed_step_detector     fires at the first check at or after a step (the official fine-tuning
//                           code's slimming_coef_step; at_fraction() gives round(f x steps per epoch))
//   never_detector          never fires: the ticket is drawn when the search budget ends

#include <algorithm>
#include <cmath>
#include <concepts>
#include <deque>
#include <optional>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

template <class D>
concept early_bird_detector = requires(D& d, const structure_masks& masks, long step) {
  { d.observe(masks, step) } -> std::convertible_to<bool>;
};

class mask_distance_detector {
 public:
  explicit mask_distance_detector(int window = 5, double epsilon = 0.1, bool joint = false)
      : window_(window), epsilon_(epsilon), joint_(joint) {
    if (window < 2) throw config_error(fmt::format("mask_distance_detector: window is {}, expected at least 2", window));
    if (!(epsilon >= 0 && epsilon <= 1)) {
      throw config_error(fmt::format("mask_distance_detector: epsilon is {}, expected a value in [0, 1]", epsilon));
    }
  }

  bool observe(const structure_masks& masks, long /*step*/) {
    history_.push_back(masks);
    if (static_cast<int>(history_.size()) > window_) history_.pop_front();
    head_distance_ = largest_distance([](const structure_masks& m) { return m.heads; });
    neuron_distance_ = largest_distance([](const structure_masks& m) { return m.neurons; });
    joint_distance_ = largest_distance([](const structure_masks& m) { return concatenated(m); });
    if (static_cast<int>(history_.size()) < window_) return false;
    if (joint_) return *joint_distance_ <= epsilon_;
    return *head_distance_ <= epsilon_ && *neuron_distance_ <= epsilon_;
  }

  // Largest distance from the newest mask to the older ones in the window; empty before two checks.
  std::optional<double> head_distance() const noexcept { return head_distance_; }
  std::optional<double> neuron_distance() const noexcept { return neuron_distance_; }
  std::optional<double> joint_distance() const noexcept { return joint_distance_; }
  int window() const noexcept { return window_; }
  double epsilon() const noexcept { return epsilon_; }

 private:
  template <class Pick>
  std::optional<double> largest_distance(Pick pick) const {
    if (history_.size() < 2) return std::nullopt;
    const auto newest = pick(history_.back());
    double largest = 0;
    for (std::size_t i = 0; i + 1 < history_.size(); ++i) largest = std::max(largest, mask_distance(newest, pick(history_[i])));
    return largest;
  }

  int window_;
  double epsilon_;
  bool joint_;
  std::deque<structure_masks> history_;
  std::optional<double> head_distance_, neuron_distance_, joint_distance_;
};

class fixed_step_detector {
 public:
  explicit fixed_step_detector(long step) : step_(step) {
    if (step < 1) throw config_error(fmt::format("fixed_step_detector: step is {}, expected at least 1", step));
  }
  // round(fraction x steps_per_epoch) of the first epoch, at least 1; fraction in (0, 1].
  static fixed_step_detector at_fraction(double fraction, long steps_per_epoch) {
    if (!(fraction > 0 && fraction <= 1)) {
      throw config_error(fmt::format("fixed_step_detector: fraction is {}, expected a value in (0, 1]", fraction));
    }
    return fixed_step_detector(std::max(1L, std::lround(fraction * static_cast<double>(steps_per_epoch))));
  }
  bool observe(const structure_masks&, long step) const noexcept { return step >= step_; }
  long step() const noexcept { return step_; }

 private:
  long step_;
};

struct never_detector {
  bool observe(const structure_masks&, long) const noexcept { return false; }
};

static_assert(early_bird_detector<mask_distance_detector>);
static_assert(early_bird_detector<fixed_step_detector>);
static_assert(early_bird_detector<never_detector>);

}  // namespace earlybert
