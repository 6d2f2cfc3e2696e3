// SPDX-License-Identifier: Apache-2.0
#pragma once
// Drawing a ticket: applying a structure_masks to a model, masked or compacted, and the structure a
// model holds now as a mask over the original structures.
//
//   apply_masks(model, masks)      masked mode: pruned heads and neurons zeroed (nn/linear.hpp)
//   draw_ticket(model, masks)      apply_masks, then compact(): the pruned structures are removed, the
//                                  original indices of the kept ones recorded, AdamW moments sliced
//   original_masks(model)          per layer, 1 for every original head / neuron the model still holds

#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

template <class Scalar, class Shape>
void apply_masks(bert_model<Scalar, Shape>& model, const structure_masks& masks) {
  if (masks.heads.size() != model.layers.size() || masks.neurons.size() != model.layers.size()) {
    throw shape_error(fmt::format("apply_masks: masks for {} and {} layers, expected {}", masks.heads.size(),
                                  masks.neurons.size(), model.layers.size()));
  }
  for (std::size_t l = 0; l < model.layers.size(); ++l) {
    if (structure_masks::kept(masks.heads, l) < 1 || structure_masks::kept(masks.neurons, l) < 1) {
      throw config_error(fmt::format("apply_masks: layer {} would keep no head or no FFN neuron", l));
    }
    model.layers[l].self_attention.set_active_heads(masks.heads[l]);
    model.layers[l].ffn.set_active_neurons(masks.neurons[l]);
  }
}

template <class Scalar, class Shape>
void draw_ticket(bert_model<Scalar, Shape>& model, const structure_masks& masks) {
  apply_masks(model, masks);
  for (auto& layer : model.layers) {
    layer.self_attention.compact();
    layer.ffn.compact();
  }
}

template <class Scalar, class Shape>
structure_masks original_masks(const bert_model<Scalar, Shape>& model) {
  structure_masks m;
  for (const auto& layer : model.layers) {
    std::vector<std::uint8_t> heads(Shape::heads, 0), neurons(Shape::ffn, 0);
    const auto kept_heads = layer.self_attention.kept_heads();
    const auto active_heads = layer.self_attention.active_heads();
    for (std::size_t i = 0; i < kept_heads.size(); ++i) heads[static_cast<std::size_t>(kept_heads[i])] = active_heads[i];
    const auto kept_neurons = layer.ffn.kept_neurons();
    const auto active_neurons = layer.ffn.active_neurons();
    for (std::size_t i = 0; i < kept_neurons.size(); ++i) neurons[static_cast<std::size_t>(kept_neurons[i])] = active_neurons[i];
    m.heads.push_back(std::move(heads));
    m.neurons.push_back(std::move(neurons));
  }
  return m;
}

}  // namespace earlybert
