// SPDX-License-Identifier: Apache-2.0
// Control for the compile-fail tests: each construct below appears, misused, in one of them.
#include "earlybert/earlybert.hpp"
#include "earlybert/testing/gradient_check.hpp"

struct observes_bert {
  earlybert::structure_scores score(const earlybert::bert_model<float, earlybert::shapes::any>&) const { return {}; }
  void observe(const earlybert::bert_model<float, earlybert::shapes::any>&) {}
};

// An observer written as a template over the bert_model is called by the pipeline: no error.
struct observes_any_bert {
  earlybert::structure_scores score(const earlybert::bert_model<float, earlybert::shapes::any>&) const { return {}; }
  template <class Scalar, class Shape>
  void observe(const earlybert::bert_model<Scalar, Shape>&) {}
};

int main() {
  earlybert::check_criterion<observes_bert, earlybert::bert_model<float, earlybert::shapes::any>>();
  earlybert::check_criterion<observes_any_bert, earlybert::bert_model<float, earlybert::shapes::any>>();
  static_assert(earlybert::shapes::tiny::head_dim == 64);
  earlybert::parameter<double> x("x", 2, 3);
  x.value.setConstant(0.5);
  const auto report =
      earlybert::testing::gradient_check([](earlybert::tape<double>& g, auto& v) { return earlybert::gelu(g, v[0]); }, {&x});
  if (!report.passed()) return 1;
  [[maybe_unused]] earlybert::bert_shape<2, 128, 4, 512> shape;
  [[maybe_unused]] const auto config = earlybert::bert_config::for_shape<earlybert::shapes::tiny>(10);
  earlybert::tape<float> t;
  float* buffer = t.scratch<float>(3);
  t.on_backward([buffer] { buffer[0] = 0; });
  return 0;
}
