// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/self_sampling.hpp"

#include <algorithm>
#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::random_matrix;

namespace {
using test_shape = bert_shape<3, 8, 2, 12>;
using model_type = bert_for_token_classification_with_exits<double, test_shape>;

bert_config test_config() {
  bert_config c = bert_config::for_shape<test_shape>(13);
  c.max_positions = 10;
  c.num_labels = 3;
  c.hidden_dropout = 0;
  c.attention_dropout = 0;
  return c;
}

// A toy tagging set: 12 sentences of 2 to 5 words, a word of one piece (ids 4..8) or two (and a
// continuation, id 9); a word's tag is its id mod 3. [CLS] = 2, [SEP] = 3.
tagging_dataset toy_tagging_data() {
  tagging_dataset data;
  rng random(3);
  for (int s = 0; s < 12; ++s) {
    tagging_example e;
    e.ids = {2};
    e.labels = {ignore_label};
    const int words = 2 + static_cast<int>(random.below(4));
    for (int w = 0; w < words; ++w) {
      const auto id = static_cast<token_id>(4 + random.below(5));
      e.first_piece.push_back(static_cast<index_t>(e.ids.size()));
      e.ids.push_back(id);
      e.labels.push_back(id % 3);
      if (random.below(3) == 0) {
        e.ids.push_back(9);
        e.labels.push_back(ignore_label);
      }
    }
    e.ids.push_back(3);
    e.labels.push_back(ignore_label);
    e.type_ids.assign(e.ids.size(), 0);
    data.examples.push_back(e);
  }
  data.label_names = {"A", "B", "C"};
  return data;
}

model_type toy_model() {
  model_type model(test_config());
  std::uint64_t seed = 40;
  model.for_each_parameter([&](parameter<double>& p) { p.value = random_matrix<double>(p.rows(), p.cols(), seed++, -0.7, 0.7); });
  return model;
}

std::vector<int> plan_of(model_type& model, const token_batch& b, std::uint64_t key, const self_sampling_options& o) {
  tape<double> t;
  std::vector<int> plan(static_cast<std::size_t>(b.tokens()));
  sample_halting_plan(model, t, b, key, o, std::span<int>(plan));
  return plan;
}
}  // namespace

TEST_CASE("sample_halting_plan: a word's pieces leave together, [CLS] and [SEP] with the sentence's last word, the same key draws the same plan") {
  model_type model = toy_model();
  const tagging_dataset data = toy_tagging_data();
  token_batch b;
  make_batch(data, std::vector<std::size_t>{0, 1, 2, 3}, 0, b);
  const self_sampling_options o{{0.3, 0.6, 0.9}, {0, 1, 2}, uncertainty_measure::max_probability};
  const std::vector<int> plan = plan_of(model, b, 17, o);
  CHECK(plan == plan_of(model, b, 17, o));
  for (index_t s = 0; s < b.batch; ++s) {
    int last = 0;
    for (index_t i = s * b.seq; i < (s + 1) * b.seq; ++i) {
      CHECK(plan[i] >= 0);
      CHECK(plan[i] < 3);
      if (b.word_of[i] >= 0) last = std::max(last, plan[i]);
      if (b.word_of[i] >= 0 && i > s * b.seq && b.word_of[i - 1] == b.word_of[i]) CHECK(plan[i] == plan[i - 1]);
    }
    for (index_t i = s * b.seq; i < (s + 1) * b.seq; ++i) {
      if (b.word_of[i] < 0) CHECK(plan[i] == last);
    }
  }
  // Nobody is ever sure enough below 0; everybody is below 1 with 1 - max p.
  CHECK(plan_of(model, b, 17, {{0.0}, {2}, uncertainty_measure::entropy}) == std::vector<int>(plan.size(), 2));
  CHECK(plan_of(model, b, 17, {{1.0}, {2}, uncertainty_measure::max_probability}) == std::vector<int>(plan.size(), 0));
  CHECK_THROWS_AS(self_sampling_options({}, {2}, uncertainty_measure::entropy).check(), config_error);
}

TEST_CASE("self_sampling_task: the joint loss under the drawn plan, the plain joint loss when nobody leaves, the first exit's when all leave") {
  model_type model = toy_model();
  const tagging_dataset data = toy_tagging_data();
  const auto loss_of = [&](self_sampling_options o, long step = 3, long joint_steps = 0) {
    self_sampling_task<model_type> task(data, 4, 1, 7, 0, std::move(o), joint_steps);
    tape<double> t;
    return task.loss(t, model, pipeline_stage::efficient, step, 0).item();
  };
  classification_task<model_type, tagging_dataset> plain(data, 4, 1, 7, 0);
  tape<double> t;
  const double joint = plain.loss(t, model, pipeline_stage::efficient, 3, 0).item();
  CHECK(loss_of({{0.0}, {2}, uncertainty_measure::entropy}) == doctest::Approx(joint).epsilon(1e-13));
  // All leave after the first layer: only the first exit's loss counts.
  const token_batch& b = plain.micro_batch(pipeline_stage::efficient, 3, 0);
  const auto logits = model.logits(t, b, true, 0);
  const matrix<double> first = logits.value().topRows(b.tokens());
  const double first_loss = cross_entropy(t, t.constant(first), std::span<const token_id>(b.labels)).item();
  CHECK(loss_of({{1.0}, {2}, uncertainty_measure::max_probability}) == doctest::Approx(first_loss).epsilon(1e-13));
  const self_sampling_options mixed{{0.3, 0.6, 0.9}, {0, 1}, uncertainty_measure::max_probability};
  CHECK(loss_of(mixed) == loss_of(mixed));
  // Steps before joint_steps train the plain joint loss, the ones after it self-sample.
  const self_sampling_options all_leave{{1.0}, {2}, uncertainty_measure::max_probability};
  CHECK(loss_of(all_leave, 3, 4) == doctest::Approx(joint).epsilon(1e-13));
  CHECK(loss_of(all_leave, 4, 4) == loss_of(all_leave, 4, 0));
  CHECK(loss_of(all_leave, 3, 3) == doctest::Approx(first_loss).epsilon(1e-13));
  // Its gradient, through the copies, matches finite differences.
  self_sampling_task<model_type> task(data, 4, 1, 7, 0, mixed);
  check_gradients([&](tape<double>& inner, auto&) { return task.loss(inner, model, pipeline_stage::efficient, 3, 0); }, parameters_of(model));
}

TEST_CASE("self_sampling_task: a step's FLOPs count every exit, and a self-sampling step the plan's forward pass too") {
  model_type model = toy_model();
  const tagging_dataset data = toy_tagging_data();
  self_sampling_task<model_type> task(data, 4, 1, 7, 0, {}, 4);
  tape<double> t;
  task.loss(t, model, pipeline_stage::efficient, 3, 0);
  const token_batch& b = task.last_batch();
  const double d = 8, classes = 3, exits_before_last = 2;
  CHECK(model.joint_forward_flops(b) == doctest::Approx(model.forward_flops(b) + exits_before_last * b.tokens() * 2 * d * classes));
  CHECK(task.last_forward_flops(model) == doctest::Approx(model.joint_forward_flops(b)));
  t.rewind();
  task.loss(t, model, pipeline_stage::efficient, 4, 0);
  CHECK(task.last_forward_flops(model) == doctest::Approx(4.0 / 3.0 * model.joint_forward_flops(task.last_batch())));
}
