// SPDX-License-Identifier: Apache-2.0
// Must not compile: a shape with dynamic dimensions has no numbers to make a configuration from.
#include "earlybert/nn/config.hpp"

int main() {
  [[maybe_unused]] const auto config = earlybert::bert_config::for_shape<earlybert::shapes::any>(10);
  return 0;
}
