// SPDX-License-Identifier: Apache-2.0
#include "earlybert/nn/bert.hpp"
#include "earlybert/nn/named_shapes.hpp"

#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::random_matrix;

namespace {
// Small enough that every parameter entry can be perturbed: 2 layers, hidden 8, 2 heads, ffn 12.
using test_shape = bert_shape<2, 8, 2, 12>;

bert_config test_config() {
  bert_config c = bert_config::for_shape<test_shape>(13);
  c.max_positions = 6;
  c.num_labels = 3;
  c.layer_norm_eps = 1e-12;
  return c;
}

// Two sequences of length 5, the second padded after 3 tokens; a pair with token types 0 and 1.
token_batch test_batch() {
  token_batch b;
  b.batch = 2;
  b.seq = 5;
  b.ids = {1, 5, 7, 2, 9, 1, 4, 2, 0, 0};
  b.type_ids = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
  b.attention = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  return b;
}

// Parameters random enough that every path matters (LayerNorm weights away from 1, biases non-zero).
template <class Model>
void randomise(Model& model, std::uint64_t seed) {
  model.for_each_parameter([&](parameter<double>& p) {
    p.value = random_matrix<double>(p.rows(), p.cols(), seed++, -0.5, 0.5);
  });
}
}  // namespace

TEST_CASE("bert_for_sequence_classification: every gradient matches finite differences, padding included") {
  bert_for_sequence_classification<double, test_shape> model(test_config());
  randomise(model, 1);
  const token_batch b = test_batch();
  check_gradients([&](tape<double>& t, auto&) { return model.logits(t, b, false, 0); }, parameters_of(model));
}

TEST_CASE("bert_for_sequence_classification: a one-output head is a regression whose MSE gradients match finite differences") {
  bert_config config = test_config();
  config.num_labels = 1;
  bert_for_sequence_classification<double, test_shape> model(config);
  randomise(model, 50);
  token_batch b = test_batch();
  b.labels = {ignore_label, ignore_label};
  b.targets = {3.5, 0.25};
  tape<double> t;
  const auto scores = model.logits(t, b, false, 0);
  REQUIRE(scores.cols() == 1);
  const double expected = ((scores.value()(0, 0) - 3.5) * (scores.value()(0, 0) - 3.5) + (scores.value()(1, 0) - 0.25) * (scores.value()(1, 0) - 0.25)) / 2;
  CHECK(model.loss(t, scores, b).item() == doctest::Approx(expected).epsilon(1e-14));
  check_gradients([&](tape<double>& inner, auto&) { return model.loss(inner, model.logits(inner, b, false, 0), b); }, parameters_of(model));
}

TEST_CASE("bert_for_masked_lm: every gradient matches finite differences, with the tied decoder") {
  bert_for_masked_lm<double, test_shape> model(test_config());
  randomise(model, 100);
  token_batch b = test_batch();
  b.labels = {ignore_label, 3, ignore_label, ignore_label, 11, ignore_label, 12, ignore_label, ignore_label, ignore_label};
  check_gradients([&](tape<double>& t, auto&) { return model.forward(t, b, false, 0).loss; }, parameters_of(model));
}

TEST_CASE("bert_for_token_classification: every gradient matches finite differences") {
  bert_for_token_classification<double, test_shape> model(test_config());
  randomise(model, 200);
  // Padding positions carry no label: their id is the padding id, whose embedding row (as in
  // torch's padding_idx) receives no gradient from lookups, so their logits must not be scored.
  token_batch b = test_batch();
  b.labels = {0, 1, 2, 0, 1, 2, 2, 1, ignore_label, ignore_label};
  check_gradients([&](tape<double>& t, auto&) { return model.loss(t, model.logits(t, b, false, 0), b); },
                  parameters_of(model));
}

