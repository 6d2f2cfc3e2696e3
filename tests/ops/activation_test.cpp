// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/activation.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("gelu and tanh: values by hand", Scalar, float, double) {
  tape<Scalar> t;
  const auto x = t.constant(matrix_of<Scalar>({{0, 1, -1, 2}}));
  // x Phi(x): Phi(1) = 0.841344746..., Phi(2) = 0.977249868...
  check_near(gelu(t, x).value(), matrix_of<double>({{0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416}}), 1e-6);
  check_near(earlybert::tanh(t, x).value(), matrix_of<double>({{0, 0.7615941559557649, -0.7615941559557649, 0.9640275800758169}}), 1e-6);
}

TEST_CASE("gelu and tanh: gradients match finite differences") {
  auto x = random_parameter<double>("x", 3, 5, 1, -3.0, 3.0);
  check_gradients([](tape<double>& t, auto& v) { return gelu(t, v[0]); }, {&x});
  check_gradients([](tape<double>& t, auto& v) { return earlybert::tanh(t, v[0]); }, {&x});
  auto one = random_parameter<double>("one", 1, 1, 2);
  check_gradients([](tape<double>& t, auto& v) { return gelu(t, v[0]); }, {&one});
}

TEST_CASE("gelu: the derivative at 0 is 1/2") {
  parameter<double> x("x", 1, 1);
  tape<double> t;
  t.backward(sum(t, gelu(t, t.watch(x))));
  CHECK(x.gradient(0, 0) == doctest::Approx(0.5).epsilon(1e-15));
}
