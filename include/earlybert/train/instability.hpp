// SPDX-License-Identifier: Apache-2.0
#pragma once
// Instability analysis (Frankle et al., ICML 2020, "Linear mode connectivity and the lottery ticket
// hypothesis"): are two runs from the same state, differing only in data order and dropout, joined by a
// straight line of low error? If so, the state is stable, and rewinding to it finds matching tickets.
//
//   interpolate_weights(a, b, alpha, out)   out's parameters := (1 - alpha) a + alpha b, exactly a at
//                                           alpha = 0 and exactly b at 1 (computed in double, each
//                                           weight rounded once); masked weights, zero in both, stay zero
//   evaluate_linear_path(a, b, n, evaluate) evaluate(model) -> path_point{loss, error} at alpha = 0,
//                                           1/n, ..., 1 (n = 30 as Frankle et al.); with a fifth
//                                           argument, before_point(i) is called before point i
//   linear_path::error_barrier()            the instability: the largest error on the path minus the
//                                           mean of the endpoints' errors (loss_barrier() the same for
//                                           the loss)
//   instability(start, train, evaluate, n)  copies `start` (the state at step k) twice, trains each with
//                                           train(copy, variant) for variant 0 and 1 (the caller gives
//                                           each its own data order and dropout seed), and returns the
//                                           path between them; sweep k for the instability curve
//
//   run_instability(model, options, first, second, evaluate, resume)
//                                           the same for one training run, resumable: trains `model`
//                                           for steps [0, k) and [k, steps) with task `first`, and a
//                                           copy of its state at k for [k, steps) with task `second`
//                                           (the caller gives the two tasks their own data order and
//                                           dropout); `model` ends as the first copy. `second`
//                                           hears {"event": "instability_second_copy", "from_step"}
//                                           before the second copy trains
//
// Models are anything with for_each_parameter, copyable; a, b and out must have the same parameters
// in the same order and shapes. A model with linear layers (for_each_linear) must also hold the same
// structure in all three, checked layer by layer: the same original heads and neurons after compaction
// (else equal shapes would average head 0 of one model with head 1 of the other), the same masked heads
// and neurons, and the same unstructured weight masks (else weights pruned in one model would come out
// non-zero and take part in the forward pass). Anything else is a shape_error naming the layer; the
// line between two different tickets is not a path this analysis defines.
//
// Checkpoints and resume (run_instability): with tasks that model checkpointing_task, the training
// state holds the copy in training, the state at k while the first copy trains ("instability.split.")
// and the first copy's weights while the second trains ("instability.first."), and the phase (the
// pipeline record's "method"); a resumed run ends as the uninterrupted one, bit for bit. The path
// comes after the last step: if `second` models stoppable_task, it is asked before every point, and a
// stop writes the state of the two trained copies (the second's steps all done), from which a resumed
// run evaluates the path again from its start, without training.

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/rewind_point.hpp"

namespace earlybert {

struct path_point {
  double alpha = 0;
  double loss = 0;
  double error = 0;  // 1 - the task's metric where higher is better (accuracy, F1, ...)
};

struct linear_path {
  std::vector<path_point> points;  // alpha ascending from 0 to 1

  double error_barrier() const { return barrier(&path_point::error); }
  double loss_barrier() const { return barrier(&path_point::loss); }

