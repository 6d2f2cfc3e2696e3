// SPDX-License-Identifier: Apache-2.0
#include "earlybert/nn/linear.hpp"

#include <vector>

#include <doctest/doctest.h>

#include "earlybert/train/adamw.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_matrix;

namespace {
template <class Scalar>
linear<Scalar> random_linear(index_t inputs, index_t outputs, structure_axis axis, index_t group_size, std::uint64_t seed) {
  linear<Scalar> l("layer", inputs, outputs, axis, group_size);
  l.weight.value = random_matrix<Scalar>(outputs, inputs, seed);
  l.bias.value = random_matrix<Scalar>(1, outputs, seed + 1);
  return l;
}
}  // namespace

TEST_CASE_TEMPLATE("linear: y = x W^T + b, computed by hand", Scalar, float, double) {
  linear<Scalar> l("dense", 2, 3);
  l.weight.value = matrix_of<Scalar>({{1, 2}, {3, 4}, {5, 6}});
  l.bias.value = matrix_of<Scalar>({{1, 0, -1}});
  tape<Scalar> t;
  const auto y = l.forward(t, t.constant(matrix_of<Scalar>({{1, 1}, {0, 2}})));
  check_near(y.value(), matrix_of<double>({{4, 7, 10}, {5, 8, 11}}), 0);
  CHECK(l.weight.name == "dense.weight");
  CHECK(l.bias.name == "dense.bias");
  CHECK_FALSE(l.bias.weight_decay);
}

TEST_CASE("linear: gradients match finite differences, unstructured and masked on either axis") {
  auto x = earlybert::testing::random_parameter<double>("x", 5, 6, 11);
  auto plain = random_linear<double>(6, 4, structure_axis::none, 1, 3);
  check_gradients([&](tape<double>& t, auto& v) { return plain.forward(t, v[0]); }, {&x, &plain.weight, &plain.bias});

  // A masked layer is a function of its active weights only: the input's gradient must match finite
  // differences, and the weight's gradient must be the unstructured layer's with the pruned entries
  // cleared (perturbing a pruned weight would leave the pruned model, so it is not differenced).
  for (auto axis : {structure_axis::outputs, structure_axis::inputs}) {
    CAPTURE(static_cast<int>(axis));
    auto masked = random_linear<double>(6, 6, axis, 2, 3);
    masked.set_active_groups(std::vector<std::uint8_t>{1, 0, 1});
    check_gradients([&](tape<double>& t, auto& v) { return masked.forward(t, v[0]); }, {&x});

    linear<double> reference("reference", 6, 6);
    reference.weight.value = masked.weight.value;
    reference.bias.value = masked.bias.value;
    const matrix<double> weights = random_matrix<double>(5, 6, 12);
    for (linear<double>* l : {&masked, &reference}) {
      l->weight.zero_gradient();
      l->bias.zero_gradient();
      tape<double> t;
      t.backward(sum(t, multiply(t, l->forward(t, t.constant(x.value)), t.constant(weights))));
    }
    if (axis == structure_axis::outputs) {
      reference.weight.gradient.middleRows(2, 2).setZero();
      reference.bias.gradient.middleCols(2, 2).setZero();
    } else {
      reference.weight.gradient.middleCols(2, 2).setZero();
    }
    check_near(masked.weight.gradient, reference.weight.gradient, 1e-14, "weight gradient");
    check_near(masked.bias.gradient, reference.bias.gradient, 1e-14, "bias gradient");
  }
}

TEST_CASE("linear: masking zeroes the pruned rows or columns, and their gradient, exactly") {
  auto rows = random_linear<double>(4, 6, structure_axis::outputs, 2, 5);
  const std::vector<std::uint8_t> active{1, 0, 1};
  rows.set_active_groups(active);
  CHECK(rows.weight.value.middleRows(2, 2).isZero(0));
  CHECK(rows.bias.value.middleCols(2, 2).isZero(0));
  CHECK(rows.active_count() == 2);
  tape<double> t;
  const auto y = rows.forward(t, t.constant(random_matrix<double>(3, 4, 6)));
  CHECK(y.value().middleCols(2, 2).isZero(0));
  t.backward(sum(t, y));
  CHECK(rows.weight.gradient.middleRows(2, 2).isZero(0));
  CHECK(rows.bias.gradient.middleCols(2, 2).isZero(0));
  CHECK_FALSE(rows.weight.gradient.topRows(2).isZero(0));

  auto cols = random_linear<double>(6, 4, structure_axis::inputs, 3, 7);
  cols.set_active_groups(std::vector<std::uint8_t>{0, 1});
  CHECK(cols.weight.value.leftCols(3).isZero(0));
  CHECK_FALSE(cols.bias.value.isZero(0));  // an inputs-structured layer keeps its whole bias
  t.rewind();
  t.backward(sum(t, cols.forward(t, t.constant(random_matrix<double>(3, 6, 8)))));
  CHECK(cols.weight.gradient.leftCols(3).isZero(0));
  CHECK_FALSE(cols.weight.gradient.rightCols(3).isZero(0));
}

