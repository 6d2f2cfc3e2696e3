// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/criteria.hpp"

#include <vector>

#include <doctest/doctest.h>

#include "earlybert/prune/selection.hpp"
#include "earlybert/prune/ticket.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;
using earlybert::testing::random_matrix;

namespace {
using test_shape = bert_shape<2, 8, 2, 4>;  // head_dim 4, 4 neurons per layer
using model_type = bert_model<double, test_shape>;

model_type crafted_model() {
  bert_config c = bert_config::for_shape<test_shape>(10);
  c.max_positions = 8;
  model_type m(c, false);
  rng random(1);
  m.initialise(random);
  // Layer 0: head 1 has larger weights than head 0; layer 1: head 0 larger.
  auto& a0 = m.layers[0].self_attention;
  a0.query.weight.value.setConstant(0.1);
  a0.key.weight.value.setConstant(0.1);
  a0.value.weight.value.setConstant(0.1);
  a0.output.weight.value.setConstant(0.1);
  a0.query.weight.value.middleRows(4, 4).setConstant(1.0);
  auto& a1 = m.layers[1].self_attention;
  a1.output.weight.value.setConstant(0.1);
  a1.query.weight.value.setZero();
  a1.key.weight.value.setZero();
  a1.value.weight.value.setZero();
  a1.output.weight.value.middleCols(0, 4).setConstant(2.0);
  // Neurons: layer 0 ranks 3 > 2 > 1 > 0 by W_1 rows; layer 1 all small but neuron 2 via W_2.
  for (int l = 0; l < 2; ++l) {
    auto& f = m.layers[static_cast<std::size_t>(l)].ffn;
    f.intermediate.weight.value.setZero();
    f.intermediate.bias.value.setZero();
    f.output.weight.value.setZero();
  }
  for (int j = 0; j < 4; ++j) m.layers[0].ffn.intermediate.weight.value.row(j).setConstant(0.5 * (j + 1));
  m.layers[1].ffn.output.weight.value.col(2).setConstant(0.1);
  m.layers[1].ffn.intermediate.bias.value(0, 1) = 0.05;
  return m;
}
}  // namespace

TEST_CASE("magnitude_criterion: the known ranking of crafted weights") {
  model_type m = crafted_model();
  const structure_scores s = magnitude_criterion{}.score(m);
  CHECK(s.heads[0][1] > s.heads[0][0]);
  CHECK(s.heads[1][0] > s.heads[1][1]);
  // Head 0 of layer 0: 3 matrices x 4 rows x 8 cols of 0.1^2, plus 8 x 4 of W_O: 128 x 0.01.
  CHECK(s.heads[0][0] == doctest::Approx(1.28));
  CHECK(s.neurons[0] == std::vector<double>{8 * 0.25, 8 * 1.0, 8 * 2.25, 8 * 4.0});
  CHECK(s.neurons[1][2] == doctest::Approx(8 * 0.01));
  CHECK(s.neurons[1][1] == doctest::Approx(0.05 * 0.05));
  CHECK(s.neurons[1][0] == 0.0);
  const structure_masks ticket = ticket_selector{}.select(s);
  CHECK(ticket.heads[0] == std::vector<std::uint8_t>{0, 1});
  CHECK(ticket.heads[1] == std::vector<std::uint8_t>{1, 0});
}

TEST_CASE("slimming_criterion: signed or absolute coefficients") {
  model_type m = crafted_model();
  CHECK_THROWS_WITH_AS(slimming_criterion{}.score(m),
                       "slimming_criterion: the model has no slimming coefficients (set_slimming(true) before the search)", config_error);
  m.set_slimming(true);
  m.layers[0].self_attention.coefficients.values.value << -0.9, 0.2;
  m.layers[0].ffn.coefficients.values.value << 0.5, -0.1, 0.3, 0.0;
  const structure_scores signed_scores = slimming_criterion{}.score(m);
  CHECK(signed_scores.heads[0] == std::vector<double>{-0.9, 0.2});
  CHECK(ticket_selector{}.select(signed_scores).heads[0] == std::vector<std::uint8_t>{0, 1});
  const structure_scores absolute = slimming_criterion{true}.score(m);
  CHECK(absolute.heads[0][0] == doctest::Approx(0.9));
  CHECK(ticket_selector{}.select(absolute).heads[0] == std::vector<std::uint8_t>{1, 0});
  CHECK(absolute.neurons[0][1] == doctest::Approx(0.1));
}

