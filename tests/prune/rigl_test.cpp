// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/rigl.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "support/test_support.hpp"

using namespace earlybert;

TEST_CASE("rigl: updates every interval until the end step, dropping alpha (1 + cos(pi t / T)) / 2") {
  const rigl_options o{.drop_fraction = 0.3, .update_interval = 100, .end_step = 750};
  std::vector<long> updates;
  for (long step = 0; step < 1000; ++step) {
    if (o.updates_at(step)) updates.push_back(step);
  }
  CHECK(updates == std::vector<long>{100, 200, 300, 400, 500, 600, 700});
  CHECK(o.fraction_at(0) == doctest::Approx(0.3));
  CHECK(o.fraction_at(375) == doctest::Approx(0.15));
  CHECK(o.fraction_at(750) == doctest::Approx(0.0));
  CHECK(o.fraction_at(250) == doctest::Approx(0.15 * (1 + std::cos(std::numbers::pi / 3))));
  CHECK_THROWS_WITH_AS((rigl_options{.sparsity = 1.0, .end_step = 10}.check()), "rigl: 'sparsity' is 1, expected a value in [0, 1)", config_error);
}

TEST_CASE("rigl: ERK gives smaller layers more density, keeps the total, and caps a layer at dense") {
  const std::vector<shape2> shapes{{256, 256}, {1024, 256}, {4, 8}};
  const std::vector<double> uniform = rigl_densities(shapes, 0.9, sparsity_allocation::uniform);
  CHECK(uniform == std::vector<double>(3, 1 - 0.9));
  const std::vector<double> erk = rigl_densities(shapes, 0.9, sparsity_allocation::erk);
  CHECK(erk[2] == 1.0);  // (4 + 8) / 32 scaled would exceed 1
  // The rest in proportion to (rows + cols) / (rows cols).
  CHECK(erk[0] / erk[1] == doctest::Approx((512.0 / 65536.0) / (1280.0 / 262144.0)));
  double kept = 0, total = 0;
  for (std::size_t f = 0; f < shapes.size(); ++f) {
    const double n = static_cast<double>(shapes[f].rows * shapes[f].cols);
    kept += erk[f] * n;
    total += n;
  }
  CHECK(kept == doctest::Approx(0.1 * total));
}

TEST_CASE("rigl_update: drops the smallest weights, grows the largest gradients but never one just dropped, grown weights start at zero") {
  linear<double> layer("layer", 4, 2);  // 8 weights
  // Active: 0, 1, 2, 3, 4 (values 5, 0.1, 3, 0.2, 4); inactive: 5, 6, 7.
  layer.weight.value = earlybert::testing::matrix_of<double>({{5, 0.1, 3, 0.2}, {4, 0, 0, 0}});
  std::vector<weight_family<double>> families{weight_family<double>(layer)};
  std::vector<std::vector<std::uint8_t>> masks{{1, 1, 1, 1, 1, 0, 0, 0}};
  families[0].set_active(masks[0]);
  layer.weight.first_moment = matrix<double>::Constant(2, 4, 0.5);
  layer.weight.second_moment = matrix<double>::Constant(2, 4, 0.5);
  families[0].set_active(masks[0]);  // the moments of the inactive ones are zero now
  // The dense gradient: weight 1 (about to be dropped) has the largest, then 7, then 5 and 6 tied.
  layer.weight.gradient = earlybert::testing::matrix_of<double>({{0, 9, 0, 0}, {0, 1, 1, 2}});
  // round(0.4 x 5) = 2 move: drop 1 and 3 (0.1, 0.2); grow 7 (|g| 2), then 5 before 6 (tied, lower index).
  const rigl_moves moves = rigl_update(std::span(families), masks, 0.4);
  CHECK(moves.moved == 2);
  CHECK(moves.grown_gradient == 3.0);  // |g| 2 and 1
  CHECK(masks[0] == std::vector<std::uint8_t>{1, 0, 1, 0, 1, 1, 0, 1});
  CHECK(families[0].active() == masks[0]);
  for (const index_t grown : {5, 7}) {
    CHECK(layer.weight.value.data()[grown] == 0.0);
    CHECK(layer.weight.first_moment.data()[grown] == 0.0);
    CHECK(layer.weight.second_moment.data()[grown] == 0.0);
  }
  CHECK(layer.weight.value.data()[1] == 0.0);  // dropped: zero
  CHECK(layer.weight.value.data()[0] == 5.0);  // kept: untouched
}

TEST_CASE("rigl: every family keeps its count of active weights through updates, at the allocation's density") {
  bert_config c = bert_config::for_shape<bert_shape<2, 16, 2, 24>>(11);
  c.max_positions = 8;
  bert_for_sequence_classification<double, shapes::any> model(c);
  rng random(3);
  model.initialise(random);
  std::vector<weight_family<double>> families;
  model.bert.for_each_weight_family([&](weight_family<double> f) { families.push_back(f); });
  const rigl_options o{.sparsity = 0.8, .allocation = sparsity_allocation::erk, .end_step = 100};
  rigl_initial_masks(std::span(families), o, random);
  std::vector<index_t> counts;
  std::vector<std::vector<std::uint8_t>> masks;
  index_t kept = 0, total = 0;
  for (const auto& f : families) {
    counts.push_back(f.active_count());
    masks.push_back(f.active());
    kept += f.active_count();
    total += f.size();
  }
  CHECK(static_cast<double>(kept) / static_cast<double>(total) == doctest::Approx(0.2).epsilon(0.02));
  for (int update = 0; update < 5; ++update) {
    for (auto& f : families) {
      parameter<double>& w = f.weights_mutable();
      w.gradient = earlybert::testing::random_matrix<double>(w.rows(), w.cols(), 100 + static_cast<std::uint64_t>(update));
    }
    const std::vector<std::vector<std::uint8_t>> before = masks;
    CHECK(rigl_update(std::span(families), masks, o.fraction_at(10 * update)).moved > 0);
    for (std::size_t f = 0; f < families.size(); ++f) {
      CHECK(families[f].active_count() == counts[f]);
      CHECK(masks[f] != before[f]);
    }
  }
}
