// SPDX-License-Identifier: Apache-2.0
#pragma once
// The mask-aware structured linear layer: y = x W^T + b, as torch.nn.Linear, whose weight knows which
// of its structures are active.
//
//   x [tokens, inputs], weight [outputs, inputs] (HuggingFace's layout), bias [1, outputs]
//   y [tokens, outputs]
//
// A structure is a group of `group_size` consecutive output rows (structure_axis::outputs) or input
// columns (structure_axis::inputs) of the weight:
//   attention head h  = rows [h*head_dim, (h+1)*head_dim) of W_Q, W_K, W_V and their biases
//                       (outputs, group_size = head_dim) and the same columns of W_O (inputs);
//   FFN neuron j      = row j of W_1 and entry j of b_1 (outputs, group_size 1) and column j of W_2
//                       (inputs).
// A bias follows the output rows; on an inputs-structured layer it stays whole.
//
// Two ways to prune, which compute the same function (to float rounding):
//   masked   set_active_groups(mask): shapes stay full; the weights (and, for outputs, the bias
//            entries) of inactive groups are set to zero, their AdamW moments are cleared, and every
//            backward pass leaves their gradient at exactly zero. AdamW then keeps them exactly zero:
//            w = decay * 0 - lr * 0 / (sqrt(0) + eps) = 0.
//   compact  compact(): the active groups are gathered into smaller matrices (value, gradient and
//            both AdamW moments sliced alike), so the GEMMs shrink in proportion.
// Either way kept_groups() lists the original index of every group the layer holds, in ascending
// order, so pruning can be repeated, masks compared, and a pruned checkpoint mapped back.
//
// Unstructured: set_weight_mask(mask) masks single weights, [outputs, inputs] row-major, on any
// linear layer (structured or not), the same way as a masked group: the masked entries of the weight,
// its gradient and both moments are zero, every backward pass leaves their gradient at exactly zero,
// and AdamW keeps them zero. It saves no time (the GEMMs stay dense); compaction slices the mask with
// the weight.
//
// A layer with structure_axis::none (the pooler, the classifiers, the MLM transform) has no groups.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/matmul.hpp"

namespace earlybert {

enum class structure_axis { none, outputs, inputs };

namespace detail {
// Keeps the lines (rows for structure_axis::outputs, columns for inputs) `lines` of m, in that order.
template <class Scalar>
void keep_lines(matrix<Scalar>& m, structure_axis axis, std::span<const index_t> lines) {
  const auto count = static_cast<index_t>(lines.size());
  matrix<Scalar> kept(axis == structure_axis::outputs ? count : m.rows(), axis == structure_axis::outputs ? m.cols() : count);
  for (index_t i = 0; i < count; ++i) {
    if (axis == structure_axis::outputs) kept.row(i) = m.row(lines[static_cast<std::size_t>(i)]);
    else kept.col(i) = m.col(lines[static_cast<std::size_t>(i)]);
  }
  m = std::move(kept);
}

// Keeps the columns `positions` (ascending) of a [1, n] parameter's value, gradient and AdamW moments.
template <class Scalar>
void keep_parameter_columns(parameter<Scalar>& p, std::span<const index_t> positions) {
  p.for_each_tensor([&](matrix<Scalar>& m) { keep_lines(m, structure_axis::inputs, positions); });
}

// Positions (in `held`) of the listed original indices; both ascending, every listed one held.
inline std::vector<index_t> positions_of(std::span<const index_t> held, std::span<const index_t> originals) {
  std::vector<index_t> positions;
  for (index_t original : originals) {
    const auto it = std::lower_bound(held.begin(), held.end(), original);
    if (it != held.end() && *it == original) positions.push_back(it - held.begin());
  }
  return positions;
}
}  // namespace detail

template <class Scalar>
class linear {
 public:
  parameter<Scalar> weight;  // [outputs, inputs], "<name>.weight"
  parameter<Scalar> bias;    // [1, outputs], "<name>.bias"; never decayed

  linear() = default;
  linear(const std::string& name, index_t inputs, index_t outputs,
         structure_axis axis = structure_axis::none, index_t group_size = 1)
      : weight(name + ".weight", outputs, inputs), bias(name + ".bias", 1, outputs, false), axis_(axis),
        group_size_(group_size) {
    if (axis_ == structure_axis::none) return;
    const index_t extent = structured_extent();
    if (group_size_ < 1 || extent % group_size_ != 0) {
      throw shape_error(fmt::format("linear '{}': group size {} does not divide the structured extent {}",
                                    name, group_size_, extent));
    }
    kept_.resize(static_cast<std::size_t>(extent / group_size_));
    std::iota(kept_.begin(), kept_.end(), index_t{0});
    active_.assign(kept_.size(), 1);
  }

