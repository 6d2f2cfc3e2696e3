// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/rigl.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/classification_task.hpp"
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
    CHECK(report.updates[u].step == static_cast<long>(2 * (u + 1)));
    CHECK(report.updates[u].fraction == doctest::Approx(rigl.fraction_at(report.updates[u].step)));
    CHECK(report.updates[u].moved > 0);
    CHECK(report.updates[u].grown_gradient > 0);  // grown by a dense gradient (masked entries' are zero)
    CHECK(report.updates[u].active == report.updates[0].active);
  }
  CHECK(report.updates[0].moved > report.updates[2].moved);  // the cosine decay
  CHECK(report.sparsity == doctest::Approx(0.7).epsilon(0.02));
  CHECK(report.training.steps == 10);
}
