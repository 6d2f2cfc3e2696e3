// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/magnitude.hpp"
#include "earlybert/prune/controls.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "support/test_support.hpp"

using namespace earlybert;

namespace {
using model_type = bert_for_sequence_classification<double, shapes::any>;

model_type random_model() {
  bert_config c = bert_config::for_shape<bert_shape<2, 16, 2, 24>>(11);
  c.max_positions = 8;
  model_type m(c);
  rng random(3);
  m.initialise(random);
  return m;
}

std::vector<weight_family<double>> families_of(model_type& m) {
  std::vector<weight_family<double>> families;
  m.bert.for_each_weight_family([&](weight_family<double> f) { families.push_back(f); });
  return families;
}

index_t active_in(const std::vector<weight_family<double>>& families) {
  index_t active = 0;
  for (const auto& f : families) active += f.active_count();
  return active;
}
}  // namespace

TEST_CASE("magnitude pruning: level k keeps exactly round((1 - p)^k n), globally and per family, pruned weights stay pruned") {
  for (const magnitude_scope scope : {magnitude_scope::global, magnitude_scope::per_family}) {
    CAPTURE(scope == magnitude_scope::global);
    model_type m = random_model();
    std::vector<weight_family<double>> families = families_of(m);
    index_t n = 0;
    for (const auto& f : families) n += f.size();
    const magnitude_pruning rule{.fraction = 0.2, .scope = scope};
    std::vector<std::vector<std::uint8_t>> before;
    for (const auto& f : families) before.push_back(f.active());
    for (int level = 1; level <= 8; ++level) {
      CAPTURE(level);
      prune_to_level(std::span(families), rule, level);
      if (scope == magnitude_scope::global) {
        CHECK(active_in(families) == std::llround(std::pow(0.8, level) * static_cast<double>(n)));
      } else {
        for (const auto& f : families) CHECK(f.active_count() == std::llround(std::pow(0.8, level) * static_cast<double>(f.size())));
      }
      for (std::size_t f = 0; f < families.size(); ++f) {
        const std::vector<std::uint8_t> now = families[f].active();
        for (std::size_t i = 0; i < now.size(); ++i) {
          if (before[f][i] == 0) CHECK(now[i] == 0);
        }
        before[f] = now;
      }
    }
    CHECK(rule.kept(n, 8) == std::llround(std::pow(0.8, 8) * static_cast<double>(n)));
  }
}

TEST_CASE("magnitude pruning: the smallest magnitudes go, ranked across families when global") {
  model_type m = random_model();
  std::vector<weight_family<double>> families = families_of(m);
  std::vector<double> magnitudes;
  for (const auto& f : families) {
    for (index_t i = 0; i < f.size(); ++i) magnitudes.push_back(std::abs(f.weights().value.data()[i]));
  }
  prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.5}, 1);
  double largest_pruned = 0, smallest_kept = 1e300;
  std::size_t at = 0;
  std::vector<index_t> kept_per_family;
  for (const auto& f : families) {
    const std::vector<std::uint8_t> active = f.active();
    for (const std::uint8_t a : active) {
      if (a != 0) {
        smallest_kept = std::min(smallest_kept, magnitudes[at++]);
      } else {
        largest_pruned = std::max(largest_pruned, magnitudes[at++]);
      }
    }
    kept_per_family.push_back(f.active_count());
  }
  CHECK(largest_pruned <= smallest_kept);
  // Ranked together, the families keep different numbers of weights, not half of each.
  CHECK(std::adjacent_find(kept_per_family.begin(), kept_per_family.end(), std::not_equal_to<>()) != kept_per_family.end());
}

TEST_CASE("magnitude pruning: ties go by family, then by index, the earlier first, levels only go forward") {
  linear<double> a("a", 3, 2), b("b", 2, 2);  // weights [2, 3] and [2, 2]
  a.weight.value.setConstant(0.5);
  b.weight.value.setConstant(0.5);
  b.weight.value(1, 1) = 0.25;
  std::vector<weight_family<double>> families{weight_family<double>(a), weight_family<double>(b)};
  // 10 weights; level 1 at p = 0.3 keeps 7: b's 0.25 first, then the first two of a.
  prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.3}, 1);
  CHECK(families[0].active() == std::vector<std::uint8_t>{0, 0, 1, 1, 1, 1});
  CHECK(families[1].active() == std::vector<std::uint8_t>{1, 1, 1, 0});
  CHECK_THROWS_WITH_AS(prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.1}, 1),
                       "magnitude pruning: the model holds 7 of 10 weights active, fewer than level 1 keeps (9): levels only go forward",
                       config_error);
  CHECK_THROWS_WITH_AS(prune_to_level(std::span(families), magnitude_pruning{.fraction = 1.0}, 1),
                       "magnitude pruning: fraction is 1, expected a value in (0, 1)", config_error);
  CHECK_THROWS_WITH_AS(prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.3, .scope = magnitude_scope::per_family}, 0),
                       "magnitude pruning: 'a.weight' holds 4 of 6 weights active, fewer than level 0 keeps (6): levels only go forward",
                       config_error);
}

TEST_CASE("controls: random masks keep each family's count, shuffled weights keep the mask and each family's kept values") {
  model_type m = random_model();
  std::vector<weight_family<double>> families = families_of(m);
  prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.2, .scope = magnitude_scope::global}, 3);
  std::vector<std::vector<std::uint8_t>> ticket;
  std::vector<std::vector<double>> kept_values;
  for (const auto& f : families) {
    ticket.push_back(f.active());
    std::vector<double> kept;
    for (std::size_t i = 0; i < ticket.back().size(); ++i) {
      if (ticket.back()[i] != 0) kept.push_back(f.weights().value.data()[i]);
    }
    kept_values.push_back(kept);
  }

  SUBCASE("shuffled weights") {
    rng random(8);
    shuffle_kept_weights(std::span(families), random);
    bool moved = false;
    for (std::size_t f = 0; f < families.size(); ++f) {
      CHECK(families[f].active() == ticket[f]);
      std::vector<double> kept;
      for (std::size_t i = 0; i < ticket[f].size(); ++i) {
        const double v = families[f].weights().value.data()[i];
        if (ticket[f][i] != 0) {
          kept.push_back(v);
        } else {
          CHECK(v == 0.0);
        }
      }
      moved = moved || kept != kept_values[f];
      std::sort(kept.begin(), kept.end());
      std::sort(kept_values[f].begin(), kept_values[f].end());
      CHECK(kept == kept_values[f]);
    }
    CHECK(moved);
  }

  SUBCASE("random masks") {
    const auto draw = [&](std::uint64_t seed) {
      model_type copy = random_model();
      std::vector<weight_family<double>> copies = families_of(copy);
      for (std::size_t f = 0; f < copies.size(); ++f) copies[f].set_active(ticket[f]);
      rng random(seed);
      random_masks_like(std::span(copies), random);
      std::vector<std::vector<std::uint8_t>> masks;
      for (const auto& f : copies) masks.push_back(f.active());
      return masks;
    };
    const auto masks = draw(5);
    CHECK(masks == draw(5));
    CHECK(masks != draw(6));
    for (std::size_t f = 0; f < families.size(); ++f) {
      CHECK(std::count(masks[f].begin(), masks[f].end(), 1) == families[f].active_count());
      CHECK(masks[f] != ticket[f]);
    }
  }
}
