// SPDX-License-Identifier: Apache-2.0
// `earlybert pretrain`: masked-LM pre-training from random initialisation on a raw-text corpus; with
// --earlybert, through the EarlyBERT pipeline (search, draw, efficient pre-training).
#include <functional>
#include <numeric>

#include "earlybert_setup.hpp"
#include "pretrain.hpp"

namespace earlybert::cli {

namespace {
// The masked-LM task: sequences in a shuffled order per (stage, pass), fresh 80/10/10 masking per
// micro-batch, progress, metrics and held-out evaluation. Models earlybert_task; dense pre-training
// runs it as the efficient stage of an unpruned model.
template <class Model>
class mlm_task {
 public:
  mlm_task(const pretrain_options& o, const text_corpus& corpus, index_t train_sequences, const special_tokens& special,
           index_t vocab_size, metrics_log& metrics, std::function<masked_lm_metrics(long)> evaluate)
      : o_(o), corpus_(corpus), special_(special), vocab_size_(vocab_size), evaluate_(std::move(evaluate)),
        order_(static_cast<std::size_t>(train_sequences), o.batch, o.accumulation * job::processes(), o.common.seed, 2000, last_batch::drop),
        report_("pretrain", o.earlybert.enabled, metrics) {}

  long steps_per_pass() const { return order_.steps_per_pass(); }

  var<float> loss(tape<float>& t, Model& model, pipeline_stage stage, long step, int k) {
    make_corpus_batch(corpus_, order_.micro_batch(stage, step, k), o_.seq, special_, batch_,
                      o_.segment_pairs ? corpus_layout::segment_pairs : corpus_layout::single);
    const std::uint64_t key = step_key(o_.common.seed, stage, step, k);
    rng masking(derive_key(key, 0x3A5C));
    mask_tokens(batch_, masking, special_, vocab_size_);
    report_.add_tokens(static_cast<double>(batch_.tokens()));
    return model.forward(t, batch_, true, key).loss;
  }

  double last_forward_flops(const Model& model) const { return model.forward_flops(batch_); }

  void on_step(pipeline_stage stage, long step, long total, const step_report& r) {
    report_.step(stage, step, total, r);
    if (stage == pipeline_stage::efficient && ((o_.eval_every > 0 && step % o_.eval_every == 0) || step == total)) evaluate(step);
  }

  void on_event(const nlohmann::ordered_json& event) { report_.event(event); }

  // Training states (checkpoints.hpp): none unless attached.
  void attach_checkpoints(const run_checkpoints& checkpoints) { checkpoints_ = &checkpoints; }
  bool checkpoint_due(pipeline_stage, long step) const { return checkpoints_ != nullptr && checkpoints_->due(step); }
  void write_checkpoint(training_state_writer& state) const { checkpoints_->write(state, record()); }
  nlohmann::ordered_json record() const {
    nlohmann::ordered_json r = report_.record();
    r["last_evaluated"] = last_evaluated_;
    r["last_loss"] = last_.loss;
    r["last_accuracy"] = last_.accuracy;
    return r;
  }
  void restore(const nlohmann::json& record) {
    report_.restore(record);
    last_evaluated_ = read_whole_number<long>(record.at("last_evaluated"), "last_evaluated");
    last_ = {record.at("last_loss").get<double>(), record.at("last_accuracy").get<double>(), 0};
  }

  masked_lm_metrics evaluate(long step) {
    if (step == last_evaluated_) return last_;
    last_ = report_.evaluation([&] { return evaluate_(step); });
    last_evaluated_ = step;
    return last_;
  }

  double eval_seconds() const { return report_.eval_seconds(); }
  double tokens() const { return report_.tokens(); }

