// SPDX-License-Identifier: Apache-2.0
#pragma once
// The central-difference gradient checker: the check every op and layer of the library passes, for
// your own ops and layers too (examples/custom_op.cpp; docs/tape.md, "Writing an op").
//
//   gradient_check_report r = gradient_check(build, {&x, &w});
//
// build(tape, vars) -> var computes any output from the watched inputs (vars[k] is inputs[k]). The
// scalar checked is L = sum(output ⊙ W) with a fixed random W, so that every output entry's adjoint is
// exercised with its own weight (a uniform weight would hide errors in ops such as softmax whose rows sum
// to a constant). Every entry of every input is perturbed by ±h, and (L(+h) − L(−h)) / 2h is compared
// with the gradient the tape accumulated, |tape − numeric| <= tolerance · max(1, |numeric|).
//
// The analytic gradient is taken three ways, because an op's backward must be right in each:
//   as a parameter   the inputs are the watched parameters themselves;
//   written first    each input passes through x · 1 first, so the op writes an op output's adjoint and
//                    is its only writer;
//   written second   as written first, plus sum(x ⊙ V) recorded after the op, which reaches the adjoint
//                    first in backward: an op that assigns (=) instead of accumulating (+=) fails here.
// Run it in double: in float the finite differences are too coarse to check anything.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
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

struct gradient_check_options {
  double step = 1e-6;        // h of the central difference
  double tolerance = 1e-6;   // on |analytic - numeric| / max(1, |numeric|)
  std::uint64_t weight_seed = 7;
  std::size_t max_reported = 5;  // mismatches kept in the report (all are counted)
};

// One gradient entry where the tape and the finite difference disagree.
struct gradient_mismatch {
  std::string parameter;
  const char* route;  // "as a parameter", "written first" or "written second"
  index_t row, col;
  double tape, finite_difference;

  std::string describe() const {
    return fmt::format("gradient of '{}' ({}) at ({}, {}): tape {:.10g}, finite difference {:.10g}", parameter, route, row, col,
                       tape, finite_difference);
  }
};

struct gradient_check_report {
  index_t entries_checked = 0;  // input entries x routes
  index_t failures = 0;
  std::vector<gradient_mismatch> mismatches;  // the first options.max_reported

  bool passed() const noexcept { return failures == 0; }
  std::string summary() const {
    if (passed()) return fmt::format("all {} gradient entries match their finite differences", entries_checked);
    std::string s = fmt::format("{} of {} gradient entries disagree with finite differences", failures, entries_checked);
    for (const gradient_mismatch& m : mismatches) s += "\n  " + m.describe();
    return s;
  }
};

// Checks the gradients of build's output with respect to every entry of `inputs` (see the top of this
// file). Throws config_error if there is nothing to check (no input, or only empty ones), and
// earlybert::error if the output does not depend on any input. The inputs' values are restored; their
// gradients hold the last route's. The inputs must be parameter<double> (a compile error otherwise).
template <class Build>
gradient_check_report gradient_check(Build&& build, const std::vector<parameter<double>*>& inputs, gradient_check_options options = {}) {
  if (inputs.empty()) throw config_error("gradient_check: no inputs, expected at least one parameter whose gradient to check");
  for (const parameter<double>* p : inputs) {
    if (p == nullptr) throw config_error("gradient_check: an input is a null pointer, expected a parameter");
  }
  if (std::all_of(inputs.begin(), inputs.end(), [](const parameter<double>* p) { return p->size() == 0; })) {
    throw config_error(fmt::format("gradient_check: all {} inputs are empty, expected at least one entry to check", inputs.size()));
  }
  enum class route { parameter, first_writer, second_writer };
  constexpr route routes[] = {route::parameter, route::first_writer, route::second_writer};
  constexpr const char* route_names[] = {"as a parameter", "written first", "written second"};

  tape<double> t;
  matrix<double> weights;
  std::vector<matrix<double>> side;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    side.push_back(random_matrix<double>(inputs[k]->rows(), inputs[k]->cols(), options.weight_seed + 1 + k));
  }
  auto objective = [&](route how) {
    std::vector<var<double>> vars;
    for (parameter<double>* p : inputs) {
      const var<double> watched = t.watch(*p);
      vars.push_back(how == route::parameter ? watched : scale(t, watched, 1.0));
    }
    const std::vector<var<double>> fed = vars;
    const var<double> out = build(t, vars);
    if (weights.size() == 0) weights = random_matrix<double>(out.rows(), out.cols(), options.weight_seed);
    var<double> loss = sum(t, multiply(t, out, t.constant(weights)));
    if (how == route::second_writer) {
      for (std::size_t k = 0; k < fed.size(); ++k) loss = add(t, loss, sum(t, multiply(t, fed[k], t.constant(side[k]))));
    }
    return loss;
  };

  std::vector<std::vector<matrix<double>>> analytic;
  for (const route how : routes) {
    for (parameter<double>* p : inputs) p->zero_gradient();
    t.rewind();
    const var<double> loss = objective(how);
    if (!loss.needs_gradient()) {
      throw error("gradient_check: the checked output does not depend on any input (no input is trainable, or build ignores them)");
    }
    t.backward(loss);
    analytic.emplace_back();
    for (parameter<double>* p : inputs) analytic.back().push_back(p->gradient);
  }

  gradient_check_report report;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    parameter<double>& p = *inputs[k];
    for (index_t i = 0; i < p.size(); ++i) {
      const double original = p.value.data()[i];
      double f[2];
      for (int sign = 0; sign < 2; ++sign) {
        p.value.data()[i] = original + (sign == 0 ? options.step : -options.step);
        t.rewind();
        no_recording<double> inference(t);
        f[sign] = objective(route::parameter).item();
      }
      p.value.data()[i] = original;
      const double numeric = (f[0] - f[1]) / (2 * options.step);
      for (std::size_t r = 0; r < std::size(routes); ++r) {
        ++report.entries_checked;
        const double expected = numeric + (routes[r] == route::second_writer ? side[k].data()[i] : 0.0);
        const double got = analytic[r][k].data()[i];
        if (std::abs(got - expected) <= options.tolerance * std::max(1.0, std::abs(expected))) continue;
        if (report.failures++ < static_cast<index_t>(options.max_reported)) {
          report.mismatches.push_back({p.name, route_names[r], i / p.cols(), i % p.cols(), got, expected});
        }
      }
    }
  }
  t.rewind();
  return report;
}

// The same, for a braced list of parameters: gradient_check(build, {&x, &w}).
template <class Build, class Scalar>
gradient_check_report gradient_check(Build&& build, std::initializer_list<parameter<Scalar>*> inputs, gradient_check_options options = {}) {
  return gradient_check(std::forward<Build>(build), std::vector<parameter<Scalar>*>(inputs), options);
}

// Parameters of another scalar type are refused at compile time, with the reason.
template <class Build, class Scalar>
  requires(!std::is_same_v<Scalar, double>)
gradient_check_report gradient_check(Build&&, const std::vector<parameter<Scalar>*>&, gradient_check_options = {}) {
  static_assert(std::is_same_v<Scalar, double>,
                "earlybert::testing::gradient_check: the inputs must be parameter<double>: finite differences in float are "
                "too coarse to check a gradient; build the op or layer with Scalar = double");
  return {};
}

}  // namespace earlybert::testing
