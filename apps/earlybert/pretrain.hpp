// SPDX-License-Identifier: Apache-2.0
#pragma once
// Pre-training as a function, shared by `earlybert pretrain` and `earlybert demo`.

#include "common.hpp"

namespace earlybert::cli {

struct pretrain_result {
  double mlm_loss = 0;      // held-out masked-LM loss at the end
  double mlm_accuracy = 0;  // held-out masked-LM accuracy at the end
  double train_wall_s = 0;  // training only: evaluations excluded
  double train_flops = 0;   // the method's cost model, training = 3 x forward
  long total_steps = 0;
  double tokens = 0;        // tokens trained on
};

// Throws config_error for options outside their ranges (before any work).
void check_pretrain_options(const pretrain_options& o);

// Reads the corpora, trains (dense, or through the EarlyBERT pipeline) and saves the checkpoint into o.out.
pretrain_result pretrain_with(const pretrain_options& o, const vocabulary& vocab);

}  // namespace earlybert::cli
