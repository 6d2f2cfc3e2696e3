// SPDX-License-Identifier: Apache-2.0
#pragma once
// The EarlyBERT pipeline (../shared/earlybert-method.md, docs/earlybert.md): search, draw, efficient
// training.
//
//   1. search     train the full model with slimming coefficients and the L1 penalty
//                 l1_heads * sum |c_head| + l1_ffn * sum |c_neuron|; every check_interval steps, score
//                 the structures with the criterion, select the mask the draw rule would produce now
//                 and show it to the early-bird detector; stop as soon as it fires (or at the search
//                 budget's end: the ticket is then the last mask)
//   2. draw       restart_from init: the step-0 weights come back (coefficients, which were 1 there,
//                 leave the model); restart_from draw: the coefficients are folded into W_O and W_2
//                 and the AdamW moments carried on. Then the pruned heads and neurons are removed
//                 (compact), original indices kept, moments sliced.
//   3. efficient  train the compacted model with a fresh schedule (its own steps and learning rate),
//                 no L1; from the draw point the optimizer's step count continues.
//
// The task (the data and the loss) is the caller's: a type modelling earlybert_task supplies each
// micro-batch's loss and its forward FLOPs, and hears about steps and events; the random-ticket
// baseline is the same pipeline with random_criterion. FLOPs are counted with the method's cost model
// (training = 3 x forward).

#include <chrono>
#include <concepts>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/detectors.hpp"
#include "earlybert/prune/selection.hpp"
#include "earlybert/prune/ticket.hpp"
#include "earlybert/train/trainer.hpp"

namespace earlybert {

enum class restart_point { init, draw };

enum class pipeline_stage { search, efficient };

inline std::string_view to_string(pipeline_stage s) { return s == pipeline_stage::search ? "search" : "efficient"; }

struct earlybert_options {
  double l1_heads = 1e-4;
  double l1_ffn = 1e-4;
  long check_interval = 20;  // steps between mask checks
  int distance_window = 5;   // masks the logged distances are taken over (the detector's K by default)
  long search_budget = 0;    // most search steps; the ticket is drawn there if the detector has not fired
  long search_schedule_steps = 0;  // the schedule the search follows (a dense run's length), >= budget
  optimization_options search;
  restart_point restart_from = restart_point::init;
  long efficient_steps = 0;
  optimization_options efficient;

  void check() const {
    const auto require = [](bool ok, const char* name, double value, const char* expected) {
      if (!ok) throw config_error(fmt::format("earlybert: '{}' is {}, expected {}", name, value, expected));
    };
    require(l1_heads >= 0, "l1_heads", l1_heads, "a non-negative value");
    require(l1_ffn >= 0, "l1_ffn", l1_ffn, "a non-negative value");
    require(check_interval >= 1, "check_interval", static_cast<double>(check_interval), "at least 1");
    require(distance_window >= 2, "distance_window", distance_window, "at least 2");
    require(search_budget >= 1, "search_budget", static_cast<double>(search_budget), "at least 1");
    require(search_schedule_steps >= search_budget, "search_schedule_steps", static_cast<double>(search_schedule_steps),
            "at least the search budget");
    require(efficient_steps >= 1, "efficient_steps", static_cast<double>(efficient_steps), "at least 1");
    search.check();
    efficient.check();
  }
};

// What the pipeline needs from the caller, for a task model Model (bert_for_*):
//   loss(tape, model, stage, step, micro_batch)  the task loss of the next micro-batch ([1, 1]); step
//                                                counts from 0 within the stage
//   last_forward_flops(model)                    forward FLOPs of the micro-batch just built
//   on_step(stage, step, total, report)          after every optimizer step (progress, metrics, evals)
//   on_event(json)                               eb_check and ticket events
template <class T, class Model, class Scalar>
concept earlybert_task = requires(T& task, tape<Scalar>& t, Model& model, pipeline_stage stage, long step, int k,
                                  const step_report& report, const nlohmann::ordered_json& event) {
  { task.loss(t, model, stage, step, k) } -> std::same_as<var<Scalar>>;
  { task.last_forward_flops(model) } -> std::convertible_to<double>;
  task.on_step(stage, step, step, report);
  task.on_event(event);
};

struct earlybert_report {
  structure_masks ticket;
  long ticket_step = 0;       // search steps taken when the ticket was drawn
  bool detected = false;      // the detector fired (false: the search budget ran out)
  std::vector<long> check_steps;
  std::vector<structure_masks> recorded_masks;  // the mask at every check, for the distance matrix
  long efficient_steps = 0;
  double search_wall_s = 0, draw_wall_s = 0, efficient_wall_s = 0;
  double search_flops = 0, efficient_flops = 0;  // training FLOPs (3 x forward)
  double encoder_flops_ratio = 0;                // pruned / dense encoder forward FLOPs per token
  per_layer_scores head_coefficients;            // the slimming coefficients when the ticket was drawn
  per_layer_scores ffn_coefficients;

