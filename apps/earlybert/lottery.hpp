// SPDX-License-Identifier: Apache-2.0
#pragma once
// `earlybert finetune` with the lottery-ticket family beside EarlyBERT (docs/lottery.md): each method a
// fine-tuning run on the same tasks, metrics, checkpoints and --resume as dense training.
//
//   --imp                iterative magnitude pruning with rewinding (train/imp.hpp): every level's
//                        checkpoint in <out>/level_NN/ (its masks as '<layer>.weight_mask' tensors) with
//                        level.json (sparsity, steps, FLOPs, the dev metrics); an "imp_level" event per
//                        level; the final checkpoint is the last level's. With --imp-structures, of heads
//                        and FFN neurons ranked by --imp-criterion (pruned ones zero in the checkpoints,
//                        which record no structure mask: level.json lists what each layer keeps)
//   --mask-from DIR      train under the unstructured masks of checkpoint DIR (an IMP level), from --init's
//                        weights (rewinding to them); with --control, one of OpenLTH's controls of it:
//                        random (random masks, each matrix's sparsity kept), reinit (the weights in --weights
//                        drawn afresh, the mask kept), shuffle (the kept weights trade values in each matrix)
//   --sparsity S         random unstructured sparsity S, uniform or ERK over the matrices, static; with
//                        --rigl, RigL's drop and grow (train/rigl.hpp), an "rigl_update" event per update
//   --lmc-step K         instability analysis (train/instability.hpp): two copies part at step K (the
//                        second with --seed + 1's data order and dropout); the dev loss and error
//                        (1 - the main metric) at --lmc-points + 1 points of the line between them, the
//                        barriers, in <out>/lmc.json and an "lmc" event; with --mask-from, of a ticket
//
// Unstructured masks save no time with dense GEMMs: FLOPs are the dense model's, and said so; structured
// IMP's FLOPs follow the heads and neurons kept (their time follows once the model is compacted).

#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "finetune_task.hpp"

namespace earlybert::cli {

inline weight_scope weight_scope_of(const std::string& name) {
  if (name == "encoder") return weight_scope::encoder;
  if (name == "every-linear") return weight_scope::every_linear;
  throw config_error(fmt::format("--weights is '{}', expected encoder or every-linear", name));
}

// Throws config_error for lottery options outside their ranges, before any work (which flags go with
// which method, and which methods exclude each other, flag_rules.hpp checked already).
inline void check_lottery_values(const finetune_options& o) {
  const lottery_cli_options& l = o.lottery;
  const auto one_of = [](const std::string& flag, const std::string& value, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed) {
      if (value == a) return;
    }
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : " or ") + std::string(a);
    throw config_error(fmt::format("{} is '{}', expected {}", flag, value, list));
  };
  (void)weight_scope_of(l.weights);
  one_of("--imp-ranking", l.imp_ranking, {"global", "per-matrix"});
  one_of("--rewind-optimizer", l.rewind_optimizer, {"restored", "fresh"});
  one_of("--allocation", l.allocation, {"uniform", "erk"});
  one_of("--imp-criterion", l.imp_criterion, {"magnitude", "gradient", "taylor", "random", "greedy"});
  if (l.greedy_examples < 1) throw config_error(fmt::format("--greedy-examples is {}, expected at least 1", l.greedy_examples));
  if (!l.control.empty()) one_of("--control", l.control, {"random", "reinit", "shuffle"});
  if (l.imp) {
    if (l.imp_levels < 1) throw config_error(fmt::format("--imp-levels is {}, expected at least 1", l.imp_levels));
    if (!(l.imp_rate > 0 && l.imp_rate < 1)) throw config_error(fmt::format("--imp-rate is {}, expected a value in (0, 1)", l.imp_rate));
    if (l.rewind_step < 0) throw config_error(fmt::format("--rewind-step is {}, expected a step of at least 0", l.rewind_step));
  }
  if (l.sparsity && !(*l.sparsity > 0 && *l.sparsity < 1)) {
    throw config_error(fmt::format("--sparsity is {}, expected a value in (0, 1)", *l.sparsity));
  }
  if (l.rigl) {
    if (!(l.rigl_drop > 0 && l.rigl_drop <= 1)) throw config_error(fmt::format("--rigl-drop is {}, expected a value in (0, 1]", l.rigl_drop));
    if (l.rigl_interval < 1) throw config_error(fmt::format("--rigl-interval is {}, expected at least 1", l.rigl_interval));
    if (!(l.rigl_end > 0 && l.rigl_end <= 1)) throw config_error(fmt::format("--rigl-end is {}, expected a value in (0, 1]", l.rigl_end));
  }
  if (l.lmc_step) {
    if (*l.lmc_step < 0) throw config_error(fmt::format("--lmc-step is {}, expected a step of at least 0", *l.lmc_step));
    if (l.lmc_points < 1) throw config_error(fmt::format("--lmc-points is {}, expected at least 1", l.lmc_points));
    if (o.task == "squad") throw config_error("--lmc-step measures the loss of sentence and tagging tasks, not of --task squad");
  }
}

