// SPDX-License-Identifier: Apache-2.0
// The EarlyBERT pipeline on a toy task: it searches with coefficients, draws a ticket when the detector
// fires, compacts the model and trains the ticket.
#include "earlybert/train/earlybert.hpp"

#include <filesystem>
#include <string>
#include <utility>

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

// ---- Interrupted runs: a training state written at any step resumes bit for bit ----------------

namespace {
struct run_killed {};

// The toy task that writes a training state at one step of one stage, then dies (throws).
struct checkpointing_toy_task : toy_task {
  pipeline_stage kill_stage = pipeline_stage::search;
  long kill_step = 0;
  std::filesystem::path file;

  bool checkpoint_due(pipeline_stage stage, long step) const { return stage == kill_stage && step == kill_step; }
  void write_checkpoint(training_state_writer& state) const {
    state.write(file);
    throw run_killed{};
  }
};
static_assert(checkpointing_task<checkpointing_toy_task>);
static_assert(!checkpointing_task<toy_task>);

// Every parameter of two models equal, bit for bit (the state stores doubles as F64).
void check_identical(model_type& a, model_type& b) {
  const auto pa = parameters_of(a), pb = parameters_of(b);
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i]->name);
    CHECK(pa[i]->name == pb[i]->name);
    CHECK(pa[i]->value == pb[i]->value);
    CHECK(pa[i]->first_moment == pb[i]->first_moment);
  }
}

std::filesystem::path state_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("earlybert_test_state_" + name + ".safetensors");
}
}  // namespace

TEST_CASE("earlybert pipeline: a run killed in the search or the efficient stage and resumed ends as the uninterrupted run") {
  for (const restart_point restart : {restart_point::init, restart_point::draw}) {
    for (const auto& [stage, step] : {std::pair{pipeline_stage::search, 5L}, std::pair{pipeline_stage::efficient, 4L}}) {
      CAPTURE(static_cast<int>(restart));
      CAPTURE(to_string(stage));
      const earlybert_options o = toy_options(restart);
      model_type reference(toy_config());
      rng random(5);
      reference.initialise(random);
      model_type interrupted = reference, resumed = reference;

      // The mask-distance detector with epsilon 1 fires once its window of 3 is full (step 9): a
      // resumed search that did not replay the recorded masks would fire later.
      gradient_criterion criterion;
      mask_distance_detector detector(3, 1.0);
      toy_task task;
      const earlybert_report expected = run_earlybert(reference, criterion, ticket_selector{}, detector, o, task, 6);

      checkpointing_toy_task killing;
      killing.kill_stage = stage;
      killing.kill_step = step;
      killing.file = state_file("pipeline");
      gradient_criterion criterion_1;
      mask_distance_detector detector_1(3, 1.0);
      CHECK_THROWS_AS(run_earlybert(interrupted, criterion_1, ticket_selector{}, detector_1, o, killing, 6), run_killed);

      const training_state_reader state = training_state_reader::open(killing.file);
      gradient_criterion criterion_2;
      mask_distance_detector detector_2(3, 1.0);
      toy_task rest;
      const earlybert_report report = run_earlybert(resumed, criterion_2, ticket_selector{}, detector_2, o, rest, 6, &state);
      std::filesystem::remove(killing.file);

      CHECK(rest.steps_seen[0] == (stage == pipeline_stage::search ? expected.ticket_step - step : 0));
      CHECK(rest.steps_seen[1] == o.efficient_steps - (stage == pipeline_stage::efficient ? step : 0));
      CHECK(report.ticket_step == expected.ticket_step);
      CHECK(report.check_steps == expected.check_steps);
      CHECK(report.ticket.neurons == expected.ticket.neurons);
      CHECK(report.head_coefficients == expected.head_coefficients);
      CHECK(report.search_flops == expected.search_flops);
      CHECK(report.efficient_flops == expected.efficient_flops);
      check_identical(resumed, reference);
    }
  }
}

