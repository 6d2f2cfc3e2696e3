// SPDX-License-Identifier: Apache-2.0
#pragma once
// One optimizer step at a time: gradient accumulation over micro-batches, gradient-norm clipping,
// AdamW with a linear warm-up/decay schedule.
//
// step(micro_batch_loss) runs, for k = 0 .. accumulation_steps - 1:
//   rewind the tape; loss_k = micro_batch_loss(tape, k); backward(loss_k / accumulation_steps)
// so the gradient is that of the mean loss over the micro-batches; then clips the global gradient
// norm, takes one AdamW step at the schedule's rate (AdamW applies the clipping factor as it reads
// each gradient, and clears it for the next step).
// A loss or gradient that is not finite (the global norm tells, at no extra cost) throws
// numerical_error naming the step and the first parameter whose gradient holds a NaN or infinity,
// before anything is updated (the gradients are cleared, so a caller may go on); with
// on_nonfinite = skip the step's update is skipped instead (weights and moments untouched, the
// schedule moves on) and the report says so.
// Parameters without weight decay (biases, LayerNorm weights) say so themselves (parameter::weight_decay).
//
// Data parallelism (options.group, distributed/process_group.hpp): a step of N processes has
// accumulation_steps x N micro-batches, process r running micro-batches [r A, (r + 1) A) with
// A = accumulation_steps, each backward scaled by 1 / (A N); the gradients and the losses are summed
// over the processes in rank order (every process holds the same bits) before anything reads them, so
// the norm, the clipping, the non-finite check and the update are the same on every process. The
// gradients are summed by a gradient_reducer during the last micro-batch's backward pass, each bucket
// as soon as backward has completed it (options.overlap_communication; off, after backward: the same
// bits either way).
// The step is the one a single process takes with accumulation_steps = A N, up to the order of the
// additions: a single process adds each micro-batch's gradient into the last (inside the GEMMs, with
// beta = 1), the group adds the processes' sums at the end (tests/train/trainer_test.cpp bounds the
// difference in double).
//
// Which parameters: a trainer made from a model (trainer(model, ...)) reads the model's parameters
// again at every step, so one that joins the model later (slimming coefficients after
// set_slimming(true)) is trained and its gradient cleared from the next step on, and one that leaves is
// no longer touched. A trainer made from a list trains exactly that list, and a step whose forward pass
// records a gradient for a parameter outside it (one that joined the model after the list was made,
// whose gradient would accumulate unseen and never be applied) is a config_error naming it: make the
// trainer from the model, or freeze the parameter (trainable = false).
// After the first step nothing here touches the heap (a parameter joining later costs one allocation).

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/distributed/gradient_reducer.hpp"
#include "earlybert/distributed/process_group.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/train/adamw.hpp"
#include "earlybert/train/schedule.hpp"

namespace earlybert {

enum class nonfinite_policy { stop, skip };

struct optimization_options {
  double learning_rate = 1e-4;  // the schedule's peak
  double warmup_ratio = 0.1;    // warm-up steps as a fraction of all steps
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;   // <= 0: no clipping
  int accumulation_steps = 1;    // micro-batches per step and process
  nonfinite_policy on_nonfinite = nonfinite_policy::stop;
  process_group* group = nullptr;  // the processes the step spans (null: this one alone); outlives the trainer
  bool overlap_communication = true;  // sum gradients while backward runs (false: once it is done)
  std::size_t bucket_elements = std::size_t{1} << 20;  // gradient values summed per message

