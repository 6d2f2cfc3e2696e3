// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers shared by the tests: the gradient check as a doctest check, matrix comparison, and
// deterministic random inputs.
//
// check_gradients(build, inputs) is the one gradient check every op and layer goes through: the
// library's own checker (earlybert/testing/gradient_check.hpp, where its method is described).

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
#include "earlybert/testing/gradient_check.hpp"

namespace earlybert::testing {

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

// The library's gradient checker (earlybert/testing/gradient_check.hpp) as a doctest check: every
// mismatch it reports is a failed check naming the parameter, the route and the entry.
template <class Build>
void check_gradients(Build&& build, std::vector<parameter<double>*> inputs, gradient_check_options options = {}) {
  const gradient_check_report report = gradient_check(std::forward<Build>(build), inputs, options);
  for (const gradient_mismatch& m : report.mismatches) FAIL_CHECK(m.describe());
  CHECK_MESSAGE(report.passed(), report.summary());
}

}  // namespace earlybert::testing