TEST_CASE("bert: padding does not change a sequence's outputs") {
  bert_for_sequence_classification<double, test_shape> model(test_config());
  randomise(model, 300);
  token_batch padded = test_batch();
  token_batch alone;
  alone.batch = 1;
  alone.seq = 3;
  alone.ids = {1, 4, 2};
  alone.type_ids = {0, 0, 0};
  alone.attention = {1, 1, 1};
  tape<double> t;
  const auto a = model.logits(t, padded, false, 0);
  const auto b = model.logits(t, alone, false, 0);
  check_near(a.value().row(1), b.value().row(0), 1e-12);
}

TEST_CASE("bert: pruned heads and neurons, masked or compacted, give the same outputs and gradients") {
  using scalar = double;
  bert_for_masked_lm<scalar, test_shape> masked(test_config());
  randomise(masked, 400);
  masked.bert.layers[0].self_attention.structures().set_active(std::vector<std::uint8_t>{0, 1});
  masked.bert.layers[1].self_attention.structures().set_active(std::vector<std::uint8_t>{1, 0});
  std::vector<std::uint8_t> neurons(12, 1);
  neurons[0] = neurons[5] = neurons[11] = 0;
  masked.bert.layers[0].ffn.structures().set_active(neurons);
  neurons[5] = 1;
  masked.bert.layers[1].ffn.structures().set_active(neurons);
  auto compacted = masked;
  for (auto& layer : compacted.bert.layers) {
    layer.self_attention.structures().compact();
    layer.ffn.structures().compact();
  }
  CHECK(compacted.bert.layers[0].self_attention.heads() == 1);
  CHECK(compacted.bert.layers[0].ffn.neurons() == 9);
  CHECK(compacted.bert.layers[1].ffn.neurons() == 10);
  const bert_config pruned = compacted.bert.config();
  CHECK(pruned.kept_heads == std::vector<std::vector<index_t>>{{1}, {0}});
  CHECK(pruned.kept_ffn[1] == std::vector<index_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(masked.bert.encoder_flops_per_token(5) == doctest::Approx(compacted.bert.encoder_flops_per_token(5)));

  token_batch b = test_batch();
  b.labels = {ignore_label, 3, ignore_label, 7, 11, ignore_label, 12, ignore_label, ignore_label, ignore_label};
  tape<scalar> t;
  const auto m = masked.forward(t, b, false, 0);
  const auto c = compacted.forward(t, b, false, 0);
  check_near(m.logits.value(), c.logits.value(), 1e-12, "logits");
  t.backward(add(t, m.loss, c.loss));
  const auto& mq = masked.bert.layers[1].self_attention.query.weight.gradient;
  check_near(mq.topRows(4), compacted.bert.layers[1].self_attention.query.weight.gradient, 1e-12, "query gradient");
  CHECK(mq.bottomRows(4).isZero(0));
  check_near(masked.bert.embedding.word.gradient, compacted.bert.embedding.word.gradient, 1e-12, "embedding gradient");

  // The pruned model rebuilt from its config holds the same structure.
  bert_for_masked_lm<scalar, test_shape> rebuilt(pruned);
  CHECK(rebuilt.bert.layers[0].ffn.neurons() == 9);
  CHECK(rebuilt.bert.layers[1].self_attention.output.inputs() == 4);
}

TEST_CASE("bert: dropout is deterministic for a key and differs between keys") {
  bert_for_sequence_classification<float, test_shape> model([] {
    bert_config c = test_config();
    c.hidden_dropout = 0.3;
    c.attention_dropout = 0.3;
    return c;
  }());
  rng random(5);
  model.initialise(random);
  tape<float> t;
  const token_batch b = test_batch();
  const matrix<float> first = model.logits(t, b, true, 17).value();
  const matrix<float> again = model.logits(t, b, true, 17).value();
  const matrix<float> other = model.logits(t, b, true, 18).value();
  const matrix<float> evaluation = model.logits(t, b, false, 17).value();
  check_near(first, again, 0);
  CHECK_FALSE(first.isApprox(other));
  CHECK_FALSE(first.isApprox(evaluation));
  // set_dropout: without dropout a training pass is an evaluation pass; the configuration says so.
  model.bert.set_dropout(0, 0);
  check_near(model.logits(t, b, true, 17).value(), evaluation, 0);
  CHECK(model.bert.config().hidden_dropout == 0);
  model.bert.set_dropout(0.3, 0.3);
  check_near(model.logits(t, b, true, 17).value(), first, 0);
  CHECK_THROWS_WITH_AS(model.bert.set_dropout(1.0, 0.1), "bert_config: 'hidden_dropout_prob' is 1, expected a value in [0, 1)", config_error);
  CHECK(model.bert.config().hidden_dropout == doctest::Approx(0.3));
}

TEST_CASE("bert: inputs that do not fit are shape errors") {
  bert_for_sequence_classification<float, test_shape> model(test_config());
  tape<float> t;
  token_batch b = test_batch();
  b.ids[3] = 13;
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0),
                       "bert_model: token id 13 at position 3 is outside the vocabulary [0, 13)", shape_error);
  b = test_batch();
  b.type_ids[0] = 2;
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0), "bert_model: token type 2 at position 0 is outside [0, 2)",
                       shape_error);
  b.seq = 7;
  b.batch = 1;
  b.ids.assign(7, 1);
  b.type_ids.assign(7, 0);
  b.attention.assign(7, 1);
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0),
                       "bert_model: sequence length 7 exceeds max_position_embeddings = 6", shape_error);
  b.ids.pop_back();
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0),
                       "bert_model: batch holds 6 ids, 7 type ids and 7 attention flags, expected 7 each", shape_error);
  bert_config wrong = test_config();
  wrong.hidden = 16;
  using classifier = bert_for_sequence_classification<float, test_shape>;
  CHECK_THROWS_WITH_AS(classifier{wrong},
                       "bert_config: 'hidden_size' is 16, expected 8 for this shape", config_error);
}

