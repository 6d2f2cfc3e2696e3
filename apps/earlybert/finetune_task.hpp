// SPDX-License-Identifier: Apache-2.0
#pragma once
// What `earlybert finetune` trains and measures, for every training method (finetune.cpp, lottery.hpp):
// the model a task's data fine-tunes, the task's metrics on its dev set(s), and finetune_task, the
// library's classification task with the program's progress, metrics, evaluations and training states.

#include <nlohmann/json.hpp>

#include "checkpoints.hpp"
#include "earlybert_setup.hpp"
#include "finetune.hpp"
#include "job.hpp"

namespace earlybert::cli {

using json = nlohmann::ordered_json;

// What a task's data fine-tunes: a sequence classifier for sentence tasks, a token classifier for
// tagging, a span head for question answering.
template <class TaskData>
struct model_for;
template <>
struct model_for<sentence_task_data> {
  using type = bert_for_sequence_classification<float, shapes::any>;
};
template <>
struct model_for<tagging_task_data> {
  using type = bert_for_token_classification<float, shapes::any>;
};
template <>
struct model_for<squad_task_data> {
  using type = bert_for_question_answering<float, shapes::any>;
};
// With --early-exit, tagging fine-tunes a token classifier with an exit after every layer.
using exit_tagger = bert_for_token_classification_with_exits<float, shapes::any>;

// What a model trains on: the library's classification task, or for a model with exits the
// self-sampling task, plain joint training for the first `joint_steps` steps.
template <class Model, class Dataset>
struct training_data_for {
  using type = classification_task<Model, Dataset>;
};
template <>
struct training_data_for<exit_tagger, tagging_dataset> {
  using type = self_sampling_task<exit_tagger>;
};

// The task's metrics on every dev set (the first set's unsuffixed, the main metric first); a long
// evaluation shows its progress (pass_progress).
template <class Model>
metric_values evaluate_task(Model& model, const sentence_task_data& task, token_id pad) {
  metric_values all;
  for (const auto& [suffix, set] : task.dev) {
    pass_progress progress(suffix.empty() ? "finetune: evaluating" : "finetune: evaluating " + suffix, "dev examples");
    all.append(sentence_metrics(task.metrics, predict_sentences(model, set, 64, pad, &job::group(), std::ref(progress)), set, suffix));
  }
  return all;
}
template <class Model>
metric_values evaluate_task(Model& model, const tagging_task_data& task, token_id pad) {
  metric_values all;
  for (const auto& [suffix, set] : task.dev) {
    pass_progress progress("finetune: evaluating", "dev sentences");
    all.append(tagging_metrics(set, predict_tags(model, set, 64, pad, &job::group(), std::ref(progress)), task.entities, suffix));
  }
  return all;
}

template <class Model>
metric_values evaluate_task(Model& model, const squad_task_data& task, token_id pad) {
  metric_values all;
  for (const auto& [suffix, set] : task.dev) {
    pass_progress progress("finetune: evaluating", "dev windows");
    all.append(squad_metrics(set.source, predict_answers(model, set, 32, pad, task.options, &job::group(), std::ref(progress)), suffix));
  }
  return all;
}

// The library's classification task (train/classification_task.hpp) with the program's progress,
// metrics, evaluation and training states. Models earlybert_task; dense training uses it as the
// efficient stage of an unpruned model. `seed` orders the data and keys the dropout (--seed; the
// second copy of an instability run takes another).
template <class Model, class TaskData>
class finetune_task {
 public:
  finetune_task(const finetune_options& o, const TaskData& task, token_id pad, metrics_log& metrics, long steps_per_epoch)
      : finetune_task(o, task, pad, metrics, steps_per_epoch, o.common.seed) {}
  finetune_task(const finetune_options& o, const TaskData& task, token_id pad, metrics_log& metrics, long steps_per_epoch, std::uint64_t seed)
      : o_(o), task_(task), pad_(pad), metrics_(metrics), steps_per_epoch_(steps_per_epoch),
        data_(training_data(o, task, pad, steps_per_epoch, seed)), report_("finetune", o.earlybert.enabled, metrics) {}

  void attach(Model& model) { model_ = &model; }

  var<float> loss(tape<float>& t, Model& model, pipeline_stage stage, long step, int k) {
    const var<float> loss = data_.loss(t, model, stage, step, k);
    report_.add_tokens(static_cast<double>(data_.last_batch().real_tokens()));
    return loss;
  }

  double last_forward_flops(const Model& model) const { return data_.last_forward_flops(model); }

