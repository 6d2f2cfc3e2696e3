// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/imp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/classification_task.hpp"
#include "support/interrupted_task.hpp"
#include "support/test_support.hpp"
#include "support/toy_classification.hpp"

using namespace earlybert;

namespace {
using model_type = bert_for_sequence_classification<double, shapes::any>;

model_type toy_model() { return earlybert::testing::toy_sequence_classifier(); }

imp_options toy_imp(long rewind_step) {
  imp_options o;
  o.levels = 3;
  o.steps = 6;
  o.rewind_step = rewind_step;
  o.optimization.learning_rate = 1e-2;
  o.optimization.warmup_ratio = 0;
  return o;
}

std::vector<double> flat_values(model_type& model) {
  std::vector<double> all;
  model.for_each_parameter([&](parameter<double>& p) { all.insert(all.end(), p.value.data(), p.value.data() + p.value.size()); });
  return all;
}
}  // namespace

TEST_CASE("rewind_point: the kept weights and their moments come back bit for bit, the pruned ones as zero") {
  const classification_dataset data = earlybert::testing::toy_classification_data();
  model_type model = toy_model();
  classification_task<model_type> task(data, 6, 1, 3, 0);
  optimization_options o = toy_imp(0).optimization;
  run_dense(model, o, 3, task);
  const rewind_point<double> point = rewind_point<double>::take(model, 3, 3);
  run_dense(model, o, 3, task);  // the weights move on
  std::vector<weight_family<double>> families = weight_families(model, weight_scope::encoder);
  prune_to_level(std::span(families), magnitude_pruning{.fraction = 0.5}, 1);
  point.restore(model, optimizer_rewind::restored);
  std::size_t i = 0, pruned = 0;
  model.for_each_parameter([&](parameter<double>& p) {
    const bool in_scope = std::any_of(families.begin(), families.end(), [&](const auto& f) { return &f.weights() == &p; });
    const std::vector<std::uint8_t> active =
        in_scope ? std::find_if(families.begin(), families.end(), [&](const auto& f) { return &f.weights() == &p; })->active()
                 : std::vector<std::uint8_t>(static_cast<std::size_t>(p.size()), 1);
    for (index_t e = 0; e < p.size(); ++e) {
      const bool kept = active[static_cast<std::size_t>(e)] != 0;
      pruned += kept ? 0 : 1;
      CHECK(p.value.data()[e] == (kept ? point.values[i].data()[e] : 0.0));
      CHECK(p.first_moment.data()[e] == (kept ? point.first_moments[i].data()[e] : 0.0));
      CHECK(p.gradient.data()[e] == 0.0);
    }
    ++i;
  });
  CHECK(pruned > 0);
  point.restore(model, optimizer_rewind::fresh);
  model.for_each_parameter([&](parameter<double>& p) { CHECK(p.first_moment.size() == 0); });
}

TEST_CASE("run_imp: level 0 is dense training, split at the rewind step or not, each level keeps round(0.8^l n) weights, pruned ones at zero") {
  const classification_dataset data = earlybert::testing::toy_classification_data();
  model_type dense = toy_model();
  classification_task<model_type> dense_task(data, 6, 1, 3, 0);
  run_dense(dense, toy_imp(0).optimization, 6, dense_task);
  const std::vector<double> dense_weights = flat_values(dense);

  for (const long rewind_step : {0L, 2L}) {
    CAPTURE(rewind_step);
    model_type model = toy_model();
    classification_task<model_type> task(data, 6, 1, 3, 0);
    const imp_options o = toy_imp(rewind_step);
    std::vector<int> levels_seen;
    const std::vector<imp_level_report> reports = run_imp(model, o, task, [&](const imp_level_report& r, model_type& m) {
      levels_seen.push_back(r.level);
      if (r.level == 0) CHECK(flat_values(m) == dense_weights);
      CHECK(r.kept == std::llround(std::pow(0.8, r.level) * static_cast<double>(r.weights)));
      CHECK(r.steps == (r.level == 0 ? 6 : 6 - rewind_step));
      // Trained under the mask, the pruned weights are still exactly zero.
      for (const auto& f : weight_families(m, weight_scope::encoder)) {
        const std::vector<std::uint8_t> active = f.active();
        for (std::size_t e = 0; e < active.size(); ++e) {
          if (active[e] == 0) CHECK(f.weights().value.data()[e] == 0.0);
        }
      }
    });
    CHECK(levels_seen == std::vector<int>{0, 1, 2, 3});
    CHECK(reports.back().sparsity == doctest::Approx(1 - std::pow(0.8, 3)).epsilon(0.01));
  }
  imp_options bad = toy_imp(6);
  CHECK_THROWS_WITH_AS(bad.check(), "imp: rewind_step is 6, expected a step in [0, 6)", config_error);
}