TEST_CASE("bert: with slimming coefficients every gradient matches finite differences, the L1 penalty included") {
  bert_for_sequence_classification<double, test_shape> model(test_config());
  model.bert.set_slimming(true);
  randomise(model, 500);  // coefficients away from 1 and from 0
  token_batch b = test_batch();
  b.labels = {2, 0};
  const auto parameters = parameters_of(model);
  CHECK(parameters.size() == 41 + 4);  // two coefficient vectors per layer
  check_gradients([&](tape<double>& t, auto&) {
    return add(t, model.loss(t, model.logits(t, b, false, 0), b), model.bert.slimming_penalty(t, 0.3, 0.2));
  }, parameters);
}

TEST_CASE("bert: coefficients at 1 change nothing, folding them keeps the function, the penalty is the plain L1 sum") {
  bert_for_sequence_classification<double, test_shape> model(test_config());
  randomise(model, 600);
  const token_batch b = test_batch();
  tape<double> t;
  const matrix<double> plain = model.logits(t, b, false, 0).value();
  model.bert.set_slimming(true);
  check_near(model.logits(t, b, false, 0).value(), plain, 0);
  for (auto& layer : model.bert.layers) {
    layer.self_attention.coefficients.values.value = random_matrix<double>(1, 2, 601, -1, 1);
    layer.ffn.coefficients.values.value = random_matrix<double>(1, 12, 602, -1, 1);
  }
  const double expected_penalty = [&] {
    double p = 0;
    for (auto& layer : model.bert.layers) {
      p += 0.5 * layer.self_attention.coefficients.values.value.cwiseAbs().sum() + 0.25 * layer.ffn.coefficients.values.value.cwiseAbs().sum();
    }
    return p;
  }();
  CHECK(model.bert.slimming_penalty(t, 0.5, 0.25).item() == doctest::Approx(expected_penalty).epsilon(1e-14));
  const matrix<double> scaled = model.logits(t, b, false, 0).value();
  CHECK_FALSE(scaled.isApprox(plain));
  model.bert.fold_slimming();
  CHECK_FALSE(model.bert.slimming());
  check_near(model.logits(t, b, false, 0).value(), scaled, 1e-12);
}

