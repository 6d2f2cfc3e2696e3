// SPDX-License-Identifier: Apache-2.0
#pragma once
// Greedy forward selection (Ye et al. 2020, "Good subnetworks provably exist: pruning via greedy
// forward selection", the theory behind early-bird tickets): a layer's kept members are built one at a
// time, each time adding the member whose addition lowers the loss on a fixed batch the most.
//
// greedy_forward_scores(bert, kind, keep, loss) goes through the layers in order; in layer l it starts
// from no member of `kind` and adds keep[l] members greedily (ties to the lower index), earlier layers
// holding their selection and later ones all their members, as Ye et al.'s layer-by-layer procedure.
// Members are switched on and off through the slimming coefficients (0 or 1: the same function as
// masking the member, without touching a weight), so the model comes back as it was: its
// coefficients, and slimming on or off. loss() evaluates the model on the caller's fixed batch
// (forward only, in a no_recording scope).
//
// The result is a score per member, usable wherever a criterion's scores are (prune/selection.hpp): the
// first member added scores n, the next n - 1, ..., the members never added 0; a selection rule
// keeping keep[l] of layer l's n then keeps exactly the greedy set. Cost: sum over layers of about
// keep[l] x n forward passes — for small layers and research on the method, not for BERT-base FFNs.
//
// greedy_criterion{loss, share} is the same selection as an importance criterion (prune/criteria.hpp),
// for the pipelines that take one (structured IMP, EarlyBERT's search): score(bert) ranks each layer's
// heads, then each layer's FFN neurons, adding ceil(share x active) + 1 of a family's active members
// (at most all of them; one beyond the share, so that a selection rounding up still finds its last
// member ranked); the members not added, and the masked ones, score 0. With share = 1 - p it ranks
// what a pruning of the fraction p keeps.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/nn/structure.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

template <class Scalar, class Shape, class Loss>
per_layer_scores greedy_forward_scores(bert_model<Scalar, Shape>& bert, structure_kind kind, std::span<const index_t> keep, Loss&& loss) {
  using scalar = Scalar;
  // The counts first, so that a bad one leaves the model untouched.
  std::size_t layers = 0;
  bert.for_each_family([&](structure_family<scalar> family) {
    if (family.kind() != kind) return;
    const index_t n = family.size();
    if (layers >= keep.size() || keep[layers] < 0 || keep[layers] > n) {
      throw config_error(fmt::format("greedy_forward_scores: keep for {} of layer {} is {}, expected a count in [0, {}]", to_string(kind),
                                     layers, layers < keep.size() ? keep[layers] : -1, n));
    }
    ++layers;
  });
  if (layers != keep.size()) throw config_error(fmt::format("greedy_forward_scores: {} counts to keep for {} layers", keep.size(), layers));
  const bool was_slimming = bert.slimming();
  std::vector<matrix<scalar>> saved;
  if (was_slimming) {
    bert.for_each_family([&](structure_family<scalar> family) { saved.push_back(family.coefficients().value); });
  } else {
    bert.set_slimming(true);  // a coefficient of 1 per active member
  }
  per_layer_scores scores;
  bert.for_each_family([&](structure_family<scalar> family) {
    if (family.kind() != kind) return;
    const std::size_t l = scores.size();
    const index_t n = family.size();
    std::vector<double>& s = scores.emplace_back(static_cast<std::size_t>(n), 0.0);
    matrix<scalar>& c = family.coefficients_mutable().value;
    const std::span<const std::uint8_t> active = family.active();
    c.setZero();
    for (index_t added = 0; added < keep[l]; ++added) {
      index_t best = -1;
      double best_loss = std::numeric_limits<double>::infinity();
      for (index_t j = 0; j < n; ++j) {
        if (s[static_cast<std::size_t>(j)] != 0 || active[static_cast<std::size_t>(j)] == 0) continue;
        c(0, j) = scalar(1);
        const double trial = static_cast<double>(loss());
        c(0, j) = scalar(0);
        if (trial < best_loss) {
          best_loss = trial;
          best = j;
        }
      }
      if (best < 0) {
        throw numerical_error(fmt::format("greedy_forward_scores: no member of {} of layer {} gives a finite loss (or none is left active)",
                                          to_string(kind), l));
      }
      c(0, best) = scalar(1);
      s[static_cast<std::size_t>(best)] = static_cast<double>(n - added);
    }
  });
  if (was_slimming) {
    std::size_t i = 0;
    bert.for_each_family([&](structure_family<scalar> family) { family.coefficients_mutable().value = saved[i++]; });
  } else {
    bert.set_slimming(false);
  }
  return scores;
}

template <class Loss>
struct greedy_criterion {
  Loss loss;           // () -> the loss on the caller's fixed batch, forward only
  double share = 1.0;  // in [0, 1]: the share of each family's active members to rank

  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& bert) {
    if (!(share >= 0 && share <= 1)) throw config_error(fmt::format("greedy_criterion: share is {}, expected a value in [0, 1]", share));
    structure_scores scores;
    for (const structure_kind kind : {structure_kind::heads, structure_kind::neurons}) {
      std::vector<index_t> keep;
      std::as_const(bert).for_each_family([&](const auto& family) {
        if (family.kind() != kind) return;
        const index_t active = family.active_count();
        keep.push_back(std::min(active, static_cast<index_t>(std::ceil(share * static_cast<double>(active))) + 1));
      });
      scores.of(kind) = greedy_forward_scores(bert, kind, keep, loss);
    }
    return scores;
  }
};

template <class Loss>
greedy_criterion(Loss, double) -> greedy_criterion<Loss>;

}  // namespace earlybert
