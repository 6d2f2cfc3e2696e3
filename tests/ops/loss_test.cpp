// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/loss.hpp"

#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("cross_entropy: values by hand, ignored rows excluded from the mean", Scalar, float, double) {
  tape<Scalar> t;
  const auto logits = t.constant(matrix_of<Scalar>({{1, 2, 3}, {1, 1, 1}}));
  // -log softmax([1, 2, 3])[2] = log(e + e^2 + e^3) - 3 = 0.40760596444437994; uniform row: log 3.
  const std::vector<token_id> one{2, ignore_label};
  CHECK(cross_entropy(t, logits, std::span<const token_id>(one)).item() == doctest::Approx(0.40760596444437994));
  const std::vector<token_id> both{2, 0};
  CHECK(cross_entropy(t, logits, std::span<const token_id>(both)).item() ==
        doctest::Approx((0.40760596444437994 + std::log(3.0)) / 2));
}

TEST_CASE("cross_entropy: the gradient is (softmax - onehot) / counted rows, and zero on ignored rows") {
  parameter<double> logits("logits", 2, 3);
  logits.value = matrix_of<double>({{1, 2, 3}, {1, 1, 1}});
  const std::vector<token_id> labels{2, ignore_label};
  tape<double> t;
  t.backward(cross_entropy(t, t.watch(logits), std::span<const token_id>(labels)));
  check_near(logits.gradient,
             matrix_of<double>({{0.09003057317038046, 0.24472847105479767, 0.6652409557748219 - 1}, {0, 0, 0}}), 1e-12);
}

TEST_CASE("cross_entropy: gradients match finite differences") {
  auto logits = random_parameter<double>("logits", 5, 4, 1, -3.0, 3.0);
  const std::vector<token_id> labels{3, ignore_label, 0, 1, 3};
  check_gradients([&](tape<double>& t, auto& v) { return cross_entropy(t, v[0], std::span<const token_id>(labels)); },
                  {&logits});
  auto one = random_parameter<double>("one", 1, 2, 2);
  const std::vector<token_id> label{1};
  check_gradients([&](tape<double>& t, auto& v) { return cross_entropy(t, v[0], std::span<const token_id>(label)); }, {&one});
}

TEST_CASE("cross_entropy: a batch with every row ignored has loss 0 and gradient 0") {
  parameter<float> logits("logits", 2, 3);
  const std::vector<token_id> labels{ignore_label, ignore_label};
  tape<float> t;
  const auto loss = cross_entropy(t, t.watch(logits), std::span<const token_id>(labels));
  CHECK(loss.item() == 0.0f);
  t.backward(loss);
  CHECK(logits.gradient.isZero(0));
}

TEST_CASE("cross_entropy: bad labels are a shape_error") {
  tape<float> t;
  const auto logits = t.constant(matrix<float>::Zero(2, 3));
  const std::vector<token_id> out_of_range{0, 3};
  CHECK_THROWS_WITH_AS(cross_entropy(t, logits, std::span<const token_id>(out_of_range)),
                       "cross_entropy: argument 'labels' holds 3 at position 1, expected a value in [0, 3) or the ignore label -100",
                       shape_error);
  const std::vector<token_id> too_few{0};
  CHECK_THROWS_WITH_AS(cross_entropy(t, logits, std::span<const token_id>(too_few)),
                       "cross_entropy: argument 'labels' has 1 entries, expected 2 (one per row of logits)", shape_error);
}

TEST_CASE_TEMPLATE("mean_squared_error: the mean of squared differences, by hand", Scalar, float, double) {
  tape<Scalar> t;
  const auto predictions = t.constant(matrix_of<Scalar>({{1.5}, {-1}, {4}}));
  const std::vector<double> targets{1, 1, 4};
  // (0.25 + 4 + 0) / 3
  CHECK(mean_squared_error(t, predictions, std::span<const double>(targets)).item() == doctest::Approx(4.25 / 3));
}

TEST_CASE("mean_squared_error: the gradient is 2 (p - y) / rows, and matches finite differences") {
  parameter<double> p("p", 3, 1);
  p.value = matrix_of<double>({{1.5}, {-1}, {4}});
  const std::vector<double> targets{1, 1, 4};
  tape<double> t;
  t.backward(mean_squared_error(t, t.watch(p), std::span<const double>(targets)));
  check_near(p.gradient, matrix_of<double>({{2 * 0.5 / 3}, {2 * -2.0 / 3}, {0}}), 1e-12);
  auto random = random_parameter<double>("predictions", 6, 1, 3, -2.0, 2.0);
  const std::vector<double> scores{0.5, 4.2, 3.0, 1.25, 0.0, 5.0};
  check_gradients([&](tape<double>& inner, auto& v) { return mean_squared_error(inner, v[0], std::span<const double>(scores)); }, {&random});
}

TEST_CASE("mean_squared_error: more than one column or a wrong number of targets is a shape_error") {
  tape<double> t;
  const std::vector<double> two{1, 2};
  CHECK_THROWS_WITH_AS(mean_squared_error(t, t.constant(matrix_of<double>({{1, 2}, {3, 4}})), std::span<const double>(two)),
                       "mean_squared_error: argument 'predictions' is [2, 2], expected one column", shape_error);
  CHECK_THROWS_WITH_AS(mean_squared_error(t, t.constant(matrix_of<double>({{1}, {2}, {3}})), std::span<const double>(two)),
                       "mean_squared_error: argument 'targets' has 2 entries, expected 3 (one per row, at least one)", shape_error);
}