TEST_CASE("bert: masking and compacting carry the coefficients along") {
  bert_for_masked_lm<double, test_shape> masked(test_config());
  randomise(masked, 700);
  masked.bert.set_slimming(true);
  for (auto& layer : masked.bert.layers) {
    layer.self_attention.coefficients.values.value = random_matrix<double>(1, 2, 701, 0.5, 1.5);
    layer.ffn.coefficients.values.value = random_matrix<double>(1, 12, 702, 0.5, 1.5);
  }
  masked.bert.layers[0].self_attention.structures().set_active(std::vector<std::uint8_t>{1, 0});
  std::vector<std::uint8_t> neurons(12, 1);
  neurons[2] = neurons[9] = 0;
  masked.bert.layers[1].ffn.structures().set_active(neurons);
  CHECK(masked.bert.layers[0].self_attention.coefficients.values.value(0, 1) == 0.0);
  CHECK(masked.bert.layers[1].ffn.coefficients.values.value(0, 9) == 0.0);
  auto compacted = masked;
  for (auto& layer : compacted.bert.layers) {
    layer.self_attention.structures().compact();
    layer.ffn.structures().compact();
  }
  CHECK(compacted.bert.layers[0].self_attention.coefficients.values.cols() == 1);
  CHECK(compacted.bert.layers[1].ffn.coefficients.values.cols() == 10);
  CHECK(compacted.bert.layers[1].ffn.coefficients.values.value(0, 2) == masked.bert.layers[1].ffn.coefficients.values.value(0, 3));
  token_batch b = test_batch();
  b.labels = {ignore_label, 3, ignore_label, 7, 11, ignore_label, 12, ignore_label, ignore_label, ignore_label};
  tape<double> t;
  const auto m = masked.forward(t, b, false, 0);
  const auto c = compacted.forward(t, b, false, 0);
  check_near(m.logits.value(), c.logits.value(), 1e-12, "logits");
  t.backward(add(t, m.loss, c.loss));
  check_near(compacted.bert.layers[0].self_attention.coefficients.values.gradient,
             masked.bert.layers[0].self_attention.coefficients.values.gradient.leftCols(1), 1e-12, "head coefficient gradient");
  CHECK(masked.bert.layers[0].self_attention.coefficients.values.gradient(0, 1) == 0.0);
}

TEST_CASE("bert: inference frees each layer's work as it goes, with the same outputs as a recorded forward pass") {
  bert_for_masked_lm<double, test_shape> model(test_config());
  randomise(model, 400);
  const token_batch b = test_batch();
  tape<double> recorded;
  const auto c = model.bert.context(recorded, b, false, 0);
  const matrix<double> expected = model.bert.encode(recorded, b, c).value();

  tape<double> inference;
  no_recording<double> scope(inference);
  const auto ci = model.bert.context(inference, b, false, 0);
  const var<double> hidden = model.bert.encode(inference, b, ci);
  CHECK(hidden.value() == expected);
  // A second pass needs no new memory.
  const auto after_one = inference.arena_bytes();
  inference.rewind();
  const auto ci2 = model.bert.context(inference, b, false, 0);
  CHECK(model.bert.encode(inference, b, ci2).value() == expected);
  CHECK(inference.arena_bytes() == after_one);
  CHECK_THROWS_AS(recorded.release_to(recorded.mark()), error);
}

