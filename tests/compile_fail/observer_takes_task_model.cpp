// SPDX-License-Identifier: Apache-2.0
// Must not compile: a gradient observer whose observe() takes the task model would never be called by
// the pipeline (it passes model.bert), so every score would stay 0.
#include "earlybert/prune/criteria.hpp"

using bert = earlybert::bert_model<float, earlybert::shapes::any>;
using task_model = earlybert::bert_for_sequence_classification<float, earlybert::shapes::any>;

struct observes_task_model {
  earlybert::structure_scores score(const bert&) const { return {}; }
  void observe(const task_model&) {}
};

int main() {
  earlybert::check_criterion<observes_task_model, bert>();
  return 0;
}
