// SPDX-License-Identifier: Apache-2.0
#pragma once
// A two-layer perceptron on a fixed problem, shared by the composed tape test and the
// allocation test: points near the four corners (+-1, +-1) labelled by the sign of x*y (XOR).
//
//   x [points, 2] -> tanh(x W1^T + b1) [points, hidden] -> (.) W2^T + b2 [points, 2] -> cross-entropy

#include <span>
#include <vector>

#include "earlybert/earlybert.hpp"

namespace earlybert::testing {

template <class Scalar>
struct xor_problem {
  matrix<Scalar> points;
  std::vector<token_id> labels;

  explicit xor_problem(index_t count, std::uint64_t seed = 11) : points(count, 2), labels(static_cast<std::size_t>(count)) {
    rng random(seed);
    for (index_t i = 0; i < count; ++i) {
      const Scalar sx = (i & 1) ? 1 : -1, sy = (i & 2) ? 1 : -1;
      points(i, 0) = sx + static_cast<Scalar>(0.3 * random.normal());
      points(i, 1) = sy + static_cast<Scalar>(0.3 * random.normal());
      labels[static_cast<std::size_t>(i)] = sx * sy > 0 ? 1 : 0;
    }
  }
};

template <class Scalar>
struct perceptron {
  parameter<Scalar> w1, b1, w2, b2;

  explicit perceptron(index_t hidden, std::uint64_t seed = 5)
      : w1("w1", hidden, 2), b1("b1", 1, hidden, false), w2("w2", 2, hidden), b2("b2", 1, 2, false) {
    rng random(seed);
    for (auto* p : {&w1, &w2}) {
      for (index_t i = 0; i < p->size(); ++i) p->value.data()[i] = static_cast<Scalar>(random.normal());
    }
  }

  std::vector<parameter<Scalar>*> parameters() { return {&w1, &b1, &w2, &b2}; }

  var<Scalar> loss(tape<Scalar>& t, const xor_problem<Scalar>& data, const std::vector<var<Scalar>>& p) const {
    const auto x = t.input(data.points.data(), data.points.rows(), 2);
    const auto h = earlybert::tanh(t, add_bias(t, matmul(t, x, p[0], transpose::no, transpose::yes), p[1]));
    const auto logits = add_bias(t, matmul(t, h, p[2], transpose::no, transpose::yes), p[3]);
    return cross_entropy(t, logits, std::span<const token_id>(data.labels));
  }
};

}  // namespace earlybert::testing
