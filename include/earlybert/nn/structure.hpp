// SPDX-License-Identifier: Apache-2.0
#pragma once
// Prunable structure as an object: a *family* is the set of structures one block of the model can
// prune, and it is the only place that knows how a structure is laid out across parameters.
//
//   the heads of layer l          member h = rows [h*d, (h+1)*d) of W_Q, W_K, W_V and of their biases,
//                                 and columns [h*d, (h+1)*d) of W_O (d = head size)
//   the FFN neurons of layer l    member j = row j of W_1 and entry j of b_1, and column j of W_2
//
// A family is a view over the structured linear layers (nn/linear.hpp) that share its members, in
// the order the block computes them, and over the block's slimming coefficients. It knows:
//   size(), kept(), active()       the members held now, their original indices, which are masked
//   set_active(), compact(), keep() masking, physical removal, rebuilding a pruned model: applied to
//                                  every part, each part's four tensors (value, gradient, both AdamW
//                                  moments) and the coefficients alike
//   coefficients()                 EarlyBERT's slimming coefficient of each held member, while on
//   for_each_slice(member, f)      the member's slices (member_slice: the parameter, incoming or
//                                  outgoing, value and gradient views): what a criterion reads
//   squared_norm(), value_gradient_dot()   the two sums over those slices the built-in criteria use
// Criteria, ticket drawing, the pipeline and the program iterate a model's families
// (bert_model::for_each_family); none of them knows how a head is laid out.
//
// A family is a non-owning view: take it from the block (attention::structures(),
// feed_forward::structures()) when it is needed, and do not keep it across a copy or move of the model.
//
// weight_family is the unstructured counterpart: the single weights of one linear layer, masked in
// place (no compaction); bert_model::for_each_weight_family visits the encoder's six per layer.

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/nn/linear.hpp"
#include "earlybert/ops/scale_columns.hpp"

namespace earlybert {

// The kinds of prunable structure.
enum class structure_kind { heads, neurons };

constexpr std::string_view to_string(structure_kind kind) noexcept {
  return kind == structure_kind::heads ? "heads" : "neurons";
}

// Positions of the active entries of a mask.
inline std::vector<index_t> active_positions(std::span<const std::uint8_t> active) {
  std::vector<index_t> positions;
  for (std::size_t g = 0; g < active.size(); ++g) {
    if (active[g] != 0) positions.push_back(static_cast<index_t>(g));
  }
  return positions;
}

// The slimming coefficients of a family's members, [1, held]: a value held by the block, so copying
// a model copies them. While off they are not part of the model.
template <class Scalar>
class slimming_coefficients {
 public:
  parameter<Scalar> values;  // never decayed

  explicit slimming_coefficients(std::string name) : values(std::move(name), 1, 0, false) {}

  bool on() const noexcept { return on_; }

  // On: 1 for active members, 0 for masked ones; off: empty. Moments start afresh either way.
  void reset(bool on, std::span<const std::uint8_t> active) {
    on_ = on;
    values = parameter<Scalar>(values.name, 1, on ? static_cast<index_t>(active.size()) : 0, false);
    values.value.setOnes();
    mask(active);
  }
  // Zeroes the coefficients (and moments) of masked members: with a zero gradient (their inputs are
  // zero) AdamW keeps them at zero.
  void mask(std::span<const std::uint8_t> active) {
    if (!on_) return;
    for (std::size_t g = 0; g < active.size(); ++g) {
      if (active[g] == 0) values.for_each_tensor([&](matrix<Scalar>& m) { m(0, static_cast<index_t>(g)) = Scalar(0); });
    }
  }
  // Keeps the members at `positions` (compaction).
  void keep(std::span<const index_t> positions) {
    if (on_) detail::keep_parameter_columns(values, positions);
  }
  // x [tokens, held * group_size] with each member's columns scaled by its coefficient; x itself when off.
  var<Scalar> apply(tape<Scalar>& t, const var<Scalar>& x, index_t group_size) {
    return on_ ? scale_columns(t, x, t.watch(values), group_size) : x;
  }
  // The coefficients as the block's parameter while on; nothing while off.
  template <class F>
  void for_each_parameter(F&& f) {
    if (on_) f(values);
  }

