// SPDX-License-Identifier: Apache-2.0
#pragma once
// The task losses: softmax cross-entropy with an ignore label, fused with its log-softmax, and the
// mean squared error of a regression head.
//
// cross_entropy:
//   logits [rows, classes], labels [rows] (a class, or ignore_label to skip the row)
//   loss = (1 / n) sum over counted rows r of -log softmax(logits_r)[labels_r],  n = counted rows
// A batch in which every row is ignored has loss 0 and no gradient (PyTorch returns NaN there; a
// masked-LM batch without a masked position is legal and should not poison training).
// Backward (accumulating), recomputing softmax from the cached log-sum-exp of each row:
//   dlogits_r += dloss / n * (softmax(logits_r) - onehot(labels_r))     for counted rows
// mean_squared_error (PyTorch's MSELoss, mean reduction, as BertForSequenceClassification with one
// label):
//   predictions [rows, 1], targets [rows];  loss = (1 / rows) sum_r (predictions_r - targets_r)^2
//   dpredictions_r += dloss * 2 (predictions_r - targets_r) / rows

#include <cmath>
#include <span>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

template <class Scalar>
var<Scalar> cross_entropy(tape<Scalar>& t, const var<Scalar>& logits, std::span<const token_id> labels,
                          token_id ignore = ignore_label) {
  const index_t rows = logits.rows(), classes = logits.cols();
  if (static_cast<index_t>(labels.size()) != rows) {
    throw shape_error(fmt::format("cross_entropy: argument 'labels' has {} entries, expected {} (one per row of logits)",
                                  labels.size(), rows));
  }
  index_t counted = 0;
  for (index_t r = 0; r < rows; ++r) {
    const token_id label = labels[static_cast<std::size_t>(r)];
    if (label == ignore) continue;
    if (label < 0 || label >= classes) {
      throw shape_error(fmt::format("cross_entropy: argument 'labels' holds {} at position {}, expected a "
                                    "value in [0, {}) or the ignore label {}", label, r, classes, ignore));
    }
    ++counted;
  }
  var<Scalar> loss = t.make(1, 1, any_needs_gradient(t, logits));
  const bool backward = loss.needs_gradient();
  // Per-row log-sum-exp, and each row's loss term (summed serially for determinism).
  Scalar* lse = t.template scratch<Scalar>(rows);
  Scalar* term = t.template scratch<Scalar>(rows);
  token_id* saved = backward ? t.template scratch<token_id>(rows) : nullptr;
  detail::for_each_chunk(rows, detail::row_grain(classes), [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const token_id label = labels[static_cast<std::size_t>(r)];
      if (saved != nullptr) saved[r] = label;
      if (label == ignore) {
        term[r] = Scalar(0);
        continue;
      }
      const auto row = detail::flat(logits.value_data(), r * classes, (r + 1) * classes);
      const Scalar max = row.maxCoeff();
      lse[r] = max + std::log((row - max).exp().sum());
      term[r] = lse[r] - logits.value_data()[r * classes + label];
    }
  });
  Scalar total = 0;
  for (index_t r = 0; r < rows; ++r) total += term[r];
  *loss.value_data() = counted > 0 ? total / static_cast<Scalar>(counted) : Scalar(0);

  if (backward && counted > 0) {
    t.on_backward([=] {
      const Scalar scale = *loss.adjoint_data() / static_cast<Scalar>(counted);
      detail::for_each_chunk(rows, detail::row_grain(classes), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
          if (saved[r] == ignore) continue;
          const auto row = detail::flat(logits.value_data(), r * classes, (r + 1) * classes);
          auto d = detail::flat(logits.adjoint_data(), r * classes, (r + 1) * classes);
          d += scale * (row - lse[r]).exp();
          logits.adjoint_data()[r * classes + saved[r]] -= scale;
        }
      });
    });
  }
  return loss;
}

template <class Scalar>
var<Scalar> mean_squared_error(tape<Scalar>& t, const var<Scalar>& predictions, std::span<const double> targets) {
  const index_t rows = predictions.rows();
  if (predictions.cols() != 1) {
    throw shape_error(fmt::format("mean_squared_error: argument 'predictions' is [{}, {}], expected one column", rows, predictions.cols()));
  }
  if (static_cast<index_t>(targets.size()) != rows || rows == 0) {
    throw shape_error(fmt::format("mean_squared_error: argument 'targets' has {} entries, expected {} (one per row, at least one)",
                                  targets.size(), rows));
  }
  var<Scalar> loss = t.make(1, 1, any_needs_gradient(t, predictions));
  Scalar* saved = t.template scratch<Scalar>(rows);
  Scalar total = 0;
  for (index_t r = 0; r < rows; ++r) {
    saved[r] = static_cast<Scalar>(targets[static_cast<std::size_t>(r)]);
    const Scalar d = predictions.value_data()[r] - saved[r];
    total += d * d;
  }
  *loss.value_data() = total / static_cast<Scalar>(rows);
  if (loss.needs_gradient()) {
    t.on_backward([=] {
      const Scalar scale = 2 * *loss.adjoint_data() / static_cast<Scalar>(rows);
      for (index_t r = 0; r < rows; ++r) predictions.adjoint_data()[r] += scale * (predictions.value_data()[r] - saved[r]);
    });
  }
  return loss;
}

}  // namespace earlybert
