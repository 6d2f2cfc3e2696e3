// SPDX-License-Identifier: Apache-2.0
// Must not compile: an observer written as a template over the task model is never called by the
// pipeline (it passes model.bert) just as a plain one is, so every score would stay 0.
#include "earlybert/prune/criteria.hpp"

using bert = earlybert::bert_model<float, earlybert::shapes::any>;

struct observes_task_models {
  earlybert::structure_scores score(const bert&) const { return {}; }
  template <class Scalar, class Shape>
  void observe(earlybert::bert_for_sequence_classification<Scalar, Shape>&) {}
};

int main() {
  earlybert::check_criterion<observes_task_models, bert>();
  return 0;
}