  void check() const {
    const auto require = [](bool ok, const char* name, double value, const char* expected) {
      if (!ok) throw config_error(fmt::format("optimization: '{}' is {}, expected {}", name, value, expected));
    };
    require(learning_rate > 0, "learning_rate", learning_rate, "a positive value");
    require(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup_ratio", warmup_ratio, "a value in [0, 1]");
    require(weight_decay >= 0, "weight_decay", weight_decay, "a non-negative value");
    require(accumulation_steps >= 1, "accumulation_steps", accumulation_steps, "at least 1");
    require(bucket_elements >= 1, "bucket_elements", static_cast<double>(bucket_elements), "at least 1");
  }
};

struct step_report {
  double loss;           // mean of the micro-batches' losses (of every process)
  double learning_rate;  // the rate this step used
  double gradient_norm;  // before clipping
  bool skipped = false;  // a non-finite loss or gradient, and on_nonfinite = skip: no update was made
  double communication_s = 0;  // spent summing gradients and losses over the processes (in and after backward)
  double communication_wait_s = 0;  // of it, after backward: the part backward did not hide
};

// A model: what for_each_parameter visits is what it trains.
template <class Model, class Scalar>
concept parameter_owner = requires(Model& m) { m.for_each_parameter([](parameter<Scalar>&) {}); };

template <class Scalar>
class trainer {
 public:
  // Trains exactly these parameters.
  trainer(std::vector<parameter<Scalar>*> parameters, const optimization_options& options, long total_steps)
      : parameters_(std::move(parameters)),
        listed_(parameters_.begin(), parameters_.end()),
        options_((options.check(), options)),
        optimizer_(adamw_options{.weight_decay = options.weight_decay}),
        schedule_(options.learning_rate, static_cast<long>(options.warmup_ratio * static_cast<double>(total_steps)), total_steps) {
    std::sort(listed_.begin(), listed_.end());
    for (auto* p : parameters_) p->zero_gradient();
  }
  // Trains the model's parameters as they are at each step. The model must outlive the trainer.
  template <parameter_owner<Scalar> Model>
  trainer(Model& model, const optimization_options& options, long total_steps)
      : trainer(std::vector<parameter<Scalar>*>{}, options, total_steps) {
    model_ = &model;
    listed_.clear();
    collect_ = [](void* m, std::vector<parameter<Scalar>*>& out) {
      static_cast<Model*>(m)->for_each_parameter([&](parameter<Scalar>& p) { out.push_back(&p); });
    };
    refresh_parameters();
    for (auto* p : parameters_) p->zero_gradient();
  }

  // after_backward() runs once the step's gradients are complete, before clipping and the update
  // (gradient-based importance criteria read them there).
  template <class MicroBatchLoss, class AfterBackward = void (*)()>
  step_report step(MicroBatchLoss&& micro_batch_loss, AfterBackward&& after_backward = [] {}) {
    refresh_parameters();
    const int local = options_.accumulation_steps;
    const int processes = options_.group == nullptr ? 1 : options_.group->size();
    const int first = options_.group == nullptr ? 0 : options_.group->rank() * local;
    const int micro_batches = local * processes;
    double loss_sum = 0;
    double communication_s = 0, communication_wait_s = 0;
    for (int k = first; k < first + local; ++k) {
      tape_.rewind();
      const var<Scalar> loss = micro_batch_loss(tape_, k);
      if (model_ == nullptr) check_watched_are_listed();
      loss_sum += static_cast<double>(loss.item());
      const var<Scalar> seed = micro_batches == 1 ? loss : scale(tape_, loss, Scalar(1) / static_cast<Scalar>(micro_batches));
      if (processes == 1 || k + 1 < first + local) {
        tape_.backward(seed);
        continue;
      }
      // The step's last backward: the gradients are summed over the processes as they complete.
      reducer_.begin(*options_.group, parameters_, &tape_, std::span<double>(&loss_sum, 1));
      if (options_.overlap_communication) {
        tape_.backward(seed, [this](std::size_t remaining) { reducer_.on_backward(remaining); });
      } else {
        tape_.backward(seed);
      }
      reducer_.finish();
      communication_s = reducer_.seconds();
      communication_wait_s = reducer_.finish_seconds();
    }
    after_backward();
    const double loss = loss_sum / micro_batches;
    const double norm = gradient_norm<Scalar>(parameters_);
    const double rate = schedule_.rate(steps_);
    ++steps_;
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      const std::string fault = options_.on_nonfinite == nonfinite_policy::stop ? describe_fault(loss) : std::string();
      for (auto* p : parameters_) p->gradient.setZero();  // either way the next step starts clean
      if (options_.on_nonfinite == nonfinite_policy::stop) throw numerical_error(fmt::format("training step {}: {}", steps_, fault));
      return {loss, rate, norm, true, communication_s, communication_wait_s};
    }
    optimizer_.step(parameters_, rate, clip_factor(norm, options_.max_grad_norm));  // clears the gradients
    return {loss, rate, norm, false, communication_s, communication_wait_s};
  }