 private:
  bool on_ = false;
};

// What a slice of a member does: computes the member (rows of W_Q, W_K, W_V and their biases for a
// head; row j of W_1 and b_1 for a neuron), or reads what the member computed (columns of W_O, W_2).
enum class slice_role { incoming, outgoing };

// One slice of one member: where it is cut from, its role, and read-only views of its values and
// gradient (rows or columns of a row-major matrix: no copy).
template <class Scalar>
struct member_slice {
  using block = Eigen::Ref<const matrix<Scalar>, 0, Eigen::OuterStride<>>;

  const parameter<Scalar>& source;  // source.name is the HuggingFace tensor name
  slice_role role;
  block value;
  block gradient;
};

template <class Scalar>
class structure_family {
 public:
  // `parts` are the structured linear layers whose groups are the members, in the block's order;
  // they must agree on the held members. `coefficients` may be null (a family without slimming).
  structure_family(structure_kind kind, int layer, std::initializer_list<linear<Scalar>*> parts,
                   slimming_coefficients<Scalar>* coefficients, index_t original_size)
      : kind_(kind), layer_(layer), coefficients_(coefficients), original_size_(original_size) {
    if (parts.size() == 0 || parts.size() > max_parts) {
      throw shape_error(fmt::format("structure_family: {} parts, expected 1 to {}", parts.size(), max_parts));
    }
    std::copy(parts.begin(), parts.end(), parts_.begin());
    part_count_ = parts.size();
  }
  // A view holds no heap memory (it is taken inside training steps): at most this many parts.
  static constexpr std::size_t max_parts = 4;

  structure_kind kind() const noexcept { return kind_; }
  int layer() const noexcept { return layer_; }
  // "layer 3 heads"
  std::string name() const { return fmt::format("layer {} {}", layer_, to_string(kind_)); }

  // Members held now (all of them until compaction), the original count, and per held member its
  // original index (ascending) and whether it is active (1) or masked (0).
  index_t size() const noexcept { return parts_[0]->groups(); }
  index_t original_size() const noexcept { return original_size_; }
  std::span<const index_t> kept() const noexcept { return parts_[0]->kept_groups(); }
  std::span<const std::uint8_t> active() const noexcept { return parts_[0]->active_groups(); }
  index_t active_count() const noexcept { return parts_[0]->active_count(); }
  // Per original member: 1 if it is held and active, 0 if it was masked or removed.
  std::vector<std::uint8_t> original_mask() const {
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(original_size_), 0);
    const auto held = kept();
    const auto on = active();
    for (std::size_t i = 0; i < held.size(); ++i) mask[static_cast<std::size_t>(held[i])] = on[i];
    return mask;
  }
  // Width of one member's slice along its part's structured axis (the head size; 1 for a neuron).
  index_t member_width() const noexcept { return parts_[0]->group_size(); }

  // ---- Pruning: every part, every tensor, and the coefficients alike ----

  // Masked mode: `active` has one entry per held member (non-zero = keep).
  void set_active(std::span<const std::uint8_t> active) {
    for (linear<Scalar>* part : parts()) part->set_active_groups(active);
    if (coefficients_ != nullptr) coefficients_->mask(this->active());
  }
  // Removes the masked members physically; every held member becomes active.
  void compact() {
    const std::vector<index_t> positions = active_positions(active());
    for (linear<Scalar>* part : parts()) part->compact();
    if (coefficients_ != nullptr) coefficients_->keep(positions);
  }
  // Keeps exactly the members with these original indices (ascending, each held now).
  void keep(std::span<const index_t> originals) {
    const std::vector<index_t> positions = detail::positions_of(kept(), originals);
    for (linear<Scalar>* part : parts()) part->keep_original_groups(originals);
    if (coefficients_ != nullptr) coefficients_->keep(positions);
  }

