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

TEST_CASE("add_layer_norm: gradients match finite differences for x, residual, gamma and beta") {
  auto x = random_parameter<double>("x", 3, 5, 1);
  auto residual = random_parameter<double>("residual", 3, 5, 5);
  auto gamma = random_parameter<double>("gamma", 1, 5, 2, 0.5, 1.5);
  auto beta = random_parameter<double>("beta", 1, 5, 3);
  check_gradients([](tape<double>& t, auto& v) { return add_layer_norm(t, v[0], v[1], v[2], v[3], 1e-5); },
                  {&x, &residual, &gamma, &beta});
}

TEST_CASE_TEMPLATE("add_layer_norm: equals layer_norm of the sum, forward and backward", Scalar, float, double) {
  auto x = random_parameter<Scalar>("x", 40, 24, 1);
  auto residual = random_parameter<Scalar>("residual", 40, 24, 2);
  auto gamma = random_parameter<Scalar>("gamma", 1, 24, 3, 0.5, 1.5);
  auto beta = random_parameter<Scalar>("beta", 1, 24, 4);
  const matrix<Scalar> seed = earlybert::testing::random_matrix<Scalar>(40, 24, 5);
  const auto run = [&](bool fused) {
    for (auto* p : {&x, &residual, &gamma, &beta}) p->zero_gradient();
    tape<Scalar> t;
    const auto y = fused ? add_layer_norm(t, t.watch(x), t.watch(residual), t.watch(gamma), t.watch(beta), Scalar(1e-5))
                         : layer_norm(t, add(t, t.watch(x), t.watch(residual)), t.watch(gamma), t.watch(beta), Scalar(1e-5));
    t.backward(sum(t, multiply(t, y, t.constant(seed))));
    return std::tuple{matrix<Scalar>(y.value()), x.gradient, residual.gradient, gamma.gradient, beta.gradient};
  };
  const auto fused = run(true), separate = run(false);
  const double tol = std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
  check_near(std::get<0>(fused), std::get<0>(separate), tol, "y");
  check_near(std::get<1>(fused), std::get<1>(separate), tol, "dx");
  check_near(std::get<2>(fused), std::get<2>(separate), tol, "dresidual");
  check_near(std::get<3>(fused), std::get<3>(separate), tol, "dgamma");
  check_near(std::get<4>(fused), std::get<4>(separate), tol, "dbeta");
}

TEST_CASE("layer_norm: bad shapes and epsilon are named") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(2, 4));
  const auto ok = t.constant(matrix<float>::Ones(1, 4));
  const auto bad = t.constant(matrix<float>::Ones(1, 3));
  CHECK_THROWS_WITH_AS(layer_norm(t, x, bad, ok, 1e-5f), "layer_norm: argument 'gamma' has shape [1, 3], expected [1, 4]", shape_error);
  CHECK_THROWS_WITH_AS(layer_norm(t, x, ok, bad, 1e-5f), "layer_norm: argument 'beta' has shape [1, 3], expected [1, 4]", shape_error);
  CHECK_THROWS_WITH_AS(layer_norm(t, x, ok, ok, 0.0f), "layer_norm: argument 'epsilon' is 0, expected a positive value", config_error);
  const auto other = t.constant(matrix<float>::Zero(3, 4));
  CHECK_THROWS_WITH_AS(add_layer_norm(t, x, other, ok, ok, 1e-5f), "add_layer_norm: argument 'residual' has shape [3, 4], expected [2, 4]",
                       shape_error);
}
