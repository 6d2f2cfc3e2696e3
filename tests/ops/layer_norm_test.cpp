// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/layer_norm.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("layer_norm: values by hand", Scalar, float, double) {
  tape<Scalar> t;
  // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25, xhat = [-1.5, -0.5, 0.5, 1.5] / sqrt(1.25).
  const auto x = t.constant(matrix_of<Scalar>({{1, 2, 3, 4}, {2, 2, 2, 2}}));
  const auto gamma = t.constant(matrix_of<Scalar>({{1, 2, 1, 1}}));
  const auto beta = t.constant(matrix_of<Scalar>({{0, 0, 1, 0}}));
  const auto y = layer_norm(t, x, gamma, beta, Scalar(1e-12));
  // A constant row normalises to 0 and leaves beta.
  check_near(y.value(), matrix_of<double>({{-1.3416407864998738, -0.8944271909999159, 1.4472135954999579, 1.3416407864998738},
                                           {0, 0, 1, 0}}), 1e-6);
}

TEST_CASE("layer_norm: gradients match finite differences for x, gamma and beta") {
  auto x = random_parameter<double>("x", 3, 5, 1);
  auto gamma = random_parameter<double>("gamma", 1, 5, 2, 0.5, 1.5);
  auto beta = random_parameter<double>("beta", 1, 5, 3);
  check_gradients([](tape<double>& t, auto& v) { return layer_norm(t, v[0], v[1], v[2], 1e-5); }, {&x, &gamma, &beta});
  SUBCASE("one row") {
    auto row = random_parameter<double>("row", 1, 5, 4);
    check_gradients([](tape<double>& t, auto& v) { return layer_norm(t, v[0], v[1], v[2], 1e-5); }, {&row, &gamma, &beta});
  }
}

TEST_CASE("layer_norm: bad shapes and epsilon are named") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(2, 4));
  const auto ok = t.constant(matrix<float>::Ones(1, 4));
  const auto bad = t.constant(matrix<float>::Ones(1, 3));
  CHECK_THROWS_WITH_AS(layer_norm(t, x, bad, ok, 1e-5f), "layer_norm: argument 'gamma' has shape [1, 3], expected [1, 4]", shape_error);
  CHECK_THROWS_WITH_AS(layer_norm(t, x, ok, bad, 1e-5f), "layer_norm: argument 'beta' has shape [1, 3], expected [1, 4]", shape_error);
  CHECK_THROWS_WITH_AS(layer_norm(t, x, ok, ok, 0.0f), "layer_norm: argument 'epsilon' is 0, expected a positive value", config_error);
}