TEST_CASE("gradient and Taylor criteria accumulate over batches, heads normalised per layer") {
  model_type m = crafted_model();
  m.set_slimming(true);
  gradient_criterion gradient;
  taylor_criterion taylor;
  for (int batch = 0; batch < 2; ++batch) {
    m.layers[0].self_attention.coefficients.values.gradient << 3.0, -4.0;
    m.layers[1].self_attention.coefficients.values.gradient << 0.0, 1.0;
    m.layers[0].ffn.coefficients.values.gradient << 1, -2, 0, 0;
    m.layers[1].ffn.coefficients.values.gradient.setZero();
    gradient.observe(m);
    for (auto& layer : m.layers) {
      for (linear<double>* l : {&layer.self_attention.query, &layer.self_attention.key, &layer.self_attention.value,
                                &layer.self_attention.output, &layer.ffn.intermediate, &layer.ffn.output}) {
        l->weight.gradient = l->weight.value;  // w dL/dw = w^2: Taylor equals magnitude without the W_1 bias
        l->bias.gradient.setZero();
      }
    }
    taylor.observe(m);
  }
  const structure_scores g = gradient.score(m);
  CHECK(g.heads[0][0] == doctest::Approx(0.6));  // (6, 8) / 10
  CHECK(g.heads[0][1] == doctest::Approx(0.8));
  CHECK(g.heads[1] == std::vector<double>{0.0, 1.0});
  CHECK(g.neurons[0] == std::vector<double>{2, 4, 0, 0});
  const structure_scores t = taylor.score(m);
  const structure_scores magnitude = magnitude_criterion{}.score(m);
  CHECK(t.heads[0][0] == doctest::Approx(2 * magnitude.heads[0][0]));
  CHECK(t.neurons[0][3] == doctest::Approx(2 * magnitude.neurons[0][3]));
}

TEST_CASE("random_criterion: the same seed gives the same scores, another seed others") {
  model_type m = crafted_model();
  const structure_scores a = random_criterion{5}.score(m), b = random_criterion{5}.score(m), c = random_criterion{6}.score(m);
  CHECK(a.neurons == b.neurons);
  CHECK(a.heads == b.heads);
  CHECK(a.neurons != c.neurons);
  for (const auto& layer : a.neurons) {
    for (double v : layer) CHECK((v >= 0 && v < 1));
  }
}

TEST_CASE("draw_ticket: compacts to the mask and original_masks maps back") {
  model_type m = crafted_model();
  structure_masks ticket{{{0, 1}, {1, 1}}, {{1, 0, 1, 1}, {0, 1, 1, 0}}};
  draw_ticket(m, ticket);
  CHECK(m.layers[0].self_attention.heads() == 1);
  CHECK(m.layers[1].ffn.neurons() == 2);
  CHECK(original_masks(m).heads == ticket.heads);
  CHECK(original_masks(m).neurons == ticket.neurons);
  // A layer may lose every head (as in HuggingFace's prune_heads); the selectors' guard keeps
  // min_kept >= 1 per layer, so EarlyBERT's tickets never do.
  structure_masks empty{{{0, 0}, {1, 1}}, {{1, 1, 1, 1}, {1, 1, 1, 1}}};
  model_type fresh = crafted_model();
  draw_ticket(fresh, empty);
  CHECK(fresh.layers[0].self_attention.heads() == 0);
  CHECK(original_masks(fresh).heads == empty.heads);
  CHECK_THROWS_AS(draw_ticket(fresh, structure_masks{{{1}, {1, 1}}, {{1, 1, 1, 1}, {1, 1, 1, 1}}}), shape_error);  // 1 entry, 0 held
}