 private:
  double barrier(double path_point::*of) const {
    if (points.size() < 2) throw config_error(fmt::format("linear_path: {} points, expected at least the two endpoints", points.size()));
    double highest = points.front().*of;
    for (const path_point& p : points) highest = std::max(highest, p.*of);
    return highest - 0.5 * (points.front().*of + points.back().*of);
  }
};

namespace detail {
// The three models' linear layers hold the same kept groups, the same active groups and the same
// unstructured weight masks (interpolate_weights' precondition).
template <class Model>
void check_same_structure(Model& a, Model& b, Model& out) {
  using scalar = typename Model::scalar_type;
  std::vector<const linear<scalar>*> la, lb, lo;
  a.for_each_linear([&](const linear<scalar>& l) { la.push_back(&l); });
  b.for_each_linear([&](const linear<scalar>& l) { lb.push_back(&l); });
  out.for_each_linear([&](const linear<scalar>& l) { lo.push_back(&l); });
  if (la.size() != lb.size() || la.size() != lo.size()) {
    throw shape_error(fmt::format("interpolate_weights: the models hold {}, {} and {} linear layers, expected the same", la.size(),
                                  lb.size(), lo.size()));
  }
  const auto same = [](auto x, auto y) { return std::equal(x.begin(), x.end(), y.begin(), y.end()); };
  for (std::size_t i = 0; i < la.size(); ++i) {
    const std::string& name = la[i]->weight.name;
    for (const auto& [other, which] : {std::pair{lb[i], "second model"}, std::pair{lo[i], "output model"}}) {
      if (!same(la[i]->kept_groups(), other->kept_groups())) {
        throw shape_error(fmt::format("interpolate_weights: '{}' holds the original groups (heads or neurons) [{}] in the first model "
                                      "and [{}] in the {}; the same positions would mix different heads or neurons, so the models "
                                      "must be compacted to the same structure",
                                      name, fmt::join(la[i]->kept_groups(), ", "), fmt::join(other->kept_groups(), ", "), which));
      }
      if (!same(la[i]->active_groups(), other->active_groups())) {
        throw shape_error(fmt::format("interpolate_weights: '{}' masks other heads or neurons in the first model than in the {} "
                                      "(active [{}] and [{}]); interpolate models under the same masks",
                                      name, which, fmt::join(la[i]->active_groups(), ", "), fmt::join(other->active_groups(), ", ")));
      }
      // A layer without a mask keeps every weight, as one whose mask is all ones.
      const auto ma = la[i]->weight_mask(), mo = other->weight_mask();
      const auto kept = [](std::span<const std::uint8_t> mask, std::size_t e) { return mask.empty() || mask[e] != 0; };
      index_t differ = 0;
      if (la[i]->weight.size() == other->weight.size()) {
        for (std::size_t e = 0; e < static_cast<std::size_t>(la[i]->weight.size()); ++e) differ += kept(ma, e) != kept(mo, e);
      }
      if (differ != 0) {
        throw shape_error(fmt::format("interpolate_weights: '{}' has another unstructured weight mask in the first model than in the {} "
                                      "({} weights masked in one and not the other); the weights one mask prunes would come out "
                                      "non-zero on the line, so interpolate models under the same mask",
                                      name, which, differ));
      }
    }
  }
}
}  // namespace detail

template <class Model>
void interpolate_weights(Model& a, Model& b, double alpha, Model& out) {
  using scalar = typename Model::scalar_type;
  if constexpr (requires { a.for_each_linear([](const linear<scalar>&) {}); }) detail::check_same_structure(a, b, out);
  const auto pa = parameters_of(a), pb = parameters_of(b), po = parameters_of(out);
  if (pa.size() != pb.size() || pa.size() != po.size()) {
    throw shape_error(fmt::format("interpolate_weights: the models hold {}, {} and {} parameters, expected the same", pa.size(), pb.size(),
                                  po.size()));
  }
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const matrix<scalar>&va = pa[i]->value, &vb = pb[i]->value;
    matrix<scalar>& vo = po[i]->value;
    if (va.rows() != vb.rows() || va.cols() != vb.cols() || va.rows() != vo.rows() || va.cols() != vo.cols()) {
      throw shape_error(fmt::format("interpolate_weights: parameter '{}' is [{}, {}], [{}, {}] and [{}, {}] in the three models", pa[i]->name,
                                    va.rows(), va.cols(), vb.rows(), vb.cols(), vo.rows(), vo.cols()));
    }
    for (index_t e = 0; e < va.size(); ++e) {
      vo.data()[e] = static_cast<scalar>((1 - alpha) * static_cast<double>(va.data()[e]) + alpha * static_cast<double>(vb.data()[e]));
    }
  }
}

template <class Model, class Evaluate, class BeforePoint>
linear_path evaluate_linear_path(Model& a, Model& b, int n, Evaluate&& evaluate, BeforePoint&& before_point) {
  if (n < 1) throw config_error(fmt::format("evaluate_linear_path: {} intervals, expected at least 1", n));
  Model between = a;
  linear_path path;
  for (int i = 0; i <= n; ++i) {
    before_point(i);
    const double alpha = static_cast<double>(i) / n;
    interpolate_weights(a, b, alpha, between);
    path_point p = evaluate(between);
    p.alpha = alpha;
    path.points.push_back(p);
  }
  return path;
}
template <class Model, class Evaluate>
linear_path evaluate_linear_path(Model& a, Model& b, int n, Evaluate&& evaluate) {
  return evaluate_linear_path(a, b, n, evaluate, [](int /*point*/) {});
}

template <class Model, class Train, class Evaluate>
linear_path instability(const Model& start, Train&& train, Evaluate&& evaluate, int n = 30) {
  Model first = start, second = start;
  train(first, 0);
  train(second, 1);
  return evaluate_linear_path(first, second, n, evaluate);
}

struct instability_options {
  long steps = 0;       // of the run's schedule
  long split_step = 0;  // k: where the copies part, in [0, steps)
  int points = 30;      // n: intervals on the line
  optimization_options optimization;

