// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/heads.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("split_heads and merge_heads: the layout by hand, and merge undoes split", Scalar, float, double) {
  tape<Scalar> t;
  // batch 1, seq 2, heads 2, head_dim 2: row s of x holds [head 0 | head 1].
  const auto x = t.constant(matrix_of<Scalar>({{1, 2, 3, 4}, {5, 6, 7, 8}}));
  const auto split = split_heads(t, x, 1, 2, 2);
  check_near(split.value(), matrix_of<double>({{1, 2}, {5, 6}, {3, 4}, {7, 8}}), 0);
  check_near(merge_heads(t, split, 1, 2, 2).value(), x.value(), 0);
}

TEST_CASE("split_heads and merge_heads: gradients match finite differences") {
  // batch 2, seq 3, heads 2, head_dim 2
  auto x = random_parameter<double>("x", 6, 4, 1);
  check_gradients([](tape<double>& t, auto& v) { return split_heads(t, v[0], 2, 3, 2); }, {&x});
  auto y = random_parameter<double>("y", 12, 2, 2);
  check_gradients([](tape<double>& t, auto& v) { return merge_heads(t, v[0], 2, 3, 2); }, {&y});
  SUBCASE("one head, one token") {
    auto single = random_parameter<double>("single", 1, 3, 3);
    check_gradients([](tape<double>& t, auto& v) { return split_heads(t, v[0], 1, 1, 1); }, {&single});
  }
}

TEST_CASE("split_heads: shapes that do not fit are a shape_error") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(6, 5));
  CHECK_THROWS_WITH_AS(split_heads(t, x, 2, 3, 2), "split_heads: argument 'x' has 5 columns, expected a multiple of heads = 2",
                       shape_error);
  CHECK_THROWS_WITH_AS(split_heads(t, x, 2, 2, 5), "split_heads: argument 'x' has shape [6, 5], expected [4, *]", shape_error);
  CHECK_THROWS_WITH_AS(merge_heads(t, x, 1, 2, 2), "merge_heads: argument 'x' has shape [6, 5], expected [4, *]", shape_error);
  CHECK_THROWS_WITH_AS(split_heads(t, x, 0, 3, 1),
                       "split_heads: batch, seq and heads must be at least 1, got batch = 0, seq = 3, heads = 1", shape_error);
}
