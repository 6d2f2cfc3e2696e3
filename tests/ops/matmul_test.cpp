// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/matmul.hpp"

#include <doctest/doctest.h>

#include "earlybert/core/threading.hpp"
#include "earlybert/ops/gather.hpp"
#include "earlybert/ops/heads.hpp"
#include "earlybert/ops/softmax.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("matmul: values by hand for every transpose combination", Scalar, float, double) {
  tape<Scalar> t;
  const auto a = t.constant(matrix_of<Scalar>({{1, 2}, {3, 4}}));
  const auto b = t.constant(matrix_of<Scalar>({{5, 6}, {7, 8}}));
  check_near(matmul(t, a, b).value(), matrix_of<double>({{19, 22}, {43, 50}}), 1e-6);
  check_near(matmul(t, a, b, transpose::yes).value(), matrix_of<double>({{26, 30}, {38, 44}}), 1e-6);
  check_near(matmul(t, a, b, transpose::no, transpose::yes).value(), matrix_of<double>({{17, 23}, {39, 53}}), 1e-6);
  check_near(matmul(t, a, b, transpose::yes, transpose::yes).value(), matrix_of<double>({{23, 31}, {34, 46}}), 1e-6);
}

TEST_CASE("matmul: gradients match finite differences for every transpose combination") {
  for (const auto ta : {transpose::no, transpose::yes}) {
    for (const auto tb : {transpose::no, transpose::yes}) {
      CAPTURE(static_cast<bool>(ta));
      CAPTURE(static_cast<bool>(tb));
      // op(a) [3, 4], op(b) [4, 2]
      auto a = ta == transpose::yes ? random_parameter<double>("a", 4, 3, 1) : random_parameter<double>("a", 3, 4, 1);
      auto b = tb == transpose::yes ? random_parameter<double>("b", 2, 4, 2) : random_parameter<double>("b", 4, 2, 2);
      check_gradients([&](tape<double>& t, auto& v) { return matmul(t, v[0], v[1], ta, tb); }, {&a, &b});
    }
  }
}

TEST_CASE("matmul: edge sizes (one row, one column, inner size one)") {
  auto row = random_parameter<double>("row", 1, 5, 3);
  auto w = random_parameter<double>("w", 5, 1, 4);
  check_gradients([](tape<double>& t, auto& v) { return matmul(t, v[0], v[1]); }, {&row, &w});
  auto column = random_parameter<double>("column", 4, 1, 5);
  auto other = random_parameter<double>("other", 1, 3, 6);
  check_gradients([](tape<double>& t, auto& v) { return matmul(t, v[0], v[1]); }, {&column, &other});
}

TEST_CASE_TEMPLATE("matmul: the thread-split GEMM agrees with Eigen forward and backward", Scalar, float, double) {
  // Large enough to be split into panels (core/threading.hpp); both split directions are exercised.
  set_num_threads(2);
  for (const auto& [m, k, n] : {std::tuple{300, 96, 120}, std::tuple{64, 96, 400}}) {
    for (const auto ta : {transpose::no, transpose::yes}) {
      for (const auto tb : {transpose::no, transpose::yes}) {
        auto a = ta == transpose::yes ? random_parameter<Scalar>("a", k, m, 1) : random_parameter<Scalar>("a", m, k, 1);
        auto b = tb == transpose::yes ? random_parameter<Scalar>("b", n, k, 2) : random_parameter<Scalar>("b", k, n, 2);
        tape<Scalar> t;
        const auto c = matmul(t, t.watch(a), t.watch(b), ta, tb);
        const matrix<Scalar> opa = ta == transpose::yes ? matrix<Scalar>(a.value.transpose()) : a.value;
        const matrix<Scalar> opb = tb == transpose::yes ? matrix<Scalar>(b.value.transpose()) : b.value;
        const double tol = std::is_same_v<Scalar, float> ? 1e-4 : 1e-12;
        check_near(c.value(), matrix<Scalar>(opa * opb), tol, "product");
        // Seed dC = W and compare the accumulated gradients with the closed forms.
        const matrix<Scalar> w = earlybert::testing::random_matrix<Scalar>(m, n, 3);
        const auto loss = sum(t, multiply(t, c, t.constant(w)));
        t.backward(loss);
        const matrix<Scalar> dopa = w * opb.transpose(), dopb = opa.transpose() * w;
        check_near(a.gradient, ta == transpose::yes ? matrix<Scalar>(dopa.transpose()) : dopa, tol, "grad a");
        check_near(b.gradient, tb == transpose::yes ? matrix<Scalar>(dopb.transpose()) : dopb, tol, "grad b");
      }
    }
  }
}