TEST_CASE_TEMPLATE("linear: compact and masked give the same outputs and gradients", Scalar, float, double) {
  for (auto axis : {structure_axis::outputs, structure_axis::inputs}) {
    CAPTURE(static_cast<int>(axis));
    auto masked = random_linear<Scalar>(8, 8, axis, 2, 21);
    const std::vector<std::uint8_t> active{0, 1, 1, 0};
    masked.set_active_groups(active);
    auto compacted = masked;
    compacted.compact();
    CHECK(compacted.groups() == 2);
    CHECK(std::vector<index_t>(compacted.kept_groups().begin(), compacted.kept_groups().end()) == std::vector<index_t>{1, 2});
    CHECK((axis == structure_axis::outputs ? compacted.outputs() : compacted.inputs()) == 4);

    // The compact layer sees only the kept input columns; the masked one sees zeros elsewhere.
    const matrix<Scalar> x_full = random_matrix<Scalar>(5, 8, 22);
    matrix<Scalar> x_compact = x_full;
    if (axis == structure_axis::inputs) x_compact = x_full.middleCols(2, 4);
    tape<Scalar> t;
    const auto y_masked = masked.forward(t, t.constant(x_full));
    const auto y_compact = compacted.forward(t, t.constant(x_compact));
    const matrix<Scalar> weights = random_matrix<Scalar>(5, y_masked.cols(), 23);
    matrix<Scalar> weights_compact = weights;
    if (axis == structure_axis::outputs) weights_compact = weights.middleCols(2, 4);
    t.backward(sum(t, add(t, sum(t, multiply(t, y_masked, t.constant(weights))),
                          sum(t, multiply(t, y_compact, t.constant(weights_compact))))));
    const double tolerance = std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
    if (axis == structure_axis::outputs) {
      check_near(y_masked.value().middleCols(2, 4), y_compact.value(), tolerance, "output");
      check_near(masked.weight.gradient.middleRows(2, 4), compacted.weight.gradient, tolerance, "weight gradient");
      check_near(masked.bias.gradient.middleCols(2, 4), compacted.bias.gradient, tolerance, "bias gradient");
    } else {
      check_near(y_masked.value(), y_compact.value(), tolerance, "output");
      check_near(masked.weight.gradient.middleCols(2, 4), compacted.weight.gradient, tolerance, "weight gradient");
      check_near(masked.bias.gradient, compacted.bias.gradient, tolerance, "bias gradient");
    }
  }
}

TEST_CASE("linear: masked weights stay exactly zero through many AdamW steps with weight decay") {
  auto l = random_linear<float>(6, 6, structure_axis::outputs, 3, 31);
  adamw<float> optimizer({.weight_decay = 0.1});
  std::vector<parameter<float>*> parameters{&l.weight, &l.bias};
  tape<float> t;
  // Train unmasked first so that the moments are non-zero when the mask arrives.
  for (int step = 0; step < 200; ++step) {
    if (step == 20) l.set_active_groups(std::vector<std::uint8_t>{0, 1});
    t.rewind();
    l.weight.zero_gradient();
    l.bias.zero_gradient();
    const auto y = l.forward(t, t.constant(random_matrix<float>(4, 6, 100 + static_cast<std::uint64_t>(step))));
    t.backward(sum(t, multiply(t, y, y)));
    optimizer.step(parameters, 1e-2);
  }
  CHECK(l.weight.value.topRows(3).isZero(0));
  CHECK(l.bias.value.leftCols(3).isZero(0));
  CHECK_FALSE(l.weight.value.bottomRows(3).isZero(0));
}

TEST_CASE("linear: compacting slices the AdamW moments with the weights") {
  auto l = random_linear<double>(4, 6, structure_axis::outputs, 2, 41);
  l.weight.first_moment = random_matrix<double>(6, 4, 42);
  l.weight.second_moment = random_matrix<double>(6, 4, 43, 0, 1);
  l.bias.first_moment = random_matrix<double>(1, 6, 44);
  l.bias.second_moment = random_matrix<double>(1, 6, 45, 0, 1);
  const parameter<double> before_weight = l.weight;
  const parameter<double> before_bias = l.bias;
  l.set_active_groups(std::vector<std::uint8_t>{1, 0, 1});
  l.compact();
  matrix<double> expected(4, 4);
  expected << before_weight.first_moment.topRows(2), before_weight.first_moment.bottomRows(2);
  check_near(l.weight.first_moment, expected, 0, "first moment");
  expected << before_weight.second_moment.topRows(2), before_weight.second_moment.bottomRows(2);
  check_near(l.weight.second_moment, expected, 0, "second moment");
  matrix<double> expected_bias(1, 4);
  expected_bias << before_bias.first_moment.leftCols(2), before_bias.first_moment.rightCols(2);
  check_near(l.bias.first_moment, expected_bias, 0, "bias first moment");
  CHECK(std::vector<index_t>(l.kept_groups().begin(), l.kept_groups().end()) == std::vector<index_t>{0, 2});
}

