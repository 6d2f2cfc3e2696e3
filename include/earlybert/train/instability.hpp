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
//                                           1/n, ..., 1 (n = 30 as Frankle et al.)
//   linear_path::error_barrier()            the instability: the largest error on the path minus the
//                                           mean of the endpoints' errors (loss_barrier() the same for
//                                           the loss)
//   instability(start, train, evaluate, n)  copies `start` (the state at step k) twice, trains each with
//                                           train(copy, variant) for variant 0 and 1 (the caller gives
//                                           each its own data order and dropout seed), and returns the
//                                           path between them; sweep k for the instability curve
//
// Models are anything with for_each_parameter, copyable; a, b and out must have the same parameters
// in the same order and shapes (the same architecture, masks and compaction).

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/nn/bert.hpp"

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

template <class Model>
void interpolate_weights(Model& a, Model& b, double alpha, Model& out) {
  using scalar = typename Model::scalar_type;
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

template <class Model, class Evaluate>
linear_path evaluate_linear_path(Model& a, Model& b, int n, Evaluate&& evaluate) {
  if (n < 1) throw config_error(fmt::format("evaluate_linear_path: {} intervals, expected at least 1", n));
  Model between = a;
  linear_path path;
  for (int i = 0; i <= n; ++i) {
    const double alpha = static_cast<double>(i) / n;
    interpolate_weights(a, b, alpha, between);
    path_point p = evaluate(between);
    p.alpha = alpha;
    path.points.push_back(p);
  }
  return path;
}

template <class Model, class Train, class Evaluate>
linear_path instability(const Model& start, Train&& train, Evaluate&& evaluate, int n = 30) {
  Model first = start, second = start;
  train(first, 0);
  train(second, 1);
  return evaluate_linear_path(first, second, n, evaluate);
}

}  // namespace earlybert
