// SPDX-License-Identifier: Apache-2.0
#pragma once
// Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020, "Linear mode
// connectivity and the lottery ticket hypothesis"; on BERT, Chen et al. 2020):
//
//   level 0   train the dense model for `steps` steps, taking the rewind point on the way: the weights,
//             AdamW's moments and its count at step rewind_step (0: the model as it came, initialised or
//             pre-trained)
//   level l   prune to level l by magnitude (prune/magnitude.hpp: round((1 - p)^l n) weights kept) among
//             the weights the previous level ended with; rewind every parameter to the rewind point (the
//             masks then zero the pruned weights again); train steps [rewind_step, steps) under the
//             mask, on the same schedule, data order and dropout as level 0 (the task derives them from
//             the step)
//
// At a rewind, optimizer_at_rewind says what AdamW starts from: restored, its moments and count at the
// rewind point (what rewinding the training state means in Frankle et al. 2020), or fresh (zero moments,
// the bias correction from step 1).
// Which weights: options.scope (nn/structure.hpp's weight_families: the encoder's linear layers by
// default, as Chen et al.). Masked weights stay exactly zero through training (nn/linear.hpp).
//
// The task is an earlybert_task (train/earlybert.hpp); it hears {"event": "imp_level_start", "level",
// "kept_fraction", "from_step"} before each level's training, and on_level(report, model) is called after it, where a caller
// evaluates, keeps the level's mask and checkpoint.
//
// Checkpoints and resume: a task that models checkpointing_task is asked after every step; the training
// state then holds the model (its masks included), the rewind point once taken ("imp.rewind.<name>"
// and its moments), and the level and the finished levels' reports (the pipeline record's "method").
// run_imp(..., resume) continues from it bit for bit, within the level it stopped in; a level whose
// training ended before the state was written is trained again from the state, identically, and
// on_level hears of it again.

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/nn/structure.hpp"
#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/magnitude.hpp"
#include "earlybert/prune/selection.hpp"
#include "earlybert/prune/ticket.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/rewind_point.hpp"

namespace earlybert {

struct imp_options {
  magnitude_pruning pruning;  // p and global / per-family ranking
  int levels = 10;            // pruned levels after the dense one (0.8^10: 89% sparsity)
  long steps = 0;             // of every level's schedule
  long rewind_step = 0;       // k: the rewind point, in [0, steps)
  optimizer_rewind optimizer_at_rewind = optimizer_rewind::restored;
  weight_scope scope = weight_scope::encoder;
  optimization_options optimization;

  void check() const {
    pruning.check();
    if (levels < 0) throw config_error(fmt::format("imp: levels is {}, expected a non-negative count", levels));
    if (steps < 1) throw config_error(fmt::format("imp: steps is {}, expected at least 1", steps));
    if (rewind_step < 0 || rewind_step >= steps) {
      throw config_error(fmt::format("imp: rewind_step is {}, expected a step in [0, {})", rewind_step, steps));
    }
    optimization.check();
  }
};

struct imp_level_report {
  int level = 0;
  index_t weights = 0;  // in scope
  index_t kept = 0;
  double sparsity = 0;  // 1 - kept / weights
  long steps = 0;       // trained at this level
  double wall_s = 0;
  double flops = 0;     // training FLOPs of this level (masked single weights save none; masked structures do)
  std::vector<index_t> heads_kept, neurons_kept;  // per layer (structured IMP; empty otherwise)
};

namespace detail {
inline nlohmann::ordered_json imp_level_json(const imp_level_report& r) {
  return {{"level", r.level}, {"weights", r.weights}, {"kept", r.kept},   {"sparsity", r.sparsity},         {"steps", r.steps},
          {"wall_s", r.wall_s}, {"flops", r.flops}, {"heads_kept", r.heads_kept}, {"neurons_kept", r.neurons_kept}};
}
inline imp_level_report imp_level_from_json(const nlohmann::json& j) {
  imp_level_report r;
  r.level = read_whole_number<int>(j.at("level"), "level");
  r.weights = read_whole_number<index_t>(j.at("weights"), "weights");
  r.kept = read_whole_number<index_t>(j.at("kept"), "kept");
  r.sparsity = j.at("sparsity").get<double>();
  r.steps = read_whole_number<long>(j.at("steps"), "steps");
  r.wall_s = j.at("wall_s").get<double>();
  r.flops = j.at("flops").get<double>();
  r.heads_kept = read_whole_numbers<index_t>(j.at("heads_kept"), "heads_kept");
  r.neurons_kept = read_whole_numbers<index_t>(j.at("neurons_kept"), "neurons_kept");
  return r;
}
// IMP's part of a training state: the rewind point once taken, the level, the finished levels.
template <class Scalar>
struct imp_hooks : no_step_hooks {
  const std::optional<rewind_point<Scalar>>& rewind;
  const int& level;
  const std::vector<imp_level_report>& finished;

