// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/rigl.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/classification_task.hpp"
#include "support/interrupted_task.hpp"
#include "support/test_support.hpp"
#include "support/toy_classification.hpp"

using namespace earlybert;

using model_type = bert_for_sequence_classification<double, shapes::any>;

TEST_CASE("run_rigl: updates on schedule, each family at its ERK density throughout, masked weights zero, repeatable") {
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const rigl_options rigl{.sparsity = 0.7, .allocation = sparsity_allocation::erk, .drop_fraction = 0.3, .update_interval = 2, .end_step = 8};
  optimization_options o;
  o.learning_rate = 1e-2;
  o.warmup_ratio = 0;
  const auto run = [&](std::vector<double>* weights) {
    bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 12>>(10);
    c.max_positions = 8;
    model_type model(c);
    rng random(9);
    model.initialise(random);
    classification_task<model_type> task(data, 6, 1, 3, 0);
    const rigl_report report = run_rigl(model, rigl, o, 10, task, random);
    std::vector<shape2> shapes;
    for (const auto& f : weight_families(model, weight_scope::encoder)) {
      shapes.push_back({f.weights().rows(), f.weights().cols()});
      const std::vector<std::uint8_t> active = f.active();
      for (std::size_t e = 0; e < active.size(); ++e) {
        if (active[e] == 0) CHECK(f.weights().value.data()[e] == 0.0);
      }
    }
    const std::vector<double> density = rigl_densities(shapes, 0.7, sparsity_allocation::erk);
    std::size_t i = 0;
    for (const auto& f : weight_families(model, weight_scope::encoder)) {
      CHECK(f.active_count() == std::llround(density[i++] * static_cast<double>(f.size())));
    }
    model.for_each_parameter([&](parameter<double>& p) { weights->insert(weights->end(), p.value.data(), p.value.data() + p.size()); });
    return report;
  };
  std::vector<double> first, second;
  const rigl_report report = run(&first);
  run(&second);
  CHECK(first == second);
  REQUIRE(report.updates.size() == 3);
  for (std::size_t u = 0; u < 3; ++u) {
    CHECK(report.updates[u].step == static_cast<long>(2 * (u + 1) + 1));  // counted from 1: steps 3, 5, 7
    CHECK(report.updates[u].fraction == doctest::Approx(rigl.fraction_at(report.updates[u].step - 1)));
    CHECK(report.updates[u].moved > 0);
    CHECK(report.updates[u].grown_gradient > 0);  // grown by a dense gradient (masked entries' are zero)
    CHECK(report.updates[u].active == report.updates[0].active);
  }
  CHECK(report.updates[0].moved > report.updates[2].moved);  // the cosine decay
  CHECK(report.sparsity == doctest::Approx(0.7).epsilon(0.02));
  CHECK(report.training.steps == 10);
}

TEST_CASE("run_rigl: a run killed between updates or right after one resumes to the uninterrupted run bit for bit") {
  using earlybert::testing::interrupted_task;
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const rigl_options rigl{.sparsity = 0.7, .allocation = sparsity_allocation::uniform, .drop_fraction = 0.3, .update_interval = 2, .end_step = 8};
  optimization_options o;
  o.learning_rate = 1e-2;
  o.warmup_ratio = 0;
  const auto fresh_model = [] {
    bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 12>>(10);
    c.max_positions = 8;
    return model_type(c);
  };
  const auto state_of = [](model_type& m) {
    std::vector<double> all;
    m.for_each_parameter([&](parameter<double>& p) {
      all.insert(all.end(), p.value.data(), p.value.data() + p.size());
      all.insert(all.end(), p.second_moment.data(), p.second_moment.data() + p.second_moment.size());
    });
    return all;
  };
  model_type reference = fresh_model();
  rng random(9);
  reference.initialise(random);
  const model_type initial = reference;
  classification_task<model_type> task(data, 6, 1, 3, 0);
  const rigl_report expected = run_rigl(reference, rigl, o, 10, task, random);
  // Updates at steps 2, 4 and 6 (the pipeline asks after steps 1..9): question 3 is between two
  // updates, 5 right after one.
  for (const long kill_at : {3L, 5L}) {
    CAPTURE(kill_at);
    const auto file = earlybert::testing::state_file("rigl");
    rng same(9);
    model_type interrupted = fresh_model();
    interrupted.initialise(same);
    interrupted_task<classification_task<model_type>> killing(data, 6, 1, 3, 0);
    killing.kill_at = kill_at;
    killing.file = file;
    CHECK_THROWS_AS(run_rigl(interrupted, rigl, o, 10, killing, same), earlybert::testing::run_killed);

    model_type resumed = initial;
    classification_task<model_type> plain(data, 6, 1, 3, 0);
    const training_state_reader state = training_state_reader::open(file);
    rng other(10);  // a resumed run draws no masks: the generator's state does not matter
    const rigl_report report = run_rigl(resumed, rigl, o, 10, plain, other, weight_scope::encoder, &state);
    CHECK(state_of(resumed) == state_of(reference));
    REQUIRE(report.updates.size() == expected.updates.size());
    for (std::size_t u = 0; u < report.updates.size(); ++u) {
      CHECK(report.updates[u].step == expected.updates[u].step);
      CHECK(report.updates[u].moved == expected.updates[u].moved);
    }
    std::filesystem::remove(file);
  }
}

TEST_CASE("run_rigl: a model that already holds unstructured masks (an IMP ticket) is refused, its masks untouched") {
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const rigl_options rigl{.sparsity = 0.7, .allocation = sparsity_allocation::uniform, .drop_fraction = 0.3, .update_interval = 2, .end_step = 8};
  optimization_options o;
  o.warmup_ratio = 0;
  bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 12>>(10);
  c.max_positions = 8;
  model_type model(c);
  rng random(9);
  model.initialise(random);
  auto& w1 = model.bert.layers[1].ffn.intermediate;
  std::vector<std::uint8_t> ticket(static_cast<std::size_t>(w1.weight.size()), 1);
  ticket[0] = ticket[3] = 0;
  w1.set_weight_mask(ticket);
  classification_task<model_type> task(data, 6, 1, 3, 0);
  CHECK_THROWS_WITH_AS(run_rigl(model, rigl, o, 10, task, random),
                       "run_rigl: the model already holds unstructured weight masks (2 of 896 weights masked, in 1 of 12 matrices); "
                       "RigL starts from random masks of its own and would replace them: clear them (weight_family::clear) to start "
                       "RigL afresh, or train a ticket under its masks with run_dense",
                       config_error);
  CHECK(std::vector<std::uint8_t>(w1.weight_mask().begin(), w1.weight_mask().end()) == ticket);
}
