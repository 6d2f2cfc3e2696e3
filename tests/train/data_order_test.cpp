// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/data_order.hpp"

#include <cmath>
#include <set>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "earlybert/train/classification_task.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/evaluation.hpp"
#include "support/test_support.hpp"

using namespace earlybert;

namespace {
std::vector<std::size_t> step_examples(example_order& order, pipeline_stage stage, long step, int accumulation) {
  std::vector<std::size_t> all;
  for (int k = 0; k < accumulation; ++k) {
    const auto micro = order.micro_batch(stage, step, k);
    all.insert(all.end(), micro.begin(), micro.end());
  }
  return all;
}
}  // namespace

TEST_CASE("example_order: every example once per pass, in an order fixed by seed, stage and pass alone") {
  example_order order(10, 4, 2, 7, 1000, last_batch::keep_partial);
  CHECK(order.steps_per_pass() == 3);
  std::vector<std::size_t> pass0;
  for (long step = 0; step < 3; ++step) {
    const auto examples = step_examples(order, pipeline_stage::efficient, step, 2);
    CHECK(examples.size() == (step < 2 ? 4u : 2u));  // the last batch is partial
    pass0.insert(pass0.end(), examples.begin(), examples.end());
  }
  CHECK(std::set<std::size_t>(pass0.begin(), pass0.end()).size() == 10);
  // The same step read again, after other steps and stages, gives the same examples (what resuming needs).
  example_order fresh(10, 4, 2, 7, 1000, last_batch::keep_partial);
  (void)step_examples(fresh, pipeline_stage::search, 5, 2);
  CHECK(step_examples(fresh, pipeline_stage::efficient, 1, 2) == std::vector<std::size_t>(pass0.begin() + 4, pass0.begin() + 8));
  // Another pass, another stage, another seed or salt: another order.
  const auto pass1 = step_examples(fresh, pipeline_stage::efficient, 3, 2);
  CHECK(pass1 != std::vector<std::size_t>(pass0.begin(), pass0.begin() + 4));
  CHECK(step_examples(fresh, pipeline_stage::search, 0, 2) != std::vector<std::size_t>(pass0.begin(), pass0.begin() + 4));
  example_order other_salt(10, 4, 2, 7, 2000, last_batch::keep_partial);
  CHECK(step_examples(other_salt, pipeline_stage::efficient, 0, 2) != std::vector<std::size_t>(pass0.begin(), pass0.begin() + 4));
}

TEST_CASE("example_order: micro-batches split a batch, the last taking the rest, dropping the remainder, bad settings") {
  example_order order(12, 5, 2, 3, 2000, last_batch::drop);
  CHECK(order.steps_per_pass() == 2);
  CHECK(order.micro_batch(pipeline_stage::efficient, 0, 0).size() == 2);
  CHECK(order.micro_batch(pipeline_stage::efficient, 0, 1).size() == 3);
  const auto step0 = step_examples(order, pipeline_stage::efficient, 0, 2), step1 = step_examples(order, pipeline_stage::efficient, 1, 2);
  std::set<std::size_t> seen(step0.begin(), step0.end());
  seen.insert(step1.begin(), step1.end());
  CHECK(seen.size() == 10);  // two examples of the twelve wait for the next pass
  CHECK_THROWS_WITH_AS(example_order(10, 2, 3, 1, 1, last_batch::drop), "example_order: batch 2 and accumulation 3, expected 1 <= accumulation <= batch",
                       config_error);
  CHECK_THROWS_WITH_AS(example_order(3, 4, 1, 1, 1, last_batch::drop), "example_order: 3 examples make no batch of 4", config_error);
  CHECK(step_key(1, pipeline_stage::search, 0, 0) != step_key(1, pipeline_stage::efficient, 0, 0));
  CHECK(step_key(1, pipeline_stage::search, 0, 1) != step_key(1, pipeline_stage::search, 1, 0));
}

TEST_CASE("classification_accuracy: the arg-max of each example's logits against its label, in batches of any size") {
  bert_config c = bert_config::for_shape<bert_shape<1, 4, 2, 4>>(9);
  c.max_positions = 6;
  c.num_labels = 3;
  bert_for_sequence_classification<float, shapes::any> model(c);
  rng random(5);
  model.initialise(random);
  model.classifier.bias.value << 0.0f, 5.0f, 0.0f;  // every example predicted as label 1
  model.classifier.weight.value.setZero();
  classification_dataset data;
  for (int i = 0; i < 7; ++i) {
    encoded_example e;
    e.ids = {2, static_cast<token_id>(5 + i % 3), 3};
    e.type_ids = {0, 0, 0};
    e.label = i % 3 == 1 ? 1 : 0;  // examples 1 and 4 are label 1
    data.examples.push_back(e);
  }
  for (const index_t batch : {1, 3, 64}) CHECK(classification_accuracy(model, data, batch, 0) == doctest::Approx(2.0 / 7));
  std::size_t rows = 0;
  for_each_logits(model, data, 3, 0, [&](std::size_t first, const matrix_map<float>& logits, const token_batch&) {
    CHECK(first == rows);
    rows += static_cast<std::size_t>(logits.rows());
  });
  CHECK(rows == 7);

  // mean_loss: the cross-entropy of the whole set, as the training loss computes it without dropout.
  // The classifier's bias alone decides: -log softmax(0, 5, 0) at the label.
  const double p1 = std::exp(5.0) / (2 + std::exp(5.0));
  const double expected = (2 * -std::log(p1) + 5 * -std::log((1 - p1) / 2)) / 7;
  for (const index_t batch : {1, 3, 64}) CHECK(mean_loss(model, data, batch, 0) == doctest::Approx(expected).epsilon(1e-5));
  model.initialise(random);
  tape<float> t;
  token_batch all;
  make_batch(data, std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6}, 0, all);
  const double training_loss = model.loss(t, model.logits(t, all, false, 0), all).value()(0, 0);
  CHECK(mean_loss(model, data, 3, 0) == doctest::Approx(training_loss).epsilon(1e-5));
}

TEST_CASE("classification_task: drives run_dense reproducibly, its hooks called once per step") {
  bert_config c = bert_config::for_shape<bert_shape<1, 4, 2, 4>>(9);
  c.max_positions = 6;
  classification_dataset train;
  for (int i = 0; i < 10; ++i) {
    encoded_example e;
    e.ids = {2, static_cast<token_id>(5 + i % 4), 3};
    e.type_ids = {0, 0, 0};
    e.label = i % 2;
    train.examples.push_back(e);
  }
  using model_type = bert_for_sequence_classification<double, shapes::any>;
  const auto run = [&](model_type& model, long& steps_seen) {
    classification_task<model_type> task(train, /*batch=*/4, /*accumulation=*/2, /*seed=*/11, /*pad=*/0);
    CHECK(task.steps_per_epoch() == 3);
    task.step_hook = [&](pipeline_stage stage, long, long, const step_report&) { steps_seen += stage == pipeline_stage::efficient; };
    optimization_options o;
    o.learning_rate = 1e-2;
    return run_dense(model, o, 6, task);
  };
  model_type a(c), b(c);
  rng random(3);
  a.initialise(random);
  b = a;
  long seen_a = 0, seen_b = 0;
  CHECK(run(a, seen_a).steps == 6);
  run(b, seen_b);
  CHECK(seen_a == 6);
  CHECK(seen_b == 6);
  CHECK(a.classifier.weight.value == b.classifier.weight.value);
  CHECK(a.bert.layers[0].ffn.intermediate.weight.value == b.bert.layers[0].ffn.intermediate.weight.value);
}
