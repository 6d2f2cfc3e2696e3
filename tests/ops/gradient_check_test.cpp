// SPDX-License-Identifier: Apache-2.0
// The gradient checker itself: it must pass a right backward and catch each kind of wrong one.
#include "earlybert/testing/gradient_check.hpp"

#include <doctest/doctest.h>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::gradient_check;
using earlybert::testing::random_parameter;

namespace {
enum class mistake { none, wrong_derivative, assigns };

// y = x^2 with a backward that may be wrong in one of two ways.
var<double> square(tape<double>& t, const var<double>& x, mistake m) {
  var<double> y = t.make(x.rows(), x.cols(), any_needs_gradient(t, x));
  for (index_t i = 0; i < x.size(); ++i) y.value_data()[i] = x.value_data()[i] * x.value_data()[i];
  if (y.needs_gradient()) {
    t.on_backward([=] {
      for (index_t i = 0; i < x.size(); ++i) {
        const double d = y.adjoint_data()[i] * (m == mistake::wrong_derivative ? 1.0 : 2.0) * x.value_data()[i];
        if (m == mistake::assigns) x.adjoint_data()[i] = d;
        else x.adjoint_data()[i] += d;
      }
    });
  }
  return y;
}
}  // namespace

TEST_CASE("gradient_check: passes a right backward, catches a wrong derivative on every route and an assignment on the second") {
  parameter<double> x = random_parameter<double>("x", 2, 3, 4);
  const auto right = gradient_check([](tape<double>& t, auto& v) { return square(t, v[0], mistake::none); }, {&x});
  CHECK(right.passed());
  CHECK(right.entries_checked == 18);  // 6 entries x 3 routes
  CHECK(right.summary() == "all 18 gradient entries match their finite differences");

  const auto wrong = gradient_check([](tape<double>& t, auto& v) { return square(t, v[0], mistake::wrong_derivative); }, {&x});
  CHECK(wrong.failures == 18);
  REQUIRE(wrong.mismatches.size() == 5);  // max_reported
  CHECK(wrong.mismatches[0].parameter == "x");
  CHECK(std::string(wrong.mismatches[0].route) == "as a parameter");

  const auto assigns = gradient_check([](tape<double>& t, auto& v) { return square(t, v[0], mistake::assigns); }, {&x});
  CHECK(assigns.failures == 6);
  for (const auto& m : assigns.mismatches) CHECK(std::string(m.route) == "written second");
  CHECK(assigns.summary().starts_with("6 of 18 gradient entries disagree with finite differences\n  gradient of 'x' (written second) at (0, 0)"));

  x.trainable = false;
  CHECK_THROWS_WITH_AS(gradient_check([](tape<double>& t, auto& v) { return square(t, v[0], mistake::none); }, {&x}),
                       doctest::Contains("the checked output does not depend on any input"), error);
}

TEST_CASE("gradient_check: nothing to check is an error, not a pass") {
  // The output depends on a parameter the build watches itself: with no inputs, no entry is checked.
  parameter<double> hidden = random_parameter<double>("hidden", 2, 2, 5);
  const auto own = [&](tape<double>& t, auto&) { return square(t, t.watch(hidden), mistake::wrong_derivative); };
  CHECK_THROWS_WITH_AS(gradient_check(own, {}), "gradient_check: no inputs, expected at least one parameter whose gradient to check",
                       config_error);
  parameter<double> empty("empty", 0, 3);
  CHECK_THROWS_WITH_AS(gradient_check(own, {&empty}), "gradient_check: all 1 inputs are empty, expected at least one entry to check",
                       config_error);
  CHECK_THROWS_WITH_AS(gradient_check(own, std::vector<parameter<double>*>{nullptr}),
                       "gradient_check: an input is a null pointer, expected a parameter", config_error);
}
