// SPDX-License-Identifier: Apache-2.0
// `earlybert finetune`: sequence classification on a GLUE-style TSV file (one text column, or two for
// sentence pairs), from random initialisation or from a checkpoint, evaluated on a dev file; with
// --earlybert, through the EarlyBERT pipeline (search, draw, efficient training).
#include <functional>
#include <numeric>

#include <nlohmann/json.hpp>

#include "cli/finetune.hpp"

namespace earlybert::cli {

namespace {

using json = nlohmann::ordered_json;

// Type-erased criterion and detector, so that every choice runs through one instantiation of the
// pipeline per shape (the library's templates stay the extension point for user types).
template <class Bert>
struct any_criterion {
  std::function<structure_scores(Bert&)> score_fn;
  std::function<void(Bert&)> observe_fn;
  structure_scores score(Bert& model) { return score_fn(model); }
  void observe(Bert& model) {
    if (observe_fn) observe_fn(model);
  }
};

struct any_detector {
  std::function<bool(const structure_masks&, long)> observe_fn;
  bool observe(const structure_masks& masks, long step) { return observe_fn(masks, step); }
};

template <class Bert>
any_criterion<Bert> make_criterion(const earlybert_cli_options& e, std::uint64_t seed) {
  const auto wrap = [](auto criterion) {
    auto shared = std::make_shared<decltype(criterion)>(std::move(criterion));
    any_criterion<Bert> any;
    any.score_fn = [shared](Bert& m) { return shared->score(m); };
    if constexpr (gradient_observer<decltype(criterion), Bert>) any.observe_fn = [shared](Bert& m) { shared->observe(m); };
    return any;
  };
  if (e.ticket == "slimming") return wrap(slimming_criterion{e.absolute});
  if (e.ticket == "random") return wrap(random_criterion{derive_key(seed, 0x7a11)});
  if (e.ticket == "magnitude") return wrap(magnitude_criterion{});
  if (e.ticket == "gradient") return wrap(gradient_criterion{});
  if (e.ticket == "taylor") return wrap(taylor_criterion{});
  throw config_error(fmt::format("--ticket is '{}', expected slimming, random, magnitude, gradient or taylor", e.ticket));
}

inline any_detector make_detector(const earlybert_cli_options& e, long steps_per_epoch) {
  const auto wrap = [](auto detector) {
    auto shared = std::make_shared<decltype(detector)>(std::move(detector));
    return any_detector{[shared](const structure_masks& m, long step) { return shared->observe(m, step); }};
  };
  if (e.detector == "mask-distance") return wrap(mask_distance_detector(e.window, e.epsilon, e.joint));
  if (e.detector == "fixed") {
    if (e.draw_step < 1) throw config_error(fmt::format("--draw-step is {}, expected a step of at least 1 for --detector fixed", e.draw_step));
    return wrap(fixed_step_detector(std::lround(e.draw_step)));
  }
  if (e.detector == "fraction") return wrap(fixed_step_detector::at_fraction(e.draw_step, steps_per_epoch));
  if (e.detector == "never") return wrap(never_detector{});
  throw config_error(fmt::format("--detector is '{}', expected mask-distance, fixed, fraction or never", e.detector));
}

selection_rule make_rule(const char* what, double ratio, const std::string& scope, const std::string& counting, index_t min_kept) {
  selection_rule r;
  r.ratio = ratio;
  if (scope == "layerwise") r.scope = selection_scope::layerwise;
  else if (scope == "global") r.scope = selection_scope::global;
  else throw config_error(fmt::format("--{}-scope is '{}', expected layerwise or global", what, scope));
  if (counting == "exact") r.counting = counting_rule::exact;
  else if (counting == "quantile") r.counting = counting_rule::quantile;
  else throw config_error(fmt::format("--counting is '{}', expected exact or quantile", counting));
  r.min_kept = min_kept;
  if (!(ratio >= 0 && ratio < 1)) throw config_error(fmt::format("--prune-{} is {}, expected a value in [0, 1)", what, ratio));
  if (min_kept < 1) throw config_error(fmt::format("--min-kept is {}, expected at least 1", min_kept));
  return r;
}

// The classification task: batches in a shuffled order per (stage, epoch), progress, metrics and
// evaluation. Models earlybert_task; dense training uses it as the efficient stage of an unpruned model.
template <class Model>
class classification_task {
 public:
  classification_task(const finetune_options& o, const classification_dataset& train, const classification_dataset& dev,
                      token_id pad, metrics_log& metrics, long steps_per_epoch)
      : o_(o), train_(train), dev_(dev), pad_(pad), metrics_(metrics), steps_per_epoch_(steps_per_epoch),
        order_(train.examples.size()) {}

