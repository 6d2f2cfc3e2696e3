// SPDX-License-Identifier: Apache-2.0
// `earlybert finetune`: sequence classification on a GLUE-style TSV file (one text column, or two for
// sentence pairs), from random initialisation or from a checkpoint, evaluated on a dev file; with
// --earlybert, through the EarlyBERT pipeline (search, draw, efficient training).
#include <numeric>

#include <nlohmann/json.hpp>

#include "earlybert_setup.hpp"
#include "finetune.hpp"

namespace earlybert::cli {

namespace {

using json = nlohmann::ordered_json;

// The library's classification task (train/classification_task.hpp) with the program's progress,
// metrics, evaluation and training states. Models earlybert_task; dense training uses it as the
// efficient stage of an unpruned model.
template <class Model>
class finetune_task {
 public:
  finetune_task(const finetune_options& o, const classification_dataset& train, const classification_dataset& dev,
                token_id pad, metrics_log& metrics, long steps_per_epoch)
      : o_(o), dev_(dev), pad_(pad), metrics_(metrics), steps_per_epoch_(steps_per_epoch),
        data_(train, o.batch, o.accumulation, o.common.seed, pad), report_("finetune", o.earlybert.enabled, metrics) {}

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

  void on_event(const json& event) { report_.event(event); }

  // Training states (checkpoints.hpp): none unless attached.
  void attach_checkpoints(const run_checkpoints& checkpoints) { checkpoints_ = &checkpoints; }
  bool checkpoint_due(pipeline_stage, long step) const { return checkpoints_ != nullptr && checkpoints_->due(step); }
  void write_checkpoint(training_state_writer& state) const { checkpoints_->write(state, record()); }
  json record() const {
    json r = report_.record();
    r["last_evaluated"] = last_evaluated_;
    r["last_accuracy"] = last_accuracy_;
    return r;
  }
  void restore(const nlohmann::json& record) {
    report_.restore(record);
    last_evaluated_ = read_whole_number<long>(record.at("last_evaluated"), "last_evaluated");
    last_accuracy_ = record.at("last_accuracy").get<double>();
  }

  double evaluate(long step) {
    if (step == last_evaluated_) return last_accuracy_;
    last_accuracy_ = report_.evaluation([&] { return classification_accuracy(*model_, dev_, 64, pad_); });
    last_evaluated_ = step;
    messages::status("finetune", "step {} dev accuracy {:.4f}", step, last_accuracy_);
    metrics_.write({{"event", "eval"}, {"step", step}, {"accuracy", last_accuracy_}});
    return last_accuracy_;
  }

  double eval_seconds() const { return report_.eval_seconds(); }
  double tokens() const { return report_.tokens(); }