  index_t inputs() const noexcept { return weight.cols(); }
  index_t outputs() const noexcept { return weight.rows(); }
  structure_axis axis() const noexcept { return axis_; }
  index_t group_size() const noexcept { return group_size_; }

  // Groups the weight holds now (all of them until compact() drops some).
  index_t groups() const noexcept { return static_cast<index_t>(kept_.size()); }
  // Original index of each held group, ascending.
  std::span<const index_t> kept_groups() const noexcept { return kept_; }
  // Per held group: 1 active, 0 masked.
  std::span<const std::uint8_t> active_groups() const noexcept { return active_; }
  index_t active_count() const noexcept {
    return static_cast<index_t>(std::count(active_.begin(), active_.end(), std::uint8_t{1}));
  }
  bool fully_active() const noexcept { return active_count() == groups(); }

  // Masked mode: `active` has one entry per held group (non-zero = keep). Inactive groups are zeroed
  // in the weight, the bias (outputs axis), the gradient and the AdamW moments.
  void set_active_groups(std::span<const std::uint8_t> active) {
    require_structured("set_active_groups");
    if (static_cast<index_t>(active.size()) != groups()) {
      throw shape_error(fmt::format("linear '{}': set_active_groups got {} entries, expected {} (one per held group)",
                                    weight.name, active.size(), groups()));
    }
    for (std::size_t g = 0; g < active.size(); ++g) active_[g] = active[g] != 0 ? 1 : 0;
    for_each_structured_tensor([&](matrix<Scalar>& m, structure_axis axis) {
      for (index_t g = 0; g < groups(); ++g) {
        if (active_[static_cast<std::size_t>(g)] != 0) continue;
        if (axis == structure_axis::outputs) m.middleRows(g * group_size_, group_size_).setZero();
        else m.middleCols(g * group_size_, group_size_).setZero();
      }
    });
  }

  // Compact mode: drops the inactive groups physically. Every held group becomes active.
  void compact() {
    require_structured("compact");
    std::vector<index_t> positions;
    for (index_t g = 0; g < groups(); ++g) {
      if (active_[static_cast<std::size_t>(g)] != 0) positions.push_back(g);
    }
    select_positions(positions);
  }

  // Keeps exactly the groups whose original indices are listed (ascending, each held now), as
  // compact() would after masking the others. Used to rebuild a pruned model from its checkpoint.
  void keep_original_groups(std::span<const index_t> originals) {
    require_structured("keep_original_groups");
    std::vector<index_t> positions;
    for (index_t original : originals) {
      const auto it = std::lower_bound(kept_.begin(), kept_.end(), original);
      if (it == kept_.end() || *it != original || (!positions.empty() && it - kept_.begin() <= positions.back())) {
        throw shape_error(fmt::format("linear '{}': group {} is not held, or the list is not strictly ascending",
                                      weight.name, original));
      }
      positions.push_back(it - kept_.begin());
    }
    select_positions(positions);
  }

  // ---- Unstructured masks ----

  // `mask` has one entry per weight, row-major (non-zero = keep). Masked entries are zeroed in the
  // weight, its gradient and both AdamW moments, and stay zero.
  void set_weight_mask(std::span<const std::uint8_t> mask) {
    if (static_cast<index_t>(mask.size()) != weight.size()) {
      throw shape_error(fmt::format("linear '{}': set_weight_mask got {} entries, expected {} (one per weight, [{}, {}] row-major)",
                                    weight.name, mask.size(), weight.size(), outputs(), inputs()));
    }
    weight_mask_.resize(outputs(), inputs());
    for (index_t i = 0; i < weight.size(); ++i) weight_mask_.data()[i] = mask[static_cast<std::size_t>(i)] != 0 ? 1 : 0;
    apply_weight_mask();
  }
  // Every weight active again (the masked ones restart from zero).
  void clear_weight_mask() { weight_mask_.resize(0, 0); }
  bool has_weight_mask() const noexcept { return weight_mask_.size() != 0; }
  // The mask, [outputs, inputs] row-major, or empty when every weight is active.
  std::span<const std::uint8_t> weight_mask() const noexcept {
    return {weight_mask_.data(), static_cast<std::size_t>(weight_mask_.size())};
  }
  // Weights masked by the unstructured mask (the groups' masks are counted by active_groups()).
  index_t masked_weights() const noexcept {
    return has_weight_mask() ? weight.size() - static_cast<index_t>(weight_mask_.template cast<index_t>().sum()) : 0;
  }