TEST_CASE("bert: a shape of any size is built from its configuration, a fixed shape refuses other numbers") {
  // Hidden 12 over 2 heads (head size 6), 3 layers, ffn 10: no named shape.
  bert_config c = test_config();
  c.layers = 3;
  c.hidden = 12;
  c.ffn = 10;
  bert_for_sequence_classification<double, shapes::any> model(c);
  CHECK(model.bert.layers.size() == 3);
  CHECK(model.bert.layers[0].self_attention.heads() == 2);
  CHECK(model.bert.layers[0].self_attention.head_dim() == 6);
  CHECK(model.bert.layers[2].ffn.neurons() == 10);
  CHECK(model.classifier.weight.cols() == 12);
  randomise(model, 300);
  const token_batch b = test_batch();
  check_gradients([&](tape<double>& t, auto&) { return model.logits(t, b, false, 0); }, parameters_of(model));

  // The same numbers through a fixed shape and through shapes::any: the same function, bit for bit.
  bert_for_sequence_classification<double, test_shape> fixed(test_config());
  bert_for_sequence_classification<double, shapes::any> dynamic_twin(test_config());
  randomise(fixed, 5);
  randomise(dynamic_twin, 5);
  tape<double> t;
  const matrix<double> a = fixed.logits(t, b, true, 9).value();
  const matrix<double> d = dynamic_twin.logits(t, b, true, 9).value();
  CHECK(a == d);

  using fixed_model = bert_for_sequence_classification<double, test_shape>;
  using any_model = bert_for_sequence_classification<double, shapes::any>;
  CHECK_THROWS_WITH_AS(fixed_model{c}, "bert_config: 'num_hidden_layers' is 3, expected 2 for this shape",
                       config_error);
  c.heads = 5;
  CHECK_THROWS_WITH_AS(any_model{c},
                       "bert_config: 'hidden_size' is 12, expected a multiple of num_attention_heads = 5", config_error);
  c.heads = 0;
  CHECK_THROWS_WITH_AS(any_model{c},
                       "bert_config: 'num_attention_heads' is 0, expected a number in [1, hidden_size]", config_error);
}

TEST_CASE("named shapes: from a name to a configuration and back") {
  const bert_config mini = named_shape_config("mini", 100);
  CHECK(mini.layers == shapes::mini::layers);
  CHECK(mini.hidden == shapes::mini::hidden);
  CHECK(mini.heads == shapes::mini::heads);
  CHECK(mini.ffn == shapes::mini::ffn);
  CHECK(mini.vocab_size == 100);
  CHECK(shape_name_of(mini) == "mini");
  CHECK(shape_name_of(test_config()) == "");
  CHECK_THROWS_WITH_AS(named_shape_config("huge", 100),
                       "shape 'huge' is not a named shape; the named shapes are tiny (2/128/2/512), mini (4/256/4/1024), "
                       "small (4/512/8/2048), medium (8/512/8/2048), base (12/768/12/3072)",
                       config_error);
}

TEST_CASE("bert_for_question_answering: every gradient matches finite differences, padding is out of the span softmax") {
  bert_for_question_answering<double, test_shape> model(test_config());
  randomise(model, 300);
  token_batch b = test_batch();
  b.labels = {1, 3, 2, 2};  // (start, end) of each sequence
  check_gradients([&](tape<double>& t, auto&) { return model.loss(t, model.logits(t, b, false, 0), b); }, parameters_of(model));
  // The loss of the padded sequence alone equals its share when it is batched with a longer one.
  token_batch second;
  second.batch = 1;
  second.seq = 3;
  second.ids = {1, 4, 2};
  second.type_ids = {0, 0, 0};
  second.attention = {1, 1, 1};
  second.labels = {2, 2};
  tape<double> t;
  const double alone = model.loss(t, model.logits(t, second, false, 0), second).item();
  token_batch only_second = b;
  only_second.labels = {ignore_label, ignore_label, 2, 2};
  // With the first sequence's labels ignored the batch mean is the second sequence's loss.
  CHECK(model.loss(t, model.logits(t, only_second, false, 0), only_second).item() == doctest::Approx(alone).epsilon(1e-12));
  b.labels = {1, 3};
  CHECK_THROWS_WITH_AS(model.loss(t, model.logits(t, b, false, 0), b),
                       "bert_for_question_answering: batch holds 2 labels, expected 4 (start and end per sequence)", shape_error);
}