  void attach(Model& model) { model_ = &model; }

  var<float> loss(tape<float>& t, Model& model, pipeline_stage stage, long step, int k) {
    const long epoch = step / steps_per_epoch_;
    const auto stage_key = static_cast<std::uint64_t>(stage == pipeline_stage::search ? 1 : 2);
    if (epoch != order_epoch_ || stage != order_stage_) {
      std::iota(order_.begin(), order_.end(), std::size_t{0});
      rng shuffle(derive_key(o_.common.seed, 1000 * stage_key + static_cast<std::uint64_t>(epoch)));
      shuffle.shuffle(order_);
      order_epoch_ = epoch;
      order_stage_ = stage;
    }
    const auto batch = static_cast<std::size_t>(o_.batch);
    const std::size_t begin = static_cast<std::size_t>(step % steps_per_epoch_) * batch;
    const std::size_t end = std::min(order_.size(), begin + batch);
    const auto micro = std::max<std::size_t>(batch / static_cast<std::size_t>(o_.accumulation), 1);
    const std::size_t b0 = std::min(end - 1, begin + static_cast<std::size_t>(k) * micro);
    const std::size_t b1 = k + 1 == o_.accumulation ? end : std::min(end, b0 + micro);
    make_classification_batch(train_, std::span(order_).subspan(b0, std::max(b1, b0 + 1) - b0), pad_, batch_);
    tokens_ += static_cast<double>(batch_.real_tokens());
    const std::uint64_t key = derive_key(derive_key(o_.common.seed, stage_key), static_cast<std::uint64_t>(step) * 64 + static_cast<std::uint64_t>(k));
    return model.loss(t, model.logits(t, batch_, true, key), batch_);
  }

  double last_forward_flops(const Model& model) const { return model.forward_flops(batch_); }

  void on_step(pipeline_stage stage, long step, long total, const step_report& r) {
    if (!progress_ || stage != progress_stage_) {
      progress_.emplace(std::string(o_.earlybert.enabled ? to_string(stage) : "finetune"), total);
      progress_stage_ = stage;
      stage_clock_ = stopwatch();
      stage_tokens_ = tokens_;
    }
    const double elapsed = stage_clock_.seconds();
    const double rate = (tokens_ - stage_tokens_) / std::max(elapsed, 1e-9);
    progress_->update(step, r.loss, rate, elapsed);
    json line{{"event", "step"}};
    if (o_.earlybert.enabled) line["stage"] = to_string(stage);
    line.update(json{{"step", step}, {"loss", r.loss}, {"lr", r.learning_rate}, {"tokens_per_s", rate}, {"elapsed_s", clock_.seconds()}});
    metrics_.write(line);
    if (stage == pipeline_stage::efficient) {
      const bool periodic = o_.eval_every > 0 && step % o_.eval_every == 0;
      const bool epoch_end = o_.eval_every <= 0 && step % steps_per_epoch_ == 0;
      if (periodic || epoch_end || step == total) evaluate(step);
    }
  }

  void on_event(const json& event) {
    metrics_.write(event);
    if (progress_) progress_->interrupt();
    if (event["event"] == "ticket") {
      fmt::print(stderr, "finetune: ticket drawn at search step {} ({}); heads kept per layer [{}], FFN kept [{}]; encoder FLOPs ratio {:.3f}\n",
                 event["step"].get<long>(), event["detected"].get<bool>() ? "early bird detected" : "search budget reached",
                 fmt::join(event["heads_kept"].get<std::vector<long>>(), ", "), fmt::join(event["ffn_kept"].get<std::vector<long>>(), ", "),
                 event["flops_ratio"].get<double>());
    }
  }

