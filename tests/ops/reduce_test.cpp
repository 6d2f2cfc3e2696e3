// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/reduce.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("sum, mean, l1_norm: values by hand", Scalar, float, double) {
  tape<Scalar> t;
  const auto x = t.constant(matrix_of<Scalar>({{-2, 0, 3}, {1, -1, 5}}));
  CHECK(sum(t, x).item() == doctest::Approx(6));
  CHECK(mean(t, x).item() == doctest::Approx(1));
  CHECK(l1_norm(t, x).item() == doctest::Approx(12));
}

TEST_CASE_TEMPLATE("l1_norm: the subgradient is sign(x), and 0 at 0", Scalar, float, double) {
  parameter<Scalar> x("x", 1, 4);
  x.value = matrix_of<Scalar>({{-2, 0, 3, -0.5}});
  tape<Scalar> t;
  t.backward(scale(t, l1_norm(t, t.watch(x)), Scalar(2)));
  check_near(x.gradient, matrix_of<double>({{-2, 0, 2, -2}}), 0);
}

TEST_CASE("sum, mean, l1_norm: gradients match finite differences") {
  auto x = random_parameter<double>("x", 3, 4, 1);
  check_gradients([](tape<double>& t, auto& v) { return sum(t, v[0]); }, {&x});
  check_gradients([](tape<double>& t, auto& v) { return mean(t, v[0]); }, {&x});
  check_gradients([](tape<double>& t, auto& v) { return l1_norm(t, v[0]); }, {&x});
  auto one = random_parameter<double>("one", 1, 1, 2);
  check_gradients([](tape<double>& t, auto& v) { return mean(t, v[0]); }, {&one});
}

TEST_CASE("mean: an empty input is a shape_error") {
  tape<float> t;
  const auto empty = t.constant(matrix<float>(0, 0));
  CHECK_THROWS_WITH_AS(mean(t, empty), "mean: argument 'x' has shape [0, 0], expected at least one element", shape_error);
}
