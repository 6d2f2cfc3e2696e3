// SPDX-License-Identifier: Apache-2.0
#include "earlybert/ops/dropout.hpp"

#include <doctest/doctest.h>

#include "earlybert/core/threading.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_gradients;
using earlybert::testing::random_parameter;

TEST_CASE_TEMPLATE("dropout: every output is 0 or x / (1 - p), and about p of them are 0", Scalar, float, double) {
  tape<Scalar> t;
  const auto x = t.constant(matrix<Scalar>::Ones(100, 100));
  const auto y = dropout(t, x, Scalar(0.25), 42);
  index_t dropped = 0;
  for (index_t i = 0; i < y.size(); ++i) {
    const Scalar v = y.value_data()[i];
    CHECK((v == Scalar(0) || v == doctest::Approx(1.0 / 0.75).epsilon(1e-7)));
    dropped += v == Scalar(0);
  }
  // 10,000 Bernoulli(0.25) draws: the standard deviation of the count is 43.
  CHECK(dropped > 2500 - 200);
  CHECK(dropped < 2500 + 200);
}

TEST_CASE("dropout: the mask depends only on the key, not on the thread count") {
  matrix<float> x = earlybert::testing::random_matrix<float>(200, 300, 1);
  matrix<float> one_thread, two_threads, other_key;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    tape<float> t;
    (threads == 1 ? one_thread : two_threads) = dropout(t, t.constant(x), 0.1f, 7).value();
  }
  tape<float> t;
  other_key = dropout(t, t.constant(x), 0.1f, 8).value();
  CHECK(one_thread == two_threads);
  CHECK(one_thread != other_key);
}

TEST_CASE("dropout: gradients match finite differences (a fixed key makes the op linear)") {
  auto x = random_parameter<double>("x", 4, 6, 1);
  check_gradients([](tape<double>& t, auto& v) { return dropout(t, v[0], 0.5, 3); }, {&x});
}

TEST_CASE("dropout: probability 0 is the identity and returns its input") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Ones(2, 2));
  CHECK(dropout(t, x, 0.0f, 1).value_data() == x.value_data());
}

TEST_CASE("dropout: a probability below 0 or not below 1 is a config_error") {
  tape<float> t;
  const auto x = t.constant(matrix<float>::Ones(2, 2));
  CHECK_THROWS_WITH_AS(dropout(t, x, 1.0f, 1), "dropout: argument 'probability' is 1, expected a value in [0, 1)", config_error);
  CHECK_THROWS_WITH_AS(dropout(t, x, -0.5f, 1), "dropout: argument 'probability' is -0.5, expected a value in [0, 1)", config_error);
}