TEST_CASE("run_dense: a run killed at a step and resumed ends as the uninterrupted run, a state of another mode is refused") {
  optimization_options o;
  o.learning_rate = 1e-2;
  model_type reference(toy_config());
  rng random(6);
  reference.initialise(random);
  model_type interrupted = reference, resumed = reference;
  toy_task task;
  const dense_report expected = run_dense(reference, o, 12, task);

  checkpointing_toy_task killing;
  killing.kill_stage = pipeline_stage::efficient;
  killing.kill_step = 7;
  killing.file = state_file("dense");
  CHECK_THROWS_AS(run_dense(interrupted, o, 12, killing), run_killed);
  const training_state_reader state = training_state_reader::open(killing.file);
  toy_task rest;
  const dense_report report = run_dense(resumed, o, 12, rest, &state);
  CHECK(rest.steps_seen[1] == 5);
  CHECK(report.steps == 12);
  CHECK(report.flops == expected.flops);
  check_identical(resumed, reference);

  model_type other(toy_config());
  slimming_criterion criterion;
  never_detector detector;
  CHECK_THROWS_WITH_AS(run_earlybert(other, criterion, ticket_selector{}, detector, toy_options(restart_point::init), rest, 6, &state),
                       doctest::Contains("written by a dense run, not a earlybert one"), io_error);
  std::filesystem::remove(killing.file);
}

TEST_CASE("run_dense: with unstructured masks, masked weights stay zero and a killed run resumes with its masks") {
  optimization_options o;
  o.learning_rate = 1e-2;
  model_type reference(toy_config());
  rng random(8);
  reference.initialise(random);
  reference.bert.for_each_weight_family([&](weight_family<double> family) {
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(family.size()));
    for (auto& m : mask) m = random.uniform() < 0.7;  // about 30% sparsity
    family.set_active(mask);
  });
  const double sparsity = unstructured_sparsity(reference.bert).overall();
  CHECK(sparsity > 0.2);
  model_type interrupted = reference, resumed(toy_config());  // `resumed` holds no mask until the state gives it one
  toy_task task;
  run_dense(reference, o, 12, task);
  CHECK(unstructured_sparsity(reference.bert).overall() == sparsity);
  reference.bert.for_each_linear([&](const linear<double>& l) {
    const auto mask = l.weight_mask();
    for (std::size_t i = 0; i < mask.size(); ++i) {
      if (mask[i] == 0) REQUIRE(l.weight.value.data()[i] == 0.0);
    }
  });

  checkpointing_toy_task killing;
  killing.kill_stage = pipeline_stage::efficient;
  killing.kill_step = 5;
  killing.file = state_file("dense_masked");
  CHECK_THROWS_AS(run_dense(interrupted, o, 12, killing), run_killed);
  const training_state_reader state = training_state_reader::open(killing.file);
  toy_task rest;
  run_dense(resumed, o, 12, rest, &state);
  CHECK(unstructured_sparsity(resumed.bert).overall() == sparsity);
  check_identical(resumed, reference);
  std::filesystem::remove(killing.file);
}

TEST_CASE("training_state_reader: a file that is not a training state, or lacks a parameter, is refused by name") {
  const auto file = state_file("malformed");
  safetensors_writer plain;
  const matrix<float> x = matrix<float>::Zero(1, 2);
  plain.add("x", x, {2});
  plain.write(file);
  CHECK_THROWS_WITH_AS(training_state_reader::open(file), doctest::Contains("no 'earlybert.training_state' metadata"), io_error);

  training_state_writer other_version;
  other_version.progress()["format"]["version"] = 99;
  other_version.write(file);
  CHECK_THROWS_WITH_AS(training_state_reader::open(file), doctest::Contains("format {\"name\":\"earlybert-training-state\",\"version\":99}"),
                       io_error);
  for (const nlohmann::json& format : {nlohmann::json{{"name", 7}, {"version", 1}}, nlohmann::json{{"name", "earlybert-training-state"}, {"version", 1e300}},
                                       nlohmann::json("earlybert-training-state")}) {
    training_state_writer odd_format;  // a name that is not a string, a version no int holds, not an object
    odd_format.progress()["format"] = format;
    odd_format.write(file);
    const std::string expected = fmt::format("format {}, expected", format.dump());
    CHECK_THROWS_WITH_AS(training_state_reader::open(file), doctest::Contains(expected.c_str()), io_error);
  }

  training_state_writer empty;
  empty.write(file);
  const training_state_reader state = training_state_reader::open(file);
  model_type model(toy_config());
  CHECK_THROWS_WITH_AS(state.read_model(model), doctest::Contains("no tensor 'bert.embeddings.word_embeddings.weight'"), io_error);
  CHECK_THROWS_WITH_AS(state.record("pipeline"), doctest::Contains("no 'pipeline' record"), io_error);
  std::filesystem::remove(file);
}
