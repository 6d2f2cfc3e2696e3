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

// How check_gradients feeds the inputs to the op under test; every op is checked three ways:
//   parameter      the inputs are the watched parameters (their gradients live outside the tape)
//   first_writer   each input passes through x * 1 first: the op writes an op output's adjoint, and
//                  is its only writer
//   second_writer  as first_writer, plus sum(x * V) recorded after the op, which reaches the adjoint
//                  first in backward: the op must add to what is there (the expected gradient gains V)
enum class gradient_route { parameter, first_writer, second_writer };

template <class Build>
void check_gradients(Build&& build, std::vector<parameter<double>*> inputs,
                     gradient_check_options options = {}) {
  tape<double> t;
  matrix<double> weights;
  std::vector<matrix<double>> side;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    side.push_back(random_matrix<double>(inputs[k]->rows(), inputs[k]->cols(), options.weight_seed + 1 + k));
  }
  auto objective = [&](gradient_route route) {
    std::vector<var<double>> vars;
    for (auto* p : inputs) {
      const var<double> watched = t.watch(*p);
      vars.push_back(route == gradient_route::parameter ? watched : scale(t, watched, 1.0));
    }
    const std::vector<var<double>> fed = vars;
    const var<double> out = build(t, vars);
    if (weights.size() == 0) weights = random_matrix<double>(out.rows(), out.cols(), options.weight_seed);
    var<double> loss = sum(t, multiply(t, out, t.constant(weights)));
    if (route == gradient_route::second_writer) {
      for (std::size_t k = 0; k < fed.size(); ++k) loss = add(t, loss, sum(t, multiply(t, fed[k], t.constant(side[k]))));
    }
    return loss;
  };

  // Analytic gradients, each route.
  const gradient_route routes[] = {gradient_route::parameter, gradient_route::first_writer, gradient_route::second_writer};
  std::vector<std::vector<matrix<double>>> analytic;
  for (const gradient_route route : routes) {
    for (auto* p : inputs) p->zero_gradient();
    t.rewind();
    const var<double> loss = objective(route);
    REQUIRE_MESSAGE(loss.needs_gradient(), "the checked output does not depend on any input");
    t.backward(loss);
    analytic.emplace_back();
    for (auto* p : inputs) analytic.back().push_back(p->gradient);
  }

  // Central differences of the op's objective, recording nothing.
  const char* route_names[] = {"as a parameter", "written first", "written second"};
  int failures = 0;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    parameter<double>& p = *inputs[k];
    for (index_t i = 0; i < p.size(); ++i) {
      const double original = p.value.data()[i];
      double f[2];
      for (int side_of = 0; side_of < 2; ++side_of) {
        p.value.data()[i] = original + (side_of == 0 ? options.step : -options.step);
        t.rewind();
        no_recording<double> inference(t);
        f[side_of] = objective(gradient_route::parameter).item();
      }
      p.value.data()[i] = original;
      const double numeric = (f[0] - f[1]) / (2 * options.step);
      for (std::size_t r = 0; r < std::size(routes); ++r) {
        const double expected = numeric + (routes[r] == gradient_route::second_writer ? side[k].data()[i] : 0.0);
        const double got = analytic[r][k].data()[i];
        if (!(std::abs(got - expected) <= options.tolerance * std::max(1.0, std::abs(expected)))) {
          if (failures++ < 5) {
            FAIL_CHECK(fmt::format("gradient of '{}' ({}) entry {} (row {}, col {}): tape {:.10g}, finite difference {:.10g}", p.name,
                                   route_names[r], i, i / p.cols(), i % p.cols(), got, expected));
          }
        }
      }
    }
  }
  CHECK_MESSAGE(failures == 0, failures, " gradient entries disagree with finite differences");
  t.rewind();
}

}  // namespace earlybert::testing