  void save(training_state_writer& state, pipeline_position& position) {
    nlohmann::ordered_json levels = nlohmann::ordered_json::array();
    for (const auto& r : finished) levels.push_back(imp_level_json(r));
    position.method = {{"level", level}, {"levels", levels}, {"rewind", nullptr}};
    if (!rewind) return;
    position.method["rewind"] = {{"step", rewind->step}, {"optimizer_steps", rewind->optimizer_steps}};
    rewind->add_to(state, "imp.rewind.");
  }
};

}  // namespace detail

namespace detail {
// The loop of both kinds of IMP. `pruner` prunes the model to a level (prune(model, level)), says what
// a level keeps (account(model, report)), and adds to training states what its masks need
// (record() -> JSON, restore(model, record)); observe(model) runs after every backward pass.
template <class Model, class Task, class OnLevel, class Pruner>
std::vector<imp_level_report> imp_loop(Model& model, const imp_options& options, Task& task, OnLevel&& on_level, Pruner& pruner,
                                       const training_state_reader* resume) {
  using scalar = typename Model::scalar_type;
  static_assert(earlybert_task<Task, Model, scalar>, "run_imp: the task must model earlybert_task");
  options.check();
  std::vector<imp_level_report> reports;
  std::optional<rewind_point<scalar>> rewind;
  int level = 0;
  pipeline_position position;
  position.mode = "imp";
  position.stage = pipeline_stage::efficient;
  if (resume != nullptr) {
    position = read_position(*resume, "imp");
    try {
      level = read_whole_number<int>(position.method.at("level"), "level");
      for (const auto& r : position.method.at("levels")) reports.push_back(imp_level_from_json(r));
      if (const auto& r = position.method.at("rewind"); !r.is_null()) {
        rewind = rewind_point<scalar>::read(*resume, model, "imp.rewind.", read_whole_number<long>(r.at("step"), "rewind step"),
                                            read_whole_number<long>(r.at("optimizer_steps"), "rewind optimizer_steps"));
      }
    } catch (const nlohmann::json::exception& e) {
      throw io_error(fmt::format("training state '{}': the IMP record is malformed ({})", resume->path(), e.what()));
    }
    if (level > options.levels || reports.size() != static_cast<std::size_t>(level)) {
      throw io_error(fmt::format("training state '{}': IMP at level {} with {} finished levels, expected a level of at most {} after as many "
                                 "finished", resume->path(), level, reports.size(), options.levels));
    }
    resume->read_model(model);
    pruner.restore(model, position.method.value("pruner", nlohmann::json()), *resume);
  } else if (options.rewind_step == 0) {
    rewind = rewind_point<scalar>::take(model, 0, 0);
  }
  struct hooks : imp_hooks<scalar> {
    Pruner& pruner;
    Model& model;
    void after_backward(long /*step*/) { pruner.observe(model); }
    void save(training_state_writer& state, pipeline_position& position) {
      imp_hooks<scalar>::save(state, position);
      position.method["pruner"] = pruner.record(model);
    }
  } step_hooks{{{}, rewind, level, reports}, pruner, model};
  for (bool resumed = resume != nullptr; level <= options.levels; ++level, resumed = false) {
    if (!resumed) {
      position.report = {};
      position.steps_done = 0;
      position.optimizer_steps = 0;
      if (level > 0) {
        pruner.prune(model, level);
        rewind->restore(model, options.optimizer_at_rewind);
        position.steps_done = rewind->step;
        position.optimizer_steps = options.optimizer_at_rewind == optimizer_rewind::restored ? rewind->optimizer_steps : 0;
      }
      task.on_event({{"event", "imp_level_start"}, {"level", level}, {"kept_fraction", std::pow(1.0 - options.pruning.fraction, level)},
                     {"from_step", position.steps_done}});
    }
    if (!rewind) {
      // Level 0 stops at the rewind step to take the point, then goes on.
      run_efficient_stage(model, options.optimization, options.steps, task, position, options.rewind_step, step_hooks);
      rewind = rewind_point<scalar>::take(model, options.rewind_step, position.optimizer_steps);
    }
    run_efficient_stage(model, options.optimization, options.steps, task, position, options.steps, step_hooks);
    imp_level_report r;
    r.level = level;
    pruner.account(model, r);
    r.steps = level == 0 ? options.steps : options.steps - options.rewind_step;
    r.wall_s = position.report.efficient_wall_s;
    r.flops = position.report.efficient_flops;
    reports.push_back(r);
    on_level(std::as_const(reports.back()), model);
  }
  return reports;
}

// Unstructured IMP's pruner: single weights by magnitude (prune/magnitude.hpp); the masks live in the
// linear layers, which training states keep.
struct weight_pruner {
  const imp_options& options;
  template <class Model>
  void prune(Model& model, int level) {
    auto families = weight_families(model, options.scope);
    prune_to_level(std::span(families), options.pruning, level);
  }
  template <class Model>
  void account(Model& model, imp_level_report& r) const {
    for (const auto& f : weight_families(model, options.scope)) {
      r.weights += f.size();
      r.kept += f.active_count();
    }
    r.sparsity = r.weights == 0 ? 0.0 : 1.0 - static_cast<double>(r.kept) / static_cast<double>(r.weights);
  }
  template <class Model>
  void observe(Model&) {}
  template <class Model>
  nlohmann::ordered_json record(Model&) const { return nullptr; }
  template <class Model>
  void restore(Model&, const nlohmann::json&, const training_state_reader&) {}
};

// Structured IMP's pruner: heads (per layer) and FFN neurons (over all layers) ranked by a criterion,
// masked in place (nn/linear.hpp's masked mode, so the rewind point's shapes still fit); the masks
// are kept in the training state's record.
template <class Criterion>
struct structure_pruner {
  const imp_options& options;
  Criterion& criterion;
  index_t min_kept = 1;