TEST_CASE("affine: gradients of x, w and b match finite differences") {
  auto x = random_parameter<double>("x", 5, 4, 1);
  auto w = random_parameter<double>("w", 3, 4, 2);
  auto b = random_parameter<double>("b", 1, 3, 3);
  check_gradients([](tape<double>& t, auto& v) { return affine(t, v[0], v[1], v[2]); }, {&x, &w, &b});
}

TEST_CASE_TEMPLATE("affine: equals add_bias of matmul, forward and backward, split across threads or not", Scalar, float, double) {
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    auto x = random_parameter<Scalar>("x", 300, 96, 1);
    auto w = random_parameter<Scalar>("w", 120, 96, 2);
    auto b = random_parameter<Scalar>("b", 1, 120, 3);
    const matrix<Scalar> seed = earlybert::testing::random_matrix<Scalar>(300, 120, 4);
    const auto run = [&](bool fused) {
      for (auto* p : {&x, &w, &b}) p->zero_gradient();
      tape<Scalar> t;
      const auto y = fused ? affine(t, t.watch(x), t.watch(w), t.watch(b))
                           : add_bias(t, matmul(t, t.watch(x), t.watch(w), transpose::no, transpose::yes), t.watch(b));
      t.backward(sum(t, multiply(t, y, t.constant(seed))));
      return std::tuple{matrix<Scalar>(y.value()), x.gradient, w.gradient, b.gradient};
    };
    const auto [y1, dx1, dw1, db1] = run(true);
    const auto [y0, dx0, dw0, db0] = run(false);
    const double tol = std::is_same_v<Scalar, float> ? 1e-4 : 1e-12;
    check_near(y1, y0, tol, "y");
    check_near(dx1, dx0, tol, "dx");
    check_near(dw1, dw0, tol, "dw");
    check_near(db1, db0, tol, "db");
  }
}

TEST_CASE("affine: a bias that is not [1, outputs] is a shape_error") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Ones(2, 3));
  const auto w = t.constant(matrix<float>::Ones(4, 3));
  CHECK_THROWS_AS(affine(t, x, w, t.constant(matrix<float>::Ones(1, 3))), shape_error);
}

TEST_CASE("head_scores and head_context: gradients match finite differences") {
  // batch 2, seq 3, heads 2, head_dim 2: q, k, v [6, 4].
  auto q = random_parameter<double>("q", 6, 4, 1);
  auto k = random_parameter<double>("k", 6, 4, 2);
  auto v = random_parameter<double>("v", 6, 4, 3);
  auto p = random_parameter<double>("p", 12, 3, 4);
  check_gradients([](tape<double>& t, auto& x) { return head_scores(t, x[0], x[1], 2, 2); }, {&q, &k});
  check_gradients([](tape<double>& t, auto& x) { return head_context(t, x[0], x[1], 2, 2); }, {&p, &v});
}