  double total_wall_s() const { return search_wall_s + draw_wall_s + efficient_wall_s; }
  double total_flops() const { return search_flops + efficient_flops; }
};

namespace detail {
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Largest distance from the newest recorded mask to the (window - 1) before it; nullopt for the first.
inline std::optional<double> windowed_distance(const std::vector<structure_masks>& masks, int window, bool heads) {
  if (masks.size() < 2) return std::nullopt;
  const auto& newest = heads ? masks.back().heads : masks.back().neurons;
  double largest = 0;
  const std::size_t first = masks.size() > static_cast<std::size_t>(window) ? masks.size() - static_cast<std::size_t>(window) : 0;
  for (std::size_t i = first; i + 1 < masks.size(); ++i) {
    largest = std::max(largest, mask_distance(newest, heads ? masks[i].heads : masks[i].neurons));
  }
  return largest;
}

inline nlohmann::ordered_json optional_number(std::optional<double> v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}
}  // namespace detail

template <class Model, class Criterion, class Selector, class Detector, class Task>
  requires mask_selector<Selector> && early_bird_detector<Detector>
earlybert_report run_earlybert(Model& model, Criterion& criterion, const Selector& selector, Detector& detector,
                               const earlybert_options& options, Task& task, index_t reference_seq) {
  using scalar = typename Model::scalar_type;
  using bert_type = std::remove_reference_t<decltype(model.bert)>;
  static_assert(importance_criterion<Criterion, bert_type>, "run_earlybert: the criterion must model importance_criterion");
  static_assert(earlybert_task<Task, Model, scalar>, "run_earlybert: the task must model earlybert_task");
  options.check();
  earlybert_report report;

  // The step-0 weights, for the restart from init.
  std::vector<matrix<scalar>> initial;
  if (options.restart_from == restart_point::init) {
    model.for_each_parameter([&](parameter<scalar>& p) { initial.push_back(p.value); });
  }
  const double dense_flops_per_token = model.bert.encoder_flops_per_token(reference_seq);

  // ---- 1. Search ----
  auto start = std::chrono::steady_clock::now();
  model.bert.set_slimming(true);
  long optimizer_steps = 0;
  {
    trainer<scalar> search(parameters_of(model), options.search, options.search_schedule_steps);
    for (long step = 0; step < options.search_budget; ++step) {
      const step_report r = search.step(
          [&](tape<scalar>& t, int k) {
            const var<scalar> loss = task.loss(t, model, pipeline_stage::search, step, k);
            report.search_flops += 3 * task.last_forward_flops(model);
            return add(t, loss, model.bert.slimming_penalty(t, options.l1_heads, options.l1_ffn));
          },
          [&] {
            if constexpr (gradient_observer<Criterion, bert_type>) criterion.observe(model.bert);
          });
      task.on_step(pipeline_stage::search, step + 1, options.search_budget, r);
      const long done = step + 1;
      if (done % options.check_interval != 0 && done != options.search_budget) continue;
      structure_masks masks = selector.select(criterion.score(model.bert));
      report.recorded_masks.push_back(masks);
      report.check_steps.push_back(done);
      const bool fired = detector.observe(masks, done);
      task.on_event({{"event", "eb_check"},
                     {"step", done},
                     {"head_distance", detail::optional_number(detail::windowed_distance(report.recorded_masks, options.distance_window, true))},
                     {"ffn_distance", detail::optional_number(detail::windowed_distance(report.recorded_masks, options.distance_window, false))},
                     {"heads_kept", masks.heads_kept()},
                     {"ffn_kept", masks.neurons_kept()}});
      report.ticket = std::move(masks);
      report.ticket_step = done;
      if (fired) {
        report.detected = true;
        break;
      }
    }
    optimizer_steps = search.steps_taken();
  }
  report.search_wall_s = detail::seconds_since(start);

  // ---- 2. Draw ----
  start = std::chrono::steady_clock::now();
  for (const auto& layer : model.bert.layers) {
    const auto& h = layer.self_attention.coefficients.values.value;
    const auto& f = layer.ffn.coefficients.values.value;
    report.head_coefficients.emplace_back(h.data(), h.data() + h.size());
    report.ffn_coefficients.emplace_back(f.data(), f.data() + f.size());
  }
  if (options.restart_from == restart_point::init) {
    model.bert.set_slimming(false);  // the coefficients were 1 at step 0
    std::size_t i = 0;
    model.for_each_parameter([&](parameter<scalar>& p) {
      p.value = initial[i++];
      p.zero_gradient();
      p.first_moment.resize(0, 0);  // a fresh optimizer
      p.second_moment.resize(0, 0);
    });
  } else {
    model.bert.fold_slimming();
  }
  draw_ticket(model.bert, report.ticket);
  report.encoder_flops_ratio = model.bert.encoder_flops_per_token(reference_seq) / dense_flops_per_token;
  task.on_event({{"event", "ticket"},
                 {"step", report.ticket_step},
                 {"detected", report.detected},
                 {"heads_kept", report.ticket.heads_kept()},
                 {"ffn_kept", report.ticket.neurons_kept()},
                 {"flops_ratio", report.encoder_flops_ratio}});
  report.draw_wall_s = detail::seconds_since(start);

  // ---- 3. Efficient training ----
  start = std::chrono::steady_clock::now();
  trainer<scalar> efficient(parameters_of(model), options.efficient, options.efficient_steps);
  if (options.restart_from == restart_point::draw) efficient.optimizer().set_steps_taken(optimizer_steps);
  for (long step = 0; step < options.efficient_steps; ++step) {
    const step_report r = efficient.step([&](tape<scalar>& t, int k) {
      const var<scalar> loss = task.loss(t, model, pipeline_stage::efficient, step, k);
      report.efficient_flops += 3 * task.last_forward_flops(model);
      return loss;
    });
    task.on_step(pipeline_stage::efficient, step + 1, options.efficient_steps, r);
  }
  report.efficient_steps = options.efficient_steps;
  report.efficient_wall_s = detail::seconds_since(start);
  return report;
}

}  // namespace earlybert