  void check() const {
    if (steps < 1) throw config_error(fmt::format("instability: steps is {}, expected at least 1", steps));
    if (split_step < 0 || split_step >= steps) {
      throw config_error(fmt::format("instability: split_step is {}, expected a step in [0, {})", split_step, steps));
    }
    if (points < 1) throw config_error(fmt::format("instability: points is {}, expected at least 1", points));
    optimization.check();
  }
};

struct instability_report {
  linear_path path;
  long split_step = 0;
  double wall_s = 0;  // training, both copies
  double flops = 0;   // training FLOPs, both copies (the dense cost model)
};

namespace detail {
// The instability run's part of a training state: its phase, and the point or copy the phase needs.
template <class Scalar>
struct instability_hooks : no_step_hooks {
  const std::string& phase;
  const std::optional<rewind_point<Scalar>>& split;
  const std::optional<rewind_point<Scalar>>& first;
  void save(training_state_writer& state, pipeline_position& position) {
    position.method = {{"phase", phase}, {"split_optimizer_steps", split ? split->optimizer_steps : 0}};
    if (phase == "first" && split) split->add_to(state, "instability.split.");
    if (phase == "second") first->add_to(state, "instability.first.");
  }
};
}  // namespace detail

template <class Model, class FirstTask, class SecondTask, class Evaluate>
instability_report run_instability(Model& model, const instability_options& options, FirstTask& first, SecondTask& second, Evaluate&& evaluate,
                                   const training_state_reader* resume = nullptr) {
  using scalar = typename Model::scalar_type;
  static_assert(earlybert_task<FirstTask, Model, scalar> && earlybert_task<SecondTask, Model, scalar>,
                "run_instability: the tasks must model earlybert_task");
  options.check();
  detail::pipeline_position position;
  position.mode = "instability";
  position.stage = pipeline_stage::efficient;
  std::string phase = "first";  // the trunk [0, k) and the first copy are one run
  std::optional<rewind_point<scalar>> split, first_copy;
  if (resume != nullptr) {
    position = detail::read_position(*resume, "instability");
    try {
      phase = position.method.at("phase").get<std::string>();
      const long optimizer_steps = read_whole_number<long>(position.method.at("split_optimizer_steps"), "split_optimizer_steps");
      if (phase == "first" && position.steps_done > options.split_step) {
        split = rewind_point<scalar>::read(*resume, model, "instability.split.", options.split_step, optimizer_steps);
      } else if (phase == "second") {
        first_copy = rewind_point<scalar>::read(*resume, model, "instability.first.", options.steps, 0);
      } else if (phase != "first") {
        throw io_error(fmt::format("phase '{}', expected first or second", phase));
      }
    } catch (const nlohmann::json::exception& e) {
      throw io_error(fmt::format("training state '{}': the instability record is malformed ({})", resume->path(), e.what()));
    } catch (const io_error& e) {
      throw io_error(fmt::format("training state '{}': the instability record is malformed ({})", resume->path(), e.what()));
    }
    resume->read_model(model);
  }
  detail::instability_hooks<scalar> hooks{{}, phase, split, first_copy};
  if (phase == "first") {
    if (!split) {
      detail::run_efficient_stage(model, options.optimization, options.steps, first, position, options.split_step, hooks);
      split = rewind_point<scalar>::take(model, options.split_step, position.optimizer_steps);
    }
    detail::run_efficient_stage(model, options.optimization, options.steps, first, position, options.steps, hooks);
    first_copy = rewind_point<scalar>::take(model, options.steps, position.optimizer_steps);
    split->restore(model, optimizer_rewind::restored);
    position.steps_done = options.split_step;
    position.optimizer_steps = split->optimizer_steps;
    phase = "second";
    second.on_event({{"event", "instability_second_copy"}, {"from_step", options.split_step}});
  }
  detail::run_efficient_stage(model, options.optimization, options.steps, second, position, options.steps, hooks);
  Model second_copy = model;
  first_copy->restore(model, optimizer_rewind::restored);
  // Asked before each point: the path takes as long as many evaluations, and a stop during it should
  // not cost the training before it.
  const auto stop_if_asked = [&](int /*point*/) {
    if constexpr (stoppable_task<SecondTask>) {
      if (second.stop_requested()) {
        detail::write_checkpoint(second, second_copy, position, [&](training_state_writer& state) { hooks.save(state, position); });
      }
    }
  };
  instability_report report;
  report.split_step = options.split_step;
  report.path = evaluate_linear_path(model, second_copy, options.points, evaluate, stop_if_asked);
  report.wall_s = position.report.efficient_wall_s;
  report.flops = position.report.efficient_flops;
  return report;
}

}  // namespace earlybert