TEST_CASE("linear: compacting twice keeps original indices, keep_original_groups rebuilds the same layer") {
  auto l = random_linear<double>(4, 10, structure_axis::outputs, 2, 51);
  auto rebuilt = l;
  l.set_active_groups(std::vector<std::uint8_t>{1, 0, 1, 1, 0});
  l.compact();
  l.set_active_groups(std::vector<std::uint8_t>{1, 0, 1});
  l.compact();
  CHECK(std::vector<index_t>(l.kept_groups().begin(), l.kept_groups().end()) == std::vector<index_t>{0, 3});
  rebuilt.keep_original_groups(std::vector<index_t>{0, 3});
  check_near(rebuilt.weight.value, l.weight.value, 0);
  check_near(rebuilt.bias.value, l.bias.value, 0);
}

TEST_CASE("linear: structural errors name the layer") {
  CHECK_THROWS_WITH_AS(linear<float>("w", 4, 6, structure_axis::outputs, 4),
                       "linear 'w': group size 4 does not divide the structured extent 6", shape_error);
  linear<float> plain("dense", 4, 4);
  CHECK_THROWS_WITH_AS(plain.compact(), "linear 'dense.weight': compact needs a structured layer, this one has no groups",
                       config_error);
  linear<float> l("q", 4, 4, structure_axis::outputs, 2);
  CHECK_THROWS_WITH_AS(l.set_active_groups(std::vector<std::uint8_t>{1}),
                       "linear 'q.weight': set_active_groups got 1 entries, expected 2 (one per held group)", shape_error);
  CHECK_THROWS_WITH_AS(l.keep_original_groups(std::vector<index_t>{1, 0}),
                       "linear 'q.weight': group 0 is not held, or the list is not strictly ascending", shape_error);
  tape<float> t;
  CHECK_THROWS_WITH_AS(l.forward(t, t.constant(matrix<float>::Zero(2, 3))),
                       "q.weight: argument 'x' has shape [2, 3], expected [*, 4]", shape_error);
}

TEST_CASE("linear: an unstructured mask keeps single weights, their gradients and moments at exactly zero through AdamW") {
  auto l = random_linear<float>(5, 4, structure_axis::none, 1, 61);
  adamw<float> optimizer({.weight_decay = 0.1});
  std::vector<parameter<float>*> parameters{&l.weight, &l.bias};
  std::vector<std::uint8_t> mask(20, 1);
  for (std::size_t i : {0u, 3u, 7u, 12u, 19u}) mask[i] = 0;
  tape<float> t;
  for (int step = 0; step < 100; ++step) {
    if (step == 10) l.set_weight_mask(mask);  // the moments are non-zero by then
    t.rewind();
    const auto y = l.forward(t, t.constant(random_matrix<float>(3, 5, 200 + static_cast<std::uint64_t>(step))));
    t.backward(sum(t, multiply(t, y, y)));
    if (step >= 10) {
      for (std::size_t i = 0; i < mask.size(); ++i) {
        if (mask[i] == 0) REQUIRE(l.weight.gradient.data()[i] == 0.0f);
      }
    }
    optimizer.step(parameters, 1e-2);
  }
  CHECK(l.masked_weights() == 5);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    CHECK((l.weight.value.data()[i] == 0.0f) == (mask[i] == 0));
    if (mask[i] == 0) CHECK((l.weight.first_moment.data()[i] == 0.0f && l.weight.second_moment.data()[i] == 0.0f));
  }
  // The gradients of the kept weights are those of the dense layer holding the same (zeroed) weights.
  auto x = earlybert::testing::random_parameter<double>("x", 3, 5, 62);
  auto masked = random_linear<double>(5, 4, structure_axis::none, 1, 63);
  masked.set_weight_mask(mask);
  auto dense = masked;
  dense.clear_weight_mask();
  tape<double> td;
  const auto loss = [&](linear<double>& layer) {
    td.rewind();
    layer.weight.zero_gradient();
    const auto y = layer.forward(td, td.watch(x));
    td.backward(sum(td, multiply(td, y, td.constant(random_matrix<double>(3, 4, 64)))));
    return layer.weight.gradient;
  };
  const matrix<double> masked_gradient = loss(masked), dense_gradient = loss(dense);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    CHECK(masked_gradient.data()[i] == (mask[i] != 0 ? dense_gradient.data()[i] : 0.0));
  }
  CHECK_THROWS_WITH_AS(masked.set_weight_mask(std::vector<std::uint8_t>(3, 1)),
                       "linear 'layer.weight': set_weight_mask got 3 entries, expected 20 (one per weight, [4, 5] row-major)", shape_error);
}

TEST_CASE("linear: compaction slices an unstructured mask with the weight") {
  auto l = random_linear<double>(3, 4, structure_axis::outputs, 1, 71);
  std::vector<std::uint8_t> mask{1, 0, 1,  0, 1, 1,  1, 1, 0,  0, 0, 1};
  l.set_weight_mask(mask);
  l.set_active_groups(std::vector<std::uint8_t>{1, 0, 1, 1});
  l.compact();
  const auto kept = l.weight_mask();
  CHECK(std::vector<std::uint8_t>(kept.begin(), kept.end()) == std::vector<std::uint8_t>{1, 0, 1, 1, 1, 0, 0, 0, 1});
  CHECK(l.masked_weights() == 4);
}
