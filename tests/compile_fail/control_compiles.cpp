// SPDX-License-Identifier: Apache-2.0
// Control for the compile-fail tests: each construct below appears, misused, in one of them.
#include "earlybert/earlybert.hpp"

struct observes_bert {
  earlybert::structure_scores score(const earlybert::bert_model<float, earlybert::shapes::any>&) const { return {}; }
  void observe(const earlybert::bert_model<float, earlybert::shapes::any>&) {}
};

int main() {
  earlybert::check_criterion<observes_bert, earlybert::bert_model<float, earlybert::shapes::any>>();
  [[maybe_unused]] earlybert::bert_shape<2, 128, 4, 512> shape;
  [[maybe_unused]] const auto config = earlybert::bert_config::for_shape<earlybert::shapes::tiny>(10);
  earlybert::tape<float> t;
  float* buffer = t.scratch<float>(3);
  t.on_backward([buffer] { buffer[0] = 0; });
  return 0;
}
