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
  model.for_each_family([&](structure_family<Scalar> family) {
    family.set_active(masks.of(family.kind())[static_cast<std::size_t>(family.layer())]);
  });
}

template <class Scalar, class Shape>
void draw_ticket(bert_model<Scalar, Shape>& model, const structure_masks& masks) {
  apply_masks(model, masks);
  model.for_each_family([](structure_family<Scalar> family) { family.compact(); });
}

template <class Scalar, class Shape>
structure_masks original_masks(const bert_model<Scalar, Shape>& model) {
  structure_masks m;
  model.for_each_family([&](const structure_family<Scalar>& family) { m.of(family.kind()).push_back(family.original_mask()); });
  return m;
}

}  // namespace earlybert
