// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/arithmetic.hpp"

#include <cstdint>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("add, multiply, scale, add_bias: values by hand", Scalar, float, double) {
  tape<Scalar> t;
  const auto a = t.constant(matrix_of<Scalar>({{1, 2, 3}, {4, 5, 6}}));
  const auto b = t.constant(matrix_of<Scalar>({{0.5, -1, 2}, {1, 0, -2}}));
  check_near(add(t, a, b).value(), matrix_of<double>({{1.5, 1, 5}, {5, 5, 4}}), 1e-7);
  check_near(multiply(t, a, b).value(), matrix_of<double>({{0.5, -2, 6}, {4, 0, -12}}), 1e-7);
  check_near(scale(t, a, Scalar(-0.5)).value(), matrix_of<double>({{-0.5, -1, -1.5}, {-2, -2.5, -3}}), 1e-7);
  const auto bias = t.constant(matrix_of<Scalar>({{10, 20, 30}}));
  check_near(add_bias(t, a, bias).value(), matrix_of<double>({{11, 22, 33}, {14, 25, 36}}), 1e-7);
}

TEST_CASE("add, multiply, scale, add_bias: gradients match finite differences") {
  auto a = random_parameter<double>("a", 3, 4, 1);
  auto b = random_parameter<double>("b", 3, 4, 2);
  auto bias = random_parameter<double>("bias", 1, 4, 3);
  check_gradients([](tape<double>& t, auto& v) { return add(t, v[0], v[1]); }, {&a, &b});
  check_gradients([](tape<double>& t, auto& v) { return multiply(t, v[0], v[1]); }, {&a, &b});
  check_gradients([](tape<double>& t, auto& v) { return scale(t, v[0], 0.3); }, {&a});
  check_gradients([](tape<double>& t, auto& v) { return add_bias(t, v[0], v[1]); }, {&a, &bias});
  SUBCASE("one row") {
    auto row = random_parameter<double>("row", 1, 4, 4);
    check_gradients([](tape<double>& t, auto& v) { return add_bias(t, v[0], v[1]); }, {&row, &bias});
  }
  SUBCASE("an input used twice accumulates both uses") {
    check_gradients([](tape<double>& t, auto& v) { return multiply(t, v[0], v[0]); }, {&a});
  }
}

TEST_CASE("add_bias: many rows and wide columns sum the bias gradient over every row") {
  // Large enough for the column split across threads.
  auto x = random_parameter<double>("x", 300, 200, 1);
  auto bias = random_parameter<double>("bias", 1, 200, 2);
  tape<double> t;
  const auto y = add_bias(t, t.watch(x), t.watch(bias));
  t.backward(sum(t, y));
  check_near(bias.gradient, matrix<double>::Constant(1, 200, 300.0), 1e-12, "bias gradient");
  check_near(x.gradient, matrix<double>::Ones(300, 200), 0, "x gradient");
}

TEST_CASE("arithmetic: mismatched shapes are a shape_error") {
  tape<float> t;
  const auto a = t.constant(matrix<float>::Zero(2, 3));
  const auto b = t.constant(matrix<float>::Zero(3, 2));
  CHECK_THROWS_WITH_AS(add(t, a, b), "add: argument 'b' has shape [3, 2], expected [2, 3]", shape_error);
  CHECK_THROWS_WITH_AS(multiply(t, a, b), "multiply: argument 'b' has shape [3, 2], expected [2, 3]", shape_error);
  CHECK_THROWS_WITH_AS(add_bias(t, a, a), "add_bias: argument 'bias' has shape [2, 3], expected [1, 3]", shape_error);
}

TEST_CASE("choose_rows: each row from a or b as its flag says, the gradient to the row chosen") {
  tape<double> t;
  const auto a = t.constant(matrix_of<double>({{1, 2}, {3, 4}, {5, 6}}));
  const auto b = t.constant(matrix_of<double>({{-1, -2}, {-3, -4}, {-5, -6}}));
  const std::vector<std::uint8_t> flags{1, 0, 1};
  check_near(choose_rows(t, std::span<const std::uint8_t>(flags), a, b).value(), matrix_of<double>({{1, 2}, {-3, -4}, {5, 6}}), 0);
  auto x = random_parameter<double>("x", 3, 4, 1);
  auto y = random_parameter<double>("y", 3, 4, 2);
  check_gradients([&](tape<double>& inner, auto& v) { return choose_rows(inner, std::span<const std::uint8_t>(flags), v[0], v[1]); }, {&x, &y});
  SUBCASE("the same input on both sides gets every row's gradient once") {
    check_gradients([&](tape<double>& inner, auto& v) { return choose_rows(inner, std::span<const std::uint8_t>(flags), v[0], v[0]); }, {&x});
  }
  const std::vector<std::uint8_t> two{1, 0};
  CHECK_THROWS_WITH_AS(choose_rows(t, std::span<const std::uint8_t>(two), a, b), "choose_rows: argument 'from_a' holds 2 flags, expected 3 (one per row)",
                       shape_error);
}