TEST_CASE("head_scores and head_context: fewer queries than keys, gradients and values") {
  // batch 2, 2 queries over 3 keys per sequence, heads 2, head_dim 2: q [4, 4], k, v [6, 4].
  auto q = random_parameter<double>("q", 4, 4, 1);
  auto k = random_parameter<double>("k", 6, 4, 2);
  auto v = random_parameter<double>("v", 6, 4, 3);
  auto p = random_parameter<double>("p", 8, 3, 4);
  check_gradients([](tape<double>& t, auto& x) { return head_scores(t, x[0], x[1], 2, 2); }, {&q, &k});
  check_gradients([](tape<double>& t, auto& x) { return head_context(t, x[0], x[1], 2, 2); }, {&p, &v});
  // The queries' rows of self-attention: with q the rows 0, 2 (sequence 0) and 3, 4 (sequence 1) of the
  // full query matrix, the scores and contexts are those rows of the full ones.
  const matrix<double> full_q = earlybert::testing::random_matrix<double>(6, 4, 5);
  tape<double> t;
  const auto keys = t.constant(k.value), values = t.constant(v.value);
  const auto full_scores = head_scores(t, t.constant(full_q), keys, 2, 2);
  const auto full_context = head_context(t, softmax(t, full_scores), values, 2, 2);
  const std::vector<token_id> picked{0, 2, 3, 4};
  const auto some = gather_rows(t, t.constant(full_q), std::span<const token_id>(picked));
  const auto scores = head_scores(t, some, keys, 2, 2);
  const auto context = head_context(t, softmax(t, scores), values, 2, 2);
  CHECK(scores.rows() == 8);
  CHECK(scores.cols() == 3);
  for (index_t r = 0; r < 4; ++r) check_near(context.value().row(r), full_context.value().row(picked[static_cast<std::size_t>(r)]), 1e-14, "context row");
  // Scores block (b, h) row i is query i of sequence b in head h.
  for (index_t b = 0; b < 2; ++b) {
    for (index_t h = 0; h < 2; ++h) {
      for (index_t i = 0; i < 2; ++i) {
        const index_t full_row = (b * 2 + h) * 3 + (picked[static_cast<std::size_t>(b * 2 + i)] - b * 3);
        check_near(scores.value().row((b * 2 + h) * 2 + i), full_scores.value().row(full_row), 1e-14, "score row");
      }
    }
  }
}

TEST_CASE_TEMPLATE("head_scores and head_context: equal split_heads, batched_matmul and merge_heads, forward and backward", Scalar,
                   float, double) {
  set_num_threads(2);
  const index_t batch = 3, seq = 5, heads = 4, head_dim = 6;
  auto q = random_parameter<Scalar>("q", batch * seq, heads * head_dim, 1);
  auto k = random_parameter<Scalar>("k", batch * seq, heads * head_dim, 2);
  auto v = random_parameter<Scalar>("v", batch * seq, heads * head_dim, 3);
  const matrix<Scalar> seed = earlybert::testing::random_matrix<Scalar>(batch * seq, heads * head_dim, 4);
  const auto run = [&](bool in_place) {
    for (auto* p : {&q, &k, &v}) p->zero_gradient();
    tape<Scalar> t;
    var<Scalar> context;
    if (in_place) {
      const auto scores = head_scores(t, t.watch(q), t.watch(k), batch, heads);
      context = head_context(t, softmax(t, scores), t.watch(v), batch, heads);
    } else {
      const auto split = [&](parameter<Scalar>& x) { return split_heads(t, t.watch(x), batch, seq, heads); };
      const auto scores = batched_matmul(t, split(q), split(k), batch * heads, transpose::no, transpose::yes);
      context = merge_heads(t, batched_matmul(t, softmax(t, scores), split(v), batch * heads), batch, seq, heads);
    }
    t.backward(sum(t, multiply(t, context, t.constant(seed))));
    return std::tuple{matrix<Scalar>(context.value()), q.gradient, k.gradient, v.gradient};
  };
  const auto in_place = run(true), copied = run(false);
  const double tol = std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
  check_near(std::get<0>(in_place), std::get<0>(copied), tol, "context");
  check_near(std::get<1>(in_place), std::get<1>(copied), tol, "dq");
  check_near(std::get<2>(in_place), std::get<2>(copied), tol, "dk");
  check_near(std::get<3>(in_place), std::get<3>(copied), tol, "dv");
}

TEST_CASE("head_scores and head_context: shapes that do not split into batch and heads are a shape_error") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Ones(6, 4));
  CHECK_THROWS_WITH_AS(head_scores(t, x, x, 4, 2), "head_scores: argument 'q' has shape [6, 4], expected [batch * seq, heads * head_dim] with batch = 4, heads = 2", shape_error);
  CHECK_THROWS_AS(head_scores(t, x, t.constant(matrix<float>::Ones(4, 6)), 2, 2), shape_error);
  CHECK_THROWS_AS(head_context(t, t.constant(matrix<float>::Ones(12, 2)), x, 2, 2), shape_error);
}

