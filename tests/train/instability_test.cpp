// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/instability.hpp"

#include <algorithm>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/classification_task.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/evaluation.hpp"
#include "support/interrupted_task.hpp"
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

model_type toy_model() { return earlybert::testing::toy_sequence_classifier(); }

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

TEST_CASE("interpolate_weights: models of different kept heads, masked heads or weight masks are refused, naming the layer") {
  // Three heads of size 4, so that two compactions keep two heads each with the same shapes.
  const auto three_heads = [] {
    bert_config c = bert_config::for_shape<bert_shape<2, 12, 3, 12>>(10);
    c.max_positions = 8;
    model_type m(c);
    rng random(9);
    m.initialise(random);
    return m;
  };
  const auto compacted = [&](std::vector<std::uint8_t> active) {
    model_type m = three_heads();
    m.bert.layers[0].self_attention.structures().set_active(active);
    m.bert.layers[0].self_attention.structures().compact();
    return m;
  };
  model_type keeps_01 = compacted({1, 1, 0}), keeps_12 = compacted({0, 1, 1}), out = keeps_01;
  CHECK(parameters_of(keeps_01).size() == parameters_of(keeps_12).size());
  CHECK_THROWS_WITH_AS(interpolate_weights(keeps_01, keeps_12, 0.5, out),
                       doctest::Contains("interpolate_weights: 'bert.encoder.layer.0.attention.self.query.weight' holds the original "
                                         "groups (heads or neurons) [0, 1] in the first model and [1, 2] in the second model"),
                       shape_error);
  model_type keeps_01_too = compacted({1, 1, 0});
  CHECK_NOTHROW(interpolate_weights(keeps_01, keeps_01_too, 0.5, out));

  // Masked (not compacted) heads.
  model_type masked = three_heads(), dense = three_heads(), between = three_heads();
  masked.bert.layers[1].self_attention.structures().set_active(std::vector<std::uint8_t>{1, 0, 1});
  CHECK_THROWS_WITH_AS(interpolate_weights(dense, masked, 0.5, between),
                       doctest::Contains("'bert.encoder.layer.1.attention.self.query.weight' masks other heads or neurons in the first "
                                         "model than in the second model (active [1, 1, 1] and [1, 0, 1])"),
                       shape_error);

  // Unstructured masks: one weight masked in one model only; the output model's mask counts too.
  model_type sparse = three_heads();
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(sparse.bert.layers[0].ffn.intermediate.weight.size()), 1);
  mask[5] = 0;
  sparse.bert.layers[0].ffn.intermediate.set_weight_mask(mask);
  CHECK_THROWS_WITH_AS(interpolate_weights(dense, sparse, 0.5, between),
                       doctest::Contains("'bert.encoder.layer.0.intermediate.dense.weight' has another unstructured weight mask in the "
                                         "first model than in the second model (1 weights masked in one and not the other)"),
                       shape_error);
  model_type sparse_too = sparse;
  CHECK_THROWS_WITH_AS(interpolate_weights(sparse, sparse_too, 0.5, between), doctest::Contains("than in the output model"), shape_error);
  model_type sparse_out = sparse;
  interpolate_weights(sparse, sparse_too, 0.5, sparse_out);
  CHECK(sparse_out.bert.layers[0].ffn.intermediate.weight.value.data()[5] == 0.0);
  // An all-ones mask is no mask.
  model_type all_ones = three_heads();
  all_ones.bert.layers[0].ffn.intermediate.set_weight_mask(std::vector<std::uint8_t>(mask.size(), 1));
  CHECK_NOTHROW(interpolate_weights(dense, all_ones, 0.5, between));
}

TEST_CASE("instability: a model with itself has barrier 0, two runs from one state end at their own evaluations") {
  model_type start = toy_model();
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

TEST_CASE("run_instability: the trunk and first copy are one run, the second copy starts from the state at k, and a kill anywhere resumes bit for bit") {
  using earlybert::testing::interrupted_task;
  model_type start = toy_model();
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const auto evaluate = [&](model_type& m) { return path_point{0, mean_loss(m, data, 8, 0), 1 - classification_accuracy(m, data, 8, 0)}; };
  instability_options o;
  o.steps = 8;
  o.split_step = 3;
  o.points = 4;
  o.optimization.learning_rate = 3e-2;
  o.optimization.warmup_ratio = 0;

  model_type reference = start;
  classification_task<model_type> first(data, 6, 1, 11, 0), second(data, 6, 1, 12, 0);
  const instability_report expected = run_instability(reference, o, first, second, evaluate);
  // The first copy is the plain run of `first`'s data order.
  model_type plain = start;
  classification_task<model_type> same_as_first(data, 6, 1, 11, 0);
  run_dense(plain, o.optimization, 8, same_as_first);
  CHECK(parameters_of(plain).front()->value == parameters_of(reference).front()->value);
  CHECK(parameters_of(plain).back()->value == parameters_of(reference).back()->value);
  CHECK(expected.path.points.front().error == evaluate(plain).error);
  REQUIRE(expected.path.points.size() == 5);
  CHECK(expected.path.points.front().loss != expected.path.points.back().loss);  // the copies differ

  // The pipeline asks after steps 1..7 of the first copy and 4..7 of the second, then before each of
  // the path's 5 points: question 2 is in the trunk, 3 exactly at k (the split not yet taken), 5 in
  // the first copy, 9 in the second, 12 before the path's first point, 14 and 16 in the path.
  for (const long kill_at : {2L, 3L, 5L, 9L, 12L, 14L, 16L}) {
    CAPTURE(kill_at);
    const auto file = earlybert::testing::state_file("instability");
    model_type interrupted = start;
    interrupted_task<classification_task<model_type>> killing_first(data, 6, 1, 11, 0), killing_second(data, 6, 1, 12, 0);
    killing_first.kill_at = killing_second.kill_at = kill_at;
    killing_first.file = killing_second.file = file;
    // The second copy's questions come after the first's 7.
    killing_second.asked = 7;
    CHECK_THROWS_AS(run_instability(interrupted, o, killing_first, killing_second, evaluate), earlybert::testing::run_killed);

    model_type resumed = start;
    classification_task<model_type> first_again(data, 6, 1, 11, 0), second_again(data, 6, 1, 12, 0);
    const training_state_reader state = training_state_reader::open(file);
    const instability_report report = run_instability(resumed, o, first_again, second_again, evaluate, &state);
    REQUIRE(report.path.points.size() == expected.path.points.size());
    for (std::size_t i = 0; i < report.path.points.size(); ++i) {
      CHECK(report.path.points[i].loss == expected.path.points[i].loss);
      CHECK(report.path.points[i].error == expected.path.points[i].error);
    }
    const auto pr = parameters_of(resumed), pe = parameters_of(reference);
    for (std::size_t i = 0; i < pr.size(); ++i) CHECK(pr[i]->value == pe[i]->value);
    std::filesystem::remove(file);
  }
}