  double evaluate(long step) {
    if (step == last_evaluated_) return last_accuracy_;
    const stopwatch eval;
    if (progress_) progress_->interrupt();
    last_accuracy_ = classification_accuracy(*model_, dev_, 64, pad_);
    last_evaluated_ = step;
    fmt::print(stderr, "finetune: step {} dev accuracy {:.4f}\n", step, last_accuracy_);
    metrics_.write({{"event", "eval"}, {"step", step}, {"accuracy", last_accuracy_}});
    eval_seconds_ += eval.seconds();
    return last_accuracy_;
  }

  double eval_seconds() const { return eval_seconds_; }
  double tokens() const { return tokens_; }

 private:
  const finetune_options& o_;
  const classification_dataset& train_;
  const classification_dataset& dev_;
  token_id pad_;
  metrics_log& metrics_;
  long steps_per_epoch_;
  Model* model_ = nullptr;
  std::vector<std::size_t> order_;
  long order_epoch_ = -1;
  pipeline_stage order_stage_ = pipeline_stage::search;
  token_batch batch_;
  double tokens_ = 0, stage_tokens_ = 0, eval_seconds_ = 0, last_accuracy_ = 0;
  long last_evaluated_ = -1;
  std::optional<progress_display> progress_;
  pipeline_stage progress_stage_ = pipeline_stage::search;
  stopwatch clock_, stage_clock_;
};

std::string mask_bits(const std::vector<std::uint8_t>& m) {
  std::string bits;
  for (auto b : m) bits += b != 0 ? '1' : '0';
  return bits;
}

json masks_json(const structure_masks& m) {
  json heads = json::array(), neurons = json::array();
  for (const auto& l : m.heads) heads.push_back(mask_bits(l));
  for (const auto& l : m.neurons) neurons.push_back(mask_bits(l));
  return {{"heads", heads}, {"ffn", neurons}};
}

template <class Shape>
finetune_result finetune_model(const finetune_options& o, const vocabulary& vocab, const std::optional<checkpoint_config>& init,
                               const classification_dataset& train, const classification_dataset& dev) {
  using model_type = bert_for_sequence_classification<float, Shape>;
  const special_tokens special = special_tokens::of(vocab);
  bert_config config = init ? init->model : bert_config::for_shape<Shape>(vocab.size());
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
      fmt::print(stderr, "finetune: initialised from '{}'; freshly initialised: {}\n", o.init, fmt::join(report.initialised, ", "));
    }
  }

  const auto batch = static_cast<std::size_t>(o.batch);
  const long steps_per_epoch = static_cast<long>((train.examples.size() + batch - 1) / batch);
  const long dense_steps = steps_per_epoch * o.epochs;
  optimization_options optimization;
  optimization.learning_rate = o.lr.value_or(init ? 3e-4 : 1e-3);
  optimization.warmup_ratio = o.warmup_ratio;
  optimization.weight_decay = o.weight_decay;
  optimization.max_grad_norm = o.max_grad_norm;
  optimization.accumulation_steps = o.accumulation;

  metrics_log metrics = o.common.metrics.empty() ? metrics_log() : metrics_log(o.common.metrics);
  classification_task<model_type> task(o, train, dev, special.pad, metrics, steps_per_epoch);
  task.attach(model);
  finetune_result result;
  const stopwatch clock;

