// SPDX-License-Identifier: Apache-2.0
#pragma once
// The EarlyBERT settings of `finetune --earlybert` and `pretrain --earlybert`, turned into the
// library's pipeline pieces (criterion, selector, detector, options), and the records both write.

#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "checkpoints.hpp"
#include "common.hpp"

namespace earlybert::cli {

// Type-erased criterion and detector, so that every choice runs through one instantiation of the
// pipeline per shape (the library's templates stay the extension point for user types).
template <class Bert>
struct any_criterion {
  std::function<structure_scores(Bert&)> score_fn;
  std::function<void(Bert&)> observe_fn;
  std::function<nlohmann::ordered_json()> state_fn;
  std::function<void(const nlohmann::json&)> restore_fn;
  structure_scores score(Bert& model) { return score_fn(model); }
  void observe(Bert& model) {
    if (observe_fn) observe_fn(model);
  }
  nlohmann::ordered_json state() const { return state_fn ? state_fn() : nlohmann::ordered_json(); }
  void restore(const nlohmann::json& state) {
    if (restore_fn) restore_fn(state);
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
    if constexpr (resumable_criterion<decltype(criterion)>) {
      any.state_fn = [shared] { return shared->state(); };
      any.restore_fn = [shared](const nlohmann::json& j) { shared->restore(j); };
    }
    return any;
  };
  if (e.importance == "slimming") return wrap(slimming_criterion{e.absolute});
  if (e.importance == "random") return wrap(random_criterion{derive_key(seed, 0x7a11)});
  if (e.importance == "magnitude") return wrap(magnitude_criterion{});
  if (e.importance == "gradient") return wrap(gradient_criterion{});
  if (e.importance == "taylor") return wrap(taylor_criterion{});
  throw config_error(fmt::format("--importance is '{}', expected slimming, random, magnitude, gradient or taylor", e.importance));
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

inline selection_rule make_rule(const char* what, double ratio, const std::string& scope, const std::string& counting, index_t min_kept) {
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

inline ticket_selector make_selector(const earlybert_cli_options& e) {
  return {make_rule("heads", e.prune_heads, e.heads_scope, e.counting, e.min_kept),
          make_rule("ffn", e.prune_ffn, e.ffn_scope, e.counting, e.min_kept)};
}

// The pipeline's options for a run whose dense budget is dense_steps of steps_per_epoch steps each:
// the search follows the dense schedule and may take the first epoch; the efficient stage takes
// default_efficient_steps unless --efficient-epochs / --efficient-steps say otherwise, at --efficient-lr
// or default_efficient_lr.
inline earlybert_options make_pipeline_options(const earlybert_cli_options& e, const optimization_options& dense, long steps_per_epoch,
                                               long dense_steps, long default_efficient_steps, double default_efficient_lr) {
  earlybert_options eo;
  eo.l1_heads = e.l1_heads;
  eo.l1_neurons = e.l1_ffn;
  eo.check_interval = e.interval > 0 ? e.interval : std::max(1L, steps_per_epoch / 50);
  eo.distance_window = e.window;
  eo.search = dense;
  eo.search_budget = std::min(steps_per_epoch, dense_steps);  // the ticket is drawn within the first epoch
  eo.search_schedule_steps = std::max(dense_steps, eo.search_budget);
  if (e.restart_from == "init") eo.restart_from = restart_point::init;
  else if (e.restart_from == "draw") eo.restart_from = restart_point::draw;
  else throw config_error(fmt::format("--restart-from is '{}', expected init or draw", e.restart_from));
  eo.efficient = dense;
  eo.efficient.learning_rate = e.efficient_lr.value_or(default_efficient_lr);
  eo.efficient_steps = e.efficient_steps.value_or(
      e.efficient_epochs ? std::max(1L, std::lround(*e.efficient_epochs * static_cast<double>(steps_per_epoch))) : default_efficient_steps);
  return eo;
}

// Range checks of the EarlyBERT flags (before any work).
inline void check_earlybert_options(const earlybert_cli_options& e) {
  if (!(e.l1_heads >= 0)) throw config_error(fmt::format("--l1-heads is {}, expected a non-negative value", e.l1_heads));
  if (!(e.l1_ffn >= 0)) throw config_error(fmt::format("--l1-ffn is {}, expected a non-negative value", e.l1_ffn));
  if (e.interval < 0) throw config_error(fmt::format("--eb-interval is {}, expected at least 1 (or 0 for a 50th of an epoch)", e.interval));
  if (e.efficient_epochs && !(*e.efficient_epochs > 0)) {
    throw config_error(fmt::format("--efficient-epochs is {}, expected a positive value", *e.efficient_epochs));
  }
  if (e.efficient_steps && *e.efficient_steps < 1) throw config_error(fmt::format("--efficient-steps is {}, expected at least 1", *e.efficient_steps));
  if (e.efficient_lr && !(*e.efficient_lr > 0)) throw config_error(fmt::format("--efficient-lr is {}, expected a positive value", *e.efficient_lr));
  if (e.restart_from != "init" && e.restart_from != "draw") {
    throw config_error(fmt::format("--restart-from is '{}', expected init or draw", e.restart_from));
  }
  make_selector(e);
}

inline nlohmann::ordered_json earlybert_stage_summary(const earlybert_report& report, const std::string& importance, long steps_per_epoch,
                                                      double eval_seconds);

// The "summary" metrics event of an EarlyBERT run (accounting per stage), without the task's result.
// Against the dense run of `dense_steps` steps it replaces: that run's FLOPs and wall time estimated
// from the search stage, which trains the unpruned model (its FLOPs per step exactly, as the cost
// model counts them; its time per step with the slimming coefficients' small extra cost included).
inline nlohmann::ordered_json earlybert_summary(const earlybert_report& report, const std::string& importance, long steps_per_epoch,
                                                double eval_seconds, long dense_steps) {
  nlohmann::ordered_json summary = earlybert_stage_summary(report, importance, steps_per_epoch, eval_seconds);
  if (report.ticket_step > 0 && dense_steps > 0) {
    const double per_step = static_cast<double>(dense_steps) / static_cast<double>(report.ticket_step);
    const double dense_flops = report.search_flops * per_step, dense_wall = report.search_wall_s * per_step;
    summary["dense_steps"] = dense_steps;
    summary["dense_flops_estimate"] = dense_flops;
    summary["flops_vs_dense"] = report.total_flops() / dense_flops;
    summary["dense_wall_s_estimate"] = dense_wall;
    summary["wall_vs_dense_estimate"] = (report.total_wall_s() - eval_seconds) / dense_wall;
  }
  return summary;
}

inline nlohmann::ordered_json earlybert_stage_summary(const earlybert_report& report, const std::string& importance, long steps_per_epoch,
                                                      double eval_seconds) {
  return {{"event", "summary"},
          {"mode", "earlybert"},
          {"importance", importance},
          {"train_wall_s", report.total_wall_s() - eval_seconds},
          {"train_flops", report.total_flops()},
          {"ticket_step", report.ticket_step},
          {"detected", report.detected},
          {"ticket_epoch_fraction", static_cast<double>(report.ticket_step) / static_cast<double>(steps_per_epoch)},
          {"total_steps", report.ticket_step + report.efficient_steps},
          {"search_steps", report.ticket_step},
          {"efficient_steps", report.efficient_steps},
          {"search_wall_s", report.search_wall_s},
          {"draw_wall_s", report.draw_wall_s},
          {"efficient_wall_s", report.efficient_wall_s},
          {"eval_wall_s", eval_seconds},
          {"search_flops", report.search_flops},
          {"efficient_flops", report.efficient_flops},
          {"flops_ratio", report.encoder_flops_ratio}};
}

// earlybert_ticket.json: the ticket, the mask at every check and the coefficients at the draw, for
// the pictures (scripts/plot_earlybert.py) and for mapping a pruned checkpoint back.
inline nlohmann::ordered_json ticket_record(const earlybert_report& report, long steps_per_epoch) {
  using json = nlohmann::ordered_json;
  json checks = json::array();
  for (std::size_t i = 0; i < report.recorded_masks.size(); ++i) {
    json c = masks_json(report.recorded_masks[i]);
    c["step"] = report.check_steps[i];
    checks.push_back(c);
  }
  return {{"ticket_step", report.ticket_step}, {"detected", report.detected}, {"steps_per_epoch", steps_per_epoch},
          {"ticket", masks_json(report.ticket)}, {"checks", checks},
          {"head_coefficients", report.head_coefficients}, {"ffn_coefficients", report.neuron_coefficients}};
}

// What a training task reports while it runs, densely or through the pipeline: a progress display
// per stage, a metrics line per step (with its stage under --earlybert), the pipeline's events, and
// the time spent evaluating (which training wall time excludes). The tasks own their data and
// decide when to evaluate; this is their shared bookkeeping.
class stage_reporter {
 public:
  // `command` labels a dense run's progress; a staged run shows "search" and "efficient".
  stage_reporter(const char* command, bool staged, metrics_log& metrics) : command_(command), staged_(staged), metrics_(metrics) {}

  void add_tokens(double count) { tokens_ += count; }

  // What a training state keeps of this (tokens, evaluation time, the metrics' clock), and back.
  nlohmann::ordered_json record() const { return {{"tokens", tokens_}, {"eval_seconds", eval_seconds_}, {"elapsed_s", run_elapsed()}}; }
  void restore(const nlohmann::json& record) {
    tokens_ = counted_tokens_ = record.at("tokens").get<double>();
    eval_seconds_ = record.at("eval_seconds").get<double>();
    elapsed_before_ = record.at("elapsed_s").get<double>();
  }

  // Called by every process of a job after every step: the step's tokens are the job's.
  void step(pipeline_stage stage, long step, long total, const step_report& r) {
    if (job::processes() > 1) {
      double step_tokens = tokens_ - counted_tokens_;
      job::group().sum(std::span<double>(&step_tokens, 1));
      tokens_ = counted_tokens_ + step_tokens;
    }
    counted_tokens_ = tokens_;
    if (!progress_ || stage != progress_stage_) {
      // "finetune: search step 12/264 ..." (a status line: the subcommand first, then the stage).
      progress_.emplace(staged_ ? fmt::format("{}: {}", command_, to_string(stage)) : fmt::format("{}:", command_), total, step - 1);
      progress_stage_ = stage;
      stage_clock_ = stopwatch();
      stage_tokens_ = tokens_;
    }
    const double elapsed = stage_clock_.seconds();
    const double rate = (tokens_ - stage_tokens_) / std::max(elapsed, 1e-9);
    if (r.skipped) {
      progress_->interrupt();
      messages::note(command_, "step {} skipped (--on-nonfinite skip): the loss ({}) or the gradient norm ({}) is not finite", step,
                     r.loss, r.gradient_norm);
    }
    progress_->update(step, r.loss, rate, elapsed);
    nlohmann::ordered_json line{{"event", "step"}};
    if (staged_) line["stage"] = to_string(stage);
    line.update(nlohmann::ordered_json{{"step", step}, {"loss", r.loss}, {"lr", r.learning_rate}, {"tokens_per_s", rate},
                                       {"elapsed_s", run_elapsed()}});
    if (job::processes() > 1) {
      line["communication_s"] = r.communication_s;
      line["communication_wait_s"] = r.communication_wait_s;
    }
    if (r.skipped) line["skipped"] = true;  // the loss is written as null when it is not finite
    metrics_.write(line);
  }

  void event(const nlohmann::ordered_json& e);

  // Runs evaluate() off the training clock and returns its result.
  template <class Evaluate>
  auto evaluation(Evaluate&& evaluate) {
    const stopwatch eval;
    if (progress_) progress_->interrupt();
    auto result = evaluate();
    eval_seconds_ += eval.seconds();
    return result;
  }

  double eval_seconds() const { return eval_seconds_; }
  double tokens() const { return tokens_; }

 private:
  double run_elapsed() const { return elapsed_before_ + clock_.seconds(); }

  std::string command_;
  bool staged_;
  metrics_log& metrics_;
  double tokens_ = 0, stage_tokens_ = 0, eval_seconds_ = 0, elapsed_before_ = 0;
  double counted_tokens_ = 0;  // tokens_ at the last step (the tokens since are this process's alone)
  std::optional<progress_display> progress_;
  pipeline_stage progress_stage_ = pipeline_stage::search;
  stopwatch clock_, stage_clock_;
};

// The "ticket" event, told on stderr.
inline void print_ticket_event(const char* command, const nlohmann::ordered_json& event) {
  // The FLOPs ratio depends on the sequence length (attention's share grows with it): said with it.
  messages::status(command, "ticket drawn at search step {} ({}); heads kept per layer [{}], FFN kept [{}]; encoder FLOPs ratio {:.3f} at sequence length {}",
                   event["step"].get<long>(), event["detected"].get<bool>() ? "early bird detected" : "search budget reached",
                   fmt::join(event["heads_kept"].get<std::vector<long>>(), ", "),
                   fmt::join(event["ffn_kept"].get<std::vector<long>>(), ", "), event["flops_ratio"].get<double>(), event["flops_seq"].get<long>());
}

inline void stage_reporter::event(const nlohmann::ordered_json& e) {
  metrics_.write(e);
  if (progress_) progress_->interrupt();
  if (e["event"] == "ticket") print_ticket_event(command_.c_str(), e);
  // The steps start again from another point: a new progress display.
  if (e["event"] == "imp_level_start") {
    messages::status(command_, "IMP level {}: {:.1f}% of the weights kept, training from step {}", e["level"].get<int>(),
                     100 * e["kept_fraction"].get<double>(), e["from_step"].get<long>());
    progress_.reset();
  }
  if (e["event"] == "instability_second_copy") {
    messages::status(command_, "instability: the second copy trains from step {}", e["from_step"].get<long>());
    progress_.reset();
  }
}

}  // namespace earlybert::cli
