// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers shared by the tests: the central-difference gradient checker, matrix comparison, and
// deterministic random inputs.
//
// check_gradients(build, inputs) is the one gradient check every op and layer goes through:
//   build(tape, vars) -> var   computes any output from the watched inputs;
//   the scalar checked is L = sum(output * W) with a fixed random W (so every output entry's adjoint
//   is exercised with a different weight: a uniform weight would hide errors in ops like softmax
//   whose rows sum to a constant);
//   every entry of every input is perturbed by +-h and (L(+h) - L(-h)) / 2h is compared with the
//   gradient the tape accumulated.

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "earlybert/core/parameter.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/reduce.hpp"

namespace earlybert::testing {

// A [rows, cols] matrix of uniform values in [low, high), the same for the same seed.
template <class Scalar>
matrix<Scalar> random_matrix(index_t rows, index_t cols, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  rng random(seed);
  matrix<Scalar> m(rows, cols);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(low + (high - low) * random.uniform());
  return m;
}

template <class Scalar>
parameter<Scalar> random_parameter(const std::string& name, index_t rows, index_t cols, std::uint64_t seed,
                                   double low = -1.0, double high = 1.0) {
  parameter<Scalar> p(name, rows, cols);
  p.value = random_matrix<Scalar>(rows, cols, seed, low, high);
  return p;
}

// A matrix from nested braces: matrix_of<double>({{1, 2}, {3, 4}}).
template <class Scalar>
matrix<Scalar> matrix_of(std::initializer_list<std::initializer_list<double>> rows) {
  matrix<Scalar> m(static_cast<index_t>(rows.size()), static_cast<index_t>(rows.begin()->size()));
  index_t r = 0;
  for (const auto& row : rows) {
    index_t c = 0;
    for (double v : row) m(r, c++) = static_cast<Scalar>(v);
    ++r;
  }
  return m;
}

// Checks |actual - expected| <= tolerance * max(1, |expected|) entry by entry, naming the first miss.
template <class A, class B>
void check_near(const A& actual, const B& expected, double tolerance, const char* what = "value") {
  REQUIRE_MESSAGE(actual.rows() == expected.rows(), what, ": rows differ");
  REQUIRE_MESSAGE(actual.cols() == expected.cols(), what, ": cols differ");
  for (index_t r = 0; r < actual.rows(); ++r) {
    for (index_t c = 0; c < actual.cols(); ++c) {
      const double a = static_cast<double>(actual(r, c)), e = static_cast<double>(expected(r, c));
      if (!(std::abs(a - e) <= tolerance * std::max(1.0, std::abs(e)))) {
        FAIL_CHECK(fmt::format("{} ({}, {}) is {:.10g}, expected {:.10g}", what, r, c, a, e));
        return;
      }
    }
  }
}

struct gradient_check_options {
  double step = 1e-6;        // h of the central difference
  double tolerance = 1e-6;   // on |analytic - numeric| / max(1, |numeric|)
  std::uint64_t weight_seed = 7;
};

template <class Build>
void check_gradients(Build&& build, std::vector<parameter<double>*> inputs,
                     gradient_check_options options = {}) {
  tape<double> t;
  matrix<double> weights;
  auto objective = [&] {
    std::vector<var<double>> vars;
    for (auto* p : inputs) vars.push_back(t.watch(*p));
    const var<double> out = build(t, vars);
    if (weights.size() == 0) weights = random_matrix<double>(out.rows(), out.cols(), options.weight_seed);
    return sum(t, multiply(t, out, t.constant(weights)));
  };

  // Analytic gradients.
  for (auto* p : inputs) p->zero_gradient();
  const var<double> loss = objective();
  REQUIRE_MESSAGE(loss.needs_gradient(), "the checked output does not depend on any input");
  t.backward(loss);
  std::vector<matrix<double>> analytic;
  for (auto* p : inputs) analytic.push_back(p->gradient);

  // Central differences, recording nothing.
  int failures = 0;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    parameter<double>& p = *inputs[k];
    for (index_t i = 0; i < p.size(); ++i) {
      const double original = p.value.data()[i];
      double f[2];
      for (int side = 0; side < 2; ++side) {
        p.value.data()[i] = original + (side == 0 ? options.step : -options.step);
        t.rewind();
        no_recording<double> inference(t);
        f[side] = objective().item();
      }
      p.value.data()[i] = original;
      const double numeric = (f[0] - f[1]) / (2 * options.step);
      const double got = analytic[k].data()[i];
      if (!(std::abs(got - numeric) <= options.tolerance * std::max(1.0, std::abs(numeric)))) {
        if (failures++ < 5) {
          FAIL_CHECK(fmt::format("gradient of '{}' entry {} (row {}, col {}): tape {:.10g}, finite "
                                 "difference {:.10g}", p.name, i, i / p.cols(), i % p.cols(), got, numeric));
        }
      }
    }
  }
  CHECK_MESSAGE(failures == 0, failures, " gradient entries disagree with finite differences");
  t.rewind();
}

}  // namespace earlybert::testing