 private:
  const pretrain_options& o_;
  const text_corpus& corpus_;
  const special_tokens& special_;
  index_t vocab_size_;
  std::function<masked_lm_metrics(long)> evaluate_;
  example_order order_;
  token_batch batch_;
  stage_reporter report_;
  long last_evaluated_ = -1;
  masked_lm_metrics last_{};
  const run_checkpoints* checkpoints_ = nullptr;
};

// The training files --corpus names, in reading order; config_error where --eval-corpus is one of
// them (its "held-out" sequences would be trained on).
std::vector<fs::path> training_files(const pretrain_options& o) {
  std::vector<fs::path> files;
  for (const std::string& argument : o.corpus) {
    const std::vector<fs::path> named = corpus_files(argument);
    files.insert(files.end(), named.begin(), named.end());
  }
  if (!o.eval_corpus.empty()) {
    std::error_code ec;
    const fs::path held_out = fs::weakly_canonical(o.eval_corpus, ec);
    for (const fs::path& file : files) {
      if (fs::weakly_canonical(file, ec) == held_out) {
        throw config_error(fmt::format("--eval-corpus '{}' is also a training file of --corpus ('{}'), expected held-out text",
                                       o.eval_corpus, file.string()));
      }
    }
  }
  return files;
}

pretrain_result pretrain(const pretrain_options& o, const vocabulary& vocab) {
  using model_type = bert_for_masked_lm<float, shapes::any>;
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  const special_tokens special = special_tokens::of(vocab);
  bert_config config = named_shape_config(o.shape, vocab.size());
  if (o.seq > config.max_positions) {
    throw config_error(fmt::format("--seq is {}, but the model has only {} positions", o.seq, config.max_positions));
  }

  const stopwatch reading;
  const text_corpus corpus = read_corpora(training_files(o), tokenizer);
  for (const corpus_source& source : corpus.sources) {
    messages::status("pretrain", "corpus '{}': {} lines, {} tokens", source.path.string(), source.lines, source.tokens);
  }
  const index_t available = corpus.sequences(o.seq);
  // Held-out sequences: another corpus, or the last ones of this one (never trained on).
  const std::optional<text_corpus> eval_corpus = o.eval_corpus.empty() ? std::nullopt : std::optional(read_corpus(o.eval_corpus, tokenizer));
  const text_corpus& held_out = eval_corpus ? *eval_corpus : corpus;
  const index_t held = std::min(o.eval_sequences, eval_corpus ? eval_corpus->sequences(o.seq) : available / 10);
  const index_t train_sequences = eval_corpus ? available : available - held;
  if (train_sequences < o.batch) {
    throw config_error(fmt::format("--corpus holds {} training sequences of {} tokens, fewer than --batch {}", train_sequences, o.seq, o.batch));
  }
  std::vector<std::size_t> eval_indices(static_cast<std::size_t>(held));
  std::iota(eval_indices.begin(), eval_indices.end(), static_cast<std::size_t>(eval_corpus ? 0 : train_sequences));
  messages::status("pretrain", "{} tokens from {} lines of {} files; {} training and {} held-out sequences of {}; tokenised in {:.1f} s",
                   corpus.tokens.size(), corpus.lines, corpus.sources.size(), train_sequences, held, o.seq, reading.seconds());

  model_type model(config);
  rng random(o.common.seed);
  model.initialise(random);
  model.bert.set_dropout(o.dropout, o.dropout);
  const optimization_options optimization = optimization_of(o, o.lr);

  const std::optional<training_state_reader> state = open_training_state("pretrain", o.common, o.out);
  metrics_log metrics = open_metrics(o.common, state);
  const auto evaluate = [&](long step) {
    const masked_lm_metrics e = evaluate_masked_lm(model, held_out, eval_indices, o.seq, o.batch, special, vocab.size(), &job::group());
    messages::status("pretrain", "step {} held-out masked-LM loss {:.4f}, accuracy {:.4f}", step, e.loss, e.accuracy);
    metrics.write({{"event", "eval"}, {"step", step}, {"mlm_accuracy", e.accuracy}, {"loss", e.loss}});
    return e;
  };
  mlm_task<model_type> task(o, corpus, train_sequences, special, vocab.size(), metrics, evaluate);
  if (state) task.restore(state->record("task"));
  else evaluate(0);
  const training_state_reader* resume = state ? &*state : nullptr;
  const run_checkpoints checkpoints(o.common, o.out, metrics);
  task.attach_checkpoints(checkpoints);
  job::agree(o.common.settings);

  double train_seconds = 0, flops = 0;
  long total_steps = o.steps;
  nlohmann::ordered_json record;
  masked_lm_metrics final{};
  if (!o.earlybert.enabled) {
    const dense_report report = run_dense(model, optimization, o.steps, task, resume);
    train_seconds = report.wall_s - task.eval_seconds();
    flops = report.flops;
    final = task.evaluate(o.steps);
    metrics.write({{"event", "summary"}, {"mode", "dense"}, {"mlm_accuracy", final.accuracy}, {"loss", final.loss},
                   {"train_wall_s", train_seconds}, {"train_flops", flops}, {"total_steps", o.steps}});
  } else {
    // Pre-training's recipe is not published (docs/earlybert.md §0): the ticket
    // trains for two thirds of --steps (the fine-tuning recipe's ratio) at --lr, continuing from the
    // draw by default (--restart-from).
    const earlybert_cli_options& e = o.earlybert;
    const earlybert_options eo = make_pipeline_options(e, optimization, task.steps_per_pass(), o.steps,
                                                       std::max(1L, std::lround(2.0 * static_cast<double>(o.steps) / 3.0)), o.lr);
    const ticket_selector selector = make_selector(e);
    auto criterion = make_criterion<bert_model<float, shapes::any>>(e, o.common.seed);
    any_detector detector = make_detector(e, task.steps_per_pass());
    const earlybert_report report = run_earlybert(model, criterion, selector, detector, eo, task, o.seq, resume);
    train_seconds = report.total_wall_s() - task.eval_seconds();
    flops = report.total_flops();
    total_steps = report.ticket_step + report.efficient_steps;
    final = task.evaluate(report.efficient_steps);
    nlohmann::ordered_json summary = earlybert_summary(report, e.importance, task.steps_per_pass(), task.eval_seconds(), o.steps);
    summary["mlm_accuracy"] = final.accuracy;
    summary["loss"] = final.loss;
    metrics.write(summary);
    record = ticket_record(report, task.steps_per_pass());
  }
  if (job::lead()) {
    model.bert.set_dropout(config.hidden_dropout, config.attention_dropout);  // fine-tuning's dropout, whatever pre-training used
    save_checkpoint(o.out, model, vocab, tokenizer_settings{vocab.looks_uncased(), o.seq}, weight_dtype_of(o.common.save_dtype));
    if (!record.is_null()) write_file_atomically(fs::path(o.out) / "earlybert_ticket.json", record.dump() + "\n");
  }
  checkpoints.finished();
  return {final.loss, final.accuracy, train_seconds, flops, total_steps, task.tokens()};
}
}  // namespace

void check_pretrain_options(const pretrain_options& o) {
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--steps", o.steps);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  if (o.accumulation > o.batch) {
    throw config_error(fmt::format("--accumulation is {}, expected at most --batch ({}): each micro-batch holds an example", o.accumulation, o.batch));
  }
  job::check_batch(o.batch, o.accumulation);
  if (o.seq < 3) throw config_error(fmt::format("--seq is {}, expected at least 3", o.seq));
  if (o.segment_pairs && o.seq < 5) {
    throw config_error(fmt::format("--segment-pairs with --seq {}, expected at least 5 ([CLS] A [SEP] B [SEP], A and B a token each)", o.seq));
  }
  if (!(o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", o.lr));
  if (!(o.dropout >= 0 && o.dropout < 1)) throw config_error(fmt::format("--dropout is {}, expected a value in [0, 1)", o.dropout));
  check_shape_name(o.shape);
  (void)nonfinite_policy_of(o.common.on_nonfinite);
  (void)overlap_of(o.common.overlap);
  check_checkpoint_options(o.common);
  if (o.earlybert.enabled) check_earlybert_options(o.earlybert);
}

pretrain_result pretrain_with(const pretrain_options& o, const vocabulary& vocab) {
  return pretrain(o, vocab);
}

int run_pretrain(const pretrain_options& o) {
  apply_threads("pretrain", o.common.threads);
  check_pretrain_options(o);
  check_output_directory(o.out, o.common.overwrite || o.common.resume);
  const vocabulary vocab = vocabulary::load(o.vocab);
  const pretrain_result r = pretrain_with(o, vocab);
  if (!job::lead()) return 0;
  fmt::print("pretrain{}: {} steps in {:.1f} s ({:.0f} tokens/s), {:.3g} FLOPs; held-out masked-LM loss {:.4f}, accuracy {:.4f}; checkpoint in '{}'\n",
             o.earlybert.enabled ? " (EarlyBERT)" : "", r.total_steps, r.train_wall_s, r.tokens / r.train_wall_s, r.train_flops,
             r.mlm_loss, r.mlm_accuracy, o.out);
  return 0;
}

}  // namespace earlybert::cli
