// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/trainer.hpp"

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "earlybert/nn/linear.hpp"
#include "earlybert/ops/reduce.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;
using earlybert::testing::random_matrix;

TEST_CASE("linear_schedule: warm-up from 0, then linear decay to 0, as HuggingFace's") {
  const linear_schedule s(1.0, 4, 12);
  CHECK(s.rate(0) == 0.0);
  CHECK(s.rate(2) == 0.5);
  CHECK(s.rate(4) == 1.0);
  CHECK(s.rate(8) == 0.5);
  CHECK(s.rate(12) == 0.0);
  CHECK(s.rate(20) == 0.0);
  const linear_schedule no_warmup(2.0, 0, 4);
  CHECK(no_warmup.rate(0) == 2.0);
  CHECK(no_warmup.rate(3) == 0.5);
  CHECK_THROWS_WITH_AS(linear_schedule(1.0, 5, 4), "linear_schedule: warm-up is 5 steps, expected a value in [0, 4]", config_error);
  CHECK_THROWS_WITH_AS(linear_schedule(1.0, 0, 0), "linear_schedule: total steps is 0, expected at least 1", config_error);
}

TEST_CASE("clip_gradient_norm: scales every gradient by max_norm / norm when the global norm exceeds it") {
  parameter<double> a("a", 1, 2), b("b", 1, 1);
  a.gradient << 3, 0;
  b.gradient << 4;
  std::vector<parameter<double>*> all{&a, &b};
  CHECK(clip_gradient_norm<double>(all, 10.0) == 5.0);
  CHECK(a.gradient(0, 0) == 3.0);
  CHECK(clip_gradient_norm<double>(all, 1.0) == 5.0);
  CHECK(a.gradient(0, 0) == doctest::Approx(0.6));
  CHECK(b.gradient(0, 0) == doctest::Approx(0.8));
  b.trainable = false;
  b.gradient << 100;
  CHECK(clip_gradient_norm<double>(all, 0.0) == doctest::Approx(0.6));
}

TEST_CASE_TEMPLATE("gradient_norm: deterministic blocked sum over all trainable gradients", Scalar, float, double) {
  // Sizes around the block (4096) and part boundaries, against a plain double sum.
  for (const index_t cols : {1, 4095, 4096, 4097, 70001}) {
    parameter<Scalar> a("a", 3, cols), frozen("frozen", 1, 1);
    a.gradient = random_matrix<Scalar>(3, cols, static_cast<std::uint64_t>(cols));
    frozen.gradient << 100;
    frozen.trainable = false;
    std::vector<parameter<Scalar>*> all{&a, &frozen};
    const double expected = std::sqrt(a.gradient.template cast<double>().squaredNorm());
    CHECK(gradient_norm<Scalar>(all) == doctest::Approx(expected).epsilon(std::is_same_v<Scalar, float> ? 1e-6 : 1e-13));
  }
  CHECK(clip_factor(5.0, 10.0) == 1.0);
  CHECK(clip_factor(5.0, 0.0) == 1.0);
  CHECK(clip_factor(5.0, 1.0) == doctest::Approx(0.2));
}

TEST_CASE("trainer: two accumulated half batches give the same step as one full batch") {
  const matrix<double> x = random_matrix<double>(8, 5, 1), target = random_matrix<double>(8, 3, 2);
  const auto run = [&](int accumulation) {
    linear<double> l("l", 5, 3);
    l.weight.value = random_matrix<double>(3, 5, 3);
    optimization_options options;
    options.learning_rate = 0.1;
    options.warmup_ratio = 0;
    options.max_grad_norm = 0.5;  // clipping acts on the accumulated gradient
    options.accumulation_steps = accumulation;
    trainer<double> train({&l.weight, &l.bias}, options, 5);
    for (int step = 0; step < 3; ++step) {
      train.step([&](tape<double>& t, int k) {
        const index_t rows = 8 / accumulation;
        const auto y = l.forward(t, t.constant(x.middleRows(k * rows, rows)));
        const auto error = add(t, y, t.constant(-target.middleRows(k * rows, rows)));
        return mean(t, multiply(t, error, error));
      });
    }
    return l.weight.value;
  };
  check_near(run(2), run(1), 1e-12);
}

TEST_CASE("trainer: options outside their ranges are config errors") {
  optimization_options o;
  o.accumulation_steps = 0;
  CHECK_THROWS_WITH_AS(o.check(), "optimization: 'accumulation_steps' is 0, expected at least 1", config_error);
  o = {};
  o.learning_rate = -1;
  CHECK_THROWS_WITH_AS(o.check(), "optimization: 'learning_rate' is -1, expected a positive value", config_error);
}