  // ---- Slimming coefficients ----

  bool slimming() const noexcept { return coefficients_ != nullptr && coefficients_->on(); }
  // On: a coefficient of 1 per active member (0 for masked ones), trained with the model. Off: the
  // coefficients leave the model; fold_slimming() first keeps the function unchanged.
  void set_slimming(bool on) {
    if (coefficients_ == nullptr) throw config_error(fmt::format("{}: this family has no slimming coefficients", name()));
    coefficients_->reset(on, active());
  }
  // The coefficients, [1, held]; empty while slimming is off.
  const parameter<Scalar>& coefficients() const {
    if (coefficients_ == nullptr) throw config_error(fmt::format("{}: this family has no slimming coefficients", name()));
    return coefficients_->values;
  }
  // The coefficients to write (greedy selection tries members by setting them to 0 or 1).
  parameter<Scalar>& coefficients_mutable() {
    if (coefficients_ == nullptr) throw config_error(fmt::format("{}: this family has no slimming coefficients", name()));
    return coefficients_->values;
  }
  // Multiplies each member's slices in the parts that read the scaled values (the inputs-structured
  // ones: W_O, W_2) by its coefficient and turns slimming off: the function is unchanged.
  void fold_slimming() {
    if (!slimming()) return;
    const index_t width = member_width();
    for (linear<Scalar>* part : parts()) {
      if (part->axis() != structure_axis::inputs) continue;
      for (index_t g = 0; g < size(); ++g) part->weight.value.middleCols(g * width, width) *= coefficients_->values.value(0, g);
    }
    set_slimming(false);
  }

  // ---- What a criterion reads ----

  // Calls f(member_slice) for every slice of held member `member`, part by part in the block's
  // order, each part's weight before its bias (a bias has a slice only where its part computes the
  // member).
  template <class F>
  void for_each_slice(index_t member, F&& f) const {
    const index_t width = member_width(), begin = member * width;
    for (const linear<Scalar>* part : parts()) {
      const parameter<Scalar>& w = part->weight;
      if (part->axis() == structure_axis::outputs) {
        f(member_slice<Scalar>{w, slice_role::incoming, w.value.middleRows(begin, width), w.gradient.middleRows(begin, width)});
        const parameter<Scalar>& b = part->bias;
        f(member_slice<Scalar>{b, slice_role::incoming, b.value.middleCols(begin, width), b.gradient.middleCols(begin, width)});
      } else {
        f(member_slice<Scalar>{w, slice_role::outgoing, w.value.middleCols(begin, width), w.gradient.middleCols(begin, width)});
      }
    }
  }

  // Sum over the member's slices of |w|^2, accumulated in double.
  double squared_norm(index_t member) const {
    double total = 0;
    for_each_slice(member, [&](const member_slice<Scalar>& slice) { total += slice.value.template cast<double>().squaredNorm(); });
    return total;
  }
  // Sum over the member's slices of w * dL/dw (the first-order Taylor estimate of removing it).
  double value_gradient_dot(index_t member) const {
    double total = 0;
    for_each_slice(member, [&](const member_slice<Scalar>& slice) {
      total += (slice.value.template cast<double>().array() * slice.gradient.template cast<double>().array()).sum();
    });
    return total;
  }

 private:
  structure_kind kind_;
  int layer_;
  // The parts, in the block's order.
  std::span<linear<Scalar>* const> parts() const noexcept { return {parts_.data(), part_count_}; }

  std::array<linear<Scalar>*, max_parts> parts_{};
  std::size_t part_count_ = 0;
  slimming_coefficients<Scalar>* coefficients_;
  index_t original_size_;
};

