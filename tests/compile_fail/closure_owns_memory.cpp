// SPDX-License-Identifier: Apache-2.0
// Must not compile: a closure owning heap memory would leak, because the arena runs no destructors.
#include <vector>

#include "earlybert/core/tape.hpp"

int main() {
  earlybert::tape<float> t;
  std::vector<float> owned(3);
  t.on_backward([owned] { (void)owned; });
  return 0;
}
