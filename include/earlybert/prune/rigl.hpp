// SPDX-License-Identifier: Apache-2.0
#pragma once
// RigL, sparse training at constant sparsity (Evci et al. 2020, google-research/rigl): the weights of
// every family start under a random mask; every update_interval steps until end_step, each family
// drops the fraction
//
//   drop_fraction(t) = alpha (1 + cos(pi t / end_step)) / 2
//
// of its active weights with the smallest magnitude and grows as many of its inactive weights with the
// largest gradient magnitude (the dense gradient of that step's batch: the masks are lifted for its
// backward pass, which changes no value, since masked weights are zero). A weight dropped in an update
// is not grown back in the same update; grown weights start at zero with zero AdamW moments. Ties go
// to the lower index. Each family keeps its number of active weights.
//
// Allocation of the sparsity over families:
//   uniform  every family at the target sparsity
//   erk      Erdos-Renyi-Kernel: density proportional to (rows + cols) / (rows cols), scaled so that
//            the families together hold (1 - sparsity) of their weights; a family whose density would
//            exceed 1 is kept dense and the rest rescaled (as google-research/rigl's sparse_utils)
//
// Families have the weight_family interface (nn/structure.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

enum class sparsity_allocation { uniform, erk };

struct rigl_options {
  double sparsity = 0.8;
  sparsity_allocation allocation = sparsity_allocation::uniform;
  double drop_fraction = 0.3;  // alpha
  long update_interval = 100;  // Delta T
  long end_step = 0;           // T_end: no update from here on (google-research/rigl: 75% of training)

  void check() const {
    const auto require = [](bool ok, const char* name, double value, const char* expected) {
      if (!ok) throw config_error(fmt::format("rigl: '{}' is {}, expected {}", name, value, expected));
    };
    require(sparsity >= 0 && sparsity < 1, "sparsity", sparsity, "a value in [0, 1)");
    require(drop_fraction > 0 && drop_fraction <= 1, "drop_fraction", drop_fraction, "a value in (0, 1]");
    require(update_interval >= 1, "update_interval", static_cast<double>(update_interval), "at least 1");
    require(end_step >= 1, "end_step", static_cast<double>(end_step), "at least 1");
  }
  // Whether the masks change after step `step` (counted from 0) has computed its gradient.
  bool updates_at(long step) const noexcept { return step > 0 && step < end_step && step % update_interval == 0; }
  double fraction_at(long step) const noexcept {
    return drop_fraction * (1 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(end_step))) / 2;
  }
};

// The density (kept fraction) of each family of the given shapes.
inline std::vector<double> rigl_densities(std::span<const shape2> shapes, double sparsity, sparsity_allocation allocation) {
  std::vector<double> density(shapes.size(), 1 - sparsity);
  if (allocation == sparsity_allocation::uniform) return density;
  double total = 0;
  for (const shape2& s : shapes) total += static_cast<double>(s.rows * s.cols);
  std::vector<bool> dense(shapes.size(), false);
  for (;;) {
    // Among the families not kept dense: raw density (r + c) / (r c), scaled to fill what is left.
    double budget = (1 - sparsity) * total, weighted = 0;
    for (std::size_t f = 0; f < shapes.size(); ++f) {
      const double n = static_cast<double>(shapes[f].rows * shapes[f].cols);
      if (dense[f]) {
        budget -= n;
      } else {
        weighted += static_cast<double>(shapes[f].rows + shapes[f].cols);  // n * raw density
      }
    }
    const double scale = weighted > 0 ? budget / weighted : 0;
    bool changed = false;
    for (std::size_t f = 0; f < shapes.size(); ++f) {
      if (dense[f]) continue;
      const double raw = static_cast<double>(shapes[f].rows + shapes[f].cols) / static_cast<double>(shapes[f].rows * shapes[f].cols);
      density[f] = scale * raw;
      if (density[f] > 1) {
        dense[f] = true;
        density[f] = 1;
        changed = true;
      }
    }
    if (!changed) return density;
  }
}

// Random masks at the allocation's densities: family f keeps round(density_f n_f) weights.
template <class Family>
void rigl_initial_masks(std::span<Family> families, const rigl_options& options, rng& random) {
  options.check();
  std::vector<shape2> shapes;
  for (const Family& f : families) shapes.push_back({f.weights().rows(), f.weights().cols()});
  const std::vector<double> density = rigl_densities(shapes, options.sparsity, options.allocation);
  for (std::size_t f = 0; f < families.size(); ++f) {
    const auto keep = static_cast<std::size_t>(std::llround(density[f] * static_cast<double>(families[f].size())));
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(families[f].size()), 0);
    std::fill(mask.begin(), mask.begin() + static_cast<std::ptrdiff_t>(keep), std::uint8_t{1});
    random.shuffle(mask);
    families[f].set_active(mask);
  }
}

// One update: each family drops round(fraction x active) of its active weights (smallest |w|) and grows
// as many of its inactive ones (largest |gradient|, not those just dropped). `masks` holds each family's
// mask from before the step (the families themselves may be unmasked for the dense gradient); the new
// masks are set on the families, and returned through `masks`. Returns the number of weights moved and
// the summed |gradient| of those grown (zero would mean the gradient was not dense).
struct rigl_moves {
  index_t moved = 0;
  double grown_gradient = 0;
};
template <class Family>
rigl_moves rigl_update(std::span<Family> families, std::vector<std::vector<std::uint8_t>>& masks, double fraction) {
  rigl_moves result;
  for (std::size_t f = 0; f < families.size(); ++f) {
    std::vector<std::uint8_t>& mask = masks[f];
    const auto& values = families[f].weights().value;
    const auto& gradient = families[f].weights().gradient;
    std::vector<index_t> active, inactive;
    for (std::size_t i = 0; i < mask.size(); ++i) (mask[i] != 0 ? active : inactive).push_back(static_cast<index_t>(i));
    const auto k = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(active.size())));
    const std::size_t count = std::min({k, active.size(), inactive.size()});
    if (count == 0) {
      families[f].set_active(mask);
      continue;
    }
    // Drop: smallest |w| first, then the lower index.
    std::nth_element(active.begin(), active.begin() + static_cast<std::ptrdiff_t>(count - 1), active.end(), [&](index_t a, index_t b) {
      const double ma = std::abs(static_cast<double>(values.data()[a])), mb = std::abs(static_cast<double>(values.data()[b]));
      return ma != mb ? ma < mb : a < b;
    });
    // Grow: largest |gradient| first, then the lower index, among the weights inactive before this update.
    std::nth_element(inactive.begin(), inactive.begin() + static_cast<std::ptrdiff_t>(count - 1), inactive.end(), [&](index_t a, index_t b) {
      const double ga = std::abs(static_cast<double>(gradient.data()[a])), gb = std::abs(static_cast<double>(gradient.data()[b]));
      return ga != gb ? ga > gb : a < b;
    });
    for (std::size_t i = 0; i < count; ++i) {
      mask[static_cast<std::size_t>(active[i])] = 0;
      mask[static_cast<std::size_t>(inactive[i])] = 1;
      result.grown_gradient += std::abs(static_cast<double>(gradient.data()[inactive[i]]));
    }
    families[f].set_active(mask);
    result.moved += static_cast<index_t>(count);
  }
  return result;
}

}  // namespace earlybert
