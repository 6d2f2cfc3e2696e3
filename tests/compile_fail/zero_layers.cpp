// SPDX-License-Identifier: Apache-2.0
// Must not compile: a BERT has at least one layer.
#include "earlybert/core/shape.hpp"

int main() {
  [[maybe_unused]] earlybert::bert_shape<0, 128, 2, 512> shape;
  return 0;
}
