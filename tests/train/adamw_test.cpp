// SPDX-License-Identifier: Apache-2.0
#include "earlybert/train/adamw.hpp"

#include <array>
#include <cmath>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_matrix;

TEST_CASE_TEMPLATE("adamw: two steps by hand, with and without weight decay", Scalar, float, double) {
  parameter<Scalar> decayed("w", 1, 2), plain("b", 1, 2, false);
  for (auto* p : {&decayed, &plain}) {
    p->value = matrix_of<Scalar>({{1, -2}});
    p->gradient = matrix_of<Scalar>({{0.5, -0.25}});
  }
  adamw<Scalar> optimizer({.beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-8, .weight_decay = 0.1});
  std::array<parameter<Scalar>*, 2> both{&decayed, &plain};
  optimizer.step(both, 0.01);
  // Step 1: m_hat = g, v_hat = g^2, so the Adam step is lr * g / (|g| + eps) = 0.01 * sign(g).
  // Decay first multiplies w by 1 - lr * wd = 0.999.
  check_near(decayed.value, matrix_of<double>({{0.999 - 0.01, -1.998 + 0.01}}), 1e-6);
  check_near(plain.value, matrix_of<double>({{1 - 0.01, -2 + 0.01}}), 1e-6);
  // Step 2 with gradient g2: m = 0.9 * 0.1 g + 0.1 g2, v = 0.999 * 0.001 g^2 + 0.001 g2^2.
  plain.gradient = matrix_of<Scalar>({{1, 0}});
  optimizer.step(both, 0.01);
  const double m = (0.9 * 0.1 * 0.5 + 0.1 * 1) / (1 - 0.81);
  const double v = (0.999 * 0.001 * 0.25 + 0.001 * 1) / (1 - 0.999 * 0.999);
  const double m2 = (0.9 * 0.1 * -0.25) / (1 - 0.81);
  const double v2 = (0.999 * 0.001 * 0.0625) / (1 - 0.999 * 0.999);
  check_near(plain.value, matrix_of<double>({{0.99 - 0.01 * m / (std::sqrt(v) + 1e-8), -1.99 - 0.01 * m2 / (std::sqrt(v2) + 1e-8)}}), 1e-6);
  CHECK(optimizer.steps_taken() == 2);
}

TEST_CASE("adamw: the step applies the clipping factor as it reads the gradient and clears it") {
  parameter<double> scaled("scaled", 2, 3), prescaled("prescaled", 2, 3);
  const matrix<double> w = random_matrix<double>(2, 3, 1), g = random_matrix<double>(2, 3, 2);
  scaled.value = prescaled.value = w;
  adamw<double> a, b;
  std::array<parameter<double>*, 1> one{&scaled}, other{&prescaled};
  for (int step = 0; step < 3; ++step) {
    scaled.gradient = g * (step + 1.0);
    prescaled.gradient = 0.25 * g * (step + 1.0);
    a.step(one, 1e-2, 0.25);
    b.step(other, 1e-2);
    check_near(scaled.value, prescaled.value, 1e-15);
    CHECK(scaled.gradient.isZero(0));
    CHECK(prescaled.gradient.isZero(0));
  }
  // A parameter larger than one parallel chunk (and one block) takes the same path.
  parameter<float> big("big", 300, 200);
  big.gradient.setConstant(2.0f);
  adamw<float> c({.weight_decay = 0});
  std::array<parameter<float>*, 1> bigs{&big};
  c.step(bigs, 0.5, 0.5);
  CHECK(big.gradient.isZero(0));
  CHECK(big.value.minCoeff() == doctest::Approx(-0.5));  // step 1: lr * sign(g)
  CHECK(big.value.maxCoeff() == doctest::Approx(-0.5));
}

TEST_CASE("adamw: frozen parameters are left alone") {
  parameter<float> frozen("frozen", 1, 1);
  frozen.value(0, 0) = 3;
  frozen.gradient(0, 0) = 1;
  frozen.trainable = false;
  adamw<float> optimizer;
  std::array<parameter<float>*, 1> list{&frozen};
  optimizer.step(list, 0.1);
  CHECK(frozen.value(0, 0) == 3.0f);
  CHECK(frozen.first_moment.size() == 0);
}

TEST_CASE("adamw: options out of range are a config_error") {
  CHECK_THROWS_WITH_AS(adamw<float>({.beta1 = 1.0}), "adamw: option 'beta1' is 1, expected a value in [0, 1)", config_error);
  CHECK_THROWS_WITH_AS(adamw<float>({.epsilon = 0}), "adamw: option 'epsilon' is 0, expected a positive value", config_error);
  CHECK_THROWS_WITH_AS(adamw<float>({.weight_decay = -1}), "adamw: option 'weight_decay' is -1, expected a non-negative value",
                       config_error);
  adamw<float> optimizer;
  std::array<parameter<float>*, 0> none{};
  CHECK_THROWS_WITH_AS(optimizer.step(none, -0.1), "adamw: argument 'learning_rate' is -0.1, expected a non-negative value",
                       config_error);
}
