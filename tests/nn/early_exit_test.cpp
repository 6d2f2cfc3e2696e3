// SPDX-License-Identifier: Apache-2.0
#include "earlybert/nn/early_exit.hpp"

#include <algorithm>
#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::random_matrix;

namespace {
// Three layers, so that words can leave before, at and after the middle: hidden 8, 2 heads, ffn 12.
using test_shape = bert_shape<3, 8, 2, 12>;

bert_config test_config() {
  bert_config c = bert_config::for_shape<test_shape>(13);
  c.max_positions = 8;
  c.num_labels = 3;
  c.hidden_dropout = 0;  // the joint logits are deterministic, for the gradient checks
  c.attention_dropout = 0;
  return c;
}

// Two sentences: [CLS] w0 w1 w1' w2 [SEP] (a word of two pieces) and [CLS] w0 w1 [SEP] + padding.
token_batch test_batch() {
  token_batch b;
  b.batch = 2;
  b.seq = 6;
  b.ids = {2, 5, 6, 7, 8, 3, 2, 9, 10, 3, 0, 0};
  b.type_ids.assign(12, 0);
  b.attention = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  b.word_of = {-1, 0, 1, 1, 2, -1, -1, 0, 1, -1, -1, -1};
  b.labels = {ignore_label, 0, 2, ignore_label, 1, ignore_label, ignore_label, 1, 1, ignore_label, ignore_label, ignore_label};
  return b;
}

template <class Scalar>
using model_type = bert_for_token_classification_with_exits<Scalar, test_shape>;

template <class Model>
void randomise(Model& model, std::uint64_t seed) {
  using Scalar = typename Model::scalar_type;
  model.for_each_parameter([&](parameter<Scalar>& p) {
    p.value = random_matrix<Scalar>(p.rows(), p.cols(), seed++, -0.7, 0.7);
  });
}

// Every word's uncertainty under every exit with nobody leaving: [layers][words of the batch].
template <class Scalar>
std::vector<std::vector<double>> word_uncertainties(model_type<Scalar>& model, const token_batch& b, uncertainty_measure measure) {
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  const auto joint = model.joint_logits(t, b, false, 0, {});
  std::vector<std::vector<double>> out(3);
  for (int l = 0; l < 3; ++l) {
    for (index_t i = 0; i < b.tokens(); ++i) {
      const bool first = b.word_of[i] >= 0 && b.word_of[i] != b.word_of[i - 1];
      if (first) out[l].push_back(uncertainty(joint.value().row(l * b.tokens() + i), measure));
    }
  }
  return out;
}
}  // namespace

TEST_CASE("uncertainty: normalised entropy and 1 - max p, by hand") {
  matrix<double> uniform = matrix<double>::Zero(1, 4);
  CHECK(uncertainty(uniform.row(0), uncertainty_measure::entropy) == doctest::Approx(1.0));
  CHECK(uncertainty(uniform.row(0), uncertainty_measure::max_probability) == doctest::Approx(0.75));
  matrix<double> sure(1, 2);
  sure << 0, std::log(3.0);  // p = (1/4, 3/4)
  const double entropy = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)) / std::log(2.0);
  CHECK(uncertainty(sure.row(0), uncertainty_measure::entropy) == doctest::Approx(entropy).epsilon(1e-14));
  CHECK(uncertainty(sure.row(0), uncertainty_measure::max_probability) == doctest::Approx(0.25).epsilon(1e-14));
}

TEST_CASE("leave_by_window: a word leaves when it and every word within the window are confident, or have left") {
  std::vector<std::uint8_t> confident{1, 1, 0, 1, 1, 1, 1};
  std::vector<std::uint8_t> left(7, 0);
  CHECK(leave_by_window(confident, left, 1) == 4);
  CHECK(left == std::vector<std::uint8_t>{1, 0, 0, 0, 1, 1, 1});
  // Next layer: word 2 is still unsure; words that have left count as sure even when their own flag is 0.
  confident = {0, 1, 0, 1, 0, 0, 0};
  CHECK(leave_by_window(confident, left, 1) == 0);
  confident = {0, 1, 1, 1, 0, 0, 0};
  CHECK(leave_by_window(confident, left, 1) == 3);
  CHECK(left == std::vector<std::uint8_t>(7, 1));
  // Window 0: each word on its own; a wide window: all or nothing.
  std::vector<std::uint8_t> alone(3, 0);
  CHECK(leave_by_window(std::vector<std::uint8_t>{1, 0, 1}, alone, 0) == 2);
  std::vector<std::uint8_t> wide(3, 0);
  CHECK(leave_by_window(std::vector<std::uint8_t>{1, 0, 1}, wide, 5) == 0);
  CHECK_THROWS_AS(leave_by_window(std::vector<std::uint8_t>{1}, wide, 1), shape_error);
}

