// SPDX-License-Identifier: Apache-2.0
#pragma once
// Self-sampling fine-tuning of a token classifier with exits (Li et al., ACL 2021, §3.3) as a pipeline
// task: every micro-batch draws a halting plan from the model's own exits (nn/early_exit.hpp,
// sample_halting_plan) and trains the joint loss under it, so that the exits learn from the states
// inference will give them (halted words' states copied upward, still keys and values). The data order,
// dropout keys and hooks are classification_task's; the plan's random streams are keyed by the step, so
// a resumed run draws what the interrupted one would have. The joint training before it is the plain
// classification_task on the same model (the sum of the exits' losses).

#include <cstdint>
#include <utility>

#include "earlybert/core/rng.hpp"
#include "earlybert/nn/early_exit.hpp"
#include "earlybert/tasks/tagging.hpp"
#include "earlybert/train/classification_task.hpp"

namespace earlybert {

template <class Model>
class self_sampling_task : public classification_task<Model, tagging_dataset> {
  using base = classification_task<Model, tagging_dataset>;

 public:
  using scalar_type = typename Model::scalar_type;

  // The first joint_steps steps (0 .. joint_steps - 1) train the plain joint loss, everyone running every
  // layer; self-sampling takes the steps after them, so that one run holds both stages.
  self_sampling_task(const tagging_dataset& train, index_t batch, int accumulation, std::uint64_t seed, token_id pad,
                     self_sampling_options options = {}, long joint_steps = 0)
      : base(train, batch, accumulation, seed, pad), options_(std::move(options)), joint_steps_(joint_steps) {
    options_.check();
  }

  // The joint loss of micro-batch k of `step` under a plan drawn for it, dropout on.
  var<scalar_type> loss(tape<scalar_type>& t, Model& model, pipeline_stage stage, long step, int k) {
    sampled_ = step >= joint_steps_;
    if (!sampled_) return base::loss(t, model, stage, step, k);
    const token_batch& b = base::micro_batch(stage, step, k);
    const std::uint64_t key = base::dropout_key(stage, step, k);
    int* plan = t.template scratch<int>(b.tokens());
    const std::span<int> exit_layer(plan, static_cast<std::size_t>(b.tokens()));
    sample_halting_plan(model, t, b, derive_key(key, plan_stream), options_, exit_layer);
    return model.joint_loss(t, model.joint_logits(t, b, true, key, exit_layer), b, exit_layer);
  }

  // Forward FLOPs of the micro-batch just trained, such that 3x is its step's cost, as the pipeline
  // counts a step (train/earlybert.hpp): the joint forward (every exit on every token), and on a
  // self-sampling step a fourth forward pass, the plan's, without gradients: 4/3 of the joint forward.
  double last_forward_flops(const Model& model) const {
    return model.joint_forward_flops(base::last_batch()) * (sampled_ ? 4.0 / 3.0 : 1.0);
  }

  const self_sampling_options& options() const noexcept { return options_; }

 private:
  static constexpr std::uint64_t plan_stream = 0x5e1f;  // the plans' streams, apart from dropout's
  self_sampling_options options_;
  long joint_steps_;
  bool sampled_ = false;  // whether the last loss() drew a plan
};

}  // namespace earlybert