  void on_step(pipeline_stage stage, long step, long total, const step_report& r) {
    report_.step(stage, step, total, r);
    if (stage == pipeline_stage::efficient) {
      const bool periodic = o_.eval_every > 0 && step % o_.eval_every == 0;
      const bool epoch_end = o_.eval_every <= 0 && step % steps_per_epoch_ == 0;
      if (periodic || epoch_end || step == total) evaluate(step);
    }
  }

  // A new IMP level or the second copy of an instability run trains the same steps again: the step's
  // last evaluation is no longer the model's.
  void on_event(const json& event) {
    if (event["event"] == "imp_level_start" || event["event"] == "instability_second_copy") last_evaluated_ = -1;
    if (event["event"] == "imp_level_start") place_ = fmt::format("IMP level {} ", event["level"].get<int>());
    if (event["event"] == "instability_second_copy") place_ = "second copy ";
    report_.event(event);
  }

  // Training states (checkpoints.hpp): none unless attached.
  void attach_checkpoints(const run_checkpoints& checkpoints) { checkpoints_ = &checkpoints; }
  bool checkpoint_due(pipeline_stage, long step) const { return checkpoints_ != nullptr && checkpoints_->due(step); }
  bool stop_requested() const { return checkpoints_ != nullptr && checkpoints_->stop_requested(); }
  void write_checkpoint(training_state_writer& state) const { checkpoints_->write(state, record()); }
  json record() const {
    json r = report_.record();
    r["last_evaluated"] = last_evaluated_;
    json metrics = json::object();
    for (const auto& [name, value] : last_metrics_.items()) metrics[name] = value;
    r["last_metrics"] = metrics;
    if (first_copy_ != nullptr) r["first_copy"] = first_copy_->record();
    return r;
  }
  // The second copy of an instability run keeps the first copy's record in its own, so that a run
  // resumed while the second trains still knows the first's tokens and evaluation time.
  void attach_first_copy(const finetune_task& first) { first_copy_ = &first; }
  void restore(const nlohmann::json& record) {
    report_.restore(record);
    last_evaluated_ = read_whole_number<long>(record.at("last_evaluated"), "last_evaluated");
    last_metrics_ = metric_values();
    for (const auto& item : record.at("last_metrics").items()) last_metrics_.add(item.key(), item.value().template get<double>());
  }

  // The task's metrics on every dev set (the first set's unsuffixed, the main metric first).
  const metric_values& evaluate(long step) {
    if (step == last_evaluated_) return last_metrics_;
    last_metrics_ = report_.evaluation([&] { return evaluate_task(*model_, task_, pad_); });
    last_evaluated_ = step;
    const auto& [main, value] = last_metrics_.items().front();
    // The step as the run counts it: EarlyBERT's efficient stage, an IMP level and an instability run's
    // second copy each count their steps from 1.
    messages::status("finetune", "{}{}step {} dev {} {:.4f}", place_, o_.earlybert.enabled ? "efficient " : "", step, main, value);
    json event{{"event", "eval"}, {"step", step}};
    json metrics = json::object();
    for (const auto& [name, v] : last_metrics_.items()) {
      metrics[name] = v;
      if (name == "accuracy") event["accuracy"] = v;
    }
    event["metrics"] = metrics;
    metrics_.write(event);
    return last_metrics_;
  }

  // Runs evaluate() off the training clock, without an event.
  template <class Evaluate>
  auto report_evaluation(Evaluate&& evaluate) {
    return report_.evaluation(evaluate);
  }

  double eval_seconds() const { return report_.eval_seconds(); }
  double tokens() const { return report_.tokens(); }

 private:
  const finetune_options& o_;
  const TaskData& task_;
  token_id pad_;
  metrics_log& metrics_;
  long steps_per_epoch_;
  Model* model_ = nullptr;
  using training_data_type = typename training_data_for<Model, decltype(TaskData::train)>::type;
  static training_data_type training_data(const finetune_options& o, const TaskData& task, token_id pad, long steps_per_epoch, std::uint64_t seed) {
    const int accumulation = o.accumulation * job::processes();
    if constexpr (std::is_same_v<Model, exit_tagger>) {
      const long joint_steps = o.steps.value_or(steps_per_epoch * o.epochs);
      return training_data_type(task.train, o.batch, accumulation, seed, pad, self_sampling_options{}, joint_steps);
    } else {
      return training_data_type(task.train, o.batch, accumulation, seed, pad);
    }
  }

  training_data_type data_;
  stage_reporter report_;
  metric_values last_metrics_;
  long last_evaluated_ = -1;
  std::string place_;  // where the steps count from, for the eval line ("IMP level 2 ", "second copy ")
  const run_checkpoints* checkpoints_ = nullptr;
  const finetune_task* first_copy_ = nullptr;
};

}  // namespace earlybert::cli
