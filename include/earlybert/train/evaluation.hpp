// SPDX-License-Identifier: Apache-2.0
#pragma once
// Evaluating a model on a dataset, in batches, without dropout and without recording (so memory holds
// one layer's work at a time: nn/bert.hpp, encode).
//
//   for_each_logits(model, data, batch, pad, f)   f(first_example, logits [rows, num_labels]) per batch,
//                                                  in dataset order
//   predict_sentences(model, data, batch, pad)     each example's arg-max class, or its score when the
//                                                  model is a regression head (one output)
//   classification_accuracy(model, data, batch, pad)   the fraction whose arg-max logit is the label

#include <algorithm>
#include <vector>

#include "earlybert/core/tape.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/tasks/glue.hpp"

namespace earlybert {

template <class Model, class F>
void for_each_logits(Model& model, const classification_dataset& data, index_t batch, token_id pad, F&& f) {
  using Scalar = typename Model::scalar_type;
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  token_batch b;
  std::vector<std::size_t> indices;
  for (std::size_t start = 0; start < data.examples.size(); start += static_cast<std::size_t>(batch)) {
    indices.clear();
    for (std::size_t i = start; i < std::min(data.examples.size(), start + static_cast<std::size_t>(batch)); ++i) indices.push_back(i);
    make_classification_batch(data, indices, pad, b);
    t.rewind();
    f(start, model.logits(t, b, false, 0));
  }
}

template <class Model>
sentence_predictions predict_sentences(Model& model, const classification_dataset& data, index_t batch, token_id pad) {
  sentence_predictions out;
  const bool regression = model.bert.built_config().regression();
  for_each_logits(model, data, batch, pad, [&](std::size_t, const auto& logits) {
    for (index_t r = 0; r < logits.rows(); ++r) {
      if (regression) {
        out.scores.push_back(static_cast<double>(logits.value()(r, 0)));
        continue;
      }
      index_t best = 0;
      logits.value().row(r).maxCoeff(&best);
      out.classes.push_back(static_cast<int>(best));
    }
  });
  return out;
}

template <class Model>
double classification_accuracy(Model& model, const classification_dataset& data, index_t batch, token_id pad) {
  if (data.examples.empty()) return 0.0;
  const sentence_predictions predicted = predict_sentences(model, data, batch, pad);
  return accuracy(predicted.classes, data.gold_labels());
}

}  // namespace earlybert
