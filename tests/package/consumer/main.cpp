// SPDX-License-Identifier: Apache-2.0
// A program outside the tree: differentiates w . x with the tape and prints the result.
#include <cstdio>

#include <earlybert/earlybert.hpp>

int main() {
  using namespace earlybert;
  parameter<float> w("w", 1, 2);
  w.value << 1, 2;
  matrix<float> x(2, 1);
  x << 3, 4;
  tape<float> t;
  const auto loss = sum(t, matmul(t, t.watch(w), t.constant(x)));
  t.backward(loss);
  const bool ok = loss.item() == 11.0f && w.gradient(0, 0) == 3.0f && w.gradient(0, 1) == 4.0f;
  std::printf("earlybert consumer: %g\n", static_cast<double>(loss.item()));
  return ok ? 0 : 1;
}