  template <class Model>
  void prune(Model& model, int level) {
    // Level l keeps round((1 - p)^l n) of each kind's n original members: the ones pruned before are
    // scored lowest, so they stay pruned, and the rest are ranked by the criterion.
    structure_scores scores = criterion.score(model.bert);
    std::as_const(model.bert).for_each_family([&](const auto& family) {
      auto& layer = scores.of(family.kind())[static_cast<std::size_t>(family.layer())];
      const auto active = family.active();
      for (std::size_t i = 0; i < layer.size(); ++i) {
        if (active[i] == 0) layer[i] = std::numeric_limits<double>::lowest();
      }
    });
    const double ratio = 1.0 - std::pow(1.0 - options.pruning.fraction, level);
    const ticket_selector selector{{ratio, selection_scope::layerwise, counting_rule::exact, min_kept},
                                   {ratio, selection_scope::global, counting_rule::exact, min_kept}};
    apply_masks(model.bert, selector.select(scores));
  }
  template <class Model>
  void account(Model& model, imp_level_report& r) const {
    const index_t hidden = model.bert.config().hidden;
    std::as_const(model.bert).for_each_family([&](const auto& family) {
      // A head's weights: head_size rows of W_Q, W_K, W_V and columns of W_O; a neuron's: a row of W_1, a column of W_2.
      const index_t per_member = (family.kind() == structure_kind::heads ? 4 : 2) * family.member_width() * hidden;
      r.weights += family.size() * per_member;
      r.kept += family.active_count() * per_member;
    });
    r.sparsity = r.weights == 0 ? 0.0 : 1.0 - static_cast<double>(r.kept) / static_cast<double>(r.weights);
    const structure_masks masks = active_masks(model.bert);
    r.heads_kept = masks.heads_kept();
    r.neurons_kept = masks.neurons_kept();
  }
  template <class Model>
  void observe(Model& model) {
    if constexpr (gradient_observer<Criterion, decltype(model.bert)>) criterion.observe(model.bert);
  }
  template <class Model>
  nlohmann::ordered_json record(Model& model) const {
    nlohmann::ordered_json r{{"structures", masks_json(active_masks(model.bert))}, {"criterion", nullptr}};
    if constexpr (gradient_observer<Criterion, decltype(model.bert)>) {
      if constexpr (resumable_criterion<Criterion>) {
        r["criterion"] = criterion.state();
      } else {
        throw config_error("run_structured_imp: the criterion observes gradients but has no state()/restore() (resumable_criterion), "
                           "so a run with it cannot be checkpointed");
      }
    }
    return r;
  }
  template <class Model>
  void restore(Model& model, const nlohmann::json& record, const training_state_reader& state) {
    try {
      apply_masks(model.bert, masks_from_json(record.at("structures")));
    } catch (const nlohmann::json::exception& e) {
      throw io_error(fmt::format("training state '{}': the structured IMP record is malformed ({})", state.path(), e.what()));
    }
    if constexpr (resumable_criterion<Criterion>) criterion.restore(record.at("criterion"));
  }

