// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/greedy.hpp"

#include <algorithm>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/selection.hpp"
#include "earlybert/prune/ticket.hpp"
#include "support/test_support.hpp"

using namespace earlybert;

namespace {
using model_type = bert_for_sequence_classification<double, shapes::any>;

model_type toy_model(int layers, index_t ffn) {
  bert_config c = bert_config::for_shape<bert_shape<1, 8, 2, 4>>(10);
  c.layers = layers;
  c.ffn = static_cast<int>(ffn);
  c.max_positions = 8;
  model_type m(c);
  rng random(2);
  m.initialise(random);
  return m;
}

// The model's loss on one fixed batch of two sequences, forward only: greedy selection's loss().
struct fixed_batch_loss {
  model_type& model;
  token_batch batch = [] {
    token_batch b;
    b.batch = 2;
    b.seq = 4;
    b.ids = {2, 5, 7, 3, 2, 6, 4, 3};
    b.type_ids.assign(8, 0);
    b.attention.assign(8, 1);
    b.labels = {1, 0};
    return b;
  }();
  tape<double> t;

  double operator()() {
    no_recording<double> inference(t);
    t.rewind();
    return model.loss(t, model.logits(t, batch, false, 0), batch).item();
  }
};
}  // namespace

TEST_CASE("greedy forward selection: the known order on a crafted layer, where the best pair is not the two best alone") {
  model_type m = toy_model(1, 4);
  // loss = -(3 c_0 + 5 c_1 + 4 c_2 + 1 c_3) + 4 c_1 c_2: alone, 1 then 2 would be best, together they
  // cost 4. Greedy adds 1 (-5), then 0 (-8; 2 would give -5), then 3 (-9; 2 gives -8), then 2.
  const auto crafted = [&] {
    const matrix<double>& c = m.bert.layers[0].ffn.structures().coefficients().value;
    return -(3 * c(0, 0) + 5 * c(0, 1) + 4 * c(0, 2) + 1 * c(0, 3)) + 4 * c(0, 1) * c(0, 2);
  };
  const std::vector<index_t> all{4};
  const per_layer_scores scores = greedy_forward_scores(m.bert, structure_kind::neurons, all, crafted);
  CHECK(scores == per_layer_scores{{3, 4, 1, 2}});
  CHECK_FALSE(m.bert.slimming());  // as it was
  const std::vector<index_t> two{2};
  const per_layer_scores first_two = greedy_forward_scores(m.bert, structure_kind::neurons, two, crafted);
  CHECK(first_two == per_layer_scores{{3, 4, 0, 0}});
  // A selection rule keeping two of four keeps exactly the greedy pair.
  CHECK(select_structures(first_two, selection_rule{.ratio = 0.5}) == per_layer_mask{{1, 1, 0, 0}});
  const std::vector<index_t> too_many{5};
  CHECK_THROWS_WITH_AS(greedy_forward_scores(m.bert, structure_kind::neurons, too_many, crafted),
                       "greedy_forward_scores: keep for neurons of layer 0 is 5, expected a count in [0, 4]", config_error);
}

TEST_CASE("greedy forward selection on a real loss: layer by layer, the model left as it was") {
  model_type m = toy_model(2, 6);
  fixed_batch_loss loss{m};
  std::vector<double> before;
  m.for_each_parameter([&](parameter<double>& p) { before.insert(before.end(), p.value.data(), p.value.data() + p.size()); });
  const double dense = loss();
  m.bert.set_slimming(true);
  const std::vector<index_t> keep{1, 2};
  const per_layer_scores scores = greedy_forward_scores(m.bert, structure_kind::heads, keep, loss);
  CHECK(m.bert.slimming());
  CHECK(loss() == dense);  // coefficients back at 1
  REQUIRE(scores.size() == 2);
  CHECK(std::count_if(scores[0].begin(), scores[0].end(), [](double s) { return s > 0; }) == 1);
  std::vector<double> both = scores[1];
  std::sort(both.begin(), both.end());
  CHECK(both == std::vector<double>{1, 2});  // both heads, one added first (2), the other next (1)
  m.bert.set_slimming(false);
  std::vector<double> after;
  m.for_each_parameter([&](parameter<double>& p) { after.insert(after.end(), p.value.data(), p.value.data() + p.size()); });
  CHECK(after == before);
}

TEST_CASE("greedy_criterion: the greedy order of every family, share + 1 of its active members, as a criterion") {
  model_type m = toy_model(2, 6);
  fixed_batch_loss loss{m};
  static_assert(importance_criterion<greedy_criterion<fixed_batch_loss&>, decltype(m.bert)>);
  // Layer 1 has two of its six neurons masked: 4 active, ceil(0.5 x 4) + 1 = 3 ranked; layer 0: 4 of 6.
  per_layer_mask neurons{{1, 1, 1, 1, 1, 1}, {1, 0, 1, 1, 0, 1}};
  apply_masks(m.bert, structure_masks{{{1, 1}, {1, 1}}, neurons});
  const double before = loss();
  greedy_criterion<fixed_batch_loss&> criterion{loss, 0.5};  // the test's loss, by reference
  const structure_scores scores = criterion.score(m.bert);
  CHECK(loss() == before);
  const std::vector<index_t> heads_keep{2, 2}, neurons_keep{4, 3};
  CHECK(scores.heads == greedy_forward_scores(m.bert, structure_kind::heads, heads_keep, loss));
  CHECK(scores.neurons == greedy_forward_scores(m.bert, structure_kind::neurons, neurons_keep, loss));
  for (std::size_t l = 0; l < 2; ++l) {
    const auto ranked = std::count_if(scores.neurons[l].begin(), scores.neurons[l].end(), [](double s) { return s > 0; });
    CHECK(ranked == neurons_keep[l]);
  }
  CHECK(scores.neurons[1][1] == 0);  // masked members are never added
  CHECK(scores.neurons[1][4] == 0);
  criterion.share = 1.5;
  CHECK_THROWS_WITH_AS(criterion.score(m.bert), "greedy_criterion: share is 1.5, expected a value in [0, 1]", config_error);
}
