// SPDX-License-Identifier: Apache-2.0
#pragma once
// The controls of a lottery-ticket experiment, the branches OpenLTH takes from a pruned level to ask
// whether the ticket is special (Frankle & Carbin 2019; Chen et al. 2020 on BERT):
//
//   random_masks_like(families, random)   each family gets a random mask keeping as many weights as its
//                                         own does now: the same per-layer sparsity, other weights
//   shuffle_kept_weights(families, random) each family's kept weights trade values among themselves,
//                                         the mask unchanged: the same weights kept, other values
//   random re-initialisation under the same mask is the model's own initialise(random), which keeps
//   masked weights at zero (nn/linear.hpp).
//
// Families have the weight_family interface (nn/structure.hpp); weights_mutable() gives the values to
// shuffle. Both are deterministic for a given random state, and consume it family by family in order.

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "earlybert/core/rng.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

template <class Family>
void random_masks_like(std::span<Family> families, rng& random) {
  for (Family& family : families) {
    const index_t keep = family.active_count();
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(family.size()), 0);
    std::fill(mask.begin(), mask.begin() + keep, std::uint8_t{1});
    random.shuffle(mask);
    family.set_active(mask);
  }
}

template <class Family>
void shuffle_kept_weights(std::span<Family> families, rng& random) {
  for (Family& family : families) {
    const std::vector<std::uint8_t> active = family.active();
    auto& values = family.weights_mutable().value;
    std::vector<index_t> kept;
    for (std::size_t i = 0; i < active.size(); ++i) {
      if (active[i] != 0) kept.push_back(static_cast<index_t>(i));
    }
    std::vector<index_t> from = kept;
    random.shuffle(from);
    std::vector<std::remove_cvref_t<decltype(values.data()[0])>> taken;
    taken.reserve(from.size());
    for (const index_t i : from) taken.push_back(values.data()[i]);
    for (std::size_t k = 0; k < kept.size(); ++k) values.data()[kept[k]] = taken[k];
  }
}

}  // namespace earlybert
