// SPDX-License-Identifier: Apache-2.0
#pragma once
// Scoring structures on calibration data, without a training run, and the criteria that read the
// model's intermediates.
//
//   score_over_batches(model, criterion, batches, loss)
//       one pass per batch of calibration data, the weights untouched: a criterion that observes
//       gradients (gradient_observer) gets a forward and a backward pass per batch and observe(model.bert)
//       after each; a criterion that reads intermediates (a forward_observer) watches every forward pass;
//       then criterion.score(model.bert). Any criterion works (magnitude needs no data: it is scored as
//       it stands). The model's gradients are zero afterwards.
//
//   activation_criterion   data-driven scores from the intermediates, over the real (non-padding) tokens:
//       heads   confidence (Voita et al. 2019, "Analyzing multi-head self-attention": the mean over query
//               tokens of the largest attention weight; confident heads matter), or the negative mean
//               entropy of the attention rows (a focused head scores high), with 0 log 0 = 0: padding keys
//               have probability exactly 0, and a naive p log p there is NaN
//       neurons the mean absolute GELU activation (a neuron that stays near 0 contributes little)

#include <cmath>
#include <span>
#include <vector>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

// p log p, with the limit 0 at p = 0 (entropy's convention).
template <class Scalar>
double x_log_x(Scalar p) noexcept {
  return p > Scalar(0) ? static_cast<double>(p) * std::log(static_cast<double>(p)) : 0.0;
}

enum class head_importance { confidence, negative_entropy };

// Sums over the calibration batches of per-structure statistics, read as the model computes.
template <class Scalar>
class activation_criterion : public forward_observer<Scalar> {
 public:
  explicit activation_criterion(head_importance heads = head_importance::confidence) : heads_(heads) {}

  void attention_probabilities(int layer, std::span<const index_t> kept, const var<Scalar>& p, const forward_context<Scalar>& c) override {
    const auto h_count = static_cast<index_t>(kept.size());
    std::vector<double>& sums = layer_sums(head_sums_, layer, h_count);
    std::vector<double>& counts = layer_sums(head_counts_, layer, h_count);
    for (index_t b = 0; b < c.batch; ++b) {
      for (index_t h = 0; h < h_count; ++h) {
        for (index_t i = 0; i < c.seq; ++i) {
          if (!c.real_token(b, i)) continue;
          const Scalar* row = p.value_data() + ((b * h_count + h) * c.seq + i) * c.seq;
          double value = 0;
          if (heads_ == head_importance::confidence) {
            value = static_cast<double>(*std::max_element(row, row + c.seq));
          } else {
            for (index_t j = 0; j < c.seq; ++j) value += x_log_x(row[j]);  // -entropy
          }
          sums[static_cast<std::size_t>(h)] += value;
          counts[static_cast<std::size_t>(h)] += 1;
        }
      }
    }
  }

  void ffn_activations(int layer, std::span<const index_t> kept, const var<Scalar>& a, const forward_context<Scalar>& c) override {
    const auto width = static_cast<index_t>(kept.size());
    std::vector<double>& sums = layer_sums(neuron_sums_, layer, width);
    std::vector<double>& counts = layer_sums(neuron_counts_, layer, width);
    for (index_t token = 0; token < a.rows(); ++token) {
      if (c.attention[token] == 0) continue;
      const Scalar* row = a.value_data() + token * width;
      for (index_t j = 0; j < width; ++j) {
        sums[static_cast<std::size_t>(j)] += std::abs(static_cast<double>(row[j]));
        counts[static_cast<std::size_t>(j)] += 1;
      }
    }
  }

  // The means so far; a structure never seen (no data yet) scores 0.
  template <class Shape>
  structure_scores score(const bert_model<Scalar, Shape>& model) const {
    return score_each_member(model, [&](const structure_family<Scalar>& family, index_t member) {
      const bool heads = family.kind() == structure_kind::heads;
      const auto& sums = heads ? head_sums_ : neuron_sums_;
      const auto& counts = heads ? head_counts_ : neuron_counts_;
      const auto l = static_cast<std::size_t>(family.layer());
      if (l >= sums.size() || static_cast<std::size_t>(member) >= sums[l].size() || counts[l][static_cast<std::size_t>(member)] == 0) return 0.0;
      return sums[l][static_cast<std::size_t>(member)] / counts[l][static_cast<std::size_t>(member)];
    });
  }

  // Forgets what was seen.
  void reset() {
    head_sums_.clear();
    head_counts_.clear();
    neuron_sums_.clear();
    neuron_counts_.clear();
  }

 private:
  static std::vector<double>& layer_sums(per_layer_scores& all, int layer, index_t width) {
    if (all.size() <= static_cast<std::size_t>(layer)) all.resize(static_cast<std::size_t>(layer) + 1);
    std::vector<double>& sums = all[static_cast<std::size_t>(layer)];
    if (sums.size() != static_cast<std::size_t>(width)) sums.assign(static_cast<std::size_t>(width), 0.0);
    return sums;
  }

  head_importance heads_;
  per_layer_scores head_sums_, head_counts_, neuron_sums_, neuron_counts_;
};

// See the top of this file. `loss(tape, model, batch)` is the task loss of one batch ([1, 1]), needed
// (it chooses the mode: training = false gives scores free of dropout).
template <class Model, class Criterion, class Loss>
structure_scores score_over_batches(Model& model, Criterion& criterion, std::span<const token_batch> batches, Loss&& loss) {
  using Scalar = typename Model::scalar_type;
  using bert_type = std::remove_cvref_t<decltype(model.bert)>;
  check_criterion<Criterion, bert_type>();
  constexpr bool observes_gradients = gradient_observer<Criterion, bert_type>;
  constexpr bool observes_forward = std::is_base_of_v<forward_observer<Scalar>, Criterion>;
  if constexpr (observes_gradients || observes_forward) {
    if (batches.empty()) throw config_error("score_over_batches: no calibration batches");
  }
  forward_observer<Scalar>* previous = model.bert.observer();
  if constexpr (observes_forward) model.bert.set_observer(&criterion);
  tape<Scalar> t;
  try {
    for (const token_batch& b : batches) {
      if constexpr (observes_gradients) {
        model.for_each_parameter([](parameter<Scalar>& p) { p.zero_gradient(); });
        t.rewind();
        t.backward(loss(t, model, b));
        criterion.observe(model.bert);
      } else if constexpr (observes_forward) {
        t.rewind();
        no_recording<Scalar> inference(t);
        (void)loss(t, model, b);
      }
    }
  } catch (...) {
    model.bert.set_observer(previous);
    throw;
  }
  model.bert.set_observer(previous);
  if constexpr (observes_gradients) model.for_each_parameter([](parameter<Scalar>& p) { p.zero_gradient(); });
  return criterion.score(model.bert);
}

}  // namespace earlybert
