// SPDX-License-Identifier: Apache-2.0
#pragma once
// The prunable structures of a BERT, their scores and their masks.
//
// Structures are attention heads and FFN neurons (the families of nn/structure.hpp), indexed per layer
// by the members the model holds now (during the search, before any compaction, every original one).
//   structure_scores  per layer: a score per head and per neuron; higher = more important = keep
//   structure_masks   per layer: 1 = keep, 0 = prune, per head and per neuron
// mask_distance(a, b) is the normalised Hamming distance of the early-bird test (You et al. 2020):
//   d(a, b) = (1/N) #{i : a_i != b_i} over all N entries of all layers.

#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/nn/structure.hpp"

namespace earlybert {

using per_layer_scores = std::vector<std::vector<double>>;
using per_layer_mask = std::vector<std::vector<std::uint8_t>>;

struct structure_scores {
  per_layer_scores heads;    // [layers][heads held]
  per_layer_scores neurons;  // [layers][ffn held]

  per_layer_scores& of(structure_kind kind) noexcept { return kind == structure_kind::heads ? heads : neurons; }
  const per_layer_scores& of(structure_kind kind) const noexcept { return kind == structure_kind::heads ? heads : neurons; }
};

struct structure_masks {
  per_layer_mask heads;
  per_layer_mask neurons;

  per_layer_mask& of(structure_kind kind) noexcept { return kind == structure_kind::heads ? heads : neurons; }
  const per_layer_mask& of(structure_kind kind) const noexcept { return kind == structure_kind::heads ? heads : neurons; }

  static index_t kept(const per_layer_mask& m, std::size_t layer) {
    index_t n = 0;
    for (auto k : m[layer]) n += k;
    return n;
  }
  std::vector<index_t> heads_kept() const {
    std::vector<index_t> out;
    for (std::size_t l = 0; l < heads.size(); ++l) out.push_back(kept(heads, l));
    return out;
  }
  std::vector<index_t> neurons_kept() const {
    std::vector<index_t> out;
    for (std::size_t l = 0; l < neurons.size(); ++l) out.push_back(kept(neurons, l));
    return out;
  }
};

// Normalised Hamming distance between two masks of the same layout; 0 for two empty masks.
inline double mask_distance(const per_layer_mask& a, const per_layer_mask& b) {
  if (a.size() != b.size()) {
    throw shape_error(fmt::format("mask_distance: masks of {} and {} layers", a.size(), b.size()));
  }
  index_t differ = 0, total = 0;
  for (std::size_t l = 0; l < a.size(); ++l) {
    if (a[l].size() != b[l].size()) {
      throw shape_error(fmt::format("mask_distance: layer {} has {} and {} entries", l, a[l].size(), b[l].size()));
    }
    for (std::size_t i = 0; i < a[l].size(); ++i) differ += (a[l][i] != 0) != (b[l][i] != 0);
    total += static_cast<index_t>(a[l].size());
  }
  return total == 0 ? 0.0 : static_cast<double>(differ) / static_cast<double>(total);
}

// Heads and neurons together, as one mask (the "joint" early-bird test).
inline per_layer_mask concatenated(const structure_masks& m) {
  per_layer_mask joint = m.heads;
  joint.insert(joint.end(), m.neurons.begin(), m.neurons.end());
  return joint;
}

}  // namespace earlybert