  // y [tokens, outputs] = x [tokens, inputs] W^T + b.
  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x) {
    check_shape(weight.name.c_str(), "x", x.shape(), {shape2::any, inputs()});
    const var<Scalar> w = t.watch(weight), b = t.watch(bias);
    // Recorded before the product, so that in reverse it runs after the product's backward has
    // accumulated: it clears whatever reached the masked weights' gradients.
    if (has_weight_mask() && w.needs_gradient()) {
      const std::uint8_t* keep = weight_mask_.data();
      const index_t n = weight.size();
      Scalar* dw = w.adjoint_data();
      t.on_backward([=] {
        for (index_t i = 0; i < n; ++i) {
          if (keep[i] == 0) dw[i] = Scalar(0);
        }
      });
    }
    // Likewise for the masked groups.
    if (!fully_active() && any_needs_gradient(t, w, b)) {
      const std::uint8_t* active = active_.data();
      const index_t held = groups(), size = group_size_, rows = outputs(), cols = inputs();
      const structure_axis axis = axis_;
      Scalar* dw = w.adjoint_data();
      Scalar* db = b.adjoint_data();
      t.on_backward([=] {
        for (index_t g = 0; g < held; ++g) {
          if (active[g] != 0) continue;
          for (index_t i = g * size; i < (g + 1) * size; ++i) {
            if (axis == structure_axis::outputs) {
              if (dw != nullptr) std::fill(dw + i * cols, dw + (i + 1) * cols, Scalar(0));
              if (db != nullptr) db[i] = Scalar(0);
            } else if (dw != nullptr) {
              for (index_t r = 0; r < rows; ++r) dw[r * cols + i] = Scalar(0);
            }
          }
        }
      });
    }
    return affine(t, x, w, b);
  }

  // Initialises as BERT does: weight ~ N(0, stddev^2), bias 0. Masked groups stay zero.
  template <class Random>
  void initialise(Random& random, double stddev) {
    for (index_t i = 0; i < weight.size(); ++i) weight.value.data()[i] = static_cast<Scalar>(stddev * random.normal());
    bias.value.setZero();
    reapply_masks();
  }

  // Zeroes again what the masks remove, in every tensor of the weight and bias, after their values
  // were written from outside the layer (initialisation, a rewind to earlier weights).
  void reapply_masks() {
    if (axis_ != structure_axis::none && !fully_active()) set_active_groups(std::vector<std::uint8_t>(active_));
    apply_weight_mask();
  }

 private:
  index_t structured_extent() const noexcept {
    return axis_ == structure_axis::outputs ? weight.rows() : weight.cols();
  }

  void apply_weight_mask() {
    if (!has_weight_mask()) return;
    weight.for_each_tensor([&](matrix<Scalar>& m) {
      if (m.size() != weight_mask_.size()) return;  // moments not made yet
      for (index_t i = 0; i < m.size(); ++i) {
        if (weight_mask_.data()[i] == 0) m.data()[i] = Scalar(0);
      }
    });
  }

  void require_structured(const char* what) const {
    if (axis_ == structure_axis::none) {
      throw config_error(fmt::format("linear '{}': {} needs a structured layer, this one has no groups",
                                     weight.name, what));
    }
  }

  // Calls f(m, axis) for every tensor that is sliced by the groups, with the axis its groups lie
  // along: the weight's four tensors along the layer's axis, and on an outputs-structured layer the
  // bias's, whose columns are the output rows ([1, outputs]).
  template <class F>
  void for_each_structured_tensor(F&& f) {
    weight.for_each_tensor([&](matrix<Scalar>& m) { f(m, axis_); });
    if (axis_ == structure_axis::outputs) bias.for_each_tensor([&](matrix<Scalar>& m) { f(m, structure_axis::inputs); });
  }

  // Keeps the held groups at `positions` (ascending), along the structured axis of every tensor.
  void select_positions(const std::vector<index_t>& positions) {
    std::vector<index_t> lines;  // rows or columns to keep
    for (index_t p : positions) {
      for (index_t i = p * group_size_; i < (p + 1) * group_size_; ++i) lines.push_back(i);
    }
    for_each_structured_tensor([&](matrix<Scalar>& m, structure_axis axis) { detail::keep_lines(m, axis, lines); });
    if (has_weight_mask()) detail::keep_lines(weight_mask_, axis_, lines);
    std::vector<index_t> kept;
    for (index_t p : positions) kept.push_back(kept_[static_cast<std::size_t>(p)]);
    kept_ = std::move(kept);
    active_.assign(kept_.size(), 1);
  }

  structure_axis axis_ = structure_axis::none;
  index_t group_size_ = 1;
  std::vector<index_t> kept_;          // original group indices held, ascending
  std::vector<std::uint8_t> active_;   // per held group
  matrix<std::uint8_t> weight_mask_;   // [outputs, inputs], 1 = active; empty: no unstructured mask
};

}  // namespace earlybert