TEST_CASE("trainer: a non-finite loss or gradient stops the step with an error naming the step and the tensor") {
  linear<double> l("l", 2, 1);
  l.weight.value << 1, 2;
  const matrix<double> x = matrix<double>::Ones(3, 2);
  optimization_options options;
  options.warmup_ratio = 0;
  trainer<double> train({&l.weight, &l.bias}, options, 10);
  const auto loss = [&](tape<double>& t, int) { return mean(t, l.forward(t, t.constant(x))); };
  train.step(loss);
  const matrix<double> weight_after_one_step = l.weight.value;

  // A NaN in the loss.
  CHECK_THROWS_WITH_AS(train.step([&](tape<double>& t, int) { return scale(t, loss(t, 0), std::nan("")); }),
                       "training step 2: the loss is nan", numerical_error);
  // An infinite gradient entry with a finite loss: the first such parameter and entry are named.
  CHECK_THROWS_WITH_AS(train.step(loss, [&] { l.bias.gradient(0, 0) = std::numeric_limits<double>::infinity(); }),
                       "training step 3: the gradient of 'l.bias' is inf at (0, 0)", numerical_error);
  check_near(l.weight.value, weight_after_one_step, 0.0);  // nothing was updated
}

TEST_CASE("trainer: with on_nonfinite = skip, a non-finite step updates nothing, clears the gradients, and says so") {
  linear<double> l("l", 2, 1);
  l.weight.value << 1, 2;
  const matrix<double> x = matrix<double>::Ones(3, 2);
  optimization_options options;
  options.warmup_ratio = 0;
  options.on_nonfinite = nonfinite_policy::skip;
  trainer<double> train({&l.weight, &l.bias}, options, 10);
  const auto loss = [&](tape<double>& t, int) { return mean(t, l.forward(t, t.constant(x))); };
  CHECK_FALSE(train.step(loss).skipped);
  const matrix<double> weight = l.weight.value;
  const step_report r = train.step(loss, [&] { l.weight.gradient(0, 1) = std::nan(""); });
  CHECK(r.skipped);
  check_near(l.weight.value, weight, 0.0);
  CHECK(l.weight.gradient.isZero(0.0));
  CHECK(l.bias.gradient.isZero(0.0));
  CHECK_FALSE(train.step(loss).skipped);  // the next step trains again
  CHECK(train.steps_taken() == 3);
  CHECK((l.weight.value.array() != weight.array()).all());
}

namespace {
// A one-layer classifier of hidden size 4 and two heads, initialised, and a batch of two sequences.
bert_for_sequence_classification<float, shapes::any> small_classifier() {
  bert_config c = bert_config::for_shape<bert_shape<1, 4, 2, 6>>(9);
  c.max_positions = 4;
  bert_for_sequence_classification<float, shapes::any> model(c);
  rng random(1);
  model.initialise(random);
  return model;
}
token_batch two_sequences() {
  token_batch b;
  b.batch = 2;
  b.seq = 3;
  b.ids = {2, 5, 3, 2, 7, 3};
  b.type_ids.assign(6, 0);
  b.attention.assign(6, 1);
  b.labels = {0, 1};
  return b;
}
}  // namespace

TEST_CASE("trainer: made from a model, it trains parameters that join later (slimming coefficients) and clears their gradients") {
  auto model = small_classifier();
  const token_batch b = two_sequences();
  optimization_options options;
  options.warmup_ratio = 0;
  options.learning_rate = 1e-2;
  trainer<float> from_model(model, options, 10);
  const auto step = [&] {
    from_model.step([&](tape<float>& t, int) {
      const var<float> loss = model.loss(t, model.logits(t, b, true, 1), b);
      return model.bert.slimming() ? add(t, loss, model.bert.slimming_penalty(t, 1e-2, 1e-2)) : loss;
    });
  };
  const std::size_t before = from_model.parameters().size();
  model.bert.set_slimming(true);  // after the trainer was made
  step();
  CHECK(from_model.parameters().size() == before + 2);  // the heads' and the neurons' coefficients
  auto& heads = model.bert.layers[0].self_attention.coefficients.values;
  CHECK(heads.value(0, 0) != 1.0f);    // trained
  CHECK(heads.gradient.isZero());       // and cleared for the next step
  model.bert.set_slimming(false);       // they leave the model, and the trainer
  step();
  CHECK(from_model.parameters().size() == before);
}

TEST_CASE("trainer: made from a list, a parameter outside the list that gets a gradient is an error naming it, not a silent leak") {
  auto model = small_classifier();
  const token_batch b = two_sequences();
  optimization_options options;
  options.warmup_ratio = 0;
  trainer<float> from_list(parameters_of(model), options, 10);
  const auto loss = [&](tape<float>& t, int) { return model.loss(t, model.logits(t, b, true, 1), b); };
  const auto weights = model.classifier.weight.value;
  from_list.step(loss);  // every parameter that takes part is listed
  CHECK(model.classifier.weight.value != weights);

  model.bert.set_slimming(true);  // the coefficients join the model after the list was made
  const auto before = model.classifier.weight.value;
  CHECK_THROWS_WITH_AS(from_list.step(loss), doctest::Contains("trainer: parameter 'bert.encoder.layer.0.attention.self.slimming_coefficients' takes part in the step and gets a gradient, but the trainer was made from a list of"), config_error);
  CHECK(model.classifier.weight.value == before);  // nothing was updated
  CHECK(model.bert.layers[0].self_attention.coefficients.values.gradient.isZero());
  // Frozen, they take part without a gradient, and the list trains as before.
  model.for_each_parameter([](parameter<float>& p) {
    if (p.name.ends_with("slimming_coefficients")) p.trainable = false;
  });
  CHECK_NOTHROW(from_list.step(loss));
}