  // The members each family holds and has not masked, as a mask over them.
  template <class Bert>
  static structure_masks active_masks(const Bert& bert) {
    structure_masks m;
    bert.for_each_family([&](const auto& family) {
      const auto active = family.active();
      m.of(family.kind()).emplace_back(active.begin(), active.end());
    });
    return m;
  }
};
}  // namespace detail

template <class Model, class Task, class OnLevel>
std::vector<imp_level_report> run_imp(Model& model, const imp_options& options, Task& task, OnLevel&& on_level,
                                      const training_state_reader* resume = nullptr) {
  detail::weight_pruner pruner{options};
  return detail::imp_loop(model, options, task, on_level, pruner, resume);
}

// Structured IMP: the same loop, pruning heads (layerwise) and FFN neurons (globally) by `criterion`
// (prune/criteria.hpp; one that observes gradients sees every backward pass of every level). The
// report's weights and kept count the structures' weights (a head: its rows of W_Q, W_K, W_V and its
// columns of W_O; a neuron: its row of W_1 and column of W_2); heads_kept and neurons_kept per layer.
// Masked structures still cost their GEMMs: compact the final model (prune/ticket.hpp, draw_ticket
// with its active masks) to save the time; the FLOPs reported follow the structures kept.
template <class Model, class Criterion, class Task, class OnLevel>
std::vector<imp_level_report> run_structured_imp(Model& model, Criterion& criterion, const imp_options& options, Task& task, OnLevel&& on_level,
                                                 const training_state_reader* resume = nullptr) {
  check_criterion<Criterion, std::remove_reference_t<decltype(model.bert)>>();
  detail::structure_pruner<Criterion> pruner{options, criterion};
  return detail::imp_loop(model, options, task, on_level, pruner, resume);
}

}  // namespace earlybert
