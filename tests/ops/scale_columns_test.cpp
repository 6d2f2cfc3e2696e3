// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/scale_columns.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("scale_columns: each group of columns is scaled by its coefficient, by hand", Scalar, float, double) {
  parameter<Scalar> x("x", 2, 4), c("c", 1, 2);
  x.value = matrix_of<Scalar>({{1, 2, 3, 4}, {5, 6, 7, 8}});
  c.value = matrix_of<Scalar>({{2, -1}});
  tape<Scalar> t;
  const auto y = scale_columns(t, t.watch(x), t.watch(c), 2);
  check_near(y.value(), matrix_of<double>({{2, 4, -3, -4}, {10, 12, -7, -8}}), 0);
  t.backward(sum(t, y));
  check_near(x.gradient, matrix_of<double>({{2, 2, -1, -1}, {2, 2, -1, -1}}), 0);
  check_near(c.gradient, matrix_of<double>({{14, 22}}), 0);
}

TEST_CASE("scale_columns: gradients match finite differences, for heads and for single columns") {
  for (index_t group : {1, 3}) {
    CAPTURE(group);
    auto x = random_parameter<double>("x", 5, 6, 1);
    auto c = random_parameter<double>("c", 1, 6 / group, 2);
    check_gradients([&](tape<double>& t, auto& v) { return scale_columns(t, v[0], v[1], group); }, {&x, &c});
  }
}

TEST_CASE("scale_columns: the coefficient gradient is the same for every thread count") {
  auto x = random_parameter<double>("x", 700, 256, 3);
  auto c = random_parameter<double>("c", 1, 4, 4);
  matrix<double> gradients[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    c.zero_gradient();
    tape<double> t;
    t.backward(sum(t, multiply(t, scale_columns(t, t.watch(x), t.watch(c), 64), scale_columns(t, t.watch(x), t.watch(c), 64))));
    gradients[threads - 1] = c.gradient;
  }
  check_near(gradients[0], gradients[1], 0);
}

TEST_CASE("scale_columns: shapes that do not fit are shape errors") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(2, 6));
  CHECK_THROWS_WITH_AS(scale_columns(t, x, t.constant(matrix<float>::Ones(1, 2)), 4),
                       "scale_columns: group size 4 does not divide the 6 columns of 'x'", shape_error);
  CHECK_THROWS_WITH_AS(scale_columns(t, x, t.constant(matrix<float>::Ones(1, 2)), 2),
                       "scale_columns: argument 'coefficients' has shape [1, 2], expected [1, 3]", shape_error);
}