  if (!o.earlybert.enabled) {
    trainer<float> train_loop(parameters_of(model), optimization, dense_steps);
    for (long step = 0; step < dense_steps; ++step) {
      const step_report r = train_loop.step([&](tape<float>& t, int k) {
        const var<float> loss = task.loss(t, model, pipeline_stage::efficient, step, k);
        result.train_flops += 3 * task.last_forward_flops(model);
        return loss;
      });
      task.on_step(pipeline_stage::efficient, step + 1, dense_steps, r);
    }
    result.total_steps = dense_steps;
    result.train_wall_s = clock.seconds() - task.eval_seconds();
    result.dev_accuracy = task.evaluate(dense_steps);
    metrics.write({{"event", "summary"}, {"mode", "dense"}, {"dev_accuracy", result.dev_accuracy}, {"train_wall_s", result.train_wall_s},
                   {"train_flops", result.train_flops}, {"total_steps", result.total_steps}});
  } else {
    const earlybert_cli_options& e = o.earlybert;
    earlybert_options eo;
    eo.l1_heads = e.l1_heads;
    eo.l1_ffn = e.l1_ffn;
    eo.check_interval = e.interval > 0 ? e.interval : std::max(1L, steps_per_epoch / 50);
    eo.distance_window = e.window;
    eo.search = optimization;
    eo.search_budget = steps_per_epoch;  // the ticket is drawn within the first epoch
    eo.search_schedule_steps = std::max(dense_steps, eo.search_budget);
    if (e.restart_from == "init") eo.restart_from = restart_point::init;
    else if (e.restart_from == "draw") eo.restart_from = restart_point::draw;
    else throw config_error(fmt::format("--restart-from is '{}', expected init or draw", e.restart_from));
    eo.efficient = optimization;
    eo.efficient.learning_rate = e.efficient_lr.value_or(2 * optimization.learning_rate);
    eo.efficient_steps = e.efficient_steps.value_or(
        std::max(1L, std::lround(e.efficient_epochs.value_or(2.0 * o.epochs / 3.0) * static_cast<double>(steps_per_epoch))));
    const ticket_selector selector{make_rule("heads", e.prune_heads, e.heads_scope, e.counting, e.min_kept),
                                   make_rule("ffn", e.prune_ffn, e.ffn_scope, e.counting, e.min_kept)};
    auto criterion = make_criterion<bert_model<float, Shape>>(e, o.common.seed);
    any_detector detector = make_detector(e, steps_per_epoch);
    const earlybert_report report = run_earlybert(model, criterion, selector, detector, eo, task, o.max_seq);
    result.total_steps = report.ticket_step + report.efficient_steps;
    result.ticket_step = report.ticket_step;
    result.search_steps = report.ticket_step;
    result.train_flops = report.total_flops();
    result.train_wall_s = report.total_wall_s() - task.eval_seconds();
    result.dev_accuracy = task.evaluate(report.efficient_steps);
    result.heads_kept = report.ticket.heads_kept();
    result.ffn_kept = report.ticket.neurons_kept();
    result.flops_ratio = report.encoder_flops_ratio;
    metrics.write({{"event", "summary"},
                   {"mode", "earlybert"},
                   {"ticket", e.ticket},
                   {"dev_accuracy", result.dev_accuracy},
                   {"train_wall_s", result.train_wall_s},
                   {"train_flops", result.train_flops},
                   {"ticket_step", report.ticket_step},
                   {"detected", report.detected},
                   {"ticket_epoch_fraction", static_cast<double>(report.ticket_step) / static_cast<double>(steps_per_epoch)},
                   {"total_steps", result.total_steps},
                   {"search_steps", report.ticket_step},
                   {"efficient_steps", report.efficient_steps},
                   {"search_wall_s", report.search_wall_s},
                   {"draw_wall_s", report.draw_wall_s},
                   {"efficient_wall_s", report.efficient_wall_s},
                   {"eval_wall_s", task.eval_seconds()},
                   {"search_flops", report.search_flops},
                   {"efficient_flops", report.efficient_flops},
                   {"flops_ratio", report.encoder_flops_ratio}});
    // The recorded masks and the ticket, for the pictures (scripts/plot_earlybert.py).
    json checks = json::array();
    for (std::size_t i = 0; i < report.recorded_masks.size(); ++i) {
      json c = masks_json(report.recorded_masks[i]);
      c["step"] = report.check_steps[i];
      checks.push_back(c);
    }
    result.ticket_record = {{"ticket_step", report.ticket_step}, {"detected", report.detected}, {"steps_per_epoch", steps_per_epoch},
                            {"ticket", masks_json(report.ticket)}, {"checks", checks},
                            {"head_coefficients", report.head_coefficients}, {"ffn_coefficients", report.ffn_coefficients}};
  }
  if (!o.out.empty()) {
    save_checkpoint(o.out, model, vocab);
    if (!result.ticket_record.is_null()) write_file_atomically(fs::path(o.out) / "earlybert_ticket.json", result.ticket_record.dump() + "\n");
  }
  result.tokens = task.tokens();
  return result;
}
}  // namespace

