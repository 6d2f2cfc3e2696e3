// SPDX-License-Identifier: Apache-2.0
#pragma once
// Magnitude pruning of single weights, the rule of iterative magnitude pruning (Frankle & Carbin 2019;
// on BERT, Chen et al. 2020): level k of a run with pruning fraction p keeps exactly
//
//   kept(n, p, k) = round((1 - p)^k n)
//
// of the n weights in scope, each level pruning about a fraction p of those the last one kept.
//   global     all families ranked together (Chen et al.'s default): round((1 - p)^k n) of their total
//   per_family each family on its own: round((1 - p)^k n_f) of its n_f
// Within a level, the weights still active with the smallest |w| are pruned until the count is met;
// weights pruned at an earlier level stay pruned. Ties are broken by (family, index in the family), the
// earlier first, so that the same weights always give the same mask.
//
// A family is anything with the weight_family interface (nn/structure.hpp): size(), active(),
// set_active(mask) and weights(). Pruning reads the weights as they are: in IMP, the weights at the end
// of a level's training, before rewinding.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

enum class magnitude_scope { global, per_family };

struct magnitude_pruning {
  double fraction = 0.2;  // p: of the weights a level starts with, about this fraction is pruned
  magnitude_scope scope = magnitude_scope::global;

  void check() const {
    if (!(fraction > 0 && fraction < 1)) {
      throw config_error(fmt::format("magnitude pruning: fraction is {}, expected a value in (0, 1)", fraction));
    }
  }
  // Weights kept of n at `level` (level 0: all of them).
  index_t kept(index_t n, int level) const {
    if (level < 0) throw config_error(fmt::format("magnitude pruning: level is {}, expected a non-negative level", level));
    return static_cast<index_t>(std::llround(std::pow(1.0 - fraction, level) * static_cast<double>(n)));
  }
};

namespace detail {
// One weight in the ranking: its magnitude and where it is.
struct ranked_weight {
  double magnitude;
  std::uint32_t family;
  index_t index;
  friend bool operator<(const ranked_weight& a, const ranked_weight& b) {
    if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
    if (a.family != b.family) return a.family < b.family;
    return a.index < b.index;
  }
};

// Prunes from `masks` the `count` lowest of the active weights of families [first, last).
template <class Family>
void prune_lowest(std::span<Family> families, std::vector<std::vector<std::uint8_t>>& masks, std::size_t first, std::size_t last,
                  index_t count) {
  if (count <= 0) return;
  std::vector<ranked_weight> active;
  for (std::size_t f = first; f < last; ++f) {
    const auto& values = families[f].weights().value;
    for (index_t i = 0; i < values.size(); ++i) {
      if (masks[f][static_cast<std::size_t>(i)] != 0) {
        active.push_back({std::abs(static_cast<double>(values.data()[i])), static_cast<std::uint32_t>(f), i});
      }
    }
  }
  const auto end = active.begin() + static_cast<std::ptrdiff_t>(count);
  std::nth_element(active.begin(), end - 1, active.end());
  for (auto it = active.begin(); it != end; ++it) masks[it->family][static_cast<std::size_t>(it->index)] = 0;
}
}  // namespace detail

// Masks `families` down to `level` of `rule` (level k keeps kept(n, k) of n), pruning by magnitude among
// the weights each family holds active now. Throws config_error when a family (or, globally, all of them)
// already holds fewer active weights than the level keeps: levels only go forward.
template <class Family>
void prune_to_level(std::span<Family> families, const magnitude_pruning& rule, int level) {
  rule.check();
  std::vector<std::vector<std::uint8_t>> masks;
  std::vector<index_t> active_counts;
  for (Family& family : families) {
    masks.push_back(family.active());
    active_counts.push_back(static_cast<index_t>(std::count(masks.back().begin(), masks.back().end(), std::uint8_t{1})));
  }
  const auto prune = [&](std::size_t first, std::size_t last, const std::string& what) {
    index_t size = 0, active = 0;
    for (std::size_t f = first; f < last; ++f) {
      size += families[f].size();
      active += active_counts[f];
    }
    const index_t keep = rule.kept(size, level);
    if (active < keep) {
      throw config_error(fmt::format("magnitude pruning: {} holds {} of {} weights active, fewer than level {} keeps ({}): levels only "
                                     "go forward", what, active, size, level, keep));
    }
    detail::prune_lowest(families, masks, first, last, active - keep);
  };
  if (rule.scope == magnitude_scope::global) {
    prune(0, families.size(), "the model");
  } else {
    for (std::size_t f = 0; f < families.size(); ++f) prune(f, f + 1, fmt::format("'{}'", families[f].name()));
  }
  for (std::size_t f = 0; f < families.size(); ++f) families[f].set_active(masks[f]);
}

}  // namespace earlybert