TEST_CASE("matmul: inner sizes that do not agree are a shape_error naming both shapes") {
  tape<float> t;
  const auto a = t.constant(matrix<float>::Zero(2, 3));
  const auto b = t.constant(matrix<float>::Zero(4, 2));
  CHECK_THROWS_WITH_AS(matmul(t, a, b), "matmul: argument 'b' has shape [4, 2], expected [3, *]", shape_error);
  CHECK_THROWS_WITH_AS(matmul(t, a, b, transpose::no, transpose::yes),
                       "matmul: argument 'b' has shape [4, 2], expected [*, 3]", shape_error);
}

TEST_CASE_TEMPLATE("batched_matmul: values by hand, two blocks", Scalar, float, double) {
  tape<Scalar> t;
  // Block 0: [[1, 2]] x [[1], [1]] = 3; block 1: [[3, 4]] x [[2], [0]] = 6.
  const auto a = t.constant(matrix_of<Scalar>({{1, 2}, {3, 4}}));
  const auto b = t.constant(matrix_of<Scalar>({{1}, {1}, {2}, {0}}));
  check_near(batched_matmul(t, a, b, 2).value(), matrix_of<double>({{3}, {6}}), 1e-6);
  // Scores-style a b^T per block: block 0 [[1, 2]] [[1, 2]]^T = 5.
  const auto q = t.constant(matrix_of<Scalar>({{1, 2}, {3, 4}}));
  check_near(batched_matmul(t, q, q, 2, transpose::no, transpose::yes).value(), matrix_of<double>({{5}, {25}}), 1e-6);
}

TEST_CASE("batched_matmul: gradients for the attention products (Q K^T and P V) and both transposes") {
  // 3 blocks (sequence, head pairs) of seq = 4, head_dim = 2.
  auto q = random_parameter<double>("q", 12, 2, 1);
  auto k = random_parameter<double>("k", 12, 2, 2);
  check_gradients([](tape<double>& t, auto& v) { return batched_matmul(t, v[0], v[1], 3, transpose::no, transpose::yes); },
                  {&q, &k});
  auto p = random_parameter<double>("p", 12, 4, 3);
  auto val = random_parameter<double>("v", 12, 2, 4);
  check_gradients([](tape<double>& t, auto& v) { return batched_matmul(t, v[0], v[1], 3); }, {&p, &val});
  auto pt = random_parameter<double>("pt", 12, 4, 5);
  check_gradients([](tape<double>& t, auto& v) { return batched_matmul(t, v[0], v[1], 3, transpose::yes); }, {&pt, &val});
}

TEST_CASE("batched_matmul: one block equals matmul") {
  auto a = random_parameter<double>("a", 3, 4, 1);
  auto b = random_parameter<double>("b", 4, 2, 2);
  tape<double> t;
  check_near(batched_matmul(t, t.watch(a), t.watch(b), 1).value(), matmul(t, t.watch(a), t.watch(b)).value(), 1e-15);
}

TEST_CASE("batched_matmul: rows that do not split into the blocks are a shape_error") {
  tape<float> t;
  const auto a = t.constant(matrix<float>::Zero(5, 2));
  const auto b = t.constant(matrix<float>::Zero(6, 2));
  CHECK_THROWS_WITH_AS(batched_matmul(t, a, b, 2), "batched_matmul: argument 'a' has 5 rows, expected a multiple of batches = 2",
                       shape_error);
  CHECK_THROWS_WITH_AS(batched_matmul(t, b, b, 0), "batched_matmul: argument 'batches' is 0, expected at least 1", shape_error);
  // Blocks of a are [2, 2]; blocks of c are [3, 2]: the inner sizes disagree.
  const auto c = t.constant(matrix<float>::Zero(9, 2));
  CHECK_THROWS_WITH_AS(batched_matmul(t, b, c, 3), "batched_matmul (per block): argument 'b' has shape [3, 2], expected [2, *]",
                       shape_error);
}