TEST_CASE("run_imp: a run killed in any level, before or after the rewind point, resumes to the uninterrupted run's levels bit for bit") {
  using earlybert::testing::interrupted_task;
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const imp_options o = toy_imp(2);
  // Every parameter and moment after each level, uninterrupted.
  const auto state_of = [](model_type& m) {
    std::vector<double> all = flat_values(m);
    m.for_each_parameter([&](parameter<double>& p) { all.insert(all.end(), p.first_moment.data(), p.first_moment.data() + p.first_moment.size()); });
    return all;
  };
  std::vector<std::vector<double>> reference;
  {
    model_type model = toy_model();
    classification_task<model_type> task(data, 6, 1, 3, 0);
    run_imp(model, o, task, [&](const imp_level_report&, model_type& m) { reference.push_back(state_of(m)); });
  }
  // The pipeline asks after steps 1..5 of level 0 (the rewind point is taken after step 2) and after
  // steps 3..5 of each later level: question 1 is before the rewind point, 2 exactly at it, 4 after
  // it, 7 in level 1, 12 in level 3.
  for (const long kill_at : {1L, 2L, 4L, 7L, 12L}) {
    CAPTURE(kill_at);
    const auto file = earlybert::testing::state_file("imp");
    model_type interrupted = toy_model();
    interrupted_task<classification_task<model_type>> killing(data, 6, 1, 3, 0);
    killing.kill_at = kill_at;
    killing.file = file;
    int levels_before = 0;
    CHECK_THROWS_AS(run_imp(interrupted, o, killing, [&](const imp_level_report&, model_type&) { ++levels_before; }),
                    earlybert::testing::run_killed);

    model_type resumed = toy_model();  // as a program builds it again: unpruned, initialised
    classification_task<model_type> task(data, 6, 1, 3, 0);
    const training_state_reader state = training_state_reader::open(file);
    std::vector<int> levels;
    const std::vector<imp_level_report> reports = run_imp(
        resumed, o, task,
        [&](const imp_level_report& r, model_type& m) {
          levels.push_back(r.level);
          CHECK(state_of(m) == reference[static_cast<std::size_t>(r.level)]);
        },
        &state);
    REQUIRE(!levels.empty());
    CHECK(levels.front() == levels_before);
    CHECK(levels.back() == 3);
    CHECK(reports.size() == 4);
    std::filesystem::remove(file);
  }
}

