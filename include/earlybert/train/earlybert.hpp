// SPDX-License-Identifier: Apache-2.0
#pragma once
// The EarlyBERT pipeline (docs/earlybert.md: §0 the method, then its defaults): search, draw, efficient
// training.
//
//   1. search     train the full model with slimming coefficients and the L1 penalty
//                 l1_heads * sum |c_head| + l1_neurons * sum |c_neuron|; every check_interval steps, score
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
// (training = 3 x forward), over every process of a data-parallel run (optimization_options::group).
// run_dense is the efficient stage alone: the dense baseline, with the same task and accounting.
//
// Checkpoints and resume: a task that models checkpointing_task is asked after every step whether it
// wants a training state (train/training_state.hpp) written; run_earlybert and run_dense continue from
// one bit for bit (same data order, dropout and masking: the task derives them from the step).

#include <chrono>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/io/json.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/detectors.hpp"
#include "earlybert/prune/selection.hpp"
#include "earlybert/prune/ticket.hpp"
#include "earlybert/train/pipeline_records.hpp"
#include "earlybert/train/trainer.hpp"
#include "earlybert/train/training_state.hpp"

namespace earlybert {

enum class restart_point { init, draw };

struct earlybert_options {
  double l1_heads = 1e-4;
  double l1_neurons = 1e-4;
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
    require(l1_neurons >= 0, "l1_neurons", l1_neurons, "a non-negative value");
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

// A task that also keeps checkpoints: after each step (once that step's events are told) the
// pipeline asks checkpoint_due(stage, step); if so it fills a training state with the model, the
// moments and its own record ("pipeline"), and write_checkpoint(state) adds the task's record and
// writes it. A run resumes by passing such a state to run_earlybert / run_dense (the task restores
// its own record itself).
template <class T>
concept checkpointing_task = requires(T& task, pipeline_stage stage, long step, training_state_writer& state) {
  { task.checkpoint_due(stage, step) } -> std::convertible_to<bool>;
  task.write_checkpoint(state);
};

// A checkpointing task that can also be asked whether to stop now (a signal, say) where no step comes
// to ask: between the pieces of long work a method does after its last step (an instability run's
// path). If it says yes, the method writes the training state from which a resumed run redoes only
// that work, and write_checkpoint ends the run, as it does when a stop made checkpoint_due say yes.
template <class T>
concept stoppable_task = checkpointing_task<T> && requires(const T& task) {
  { task.stop_requested() } -> std::convertible_to<bool>;
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

// A step's count of this process (its FLOPs), summed over the processes the step spans.
inline double job_total(const optimization_options& options, double mine) {
  if (options.group != nullptr && options.group->size() > 1) options.group->sum(std::span<double>(&mine, 1));
  return mine;
}

// A training state with the model, its moments, what add_extra adds and the pipeline's position,
// handed to the task to complete and write; checkpoint_if_due writes it if the task wants one now.
template <class Model, class Task, class AddExtra>
  requires checkpointing_task<Task>
void write_checkpoint(Task& task, Model& model, pipeline_position& position, AddExtra&& add_extra) {
  training_state_writer state;
  state.add_model(model);
  add_extra(state);
  state.progress()["pipeline"] = position_json(position);
  task.write_checkpoint(state);
}
template <class Model, class Task, class AddExtra>
void checkpoint_if_due(Task& task, Model& model, pipeline_position& position, AddExtra&& add_extra) {
  if constexpr (checkpointing_task<Task>) {
    if (task.checkpoint_due(position.stage, position.steps_done)) write_checkpoint(task, model, position, add_extra);
  }
}

// What a training method may do around each step of the efficient stage (RigL changes its masks
// there), and what it adds to a training state written between steps (its tensors, and its record as
// position.method). A method's hooks derive from no_step_hooks and hide what they need.
struct no_step_hooks {
  void before_step(long /*step*/) {}
  void after_backward(long /*step*/) {}  // the step's gradients are complete (and summed over the processes)
  void save(training_state_writer& /*state*/, pipeline_position& /*position*/) {}
};

// The efficient stage (and dense training): steps [position.steps_done, stop_at) of a stage of `total`
// steps (the schedule's length; stop_at = total unless given), of the model as it is; AdamW's count
// continues from position.optimizer_steps. Updates the report.
template <class Model, class Task, class Hooks = no_step_hooks>
void run_efficient_stage(Model& model, const optimization_options& options, long total, Task& task, pipeline_position& position,
                         long stop_at, Hooks&& hooks = {}) {
  using scalar = typename Model::scalar_type;
  const auto start = std::chrono::steady_clock::now();
  const double wall_before = position.report.efficient_wall_s;
  position.stage = pipeline_stage::efficient;
  trainer<scalar> efficient(model, options, total);
  efficient.resume_at(position.steps_done, position.optimizer_steps);
  for (long step = position.steps_done; step < stop_at; ++step) {
    double flops = 0;
    hooks.before_step(step);
    const step_report r = efficient.step(
        [&](tape<scalar>& t, int k) {
          const var<scalar> loss = task.loss(t, model, pipeline_stage::efficient, step, k);
          flops += 3 * task.last_forward_flops(model);
          return loss;
        },
        [&] { hooks.after_backward(step); });
    position.report.efficient_flops += job_total(options, flops);
    task.on_step(pipeline_stage::efficient, step + 1, total, r);
    position.steps_done = step + 1;
    position.optimizer_steps = efficient.optimizer().steps_taken();
    position.report.efficient_steps = step + 1;
    position.report.efficient_wall_s = wall_before + seconds_since(start);
    if (step + 1 < total) checkpoint_if_due(task, model, position, [&](training_state_writer& state) { hooks.save(state, position); });
  }
  position.report.efficient_steps = stop_at;
  position.report.efficient_wall_s = wall_before + seconds_since(start);
}
template <class Model, class Task>
void run_efficient_stage(Model& model, const optimization_options& options, long total, Task& task, pipeline_position& position) {
  run_efficient_stage(model, options, total, task, position, total);
}
}  // namespace detail

// The EarlyBERT pipeline on `model` (unpruned, as initialised or loaded). With `resume`, a training
// state that a checkpoint of the same run wrote: the model takes its structure (the ticket compacted
// if it was drawn), parameters and moments from it, the detector is shown the recorded masks again,
// the criterion's state comes back, and the run continues as if it had never stopped.
template <class Model, class Criterion, class Selector, class Detector, class Task>
  requires mask_selector<Selector> && early_bird_detector<Detector>
earlybert_report run_earlybert(Model& model, Criterion& criterion, const Selector& selector, Detector& detector,
                               const earlybert_options& options, Task& task, index_t reference_seq,
                               const training_state_reader* resume = nullptr) {
  using scalar = typename Model::scalar_type;
  using bert_type = std::remove_reference_t<decltype(model.bert)>;
  check_criterion<Criterion, bert_type>();
  static_assert(earlybert_task<Task, Model, scalar>, "run_earlybert: the task must model earlybert_task");
  options.check();
  const double dense_flops_per_token = model.bert.encoder_flops_per_token(reference_seq);
  const auto initial_name = [](const std::string& name) { return "earlybert.initial." + name; };

  detail::pipeline_position position;
  position.mode = "earlybert";
  // The step-0 weights, for the restart from init (the model's parameters without coefficients), by name.
  std::vector<std::pair<std::string, matrix<scalar>>> initial;
  if (resume != nullptr) {
    position = detail::read_position(*resume, "earlybert");
    if (position.stage == pipeline_stage::search) {
      if (options.restart_from == restart_point::init) {
        model.for_each_parameter([&](parameter<scalar>& p) {
          initial.emplace_back(p.name, matrix<scalar>(p.rows(), p.cols()));
          resume->read_tensor(initial_name(p.name), initial.back().second);
        });
      }
      for (std::size_t i = 0; i < position.report.recorded_masks.size(); ++i) {
        if (detector.observe(position.report.recorded_masks[i], position.report.check_steps[i])) {
          throw config_error(fmt::format("run_earlybert: resuming from '{}', the detector fired on the mask recorded at step {}, "
                                         "which it did not in the interrupted run (a detector must be deterministic)",
                                         resume->path(), position.report.check_steps[i]));
        }
      }
      if constexpr (resumable_criterion<Criterion>) criterion.restore(position.criterion);
      model.bert.set_slimming(true);
    } else {
      draw_ticket(model.bert, position.report.ticket);
    }
    resume->read_model(model);
  } else {
    if (options.restart_from == restart_point::init) {
      model.for_each_parameter([&](parameter<scalar>& p) { initial.emplace_back(p.name, p.value); });
    }
    model.bert.set_slimming(true);
  }
  earlybert_report& report = position.report;

  if (position.stage == pipeline_stage::search) {
    // ---- 1. Search ----
    auto start = std::chrono::steady_clock::now();
    const double wall_before = report.search_wall_s;
    trainer<scalar> search(model, options.search, options.search_schedule_steps);
    search.resume_at(position.steps_done, position.optimizer_steps);
    // What a search checkpoint holds besides the model: the criterion's state and the step-0 weights.
    const auto add_search_state = [&](training_state_writer& state) {
      if constexpr (gradient_observer<Criterion, bert_type>) {
        if constexpr (resumable_criterion<Criterion>) {
          position.criterion = criterion.state();
        } else {
          throw config_error("run_earlybert: the criterion observes gradients but has no state()/restore() "
                             "(resumable_criterion), so a search with it cannot be checkpointed");
        }
      }
      for (const auto& [name, value] : initial) state.add_tensor(initial_name(name), value);
    };
    for (long step = position.steps_done; step < options.search_budget; ++step) {
      double flops = 0;
      const step_report r = search.step(
          [&](tape<scalar>& t, int k) {
            const var<scalar> loss = task.loss(t, model, pipeline_stage::search, step, k);
            flops += 3 * task.last_forward_flops(model);
            return add(t, loss, model.bert.slimming_penalty(t, options.l1_heads, options.l1_neurons));
          },
          [&] {
            if constexpr (gradient_observer<Criterion, bert_type>) criterion.observe(model.bert);
          });
      report.search_flops += detail::job_total(options.search, flops);
      task.on_step(pipeline_stage::search, step + 1, options.search_budget, r);
      const long done = step + 1;
      position.steps_done = done;
      position.optimizer_steps = search.optimizer().steps_taken();
      report.search_wall_s = wall_before + detail::seconds_since(start);
      if (done % options.check_interval == 0 || done == options.search_budget) {
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
      if (done < options.search_budget) detail::checkpoint_if_due(task, model, position, add_search_state);
    }
    report.search_wall_s = wall_before + detail::seconds_since(start);

    // ---- 2. Draw ----
    start = std::chrono::steady_clock::now();
    std::as_const(model.bert).for_each_family([&](const structure_family<scalar>& family) {
      const matrix<scalar>& c = family.coefficients().value;
      (family.kind() == structure_kind::heads ? report.head_coefficients : report.neuron_coefficients).emplace_back(c.data(), c.data() + c.size());
    });
    if (options.restart_from == restart_point::init) {
      model.bert.set_slimming(false);  // the coefficients were 1 at step 0
      std::size_t i = 0;
      model.for_each_parameter([&](parameter<scalar>& p) {
        p.value = initial[i++].second;
        p.zero_gradient();
        p.first_moment.resize(0, 0);  // a fresh optimizer
        p.second_moment.resize(0, 0);
      });
      position.optimizer_steps = 0;
    } else {
      model.bert.fold_slimming();  // AdamW's step count continues from the search's
    }
    draw_ticket(model.bert, report.ticket);
    report.encoder_flops_ratio = model.bert.encoder_flops_per_token(reference_seq) / dense_flops_per_token;
    task.on_event({{"event", "ticket"},
                   {"step", report.ticket_step},
                   {"detected", report.detected},
                   {"heads_kept", report.ticket.heads_kept()},
                   {"ffn_kept", report.ticket.neurons_kept()},
                   {"flops_ratio", report.encoder_flops_ratio},
                   {"flops_seq", reference_seq}});
    report.draw_wall_s = detail::seconds_since(start);
    position.stage = pipeline_stage::efficient;
    position.steps_done = 0;
    position.criterion = nullptr;
  }

  // ---- 3. Efficient training ----
  detail::run_efficient_stage(model, options.efficient, options.efficient_steps, task, position);
  return report;
}

// Dense training: the efficient stage alone, for the model as it is (the baseline EarlyBERT is
// measured against), with the same task, accounting and checkpoints. `resume` as for run_earlybert.
template <class Model, class Task>
dense_report run_dense(Model& model, const optimization_options& options, long steps, Task& task,
                           const training_state_reader* resume = nullptr) {
  static_assert(earlybert_task<Task, Model, typename Model::scalar_type>, "run_dense: the task must model earlybert_task");
  if (steps < 1) throw config_error(fmt::format("run_dense: steps is {}, expected at least 1", steps));
  detail::pipeline_position position;
  position.mode = "dense";
  position.stage = pipeline_stage::efficient;
  if (resume != nullptr) {
    position = detail::read_position(*resume, "dense");
    resume->read_model(model);
  }
  detail::run_efficient_stage(model, options, steps, task, position);
  return {position.report.efficient_steps, position.report.efficient_wall_s, position.report.efficient_flops};
}

}  // namespace earlybert
