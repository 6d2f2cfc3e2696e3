// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/softmax.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("softmax: values by hand, with and without a broadcast mask", Scalar, float, double) {
  tape<Scalar> t;
  const auto x = t.constant(matrix_of<Scalar>({{1, 2, 3}, {1, 2, 3}, {0, 0, 0}, {5, 5, 5}}));
  check_near(softmax(t, x).value(),
             matrix_of<double>({{0.09003057317038046, 0.24472847105479767, 0.6652409557748219},
                                {0.09003057317038046, 0.24472847105479767, 0.6652409557748219},
                                {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                {1.0 / 3, 1.0 / 3, 1.0 / 3}}),
             1e-6);
  // Mask row 0 drops column 2 for rows 0-1; mask row 1 drops column 0 for rows 2-3.
  const auto mask = t.constant(matrix_of<Scalar>({{0, 0, -10000}, {-10000, 0, 0}}));
  check_near(softmax(t, x, mask, 2).value(),
             matrix_of<double>({{0.2689414213699951, 0.7310585786300049, 0},
                                {0.2689414213699951, 0.7310585786300049, 0},
                                {0, 0.5, 0.5},
                                {0, 0.5, 0.5}}),
             1e-6);
}

TEST_CASE("softmax: gradients match finite differences, with and without a mask") {
  auto x = random_parameter<double>("x", 4, 3, 1, -2.0, 2.0);
  check_gradients([](tape<double>& t, auto& v) { return softmax(t, v[0]); }, {&x});
  const matrix<double> mask = matrix_of<double>({{0, -3, 0}, {0, 0, -1}});
  check_gradients([&](tape<double>& t, auto& v) { return softmax(t, v[0], t.constant(mask), 2); }, {&x});
  check_gradients([&](tape<double>& t, auto& v) { return softmax(t, v[0], t.constant(mask), 2, 0.125); }, {&x});
  SUBCASE("one row, one column") {
    auto one = random_parameter<double>("one", 1, 1, 2);
    check_gradients([](tape<double>& t, auto& v) { return softmax(t, v[0]); }, {&one});
  }
}

TEST_CASE_TEMPLATE("softmax: a scale multiplies the input before the mask is added", Scalar, float, double) {
  tape<Scalar> t;
  const auto x = t.constant(matrix_of<Scalar>({{1, 2, 3}, {4, 0, -4}}));
  const auto mask = t.constant(matrix_of<Scalar>({{0, -1, 0}}));
  const auto scaled = t.constant(matrix_of<Scalar>({{0.5, 1, 1.5}, {2, 0, -2}}));
  check_near(softmax(t, x, mask, 2, Scalar(0.5)).value(), matrix<Scalar>(softmax(t, scaled, mask, 2).value()), 1e-6);
}

TEST_CASE("softmax: large logits do not overflow") {
  tape<float> t;
  const auto x = t.constant(matrix_of<float>({{1000, 1000}}));
  check_near(softmax(t, x).value(), matrix_of<double>({{0.5, 0.5}}), 1e-7);
}

TEST_CASE("softmax: a mask that does not fit the rows is a shape_error") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(4, 3));
  CHECK_THROWS_WITH_AS(softmax(t, x, t.constant(matrix<float>::Zero(3, 3)), 2),
                       "softmax: argument 'additive_mask' has shape [3, 3], expected [2, 3]", shape_error);
  CHECK_THROWS_WITH_AS(softmax(t, x, t.constant(matrix<float>::Zero(1, 3)), 3),
                       "softmax: argument 'x' has 4 rows, expected a multiple of rows_per_mask_row = 3", shape_error);
  CHECK_THROWS_WITH_AS(softmax(t, x, t.constant(matrix<float>::Zero(1, 3)), 0),
                       "softmax: argument 'rows_per_mask_row' is 0, expected at least 1", shape_error);
}
