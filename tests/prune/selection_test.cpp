// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/selection.hpp"

#include <limits>
#include <vector>

#include <doctest/doctest.h>

using namespace earlybert;

namespace {
using mask = std::vector<std::uint8_t>;
}

TEST_CASE("selection: exact counting prunes round(n r) lowest, ties broken by index") {
  const per_layer_scores scores{{0.5, 0.1, 0.9, 0.1, 0.3, 0.7}};
  CHECK(select_structures(scores, {1.0 / 3.0})[0] == mask{1, 0, 1, 0, 1, 1});
  CHECK(select_structures(scores, {0.5})[0] == mask{1, 0, 1, 0, 0, 1});
  // Ratio 0 prunes nothing; round(6 * 0.05) = 0 as well.
  CHECK(select_structures(scores, {0.0})[0] == mask(6, 1));
  CHECK(select_structures(scores, {0.05})[0] == mask(6, 1));
  // A tie at the cut keeps the later index.
  CHECK(select_structures(per_layer_scores{{0.2, 0.2, 0.2}}, {0.34})[0] == mask{0, 1, 1});
}

TEST_CASE("selection: the quantile rule prunes floor(r (n-1)) + 1 distinct scores, and one even at ratio 0") {
  const per_layer_scores scores{{0.5, 0.1, 0.9, 0.2, 0.3, 0.7}};
  const selection_rule quantile{0.0, selection_scope::layerwise, counting_rule::quantile};
  CHECK(select_structures(scores, quantile)[0] == mask{1, 0, 1, 1, 1, 1});
  // r = 0.4, n = 6: floor(0.4 * 5) + 1 = 3 pruned (numpy: quantile = 0.3, keep > 0.3).
  CHECK(select_structures(scores, {0.4, selection_scope::layerwise, counting_rule::quantile})[0] == mask{1, 0, 1, 0, 0, 1});
  CHECK(detail::linear_quantile({4, 1, 3, 2}, 0.5) == doctest::Approx(2.5));
}

TEST_CASE("selection: global scope ranks all layers together and the guard keeps one per layer") {
  const per_layer_scores scores{{0.9, 0.8, 0.7}, {0.1, 0.2, 0.3}};
  // Global 50%: the three lowest are all in layer 1, which the guard gives back its best one.
  const auto global = select_structures(scores, {0.5, selection_scope::global});
  CHECK(global[0] == mask{1, 1, 1});
  CHECK(global[1] == mask{0, 0, 1});
  // min_kept 2 restores two.
  CHECK(select_structures(scores, {0.5, selection_scope::global, counting_rule::exact, 2})[1] == mask{0, 1, 1});
  // Layerwise 1/3 prunes one in each layer.
  const auto layerwise = select_structures(scores, {1.0 / 3.0});
  CHECK(layerwise[0] == mask{1, 1, 0});
  CHECK(layerwise[1] == mask{0, 1, 1});
  // A layer of one head keeps it whatever the ratio.
  CHECK(select_structures(per_layer_scores{{0.3}}, {0.9})[0] == mask{1});
}

TEST_CASE("selection: EarlyBERT's defaults on a BERT-base-like layout prune 4 of 12 heads per layer and 40% of neurons") {
  per_layer_scores heads(12, std::vector<double>(12)), neurons(12, std::vector<double>(300));
  for (std::size_t l = 0; l < 12; ++l) {
    for (std::size_t h = 0; h < 12; ++h) heads[l][h] = static_cast<double>((h * 7 + l) % 12);
    for (std::size_t j = 0; j < 300; ++j) neurons[l][j] = static_cast<double>((j * 31 + l * 17) % 1009) + static_cast<double>(l);
  }
  const structure_masks m = ticket_selector{}.select({heads, neurons});
  for (auto kept : m.heads_kept()) CHECK(kept == 8);
  index_t total = 0;
  for (auto kept : m.neurons_kept()) total += kept;
  CHECK(total == 3600 - 1440);
}

TEST_CASE("selection: ratios outside 0 to 1 (1 excluded) and a zero minimum are config errors") {
  CHECK_THROWS_WITH_AS(select_structures({{1.0}}, {1.0}), "select_structures: pruning ratio is 1, expected a value in [0, 1)", config_error);
  CHECK_THROWS_WITH_AS(select_structures({{1.0}}, {-0.1}), "select_structures: pruning ratio is -0.1, expected a value in [0, 1)", config_error);
  CHECK_THROWS_WITH_AS(select_structures({{1.0}}, {0.5, selection_scope::global, counting_rule::exact, 0}),
                       "select_structures: minimum kept per layer is 0, expected at least 1", config_error);
}

TEST_CASE("selection: a score that is not finite is a numerical_error naming the structure, never a silent mask") {
  // {1.0, NaN, 0.5} with one head pruned would otherwise keep the NaN head and prune the best one.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const selection_rule third{1.0 / 3.0, selection_scope::layerwise, counting_rule::exact, 1};
  CHECK_THROWS_WITH_AS(select_structures({{1.0, nan, 0.5}}, third, "heads"),
                       "select_structures: the score of heads 1 of layer 0 is nan, expected a finite number", numerical_error);
  const selection_rule global{0.4, selection_scope::global, counting_rule::quantile, 1};
  CHECK_THROWS_WITH_AS(select_structures({{0.1, 0.2}, {-inf, 0.3}}, global, "neurons"),
                       "select_structures: the score of neurons 0 of layer 1 is -inf, expected a finite number", numerical_error);
  structure_scores scores{{{0.2, 0.3, 0.1}}, {{0.5, nan}}};
  CHECK_THROWS_WITH_AS(ticket_selector{}.select(scores), "select_structures: the score of neurons 1 of layer 0 is nan, expected a finite number",
                       numerical_error);
  scores.neurons[0][1] = 0.4;
  CHECK(ticket_selector{}.select(scores).heads[0] == mask{1, 1, 0});
}