 private:
  const finetune_options& o_;
  const classification_dataset& dev_;
  token_id pad_;
  metrics_log& metrics_;
  long steps_per_epoch_;
  Model* model_ = nullptr;
  classification_task<Model> data_;
  stage_reporter report_;
  double last_accuracy_ = 0;
  long last_evaluated_ = -1;
  const run_checkpoints* checkpoints_ = nullptr;
};

finetune_result finetune_model(const finetune_options& o, const vocabulary& vocab, const std::optional<checkpoint_config>& init,
                               const classification_dataset& train, const classification_dataset& dev) {
  using model_type = bert_for_sequence_classification<float, shapes::any>;
  const special_tokens special = special_tokens::of(vocab);
  bert_config config = init ? init->model : named_shape_config(o.shape, vocab.size());
  config.num_labels = o.num_labels;
  if (config.vocab_size != vocab.size()) {
    throw config_error(fmt::format("--vocab has {} tokens, but the model's vocabulary has {}", vocab.size(), config.vocab_size));
  }
  if (o.max_seq > config.max_positions) {
    throw config_error(fmt::format("--max-seq is {}, but the model has only {} positions", o.max_seq, config.max_positions));
  }
  if (o.earlybert.enabled && config.pruned()) {
    throw config_error(fmt::format("--init '{}' is already pruned; EarlyBERT starts from an unpruned model", o.init));
  }
  model_type model(config);
  rng random(o.common.seed);
  model.initialise(random);
  if (init) {
    const load_report report = load_weights(o.init, model);
    if (!report.initialised.empty()) {
      messages::status("finetune", "initialised from '{}'; freshly initialised: {}", o.init, fmt::join(report.initialised, ", "));
    }
  }

  const auto batch = static_cast<std::size_t>(o.batch);
  const long steps_per_epoch = static_cast<long>((train.examples.size() + batch - 1) / batch);
  const long dense_steps = o.steps.value_or(steps_per_epoch * o.epochs);
  optimization_options optimization;
  optimization.learning_rate = o.lr.value_or(init ? 3e-4 : 1e-3);
  optimization.warmup_ratio = o.warmup_ratio;
  optimization.weight_decay = o.weight_decay;
  optimization.max_grad_norm = o.max_grad_norm;
  optimization.on_nonfinite = nonfinite_policy_of(o.common.on_nonfinite);
  optimization.accumulation_steps = o.accumulation;

  const std::optional<training_state_reader> state = open_training_state("finetune", o.common, o.out);
  metrics_log metrics = open_metrics(o.common, state);
  finetune_task<model_type> task(o, train, dev, special.pad, metrics, steps_per_epoch);
  task.attach(model);
  if (state) task.restore(state->record("task"));
  const training_state_reader* resume = state ? &*state : nullptr;
  const run_checkpoints checkpoints(o.common, o.out, metrics);
  task.attach_checkpoints(checkpoints);
  finetune_result result;

  if (!o.earlybert.enabled) {
    const dense_report report = run_dense(model, optimization, dense_steps, task, resume);
    result.total_steps = dense_steps;
    result.train_flops = report.flops;
    result.train_wall_s = report.wall_s - task.eval_seconds();
    result.dev_accuracy = task.evaluate(dense_steps);
    metrics.write({{"event", "summary"}, {"mode", "dense"}, {"dev_accuracy", result.dev_accuracy}, {"train_wall_s", result.train_wall_s},
                   {"train_flops", result.train_flops}, {"total_steps", result.total_steps}});
  } else {
    const earlybert_cli_options& e = o.earlybert;
    // The paper's fine-tuning recipe: the ticket trains for two of the dense run's three epochs, at
    // twice its learning rate.
    const earlybert_options eo = make_pipeline_options(e, optimization, steps_per_epoch, dense_steps,
                                                       std::max(1L, std::lround(2.0 * static_cast<double>(dense_steps) / 3.0)),
                                                       2 * optimization.learning_rate);
    const ticket_selector selector = make_selector(e);
    auto criterion = make_criterion<bert_model<float, shapes::any>>(e, o.common.seed);
    any_detector detector = make_detector(e, steps_per_epoch);
    const earlybert_report report = run_earlybert(model, criterion, selector, detector, eo, task, o.max_seq, resume);
    result.total_steps = report.ticket_step + report.efficient_steps;
    result.ticket_step = report.ticket_step;
    result.search_steps = report.ticket_step;
    result.train_flops = report.total_flops();
    result.train_wall_s = report.total_wall_s() - task.eval_seconds();
    result.dev_accuracy = task.evaluate(report.efficient_steps);
    result.heads_kept = report.ticket.heads_kept();
    result.ffn_kept = report.ticket.neurons_kept();
    result.flops_ratio = report.encoder_flops_ratio;
    json summary = earlybert_summary(report, e.importance, steps_per_epoch, task.eval_seconds());
    summary["dev_accuracy"] = result.dev_accuracy;
    metrics.write(summary);
    result.ticket_record = ticket_record(report, steps_per_epoch);
  }
  if (!o.out.empty()) {
    save_checkpoint(o.out, model, vocab);
    if (!result.ticket_record.is_null()) write_file_atomically(fs::path(o.out) / "earlybert_ticket.json", result.ticket_record.dump() + "\n");
    checkpoints.finished();
  }
  result.tokens = task.tokens();
  return result;
}
}  // namespace

finetune_result finetune_with(const finetune_options& o, const vocabulary& vocab, const classification_dataset& train,
                              const classification_dataset& dev) {
  std::optional<checkpoint_config> init;
  if (!o.init.empty()) init = read_config(fs::path(o.init) / "config.json");
  if (init) {
    if (!o.shape.empty() && shape_name_of(init->model) != o.shape) {
      const bert_config& c = init->model;
      throw config_error(fmt::format("--shape is '{}', but the checkpoint '{}' holds a {}/{}/{}/{} (layers/hidden/heads/ffn) model{}",
                                     o.shape, o.init, c.layers, c.hidden, c.heads, c.ffn,
                                     shape_name_of(c).empty() ? "" : fmt::format(" ('{}')", shape_name_of(c))));
    }
  } else if (o.shape.empty()) {
    throw config_error("--shape is required when not initialising from a checkpoint (--init)");
  }
  return finetune_model(o, vocab, init, train, dev);
}

void check_finetune_options(const finetune_options& o) {
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--epochs", o.epochs);
  if (o.steps) require_positive("--steps", *o.steps);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  if (o.accumulation > o.batch) {
    throw config_error(fmt::format("--accumulation is {}, expected at most --batch ({}): each micro-batch holds an example", o.accumulation, o.batch));
  }
  require_positive("--num-labels", o.num_labels);
  if (o.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", o.max_seq));
  if (o.lr && !(*o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", *o.lr));
  (void)nonfinite_policy_of(o.common.on_nonfinite);
  check_checkpoint_options(o.common);
  if (o.earlybert.enabled) check_earlybert_options(o.earlybert);
}

int run_finetune(const finetune_options& o) {
  apply_threads("finetune", o.common.threads);
  check_finetune_options(o);
  if (!o.out.empty()) check_output_directory(o.out);
  const vocabulary vocab = vocabulary::load(o.vocab);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  const stopwatch reading;
  const classification_dataset train = read_classification_tsv(o.train, tokenizer, o.max_seq, o.num_labels);
  const classification_dataset dev = read_classification_tsv(o.dev, tokenizer, o.max_seq, o.num_labels);
  if (train.sentence_pairs != dev.sentence_pairs) {
    throw config_error(fmt::format("--train has {} text column(s) but --dev has {}", train.text_columns.size(), dev.text_columns.size()));
  }
  messages::status("finetune", "{} training and {} dev examples ({}), tokenised in {:.1f} s", train.examples.size(),
             dev.examples.size(), train.sentence_pairs ? "sentence pairs" : "single sentences", reading.seconds());
  const finetune_result r = finetune_with(o, vocab, train, dev);
  if (o.earlybert.enabled) {
    fmt::print("finetune (EarlyBERT, {} ticket): ticket at step {}, {} steps in all, {:.1f} s training, {:.3g} FLOPs; dev accuracy {:.4f}; "
               "checkpoint in '{}'\n", o.earlybert.importance, r.ticket_step, r.total_steps, r.train_wall_s, r.train_flops, r.dev_accuracy, o.out);
  } else {
    fmt::print("finetune: {} steps in {:.1f} s ({:.0f} tokens/s), {:.3g} FLOPs; dev accuracy {:.4f}; checkpoint in '{}'\n", r.total_steps,
               r.train_wall_s, r.tokens / r.train_wall_s, r.train_flops, r.dev_accuracy, o.out);
  }
  return 0;
}

}  // namespace earlybert::cli
