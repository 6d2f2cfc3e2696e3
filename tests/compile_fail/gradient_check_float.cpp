// SPDX-License-Identifier: Apache-2.0
// Must not compile: the gradient checker takes parameter<double>; in float the finite differences are
// too coarse to check anything, and the error says so instead of "no matching function".
#include "earlybert/ops/activation.hpp"
#include "earlybert/testing/gradient_check.hpp"

int main() {
  earlybert::parameter<float> x("x", 2, 3);
  const auto report =
      earlybert::testing::gradient_check([](earlybert::tape<float>& t, auto& v) { return earlybert::gelu(t, v[0]); }, {&x});
  return report.passed() ? 0 : 1;
}
