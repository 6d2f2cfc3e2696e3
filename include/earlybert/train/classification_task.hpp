// SPDX-License-Identifier: Apache-2.0
#pragma once
// Classification as a task for the pipeline (run_earlybert, run_dense: train/earlybert.hpp), of
// sequences (classification_dataset: a class or a score per example) or of tokens (tagging_dataset:
// a tag per word), in the batches make_batch(dataset, indices, pad, batch) builds: the training set
// read in example_order's order (a shuffle per stage and epoch from the seed alone, the last batch of
// an epoch partial), micro-batch by micro-batch, with dropout keyed by step_key, so a
// run is reproducible and a resumed run reads what the interrupted one would have. What a program adds
// (progress, metrics, evaluation) goes in the two hooks, which are empty by default.

#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

#include "earlybert/core/tape.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/tasks/tagging.hpp"
#include "earlybert/train/data_order.hpp"
#include "earlybert/train/trainer.hpp"

namespace earlybert {

template <class Model, class Dataset = classification_dataset>
class classification_task {
 public:
  using scalar_type = typename Model::scalar_type;

  // `salt` separates this task's data order from another's with the same seed.
  classification_task(const Dataset& train, index_t batch, int accumulation, std::uint64_t seed, token_id pad,
                      std::uint64_t salt = 1000)
      : train_(train), order_(train.examples.size(), batch, accumulation, seed, salt, last_batch::keep_partial), seed_(seed), pad_(pad) {}

  long steps_per_epoch() const noexcept { return order_.steps_per_pass(); }

  // The mean cross-entropy of micro-batch k of `step`, dropout on.
  var<scalar_type> loss(tape<scalar_type>& t, Model& model, pipeline_stage stage, long step, int k) {
    const token_batch& b = micro_batch(stage, step, k);
    return model.loss(t, model.logits(t, b, true, dropout_key(stage, step, k)), b);
  }
  // Micro-batch k of `step`, and the key of its dropout: what a task that computes its own loss reads
  // (train/self_sampling.hpp).
  const token_batch& micro_batch(pipeline_stage stage, long step, int k) {
    make_batch(train_, order_.micro_batch(stage, step, k), pad_, batch_);
    return batch_;
  }
  std::uint64_t dropout_key(pipeline_stage stage, long step, int k) const noexcept { return step_key(seed_, stage, step, k); }
  double last_forward_flops(const Model& model) const { return model.forward_flops(batch_); }
  // The micro-batch the last loss() read.
  const token_batch& last_batch() const noexcept { return batch_; }

  void on_step(pipeline_stage stage, long step, long total, const step_report& report) {
    if (step_hook) step_hook(stage, step, total, report);
  }
  void on_event(const nlohmann::ordered_json& event) {
    if (event_hook) event_hook(event);
  }

  std::function<void(pipeline_stage, long step, long total, const step_report&)> step_hook;  // after every optimizer step
  std::function<void(const nlohmann::ordered_json&)> event_hook;                            // eb_check and ticket events

 private:
  const Dataset& train_;
  example_order order_;
  std::uint64_t seed_;
  token_id pad_;
  token_batch batch_;
};

}  // namespace earlybert
