// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fine-tuning as a function, shared by `earlybert finetune` and `earlybert demo`.

#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

struct finetune_result {
  double dev_accuracy = 0;
  double train_wall_s = 0;  // training only: evaluations excluded
  double train_flops = 0;   // the method's cost model, training = 3 x forward
  double tokens = 0;        // real tokens trained on
  long total_steps = 0;
  long ticket_step = -1;    // -1: no ticket (dense)
  long search_steps = 0;
  std::vector<index_t> heads_kept, ffn_kept;
  double flops_ratio = 1;   // pruned / dense encoder FLOPs per token
  nlohmann::ordered_json ticket_record;  // the recorded masks (EarlyBERT), written beside the checkpoint
};

// Throws config_error for options outside their ranges (before any work).
void check_finetune_options(const finetune_options& o);

// Trains on already-tokenised data; saves a checkpoint into o.out unless it is empty.
finetune_result finetune_with(const finetune_options& o, const vocabulary& vocab, const classification_dataset& train,
                              const classification_dataset& dev);

}  // namespace earlybert::cli
