// SPDX-License-Identifier: Apache-2.0
#pragma once
// Selection: from scores to a mask. EarlyBERT prunes heads layerwise (a third of each layer's heads)
// and FFN neurons globally (40% of all neurons of all layers ranked together).
//
// A selection_rule prunes a `ratio` of the structures, within each layer (layerwise) or across all
// layers (global), by one of two counting rules:
//   exact     sort ascending by (score, index) and prune the round(n * ratio) lowest (the default);
//   quantile  keep = score > quantile(scores, ratio), numpy's linear interpolation, as the official
//             EarlyBERT draw scripts do: it prunes floor(ratio (n-1)) + 1 structures when scores are
//             distinct, so ratio 0 still prunes the lowest one.
// The guard: every layer keeps at least min_kept structures. Layerwise, the count per layer is capped
// at n_layer - min_kept; globally, a layer left with fewer than min_kept gets its best-scored pruned
// structures back (so the total pruned may be less than round(n * ratio); the alternative, pruning
// others instead, would change other layers' masks because of one layer).
//
// The mask_selector concept: select(scores) -> structure_masks. ticket_selector is EarlyBERT's.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <numeric>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

enum class selection_scope { layerwise, global };
enum class counting_rule { exact, quantile };

struct selection_rule {
  double ratio = 0;  // fraction pruned, in [0, 1)
  selection_scope scope = selection_scope::layerwise;
  counting_rule counting = counting_rule::exact;
  index_t min_kept = 1;  // per layer

  void check(const char* what) const {
    if (!(ratio >= 0 && ratio < 1)) {
      throw config_error(fmt::format("{}: pruning ratio is {}, expected a value in [0, 1)", what, ratio));
    }
    if (min_kept < 1) throw config_error(fmt::format("{}: minimum kept per layer is {}, expected at least 1", what, min_kept));
  }
};

namespace detail {
// numpy.quantile(values, q) with the default linear interpolation.
inline double linear_quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

// Marks as pruned (0), among the entries `candidates` of `scores`, those the rule prunes.
inline void prune_among(const std::vector<double>& scores, const std::vector<std::size_t>& candidates, const selection_rule& rule,
                        std::vector<std::uint8_t>& keep) {
  if (candidates.empty()) return;
  if (rule.counting == counting_rule::quantile) {
    std::vector<double> values;
    for (auto i : candidates) values.push_back(scores[i]);
    const double threshold = linear_quantile(values, rule.ratio);
    for (auto i : candidates) keep[i] = scores[i] > threshold ? 1 : 0;
    return;
  }
  std::vector<std::size_t> order = candidates;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  const auto count = static_cast<std::size_t>(std::llround(static_cast<double>(order.size()) * rule.ratio));
  for (std::size_t k = 0; k < order.size(); ++k) keep[order[k]] = k < count ? 0 : 1;
}
}  // namespace detail

// The mask for one kind of structure (per layer scores) under one rule. Every score must be finite:
// a NaN compares false with everything and would be kept or pruned by its position, not its merit,
// so a criterion that produced one (0 log 0, a division by a zero norm) is stopped here, named by
// `kind` ("heads", "neurons"), layer and index.
inline per_layer_mask select_structures(const per_layer_scores& scores, const selection_rule& rule, std::string_view kind = "structures") {
  rule.check("select_structures");
  for (std::size_t l = 0; l < scores.size(); ++l) {
    for (std::size_t i = 0; i < scores[l].size(); ++i) {
      if (!std::isfinite(scores[l][i])) {
        throw numerical_error(fmt::format("select_structures: the score of {} {} of layer {} is {}, expected a finite number", kind, i, l,
                                          scores[l][i]));
      }
    }
  }
  per_layer_mask mask(scores.size());
  if (rule.scope == selection_scope::layerwise) {
    for (std::size_t l = 0; l < scores.size(); ++l) {
      const std::vector<double>& s = scores[l];
      mask[l].assign(s.size(), 1);
      std::vector<std::size_t> all(s.size());
      std::iota(all.begin(), all.end(), std::size_t{0});
      detail::prune_among(s, all, rule, mask[l]);
    }
  } else {
    // Flatten in (layer, index) order, so ties break by layer then index.
    std::vector<double> flat;
    for (const auto& s : scores) flat.insert(flat.end(), s.begin(), s.end());
    std::vector<std::uint8_t> keep(flat.size(), 1);
    std::vector<std::size_t> all(flat.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    detail::prune_among(flat, all, rule, keep);
    std::size_t at = 0;
    for (std::size_t l = 0; l < scores.size(); ++l) {
      mask[l].assign(keep.begin() + static_cast<std::ptrdiff_t>(at), keep.begin() + static_cast<std::ptrdiff_t>(at + scores[l].size()));
      at += scores[l].size();
    }
  }
  // The guard: restore a layer's best-scored structures until it keeps min_kept.
  for (std::size_t l = 0; l < scores.size(); ++l) {
    const auto needed = std::min<std::size_t>(static_cast<std::size_t>(rule.min_kept), scores[l].size());
    std::size_t kept = 0;
    for (auto k : mask[l]) kept += k;
    if (kept >= needed) continue;
    std::vector<std::size_t> pruned;
    for (std::size_t i = 0; i < mask[l].size(); ++i) {
      if (mask[l][i] == 0) pruned.push_back(i);
    }
    std::stable_sort(pruned.begin(), pruned.end(), [&](std::size_t a, std::size_t b) { return scores[l][a] > scores[l][b]; });
    for (std::size_t k = 0; kept < needed; ++k, ++kept) mask[l][pruned[k]] = 1;
  }
  return mask;
}

template <class S>
concept mask_selector = requires(const S& s, const structure_scores& scores) {
  { s.select(scores) } -> std::same_as<structure_masks>;
};

// EarlyBERT's selection: heads layerwise 1/3, FFN neurons global 0.4, exact counting, one kept per layer.
struct ticket_selector {
  selection_rule heads{1.0 / 3.0, selection_scope::layerwise, counting_rule::exact, 1};
  selection_rule neurons{0.4, selection_scope::global, counting_rule::exact, 1};

  structure_masks select(const structure_scores& scores) const {
    return {select_structures(scores.heads, heads, "heads"), select_structures(scores.neurons, neurons, "neurons")};
  }
};
static_assert(mask_selector<ticket_selector>);

}  // namespace earlybert
