// SPDX-License-Identifier: Apache-2.0
// The composed check: a two-layer perceptron built from the ops trains with the tape, and its
// gradients through every op agree with finite differences.

#include <doctest/doctest.h>

#include "support/mlp.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::perceptron;
using earlybert::testing::xor_problem;

TEST_CASE("two-layer perceptron: gradients through the whole network match finite differences") {
  const xor_problem<double> data(16);
  perceptron<double> model(6);
  earlybert::testing::check_gradients(
      [&](tape<double>& t, const std::vector<var<double>>& v) { return model.loss(t, data, v); }, model.parameters());
}

TEST_CASE_TEMPLATE("two-layer perceptron: gradient descent on XOR brings the loss below 0.05", Scalar, float, double) {
  const xor_problem<Scalar> data(64);
  perceptron<Scalar> model(16);
  tape<Scalar> t;
  Scalar first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    t.rewind();
    std::vector<var<Scalar>> vars;
    for (auto* p : model.parameters()) {
      p->zero_gradient();
      vars.push_back(t.watch(*p));
    }
    const auto loss = model.loss(t, data, vars);
    t.backward(loss);
    for (auto* p : model.parameters()) p->value -= Scalar(0.5) * p->gradient;
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(first > Scalar(0.3));
  CHECK(last < Scalar(0.05));
}