TEST_CASE("early-exit model: the joint loss is the sum of the exits' losses, and every gradient matches finite differences") {
  model_type<double> model(test_config());
  randomise(model, 1);
  const token_batch b = test_batch();
  tape<double> t;
  const auto joint = model.logits(t, b, true, 0);
  REQUIRE(joint.rows() == 3 * b.tokens());
  // The last layer's block is BertForTokenClassification's logits with the same encoder and classifier.
  bert_for_token_classification<double, test_shape> plain(test_config());
  auto mine = parameters_of(model), theirs = parameters_of(plain);
  for (std::size_t i = 0; i < theirs.size(); ++i) theirs[i]->value = mine[i]->value;
  const auto last = plain.logits(t, b, false, 0);
  check_near(joint.value().bottomRows(b.tokens()), last.value(), 1e-13, "last exit");
  double expected = 0;
  for (int l = 0; l < 3; ++l) {
    const matrix<double> block = joint.value().middleRows(l * b.tokens(), b.tokens());
    expected += cross_entropy(t, t.constant(block), std::span<const token_id>(b.labels)).item();
  }
  CHECK(model.loss(t, joint, b).item() == doctest::Approx(expected).epsilon(1e-13));
  check_gradients([&](tape<double>& inner, auto&) { return model.loss(inner, model.logits(inner, b, true, 0), b); }, parameters_of(model));
  SUBCASE("under a halting plan") {
    const std::vector<int> plan{2, 0, 1, 1, 2, 2, 1, 0, 1, 1, 2, 2};
    check_gradients([&](tape<double>& inner, auto&) { return model.joint_loss(inner, model.joint_logits(inner, b, true, 0, plan), b, plan); },
                    parameters_of(model));
  }
  const std::vector<int> short_plan{0, 1};
  CHECK_THROWS_AS(model.joint_logits(t, b, true, 0, short_plan), shape_error);
  CHECK_THROWS_AS(model.loss(t, last, b), shape_error);
}

TEST_CASE_TEMPLATE("early exit: threshold 0 halts nothing and is the full model bit for bit, in both modes", Scalar, float, double) {
  model_type<Scalar> model(test_config());
  randomise(model, 7);
  const token_batch b = test_batch();
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  const matrix<Scalar> full = model.logits(t, b, false, 0).value();
  for (const exit_mode mode : {exit_mode::sentence, exit_mode::token}) {
    model.set_exit_policy({mode, uncertainty_measure::entropy, 0.0, 2});
    model.statistics.reset(3);
    check_near(model.logits(t, b, false, 0).value(), full, 0, "logits");
    CHECK(model.statistics.word_exits == std::vector<double>{0, 0, 5});
    CHECK(model.statistics.running_rows == model.statistics.full_rows);
    CHECK(model.statistics.flops_ratio() > 1);  // the exits' classifiers cost a little, and nothing is saved
  }
}

TEST_CASE("early exit: a threshold that always fires halts every word at the first layer") {
  model_type<double> model(test_config());
  randomise(model, 11);
  const token_batch b = test_batch();
  tape<double> t;
  no_recording<double> inference(t);
  const matrix<double> joint = model.joint_logits(t, b, false, 0, {}).value();
  for (const exit_mode mode : {exit_mode::sentence, exit_mode::token}) {
    model.set_exit_policy({mode, uncertainty_measure::max_probability, 1.0, 2});  // 1 - max p < 1 always
    model.statistics.reset(3);
    const matrix<double> out = model.logits(t, b, false, 0).value();
    CHECK(model.statistics.word_exits == std::vector<double>{5, 0, 0});
    for (index_t i = 0; i < b.tokens(); ++i) {
      if (b.attention[i] != 0) check_near(out.row(i), joint.row(i), 1e-12, "the first exit's logits");
    }
    // One layer of the encoder instead of three.
    CHECK(model.statistics.running_rows == b.tokens());
    CHECK(model.statistics.flops_ratio() < 0.4);
  }
}

