// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/instability.hpp"

#include <algorithm>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/classification_task.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/evaluation.hpp"
#include "support/test_support.hpp"
#include "support/toy_classification.hpp"

using namespace earlybert;

namespace {
// One weight w, so that the path is known in closed form.
struct one_weight {
  using scalar_type = double;
  parameter<double> w{"w", 1, 1};
  template <class F>
  void for_each_parameter(F&& f) {
    f(w);
  }
};
// Error 1 - w^2 and loss 2 (1 - w^2): zero at w = -1 and 1, highest (1 and 2) at w = 0.
path_point bump(one_weight& m) {
  const double w = m.w.value(0, 0);
  return {0, 2 * (1 - w * w), 1 - w * w};
}

using model_type = bert_for_sequence_classification<double, shapes::any>;

}  // namespace

TEST_CASE("linear path: a crafted pair has its known barrier, the endpoints are the two models") {
  one_weight a, b;
  a.w.value(0, 0) = -1;
  b.w.value(0, 0) = 1;
  const linear_path path = evaluate_linear_path(a, b, 30, bump);
  REQUIRE(path.points.size() == 31);
  CHECK(path.points.front().alpha == 0.0);
  CHECK(path.points[15].alpha == 0.5);
  CHECK(path.points.back().alpha == 1.0);
  CHECK(path.points.front().error == 0.0);
  CHECK(path.points.back().error == 0.0);
  CHECK(path.error_barrier() == 1.0);  // at alpha = 1/2, w = 0
  CHECK(path.loss_barrier() == 2.0);
  // With 3 intervals the path misses w = 0: its highest points are w = -1/3 and 1/3.
  CHECK(evaluate_linear_path(a, b, 3, bump).error_barrier() == doctest::Approx(8.0 / 9.0).epsilon(1e-15));
  CHECK_THROWS_WITH_AS(linear_path{}.error_barrier(), "linear_path: 0 points, expected at least the two endpoints", config_error);
}

TEST_CASE("instability: a model with itself has barrier 0, two runs from one state end at their own evaluations") {
  bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 12>>(10);
  c.max_positions = 8;
  model_type start(c);
  rng random(9);
  start.initialise(random);
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const auto evaluate = [&](model_type& m) {
    const double accuracy = classification_accuracy(m, data, 8, 0);
    return path_point{0, 0, 1 - accuracy};
  };
  const auto train = [&](model_type& m, int variant) {
    classification_task<model_type> task(data, 6, 1, /*seed=*/static_cast<std::uint64_t>(11 + variant), 0);
    optimization_options o;
    o.learning_rate = 3e-2;
    o.warmup_ratio = 0;
    run_dense(m, o, 12, task);
  };
  model_type same = start;
  CHECK(evaluate_linear_path(start, same, 30, evaluate).error_barrier() == 0.0);

  const linear_path path = instability(start, train, evaluate, 10);
  model_type first = start, second = start;
  train(first, 0);
  train(second, 1);
  CHECK(path.points.front().error == evaluate(first).error);
  CHECK(path.points.back().error == evaluate(second).error);
  model_type other(bert_config::for_shape<bert_shape<1, 8, 2, 12>>(10));
  CHECK_THROWS_AS(interpolate_weights(start, other, 0.5, same), shape_error);
}