// The individual weights of one linear layer as a prunable family (unstructured pruning: iterative
// magnitude pruning, RigL). Member i is entry i of the weight, [outputs, inputs] row-major; the mask
// lives in the layer (linear::set_weight_mask), which keeps masked weights, their gradients and moments
// at zero. There is no compaction: a masked weight still costs its multiply-add in the dense GEMM.
template <class Scalar>
class weight_family {
 public:
  explicit weight_family(linear<Scalar>& layer) noexcept : layer_(&layer) {}

  // The weight's HuggingFace name, "bert.encoder.layer.0.attention.self.query.weight".
  const std::string& name() const noexcept { return layer_->weight.name; }
  const parameter<Scalar>& weights() const noexcept { return layer_->weight; }
  // The weights to write (a control that shuffles them); a masked weight must stay zero.
  parameter<Scalar>& weights_mutable() noexcept { return layer_->weight; }
  index_t size() const noexcept { return layer_->weight.size(); }
  index_t active_count() const noexcept { return size() - layer_->masked_weights(); }
  // Fraction of the weights the mask removes.
  double sparsity() const noexcept { return size() == 0 ? 0.0 : 1.0 - static_cast<double>(active_count()) / static_cast<double>(size()); }
  // Per weight, row-major: 1 active, 0 masked (all 1 without a mask).
  std::vector<std::uint8_t> active() const {
    const auto mask = layer_->weight_mask();
    return mask.empty() ? std::vector<std::uint8_t>(static_cast<std::size_t>(size()), 1) : std::vector<std::uint8_t>(mask.begin(), mask.end());
  }
  void set_active(std::span<const std::uint8_t> mask) { layer_->set_weight_mask(mask); }
  void clear() { layer_->clear_weight_mask(); }

 private:
  linear<Scalar>* layer_;
};

// Unstructured sparsity of a model: per weight family, and overall (weights masked / weights).
struct sparsity_report {
  struct entry {
    std::string name;
    index_t size, active;
  };
  std::vector<entry> families;
  double overall() const noexcept {
    double size = 0, active = 0;
    for (const entry& e : families) {
      size += static_cast<double>(e.size);
      active += static_cast<double>(e.active);
    }
    return size == 0 ? 0.0 : 1.0 - active / size;
  }
};

// Which single weights unstructured methods (IMP, RigL) work on: the encoder's linear layers (Chen et
// al. 2020's scope: embeddings, pooler and task head excluded), or every linear layer of a task model
// (the pooler and the task head's too). The embeddings have no weight masks.
enum class weight_scope { encoder, every_linear };

// The weight families of task model `model` (bert_for_*) in `scope`, in the model's order.
template <class Model>
auto weight_families(Model& model, weight_scope scope) {
  using scalar = typename Model::scalar_type;
  std::vector<weight_family<scalar>> families;
  if (scope == weight_scope::encoder) {
    model.bert.for_each_weight_family([&](weight_family<scalar> f) { families.push_back(f); });
  } else {
    model.for_each_linear([&](linear<scalar>& l) { families.push_back(weight_family<scalar>(l)); });
  }
  return families;
}

// The sparsity of every weight family of `model` in `scope`: a task model (bert_for_*), as
// weight_families takes it, or its bert_model (whose families are the encoder's: scope encoder only).
template <class Model>
sparsity_report unstructured_sparsity(Model& model, weight_scope scope = weight_scope::encoder) {
  sparsity_report report;
  const auto add = [&](const auto& family) { report.families.push_back({family.name(), family.size(), family.active_count()}); };
  if constexpr (requires { model.bert; }) {
    for (const auto& family : weight_families(model, scope)) add(family);
  } else {
    if (scope != weight_scope::encoder) {
      throw config_error("unstructured_sparsity: a bert_model holds the encoder's weight families only; give the task model for every_linear");
    }
    model.for_each_weight_family(add);
  }
  return report;
}

}  // namespace earlybert
