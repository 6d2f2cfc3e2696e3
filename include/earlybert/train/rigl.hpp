// SPDX-License-Identifier: Apache-2.0
#pragma once
// RigL training (Evci et al. 2020; the update rule, schedule and allocation in prune/rigl.hpp): random
// masks at the allocation's densities, then training in which, at every update step, the masks are
// lifted for the step's backward pass (a dense gradient; the values are unchanged, masked weights
// being zero) and, once the gradient is complete (summed over the processes of a data-parallel run,
// so every process decides alike), each family drops and grows; the step's AdamW update then runs
// under the new masks. The report lists every update's fraction and the weights it moved (the mask
// turnover); the task hears each as {"event": "rigl_update", "step" (counted from 1, as on_step's),
// "fraction", "moved", "active", "grown_gradient"}.
//
// FLOPs follow the dense cost model (train/earlybert.hpp): unstructured sparsity saves none with
// dense GEMMs, and the dense gradient of an update step costs what every step costs.
//
// RigL draws its own masks: a model that already holds unstructured masks in the families it trains
// (an IMP ticket, say) is refused with a config_error, since the random start would replace them
// silently. Checkpoints and resume: with a checkpointing task the training state holds the weights,
// their masks and the updates so far, and `resume` continues from it, bit for bit.

#include <span>
#include <vector>

#include "earlybert/core/rng.hpp"
#include "earlybert/nn/structure.hpp"
#include "earlybert/prune/rigl.hpp"
#include "earlybert/train/earlybert.hpp"

namespace earlybert {

struct rigl_update_record {
  long step = 0;        // the step the update ran in, counted from 1 (as on_step's and the event's)
  double fraction = 0;  // of each family's active weights
  index_t moved = 0;    // weights dropped (= grown), over all families
  index_t active = 0;   // active weights, over all families
  double grown_gradient = 0;  // mean |dense gradient| of the weights grown
};

struct rigl_report {
  dense_report training;
  std::vector<rigl_update_record> updates;
  double sparsity = 0;  // over the families, constant through the run
};

namespace detail {
inline nlohmann::ordered_json rigl_updates_json(const std::vector<rigl_update_record>& updates) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& u : updates) {
    out.push_back({{"step", u.step}, {"fraction", u.fraction}, {"moved", u.moved}, {"active", u.active}, {"grown_gradient", u.grown_gradient}});
  }
  return out;
}
inline std::vector<rigl_update_record> rigl_updates_from_json(const nlohmann::json& j) {
  std::vector<rigl_update_record> out;
  for (const auto& u : j) {
    out.push_back({read_whole_number<long>(u.at("step"), "step"), u.at("fraction").get<double>(), read_whole_number<index_t>(u.at("moved"), "moved"),
                   read_whole_number<index_t>(u.at("active"), "active"), u.at("grown_gradient").get<double>()});
  }
  return out;
}
}  // namespace detail

template <class Model, class Task>
rigl_report run_rigl(Model& model, const rigl_options& rigl, const optimization_options& optimization, long steps, Task& task, rng& random,
                     weight_scope scope = weight_scope::encoder, const training_state_reader* resume = nullptr) {
  using scalar = typename Model::scalar_type;
  static_assert(earlybert_task<Task, Model, scalar>, "run_rigl: the task must model earlybert_task");
  rigl.check();
  if (steps < 1) throw config_error(fmt::format("run_rigl: steps is {}, expected at least 1", steps));
  rigl_report report;
  detail::pipeline_position position;
  position.mode = "rigl";
  position.stage = pipeline_stage::efficient;
  if (resume != nullptr) {
    position = detail::read_position(*resume, "rigl");
    try {
      report.updates = detail::rigl_updates_from_json(position.method.at("updates"));
    } catch (const nlohmann::json::exception& e) {
      throw io_error(fmt::format("training state '{}': the RigL record is malformed ({})", resume->path(), e.what()));
    }
    resume->read_model(model);
  }
  std::vector<weight_family<scalar>> families = weight_families(model, scope);
  if (resume == nullptr) {
    index_t masked = 0, total = 0, holding = 0;
    for (const auto& f : families) {
      masked += f.size() - f.active_count();
      total += f.size();
      holding += f.active_count() != f.size();
    }
    if (masked != 0) {
      throw config_error(fmt::format("run_rigl: the model already holds unstructured weight masks ({} of {} weights masked, in {} of {} "
                                     "matrices); RigL starts from random masks of its own and would replace them: clear them "
                                     "(weight_family::clear) to start RigL afresh, or train a ticket under its masks with run_dense",
                                     masked, total, holding, families.size()));
    }
    rigl_initial_masks(std::span(families), rigl, random);
  }
  std::vector<std::vector<std::uint8_t>> masks;
  struct hooks : detail::no_step_hooks {
    const rigl_options& rigl;
    std::vector<weight_family<scalar>>& families;
    std::vector<std::vector<std::uint8_t>>& masks;
    rigl_report& report;
    Task& task;
    void before_step(long step) {
      if (!rigl.updates_at(step)) return;
      masks.clear();
      for (auto& f : families) {
        masks.push_back(f.active());
        f.clear();  // a dense gradient for this step
      }
    }
    void after_backward(long step) {
      if (!rigl.updates_at(step)) return;
      rigl_update_record r{step + 1, rigl.fraction_at(step), 0, 0, 0};
      const rigl_moves moves = rigl_update(std::span(families), masks, r.fraction);
      r.moved = moves.moved;
      r.grown_gradient = moves.moved == 0 ? 0.0 : moves.grown_gradient / static_cast<double>(moves.moved);
      for (const auto& f : families) r.active += f.active_count();
      report.updates.push_back(r);
      task.on_event({{"event", "rigl_update"}, {"step", r.step}, {"fraction", r.fraction}, {"moved", r.moved}, {"active", r.active},
                     {"grown_gradient", r.grown_gradient}});
    }
    void save(training_state_writer&, detail::pipeline_position& position) { position.method = {{"updates", detail::rigl_updates_json(report.updates)}}; }
  };
  detail::run_efficient_stage(model, optimization, steps, task, position, steps, hooks{{}, rigl, families, masks, report, task});
  report.training = {position.report.efficient_steps, position.report.efficient_wall_s, position.report.efficient_flops};
  index_t kept = 0, total = 0;
  for (const auto& f : families) {
    kept += f.active_count();
    total += f.size();
  }
  report.sparsity = total == 0 ? 0.0 : 1.0 - static_cast<double>(kept) / static_cast<double>(total);
  return report;
}

}  // namespace earlybert