TEST_CASE("early exit: token-level halting computes what the joint model computes under the same plan, and skips the halted work") {
  model_type<double> model(test_config());
  randomise(model, 21);
  const token_batch b = test_batch();
  // A threshold between the words' uncertainties at the first exit, so that some leave and some run on.
  const auto u = word_uncertainties(model, b, uncertainty_measure::max_probability);
  std::vector<double> first = u[0];
  std::sort(first.begin(), first.end());
  const double threshold = (first[1] + first[2]) / 2;
  for (const int window : {0, 1}) {
    CAPTURE(window);
    model.set_exit_policy({exit_mode::token, uncertainty_measure::max_probability, threshold, window});
    model.statistics.reset(3);
    tape<double> t;
    no_recording<double> inference(t);
    const matrix<double> out = model.logits(t, b, false, 0).value();
    const std::vector<int> plan = model.token_exit_layers();
    REQUIRE(plan.size() == static_cast<std::size_t>(b.tokens()));
    // Words confident at the first exit left there (window 0); at least one word ran on.
    if (window == 0) CHECK(model.statistics.word_exits[0] == 2);
    CHECK(model.statistics.word_exits[0] < 5);
    // A halted token's state is copied upward and still serves as key and value: the joint model under the
    // same plan, computed densely, gives every token's logits at its exit layer.
    const matrix<double> joint = model.joint_logits(t, b, false, 0, plan).value();
    for (index_t i = 0; i < b.tokens(); ++i) {
      if (b.attention[i] == 0) continue;
      CAPTURE(i);
      check_near(out.row(i), joint.row(plan[i] * b.tokens() + i), 1e-12, "logits at the exit layer");
    }
    // The work: every layer computes the FFN of the positions still running there (a sentence where
    // nothing has left computes all its positions, padding included).
    double running = 0;
    for (int l = 0; l < 3; ++l) {
      for (index_t s = 0; s < b.batch; ++s) {
        bool fresh = true;
        index_t count = 0;
        for (index_t i = s * b.seq; i < (s + 1) * b.seq; ++i) {
          fresh = fresh && !(b.word_of[i] >= 0 && plan[i] < l);
          count += b.attention[i] != 0 && plan[i] >= l;
        }
        running += fresh ? static_cast<double>(b.seq) : static_cast<double>(count);
      }
    }
    CHECK(model.statistics.running_rows == running);
    CHECK(model.statistics.running_rows < model.statistics.full_rows);
    CHECK(model.statistics.query_rows >= model.statistics.running_rows);
    // The FLOPs are the rows' costs (hidden 8, heads 2 x 4, ffn 12, 3 labels, seq 6): keys and values
    // 4 d w, queries 4 d w + 4 n w, running rows 4 d f + 2 d C.
    const double d = 8, w = 8, f = 12, n = 6, classes = 3;
    const exit_statistics& st = model.statistics;
    CHECK(st.flops == doctest::Approx(st.key_rows * 4 * d * w + st.query_rows * (4 * d * w + 4 * n * w) + st.running_rows * (4 * d * f + 2 * d * classes)));
    CHECK(st.full_flops == doctest::Approx(b.tokens() * (3 * (8 * d * w + 4 * n * w + 4 * d * f) + 2 * d * classes)));
    CHECK(model.statistics.flops_ratio() < 1);
  }
}

TEST_CASE("early exit: a batch without words, a recording tape and a bad policy are errors") {
  model_type<float> model(test_config());
  token_batch b = test_batch();
  b.word_of.clear();
  model.set_exit_policy({exit_mode::token, uncertainty_measure::entropy, 0.5, 2});
  tape<float> t;
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0),
                       "bert_for_token_classification_with_exits: early exit is inference; run it on a tape that is not recording (no_recording)",
                       config_error);
  no_recording<float> inference(t);
  CHECK_THROWS_WITH_AS(model.logits(t, b, false, 0),
                       "bert_for_token_classification_with_exits: early exit needs the batch's words (word_of), found 0 entries for 12 tokens",
                       shape_error);
  CHECK_THROWS_WITH_AS(model.set_exit_policy({exit_mode::token, uncertainty_measure::entropy, 1.5, 2}),
                       "exit policy: threshold is 1.5, expected a value in [0, 1]", config_error);
}