finetune_result finetune_with(const finetune_options& o, const vocabulary& vocab, const classification_dataset& train,
                              const classification_dataset& dev) {
  std::optional<checkpoint_config> init;
  if (!o.init.empty()) init = read_config(fs::path(o.init) / "config.json");
  const auto run = [&]<class Shape>() { return finetune_model<Shape>(o, vocab, init, train, dev); };
  if (init) {
    if (!o.shape.empty() && shape_name_of(init->model) != o.shape) {
      throw config_error(fmt::format("--shape is '{}', but the checkpoint '{}' holds a '{}' model", o.shape, o.init,
                                     shape_name_of(init->model)));
    }
    return with_shape_of(init->model, run);
  }
  if (o.shape.empty()) throw config_error("--shape is required when not initialising from a checkpoint (--init)");
  return with_named_shape(o.shape, run);
}

void check_finetune_options(const finetune_options& o) {
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--epochs", o.epochs);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  require_positive("--num-labels", o.num_labels);
  if (o.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", o.max_seq));
  if (o.lr && !(*o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", *o.lr));
  const earlybert_cli_options& e = o.earlybert;
  if (!e.enabled) return;
  if (!(e.l1_heads >= 0)) throw config_error(fmt::format("--l1-heads is {}, expected a non-negative value", e.l1_heads));
  if (!(e.l1_ffn >= 0)) throw config_error(fmt::format("--l1-ffn is {}, expected a non-negative value", e.l1_ffn));
  if (e.interval < 0) throw config_error(fmt::format("--eb-interval is {}, expected at least 1 (or 0 for a 50th of an epoch)", e.interval));
  if (e.efficient_epochs && !(*e.efficient_epochs > 0)) {
    throw config_error(fmt::format("--efficient-epochs is {}, expected a positive value", *e.efficient_epochs));
  }
  if (e.efficient_steps && *e.efficient_steps < 1) throw config_error(fmt::format("--efficient-steps is {}, expected at least 1", *e.efficient_steps));
  if (e.efficient_lr && !(*e.efficient_lr > 0)) throw config_error(fmt::format("--efficient-lr is {}, expected a positive value", *e.efficient_lr));
  make_rule("heads", e.prune_heads, e.heads_scope, e.counting, e.min_kept);
  make_rule("ffn", e.prune_ffn, e.ffn_scope, e.counting, e.min_kept);
}

int run_finetune(const finetune_options& o) {
  apply_threads(o.common.threads);
  check_finetune_options(o);
  if (!o.out.empty()) check_output_directory(o.out);
  const vocabulary vocab = vocabulary::load(o.vocab);
  const wordpiece_tokenizer tokenizer = make_tokenizer(vocab);
  const stopwatch reading;
  const classification_dataset train = read_classification_tsv(o.train, tokenizer, o.max_seq, o.num_labels);
  const classification_dataset dev = read_classification_tsv(o.dev, tokenizer, o.max_seq, o.num_labels);
  if (train.sentence_pairs != dev.sentence_pairs) {
    throw config_error(fmt::format("--train has {} text column(s) but --dev has {}", train.text_columns.size(), dev.text_columns.size()));
  }
  fmt::print(stderr, "finetune: {} training and {} dev examples ({}), tokenised in {:.1f} s\n", train.examples.size(),
             dev.examples.size(), train.sentence_pairs ? "sentence pairs" : "single sentences", reading.seconds());
  const finetune_result r = finetune_with(o, vocab, train, dev);
  if (o.earlybert.enabled) {
    fmt::print("finetune (EarlyBERT, {} ticket): ticket at step {}, {} steps in all, {:.1f} s training, {:.3g} FLOPs; dev accuracy {:.4f}; "
               "checkpoint in '{}'\n", o.earlybert.ticket, r.ticket_step, r.total_steps, r.train_wall_s, r.train_flops, r.dev_accuracy, o.out);
  } else {
    fmt::print("finetune: {} steps in {:.1f} s ({:.0f} tokens/s), {:.3g} FLOPs; dev accuracy {:.4f}; checkpoint in '{}'\n", r.total_steps,
               r.train_wall_s, r.tokens / r.train_wall_s, r.train_flops, r.dev_accuracy, o.out);
  }
  return 0;
}

}  // namespace earlybert::cli