// The checks that need the run's length, `steps` (known once the training set is read).
inline void check_lottery_steps(const finetune_options& o, long steps) {
  const lottery_cli_options& l = o.lottery;
  if (l.imp && l.rewind_step >= steps) {
    throw config_error(fmt::format("--rewind-step is {}, expected a step in [0, {}) (the run has {} steps)", l.rewind_step, steps, steps));
  }
  if (l.lmc_step && *l.lmc_step >= steps) {
    throw config_error(fmt::format("--lmc-step is {}, expected a step in [0, {}) (the run has {} steps)", *l.lmc_step, steps, steps));
  }
}

namespace detail {

// The ticket of --mask-from on the model's weights as they are (--init's, or the initialisation), and
// --control's transformation of it. `seed` draws the control's randomness.
template <class Model>
void apply_ticket(Model& model, const lottery_cli_options& l, std::uint64_t seed) {
  using scalar = typename Model::scalar_type;
  const auto weights = rewind_point<scalar>::take(model, 0, 0);  // masking zeroes weights that a random mask may keep
  load_weight_masks(l.mask_from, model);
  rng random(seed ^ 0x636f6e74726f6cULL);  // "control"
  std::vector<weight_family<scalar>> families = weight_families(model, weight_scope_of(l.weights));
  if (l.control == "random") random_masks_like(std::span(families), random);
  weights.restore(model, optimizer_rewind::fresh);
  if (l.control == "shuffle") shuffle_kept_weights(std::span(families), random);
  if (l.control == "reinit") {
    Model fresh(model.bert.config());
    fresh.initialise(random);
    std::vector<weight_family<scalar>> drawn = weight_families(fresh, weight_scope_of(l.weights));
    for (std::size_t i = 0; i < families.size(); ++i) families[i].weights_mutable().value = drawn[i].weights().value;
    model.for_each_linear([](linear<scalar>& layer) { layer.reapply_masks(); });
  }
}

inline json path_json(const linear_path& path) {
  json points = json::array();
  for (const path_point& p : path.points) points.push_back({{"alpha", p.alpha}, {"loss", p.loss}, {"error", p.error}});
  return points;
}

}  // namespace detail

