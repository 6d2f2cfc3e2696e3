// SPDX-License-Identifier: Apache-2.0
#pragma once
// RigL training (Evci et al. 2020; the update rule, schedule and allocation in prune/rigl.hpp): random
// masks at the allocation's densities, then training in which, at every update step, the masks are
// lifted for the step's backward pass (a dense gradient; the values are unchanged, masked weights
// being zero) and, once the gradient is complete (summed over the processes of a data-parallel run,
// so every process decides alike), each family drops and grows; the step's AdamW update then runs
// under the new masks. The report lists every update's fraction and the weights it moved (the mask
// turnover).
//
// FLOPs follow the dense cost model (train/earlybert.hpp): unstructured sparsity saves none with
// dense GEMMs, and the dense gradient of an update step costs what every step costs. Not built yet:
// checkpoints and resuming.

#include <span>
#include <vector>

#include "earlybert/core/rng.hpp"
#include "earlybert/nn/structure.hpp"
#include "earlybert/prune/rigl.hpp"
#include "earlybert/train/earlybert.hpp"

namespace earlybert {

struct rigl_update_record {
  long step = 0;
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

template <class Model, class Task>
rigl_report run_rigl(Model& model, const rigl_options& rigl, const optimization_options& optimization, long steps, Task& task, rng& random,
                     weight_scope scope = weight_scope::encoder) {
  using scalar = typename Model::scalar_type;
  static_assert(earlybert_task<Task, Model, scalar>, "run_rigl: the task must model earlybert_task");
  static_assert(!checkpointing_task<Task>, "run_rigl: checkpoints are not built yet; pass a task without them");
  rigl.check();
  if (steps < 1) throw config_error(fmt::format("run_rigl: steps is {}, expected at least 1", steps));
  std::vector<weight_family<scalar>> families = weight_families(model, scope);
  rigl_initial_masks(std::span(families), rigl, random);
  rigl_report report;
  std::vector<std::vector<std::uint8_t>> masks;
  struct hooks {
    const rigl_options& rigl;
    std::vector<weight_family<scalar>>& families;
    std::vector<std::vector<std::uint8_t>>& masks;
    rigl_report& report;
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
      rigl_update_record r{step, rigl.fraction_at(step), 0, 0, 0};
      const rigl_moves moves = rigl_update(std::span(families), masks, r.fraction);
      r.moved = moves.moved;
      r.grown_gradient = moves.moved == 0 ? 0.0 : moves.grown_gradient / static_cast<double>(moves.moved);
      for (const auto& f : families) r.active += f.active_count();
      report.updates.push_back(r);
    }
  };
  detail::pipeline_position position;
  position.mode = "rigl";
  detail::run_efficient_stage(model, optimization, steps, task, position, steps, hooks{rigl, families, masks, report});
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
