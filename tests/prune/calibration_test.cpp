// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/calibration.hpp"

#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::random_matrix;

namespace {
using model_type = bert_for_sequence_classification<double, shapes::any>;

bert_config small_config() {
  bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 6>>(12);
  c.max_positions = 8;
  return c;
}

model_type random_model() {
  model_type m(small_config());
  std::uint64_t seed = 1;
  m.for_each_parameter([&](parameter<double>& p) { p.value = random_matrix<double>(p.rows(), p.cols(), seed++, -0.5, 0.5); });
  return m;
}

// Two sequences of 5 positions, the second padded after 3.
token_batch padded_batch(std::uint64_t seed) {
  token_batch b;
  b.batch = 2;
  b.seq = 5;
  rng random(seed);
  for (index_t i = 0; i < 10; ++i) {
    b.ids.push_back(static_cast<token_id>(1 + random.below(11)));
    b.type_ids.push_back(0);
    b.attention.push_back(i < 8 ? 1 : 0);
  }
  b.ids[8] = b.ids[9] = 0;
  b.labels = {0, 1};
  return b;
}

// Records what it is shown.
struct recording_observer : forward_observer<double> {
  std::vector<std::string> calls;
  double row_sum_error = 0;
  void attention_probabilities(int layer, std::span<const index_t> kept, const var<double>& p, const forward_context<double>& c) override {
    calls.push_back(fmt::format("attention {} {}x{} heads {}", layer, p.rows(), p.cols(), kept.size()));
    for (index_t r = 0; r < p.rows(); ++r) row_sum_error = std::max(row_sum_error, std::abs(p.value().row(r).sum() - 1.0));
    CHECK(p.value()(((1 * 2) + 0) * c.seq + 0, 4) == 0.0);  // sequence 1 attends to no padding key
  }
  void ffn_activations(int layer, std::span<const index_t> kept, const var<double>& a, const forward_context<double>&) override {
    calls.push_back(fmt::format("ffn {} {}x{} neurons {}", layer, a.rows(), a.cols(), kept.size()));
  }
};

auto classification_loss(bool training = false) {
  return [training](tape<double>& t, model_type& m, const token_batch& b) { return m.loss(t, m.logits(t, b, training, 3), b); };
}
}  // namespace

TEST_CASE("forward_observer: sees every layer's attention probabilities and FFN activations, and changes nothing") {
  model_type model = random_model();
  const token_batch b = padded_batch(4);
  tape<double> t;
  const matrix<double> unobserved = model.logits(t, b, false, 0).value();
  recording_observer observer;
  model.bert.set_observer(&observer);
  t.rewind();
  const matrix<double> observed = model.logits(t, b, false, 0).value();
  CHECK(observed == unobserved);
  CHECK(observer.calls == std::vector<std::string>{"attention 0 20x5 heads 2", "ffn 0 10x6 neurons 6", "attention 1 20x5 heads 2",
                                                   "ffn 1 10x6 neurons 6"});
  CHECK(observer.row_sum_error < 1e-12);
  // In inference too (where each layer's memory is reused once it is done).
  observer.calls.clear();
  {
    t.rewind();
    no_recording<double> inference(t);
    CHECK(model.logits(t, b, false, 0).value() == unobserved);
  }
  CHECK(observer.calls.size() == 4);
  model.bert.set_observer(nullptr);
}

TEST_CASE("forward_observer: belongs to the model object: a copy starts unobserved, an assignment keeps the target's") {
  model_type model = random_model();
  const token_batch b = padded_batch(4);
  recording_observer observer;
  model.bert.set_observer(&observer);
  model_type copy = model;
  CHECK(copy.bert.observer() == nullptr);
  tape<double> t;
  copy.logits(t, b, false, 0);
  CHECK(observer.calls.empty());  // the copy's forward pass is not reported to the original's observer
  model_type moved = std::move(copy);
  CHECK(moved.bert.observer() == nullptr);

  recording_observer other;
  moved.bert.set_observer(&other);
  moved = model;  // new weights, the same object: still observed by its own observer
  CHECK(moved.bert.observer() == &other);
  t.rewind();
  moved.logits(t, b, false, 0);
  CHECK(other.calls.size() == 4);
  CHECK(observer.calls.empty());
  t.rewind();
  model.logits(t, b, false, 0);
  CHECK(observer.calls.size() == 4);
}