TEST_CASE("run_structured_imp: each level keeps round((1-p)^l n) heads per layer and FFN neurons in all, the lowest-scored pruned, nested, resumable") {
  using earlybert::testing::interrupted_task;
  const classification_dataset data = earlybert::testing::toy_classification_data();
  imp_options o = toy_imp(0);
  o.levels = 2;
  o.pruning.fraction = 0.5;
  struct level_state {
    structure_masks active;
    structure_scores scores;  // the criterion's at the level's end
    std::vector<double> values;
  };
  const auto active_of = [](model_type& m) {
    structure_masks masks;
    std::as_const(m.bert).for_each_family([&](const auto& f) {
      const auto active = f.active();
      masks.of(f.kind()).emplace_back(active.begin(), active.end());
    });
    return masks;
  };
  magnitude_criterion criterion;
  std::vector<level_state> levels;
  std::vector<imp_level_report> reports;
  {
    model_type model = toy_model();
    classification_task<model_type> task(data, 6, 1, 3, 0);
    reports = run_structured_imp(model, criterion, o, task, [&](const imp_level_report&, model_type& m) {
      levels.push_back({active_of(m), criterion.score(m.bert), flat_values(m)});
      // A masked structure's weights are exactly zero after training.
      std::as_const(m.bert).for_each_family([&](const auto& f) {
        const auto active = f.active();
        for (index_t member = 0; member < f.size(); ++member) {
          if (active[static_cast<std::size_t>(member)] != 0) continue;
          f.for_each_slice(member, [&](const auto& slice) { CHECK(slice.value.isZero(0.0)); });
        }
      });
    });
  }
  REQUIRE(levels.size() == 3);
  // Two heads per layer: 1 kept at level 1, round(0.5) = 0 at level 2, raised to the one every layer keeps.
  CHECK(reports[1].heads_kept == std::vector<index_t>{1, 1});
  CHECK(reports[2].heads_kept == std::vector<index_t>{1, 1});
  const auto total = [](const std::vector<index_t>& v) { return std::accumulate(v.begin(), v.end(), index_t{0}); };
  CHECK(total(reports[0].neurons_kept) == 24);
  CHECK(total(reports[1].neurons_kept) == 12);
  CHECK(total(reports[2].neurons_kept) == 6);
  CHECK(reports[2].flops < reports[1].flops);
  CHECK(reports[1].flops < reports[0].flops);
  CHECK(reports[2].sparsity > reports[1].sparsity);
  for (std::size_t l = 1; l < 3; ++l) {
    // Nested, and the level's pruning is the lowest-scored of what the previous level ended with.
    for (const structure_kind kind : {structure_kind::heads, structure_kind::neurons}) {
      const per_layer_mask& now = levels[l].active.of(kind);
      const per_layer_mask& before = levels[l - 1].active.of(kind);
      for (std::size_t layer = 0; layer < now.size(); ++layer) {
        for (std::size_t i = 0; i < now[layer].size(); ++i) CHECK((now[layer][i] == 0 || before[layer][i] == 1));
      }
    }
    double lowest_kept = std::numeric_limits<double>::max(), highest_pruned_now = std::numeric_limits<double>::lowest();
    const per_layer_scores& scores = levels[l - 1].scores.neurons;
    for (std::size_t layer = 0; layer < scores.size(); ++layer) {
      for (std::size_t i = 0; i < scores[layer].size(); ++i) {
        if (levels[l - 1].active.neurons[layer][i] == 0) continue;  // pruned before
        if (levels[l].active.neurons[layer][i] == 1) lowest_kept = std::min(lowest_kept, scores[layer][i]);
        else highest_pruned_now = std::max(highest_pruned_now, scores[layer][i]);
      }
    }
    CHECK(highest_pruned_now <= lowest_kept);
  }

  // Killed in level 2 and resumed: the masks come back from the record, the run ends as before.
  for (const long kill_at : {3L, 13L}) {
    CAPTURE(kill_at);
    const auto file = earlybert::testing::state_file("structured_imp");
    model_type interrupted = toy_model();
    interrupted_task<classification_task<model_type>> killing(data, 6, 1, 3, 0);
    killing.kill_at = kill_at;
    killing.file = file;
    CHECK_THROWS_AS(run_structured_imp(interrupted, criterion, o, killing, [](const imp_level_report&, model_type&) {}),
                    earlybert::testing::run_killed);
    model_type resumed = toy_model();
    classification_task<model_type> task(data, 6, 1, 3, 0);
    const training_state_reader state = training_state_reader::open(file);
    run_structured_imp(
        resumed, criterion, o, task,
        [&](const imp_level_report& r, model_type& m) {
          CHECK(flat_values(m) == levels[static_cast<std::size_t>(r.level)].values);
          CHECK(active_of(m).neurons == levels[static_cast<std::size_t>(r.level)].active.neurons);
        },
        &state);
    std::filesystem::remove(file);
  }
}
