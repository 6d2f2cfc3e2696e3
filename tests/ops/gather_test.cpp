// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/gather.hpp"

#include <vector>

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("embedding: gathers rows, and repeated ids accumulate in backward", Scalar, float, double) {
  parameter<Scalar> table("table", 5, 2);
  table.value = matrix_of<Scalar>({{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}});
  const std::vector<token_id> ids{4, 0, 4};
  tape<Scalar> t;
  const auto y = embedding(t, t.watch(table), std::span<const token_id>(ids));
  check_near(y.value(), matrix_of<double>({{8, 9}, {0, 1}, {8, 9}}), 0);
  t.backward(sum(t, y));
  check_near(table.gradient, matrix_of<double>({{1, 1}, {0, 0}, {0, 0}, {0, 0}, {2, 2}}), 0);
}

TEST_CASE("embedding and gather_rows: gradients match finite differences") {
  auto table = random_parameter<double>("table", 6, 3, 1);
  const std::vector<token_id> ids{5, 1, 1, 0, 5, 2};
  check_gradients([&](tape<double>& t, auto& v) { return embedding(t, v[0], std::span<const token_id>(ids)); }, {&table});
  auto x = random_parameter<double>("x", 4, 3, 2);
  const std::vector<token_id> rows{3};
  check_gradients([&](tape<double>& t, auto& v) { return gather_rows(t, v[0], std::span<const token_id>(rows)); }, {&x});
}

TEST_CASE("embedding: wide rows split across threads still accumulate in order") {
  auto table = random_parameter<double>("table", 10, 512, 1);
  std::vector<token_id> ids(400);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<token_id>(i % 10);
  tape<double> t;
  t.backward(sum(t, embedding(t, t.watch(table), std::span<const token_id>(ids))));
  check_near(table.gradient, matrix<double>::Constant(10, 512, 40.0), 0);
}

TEST_CASE("gather: an index out of range is a shape_error naming its position") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Zero(5, 2));
  const std::vector<token_id> ids{1, 5};
  CHECK_THROWS_WITH_AS(embedding(t, x, std::span<const token_id>(ids)),
                       "embedding: argument 'ids' holds 5 at position 1, expected a value in [0, 5)", shape_error);
  const std::vector<token_id> rows{-1};
  CHECK_THROWS_WITH_AS(gather_rows(t, x, std::span<const token_id>(rows)),
                       "gather_rows: argument 'rows' holds -1 at position 0, expected a value in [0, 5)", shape_error);
}

TEST_CASE("embedding: lookups of the padding id add nothing to its row's gradient") {
  auto table = random_parameter<double>("table", 4, 3, 3);
  const std::vector<token_id> ids{0, 2, 0, 1};
  tape<double> t;
  const auto y = embedding(t, t.watch(table), std::span<const token_id>(ids), token_id{0});
  check_near(y.value().row(0), table.value.row(0), 0);
  t.backward(sum(t, y));
  check_near(table.gradient, matrix_of<double>({{0, 0, 0}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}}), 0);
}

TEST_CASE("column_as_sequences: one column of a per-token head as a row per sequence, gradients match finite differences") {
  tape<double> t;
  const auto x = t.constant(matrix_of<double>({{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}}));
  check_near(column_as_sequences(t, x, 1, 2, 3).value(), matrix_of<double>({{2, 4, 6}, {8, 10, 12}}), 0);
  auto p = random_parameter<double>("x", 6, 2, 5, -1.0, 1.0);
  check_gradients([&](tape<double>& inner, auto& v) { return column_as_sequences(inner, v[0], 0, 3, 2); }, {&p});
  CHECK_THROWS_AS(column_as_sequences(t, x, 2, 2, 3), shape_error);
  CHECK_THROWS_AS(column_as_sequences(t, x, 0, 4, 2), shape_error);
}

TEST_CASE("stack_rows: the parts one after another, each part's gradient its block") {
  tape<double> t;
  const std::vector<var<double>> parts{t.constant(matrix_of<double>({{1, 2}})), t.constant(matrix_of<double>({{3, 4}, {5, 6}}))};
  check_near(stack_rows(t, std::span<const var<double>>(parts)).value(), matrix_of<double>({{1, 2}, {3, 4}, {5, 6}}), 0);
  auto a = random_parameter<double>("a", 2, 3, 1);
  auto b = random_parameter<double>("b", 3, 3, 2);
  check_gradients([](tape<double>& inner, auto& v) {
    const std::vector<var<double>> both{v[0], v[1], v[0]};  // a part used twice accumulates both blocks
    return stack_rows(inner, std::span<const var<double>>(both));
  }, {&a, &b});
  const std::vector<var<double>> ragged{t.constant(matrix_of<double>({{1, 2}})), t.constant(matrix_of<double>({{3}}))};
  CHECK_THROWS_WITH_AS(stack_rows(t, std::span<const var<double>>(ragged)), "stack_rows: part 1 has 1 columns, expected 2 as part 0", shape_error);
}