TEST_CASE("activation_criterion: confidence, entropy with 0 log 0 = 0 at padding, mean |activation|, finite on padded batches") {
  model_type model = random_model();
  const std::vector<token_batch> batches{padded_batch(1), padded_batch(2)};
  const auto weights_before = model.bert.layers[0].ffn.intermediate.weight.value;
  for (const head_importance heads : {head_importance::confidence, head_importance::negative_entropy}) {
    activation_criterion<double> criterion(heads);
    const structure_scores s = score_over_batches(model, criterion, std::span<const token_batch>(batches), classification_loss());
    REQUIRE(s.heads.size() == 2);
    REQUIRE(s.neurons[1].size() == 6);
    for (const auto& layer : s.heads) {
      for (double v : layer) {
        CHECK(std::isfinite(v));
        if (heads == head_importance::confidence) CHECK((v >= 1.0 / 5 && v <= 1.0));   // a max of a distribution over <= 5 keys
        else CHECK((v <= 0.0 && v >= -std::log(5.0)));                                 // minus an entropy over <= 5 keys
      }
    }
    for (const auto& layer : s.neurons) {
      for (double v : layer) CHECK((std::isfinite(v) && v > 0));
    }
  }
  CHECK(model.bert.layers[0].ffn.intermediate.weight.value == weights_before);
  CHECK(model.bert.observer() == nullptr);  // restored
  CHECK(x_log_x(0.0) == 0.0);
  CHECK(x_log_x(1.0) == 0.0);
  CHECK(x_log_x(0.5) == doctest::Approx(0.5 * std::log(0.5)));
}

TEST_CASE("activation_criterion: a neuron that never fires scores 0, a head that attends to one key scores confidence 1") {
  model_type model = random_model();
  auto& ffn = model.bert.layers[0].ffn;
  ffn.intermediate.weight.value.row(2).setZero();
  ffn.intermediate.bias.value(0, 2) = -40.0;  // GELU(-40) is 0 to double precision
  auto& attention = model.bert.layers[1].self_attention;
  attention.query.weight.value.middleRows(0, 4).setZero();
  attention.query.bias.value.middleCols(0, 4).setZero();
  attention.key.weight.value.middleRows(0, 4).setZero();
  attention.key.bias.value.middleCols(0, 4).setZero();  // head 0 of layer 1: equal scores, uniform
  const std::vector<token_batch> batches{padded_batch(7)};
  activation_criterion<double> criterion;
  const structure_scores s = score_over_batches(model, criterion, std::span<const token_batch>(batches), classification_loss());
  CHECK(s.neurons[0][2] == doctest::Approx(0.0).epsilon(1e-12));
  // Uniform over the real keys: 1/5 for sequence 0 (8 query tokens in all: 5 with 1/5, 3 with 1/3).
  CHECK(s.heads[1][0] == doctest::Approx((5 * 0.2 + 3 * (1.0 / 3)) / 8));
}

TEST_CASE("score_over_batches: a gradient criterion observes one backward pass per batch, weights and gradients are left as they were") {
  model_type model = random_model();
  model.bert.set_slimming(true);
  const std::vector<token_batch> batches{padded_batch(1), padded_batch(2), padded_batch(3)};
  const auto weights_before = model.classifier.weight.value;

  gradient_criterion expected;  // by hand: a backward pass per batch, observed
  tape<double> t;
  for (const token_batch& b : batches) {
    model.for_each_parameter([](parameter<double>& p) { p.zero_gradient(); });
    t.rewind();
    t.backward(classification_loss()(t, model, b));
    expected.observe(model.bert);
  }
  gradient_criterion criterion;
  const structure_scores s = score_over_batches(model, criterion, std::span<const token_batch>(batches), classification_loss());
  CHECK(s.heads == expected.score(model.bert).heads);
  CHECK(s.neurons == expected.score(model.bert).neurons);
  CHECK(model.classifier.weight.value == weights_before);
  CHECK(model.classifier.weight.gradient.isZero(0));
  // A criterion that needs no data is scored as the model stands.
  magnitude_criterion magnitude;
  CHECK(score_over_batches(model, magnitude, std::span<const token_batch>(), classification_loss()).heads ==
        magnitude.score(model.bert).heads);
  CHECK_THROWS_WITH_AS(score_over_batches(model, criterion, std::span<const token_batch>(), classification_loss()),
                       "score_over_batches: no calibration batches", config_error);
}
