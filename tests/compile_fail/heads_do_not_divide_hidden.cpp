// SPDX-License-Identifier: Apache-2.0
// Must not compile: 130 hidden units cannot be split into 4 heads.
#include "earlybert/core/shape.hpp"

int main() {
  [[maybe_unused]] earlybert::bert_shape<2, 130, 4, 512> shape;
  return 0;
}
