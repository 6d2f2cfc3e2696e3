// SPDX-License-Identifier: Apache-2.0
// The EarlyBERT pipeline on a toy task: it searches with coefficients, draws a ticket when the detector
// fires, compacts the model and trains the ticket.
#include "earlybert/train/earlybert.hpp"

#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;

namespace {
using toy_shape = bert_shape<2, 16, 4, 24>;
using model_type = bert_for_sequence_classification<double, toy_shape>;

bert_config toy_config() {
  bert_config c = bert_config::for_shape<toy_shape>(12);
  c.max_positions = 8;
  c.hidden_dropout = 0;
  c.attention_dropout = 0;
  return c;
}

// Label: does token 3 occur in the sequence? Batches are drawn from the step number.
struct toy_task {
  token_batch batch;
  long steps_seen[2] = {0, 0};
  long checks = 0, tickets = 0;

  var<double> loss(tape<double>& t, model_type& model, pipeline_stage stage, long step, int) {
    rng random(derive_key(static_cast<std::uint64_t>(stage), static_cast<std::uint64_t>(step)));
    batch = {};
    batch.batch = 8;
    batch.seq = 6;
    for (index_t s = 0; s < batch.batch; ++s) {
      bool has = false;
      for (index_t i = 0; i < batch.seq; ++i) {
        const auto id = static_cast<token_id>(i == 0 ? 1 : 2 + random.below(10));
        has = has || id == 3;
        batch.ids.push_back(id);
        batch.type_ids.push_back(0);
        batch.attention.push_back(1);
      }
      batch.labels.push_back(has ? 1 : 0);
    }
    ++steps_seen[stage == pipeline_stage::search ? 0 : 1];
    return model.loss(t, model.logits(t, batch, true, 0), batch);
  }
  double last_forward_flops(const model_type& model) const { return model.forward_flops(batch); }
  void on_step(pipeline_stage, long, long, const step_report&) {}
  void on_event(const nlohmann::ordered_json& e) {
    checks += e["event"] == "eb_check";
    tickets += e["event"] == "ticket";
  }
};

earlybert_options toy_options(restart_point restart) {
  earlybert_options o;
  o.check_interval = 3;
  o.search_budget = 40;
  o.search_schedule_steps = 60;
  o.search.learning_rate = 1e-2;
  o.search.warmup_ratio = 0;
  o.restart_from = restart;
  o.efficient_steps = 10;
  o.efficient.learning_rate = 1e-2;
  o.efficient.warmup_ratio = 0;
  return o;
}
}  // namespace

TEST_CASE("earlybert pipeline: a fixed-step detector draws at its check, the model shrinks and trains") {
  model_type model(toy_config());
  rng random(1);
  model.initialise(random);
  slimming_criterion criterion;
  fixed_step_detector detector(9);
  toy_task task;
  const earlybert_report report = run_earlybert(model, criterion, ticket_selector{}, detector, toy_options(restart_point::init), task, 6);
  CHECK(report.detected);
  CHECK(report.ticket_step == 9);
  CHECK(report.check_steps == std::vector<long>{3, 6, 9});
  CHECK(task.steps_seen[0] == 9);
  CHECK(task.steps_seen[1] == 10);
  CHECK(task.checks == 3);
  CHECK(task.tickets == 1);
  CHECK_FALSE(model.bert.slimming());
  for (const auto& layer : model.bert.layers) CHECK(layer.self_attention.heads() == 3);  // round(4/3) = 1 pruned
  index_t neurons = 0;
  for (const auto& layer : model.bert.layers) neurons += layer.ffn.neurons();
  CHECK(neurons == 48 - 19);  // round(48 * 0.4) = 19 pruned across both layers
  CHECK(report.encoder_flops_ratio < 1.0);
  CHECK(report.search_flops > 0);
  // Efficient steps are cheaper than search steps in FLOPs.
  CHECK(report.efficient_flops / 10 < report.search_flops / 9);
}

TEST_CASE("earlybert pipeline: restart from init rewinds to the step-0 weights of the kept structure") {
  model_type model(toy_config());
  rng random(2);
  model.initialise(random);
  const model_type initial = model;
  slimming_criterion criterion;
  fixed_step_detector detector(6);
  toy_task task;
  earlybert_options o = toy_options(restart_point::init);
  o.efficient.learning_rate = 1e-300;  // the efficient stage leaves the weights where the draw put them
  o.efficient.weight_decay = 0;
  const earlybert_report report = run_earlybert(model, criterion, ticket_selector{}, detector, o, task, 6);
  model_type expected = initial;
  draw_ticket(expected.bert, report.ticket);
  check_near(model.bert.layers[1].ffn.intermediate.weight.value, expected.bert.layers[1].ffn.intermediate.weight.value, 1e-12);
  check_near(model.classifier.weight.value, initial.classifier.weight.value, 1e-12);
}

TEST_CASE("earlybert pipeline: restart from the draw folds the coefficients and keeps the optimizer's count") {
  model_type model(toy_config());
  rng random(3);
  model.initialise(random);
  slimming_criterion criterion;
  mask_distance_detector detector(3, 1.0);  // every distance is within 1: fires once the window is full
  toy_task task;
  const earlybert_report report = run_earlybert(model, criterion, ticket_selector{}, detector, toy_options(restart_point::draw), task, 6);
  CHECK(report.ticket_step == 9);
  CHECK(report.recorded_masks.size() == 3);
  CHECK_FALSE(model.bert.slimming());
  // Moments were carried and sliced to the kept structure.
  const auto& w1 = model.bert.layers[0].ffn.intermediate.weight;
  CHECK(w1.first_moment.rows() == w1.rows());
  CHECK_FALSE(w1.first_moment.isZero(0));
}

TEST_CASE("earlybert pipeline: with the never detector the ticket is the last check's mask at the budget's end") {
  model_type model(toy_config());
  rng random(4);
  model.initialise(random);
  random_criterion criterion{9};
  never_detector detector;
  toy_task task;
  earlybert_options o = toy_options(restart_point::init);
  o.search_budget = 10;
  const earlybert_report report = run_earlybert(model, criterion, ticket_selector{}, detector, o, task, 6);
  CHECK_FALSE(report.detected);
  CHECK(report.ticket_step == 10);
  CHECK(report.check_steps == std::vector<long>{3, 6, 9, 10});
  model_type fresh(toy_config());
  CHECK(ticket_selector{}.select(random_criterion{9}.score(fresh.bert)).neurons == report.ticket.neurons);
}
