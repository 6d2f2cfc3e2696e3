// SPDX-License-Identifier: Apache-2.0
// Must not compile: the tape differentiates float or double, not integers.
#include "earlybert/core/tape.hpp"

int main() {
  earlybert::tape<int> t;
  return 0;
}