// Runs the method the lottery options choose on `model` (built, initialised or loaded), with `task`
// (attached to the model and to the run's checkpoints); fills the result, writes the method's files
// and its summary event. The caller saves the final checkpoint.
template <class Model, class TaskData>
finetune_result run_lottery_method(Model& model, const finetune_options& o, const TaskData& data, const vocabulary& vocab,
                                   finetune_task<Model, TaskData>& task, const optimization_options& optimization, long steps,
                                   long steps_per_epoch, const training_state_reader* resume, metrics_log& metrics,
                                   const run_checkpoints& checkpoints, token_id pad) {
  using scalar = typename Model::scalar_type;
  const lottery_cli_options& l = o.lottery;
  const weight_scope scope = weight_scope_of(l.weights);
  finetune_result result;
  result.total_steps = steps;
  json summary{{"event", "summary"}};
  const auto sparsity_now = [&] { return unstructured_sparsity(model, scope).overall(); };

  if (l.imp) {
    imp_options imp;
    imp.pruning.fraction = l.imp_rate;
    imp.pruning.scope = l.imp_ranking == "global" ? magnitude_scope::global : magnitude_scope::per_family;
    imp.levels = l.imp_levels;
    imp.steps = steps;
    imp.rewind_step = l.rewind_step;
    imp.optimizer_at_rewind = l.rewind_optimizer == "restored" ? optimizer_rewind::restored : optimizer_rewind::fresh;
    imp.scope = scope;
    imp.optimization = optimization;
    const double dense_flops_per_token = model.bert.encoder_flops_per_token(o.max_seq);
    const auto on_level = [&](const imp_level_report& r, Model& m) {
      const metric_values& dev = task.evaluate(steps);
      json record{{"event", "imp_level"}, {"level", r.level},   {"weights", r.weights}, {"kept", r.kept},
                  {"sparsity", r.sparsity}, {"steps", r.steps}, {"train_wall_s", r.wall_s}, {"train_flops", r.flops},
                  {"dev_metrics", metrics_json(dev)}};
      if (l.imp_structures) {
        record["heads_kept"] = r.heads_kept;
        record["ffn_kept"] = r.neurons_kept;
        record["encoder_flops_ratio"] = m.bert.encoder_flops_per_token(o.max_seq) / dense_flops_per_token;
      }
      metrics.write(record);
      messages::status("finetune", "IMP level {}: {:.1f}% of the weights pruned; dev {} {:.4f}", r.level, 100 * r.sparsity,
                       dev.items().front().first, dev.items().front().second);
      if (!o.out.empty() && job::lead()) {
        const fs::path directory = fs::path(o.out) / fmt::format("level_{:02}", r.level);
        save_checkpoint(directory, m, vocab, tokenizer_settings{vocab.looks_uncased(), o.max_seq}, weight_dtype_of(o.common.save_dtype));
        record.erase("event");
        write_file_atomically(directory / "level.json", record.dump(2) + "\n");
      }
    };
    std::vector<imp_level_report> levels;
    if (l.imp_structures && l.imp_criterion == "greedy") {
      // Greedy forward selection (prune/greedy.hpp) on a fixed batch, the first --greedy-examples
      // training examples, ranking the share of each family that a level keeps. Every process holds
      // the same weights and batch, so each computes the same losses alone.
      auto fixed = data.train;
      fixed.examples.resize(std::min(fixed.examples.size(), static_cast<std::size_t>(l.greedy_examples)));
      const auto batch = static_cast<index_t>(fixed.examples.size());
      const auto fixed_loss = [&model, fixed = std::move(fixed), batch, pad] { return mean_loss(model, fixed, batch, pad); };
      greedy_criterion criterion{fixed_loss, 1.0 - l.imp_rate};
      levels = run_structured_imp(model, criterion, imp, task, on_level, resume);
    } else if (l.imp_structures) {
      earlybert_cli_options ranking;
      ranking.importance = l.imp_criterion;
      auto criterion = make_criterion<std::remove_reference_t<decltype(model.bert)>>(ranking, o.common.seed);
      levels = run_structured_imp(model, criterion, imp, task, on_level, resume);
    } else {
      levels = run_imp(model, imp, task, on_level, resume);
    }
    // Every level's steps: the run's length is their sum, the dense level's included.
    result.total_steps = 0;
    for (const auto& r : levels) {
      result.train_flops += r.flops;
      result.train_wall_s += r.wall_s;
      result.total_steps += r.steps;
    }
    result.train_wall_s -= task.eval_seconds();
    summary["mode"] = l.imp_structures ? "structured_imp" : "imp";
    summary["levels"] = static_cast<long>(levels.size());
    summary["sparsity"] = levels.back().sparsity;
    // Level 0 trains the dense model: the last level's cost against it (equal FLOPs for unstructured
    // masks, fewer for structured ones; the time follows the FLOPs once the model is compacted).
    if (levels.size() > 1 && levels.front().flops > 0 && levels.front().wall_s > 0) {
      summary["last_level_flops_vs_dense"] = levels.back().flops / levels.front().flops;
      summary["last_level_wall_vs_dense"] = levels.back().wall_s / levels.front().wall_s;
    }
  } else if (l.sparsity && l.rigl) {
    rigl_options rigl;
    rigl.sparsity = *l.sparsity;
    rigl.allocation = l.allocation == "erk" ? sparsity_allocation::erk : sparsity_allocation::uniform;
    rigl.drop_fraction = l.rigl_drop;
    rigl.update_interval = l.rigl_interval;
    rigl.end_step = std::max(1L, std::lround(l.rigl_end * static_cast<double>(steps)));
    rng random(o.common.seed ^ 0x7269676cULL);  // "rigl"
    const rigl_report report = run_rigl(model, rigl, optimization, steps, task, random, scope, resume);
    result.train_flops = report.training.flops;
    result.train_wall_s = report.training.wall_s - task.eval_seconds();
    summary["mode"] = "rigl";
    summary["sparsity"] = report.sparsity;
    summary["updates"] = static_cast<long>(report.updates.size());
  } else if (l.lmc_step) {
    if (resume == nullptr && !l.mask_from.empty()) detail::apply_ticket(model, l, o.common.seed);
    finetune_task<Model, TaskData> second(o, data, pad, metrics, steps_per_epoch, o.common.seed + 1);
    second.attach(model);
    second.attach_checkpoints(checkpoints);
    second.attach_first_copy(task);
    // A state the second copy wrote holds both records (the caller restored `task` from it as a whole).
    if (resume != nullptr && resume->record("task").contains("first_copy")) {
      task.restore(resume->record("task").at("first_copy"));
      second.restore(resume->record("task"));
    }
    instability_options lmc;
    lmc.steps = steps;
    lmc.split_step = *l.lmc_step;
    lmc.points = l.lmc_points;
    lmc.optimization = optimization;
    const auto& dev = data.dev.front().second;
    const auto evaluate = [&](Model& m) {
      const metric_values metrics_now = evaluate_task(m, data, pad);
      return path_point{0, mean_loss(m, dev, 64, pad, &job::group()), 1 - metrics_now.items().front().second};
    };
    const instability_report report = run_instability(model, lmc, task, second, evaluate, resume);
    result.train_flops = report.flops;
    result.train_wall_s = report.wall_s - task.eval_seconds() - second.eval_seconds();
    json record{{"split_step", report.split_step},
                {"steps", steps},
                {"main_metric", data.metrics.front()},
                {"error", "1 - " + data.metrics.front()},
                {"error_barrier", report.path.error_barrier()},
                {"loss_barrier", report.path.loss_barrier()},
                {"points", detail::path_json(report.path)}};
    if (!l.mask_from.empty()) record["mask_from"] = l.mask_from;
    if (!l.control.empty()) record["control"] = l.control;
    json event{{"event", "lmc"}};
    event.update(record);
    metrics.write(event);
    if (!o.out.empty() && job::lead()) {
      fs::create_directories(o.out);
      write_file_atomically(fs::path(o.out) / "lmc.json", record.dump(2) + "\n");
    }
    messages::status("finetune", "instability from step {}: error barrier {:.4f}, loss barrier {:.4f}", report.split_step,
                     report.path.error_barrier(), report.path.loss_barrier());
    summary["mode"] = "lmc";
    summary["error_barrier"] = report.path.error_barrier();
    summary["loss_barrier"] = report.path.loss_barrier();
  } else {
    // A ticket (or a control of one), or static random sparsity: dense training under fixed masks.
    if (resume == nullptr) {
      if (!l.mask_from.empty()) {
        detail::apply_ticket(model, l, o.common.seed);
      } else {
        rigl_options masks;  // RigL's initial masks, which never change here
        masks.end_step = steps;
        masks.sparsity = *l.sparsity;
        masks.allocation = l.allocation == "erk" ? sparsity_allocation::erk : sparsity_allocation::uniform;
        rng random(o.common.seed ^ 0x7269676cULL);
        std::vector<weight_family<scalar>> families = weight_families(model, scope);
        rigl_initial_masks(std::span(families), masks, random);
      }
    }
    const dense_report report = run_dense(model, optimization, steps, task, resume);
    result.train_flops = report.flops;
    result.train_wall_s = report.wall_s - task.eval_seconds();
    summary["mode"] = !l.mask_from.empty() ? (l.control.empty() ? "ticket" : "control_" + l.control) : "static_sparse";
    summary["sparsity"] = sparsity_now();
  }
  // The model as it ends (an instability run's first copy, which its task evaluated before the second
  // trained: evaluated again, without another event, since a resumed run's task may not have seen it).
  const metric_values dev = l.lmc_step ? task.report_evaluation([&] { return evaluate_task(model, data, pad); }) : task.evaluate(steps);
  result.dev_metrics = dev;
  result.main_metric = dev.items().front().first;
  result.dev_main = dev.items().front().second;
  for (const auto& [name, value] : dev.items()) {
    if (name == "accuracy") result.dev_accuracy = value;
  }
  summary["weights"] = l.weights;
  summary["task"] = data.name.empty() ? "custom" : data.name;
  summary["main_metric"] = result.main_metric;
  summary["dev_main"] = result.dev_main;
  summary["dev_metrics"] = metrics_json(dev);
  summary["train_wall_s"] = result.train_wall_s;
  summary["train_flops"] = result.train_flops;
  summary["flops_note"] = l.imp_structures ? "the structures kept: masked heads and neurons still run in the GEMMs until compacted"
                                           : "the dense model's: unstructured masks save no FLOPs with dense GEMMs";
  summary["total_steps"] = result.total_steps;
  metrics.write(summary);
  return result;
}

}  // namespace earlybert::cli