  long steps_taken() const noexcept { return steps_; }
  // Continues a run from a training state: `steps` steps already taken (the schedule's position) and
  // AdamW's own count `optimizer_steps` (its bias correction; larger after a restart from the draw).
  void resume_at(long steps, long optimizer_steps) {
    if (steps < 0) throw config_error(fmt::format("trainer: steps taken is {}, expected a non-negative count", steps));
    steps_ = steps;
    optimizer_.set_steps_taken(optimizer_steps);
  }
  adamw<Scalar>& optimizer() noexcept { return optimizer_; }
  const linear_schedule& schedule() const noexcept { return schedule_; }
  tape<Scalar>& step_tape() noexcept { return tape_; }
  // The parameters of the last step (of the model as it is now, after refresh_parameters()).
  std::span<parameter<Scalar>* const> parameters() const noexcept { return parameters_; }
  // Reads the model's parameters again (a trainer made from a model; step() does it itself).
  void refresh_parameters() {
    if (model_ == nullptr) return;
    parameters_.clear();
    collect_(model_, parameters_);
  }

 private:
  // What is not finite: the loss, or the first parameter (in order) whose gradient holds a NaN or inf.
  std::string describe_fault(double loss) const {
    if (!std::isfinite(loss)) return fmt::format("the loss is {}", loss);
    for (const auto* p : parameters_) {
      if (!p->trainable) continue;
      const Scalar* g = p->gradient.data();
      for (index_t i = 0; i < p->gradient.size(); ++i) {
        if (!std::isfinite(g[i])) {
          return fmt::format("the gradient of '{}' is {} at ({}, {})", p->name, g[i], i / p->gradient.cols(), i % p->gradient.cols());
        }
      }
    }
    return "the gradient norm overflowed (every gradient entry is finite)";
  }

  // A trainer made from a list: every parameter the step's forward pass watched for a gradient is in
  // the list (a binary search per watch; no allocation).
  void check_watched_are_listed() {
    for (const auto& w : tape_.watches()) {
      if (std::binary_search(listed_.begin(), listed_.end(), w.watched)) continue;
      const std::string name = w.watched->name;
      tape_.rewind();
      for (auto* p : parameters_) p->zero_gradient();
      throw config_error(fmt::format("trainer: parameter '{}' takes part in the step and gets a gradient, but the trainer was made "
                                     "from a list of {} parameters without it (it joined the model later, as slimming coefficients "
                                     "do after set_slimming(true)); make the trainer from the model, trainer(model, ...), which "
                                     "follows the model's parameters, or freeze it (trainable = false)",
                                     name, parameters_.size()));
    }
  }

  std::vector<parameter<Scalar>*> parameters_;
  std::vector<const parameter<Scalar>*> listed_;  // a trainer made from a list: its parameters, sorted by address
  void* model_ = nullptr;  // with collect_, the model a trainer made from one reads its parameters from
  void (*collect_)(void*, std::vector<parameter<Scalar>*>&) = nullptr;
  optimization_options options_;
  adamw<Scalar> optimizer_;
  linear_schedule schedule_;
  tape<Scalar> tape_;
  gradient_reducer<Scalar> reducer_{options_.bucket_elements};
  long steps_ = 0;
};

}  // namespace earlybert
