// SPDX-License-Identifier: Apache-2.0
#pragma once
// Evaluating a model on a dataset, in batches, without dropout and without recording (so memory holds
// one layer's work at a time: nn/bert.hpp, encode).
//
//   for_each_logits(model, data, batch, pad, f)   f(first_example, logits [rows, num_labels], batch) per
//                                                  batch, in dataset order (rows: sequences or tokens)
//   predict_sentences(model, data, batch, pad)     each example's arg-max class, or its score when the
//                                                  model is a regression head (one output)
//   predict_tags(model, data, batch, pad)          each word's arg-max tag (a token classifier)
//   predict_answers(model, data, batch, pad, o)    each question's best answer span's text (a span head)
//   classification_accuracy(model, data, batch, pad)   the fraction whose arg-max logit is the label

#include <algorithm>
#include <string>
#include <vector>

#include "earlybert/core/tape.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/tasks/glue.hpp"
#include "earlybert/tasks/squad.hpp"
#include "earlybert/tasks/tagging.hpp"

namespace earlybert {

template <class Model, class Dataset, class F>
void for_each_logits(Model& model, const Dataset& data, index_t batch, token_id pad, F&& f) {
  using Scalar = typename Model::scalar_type;
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  token_batch b;
  std::vector<std::size_t> indices;
  for (std::size_t start = 0; start < data.examples.size(); start += static_cast<std::size_t>(batch)) {
    indices.clear();
    for (std::size_t i = start; i < std::min(data.examples.size(), start + static_cast<std::size_t>(batch)); ++i) indices.push_back(i);
    make_batch(data, indices, pad, b);
    t.rewind();
    f(start, model.logits(t, b, false, 0), b);
  }
}

template <class Model>
sentence_predictions predict_sentences(Model& model, const classification_dataset& data, index_t batch, token_id pad) {
  sentence_predictions out;
  const bool regression = model.bert.built_config().regression();
  for_each_logits(model, data, batch, pad, [&](std::size_t, const auto& logits, const token_batch&) {
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

// Each sentence's predicted class per word (-1 for a word cut off by max_seq), from a token classifier.
template <class Model>
std::vector<std::vector<int>> predict_tags(Model& model, const tagging_dataset& data, index_t batch, token_id pad) {
  std::vector<std::vector<int>> out;
  out.reserve(data.examples.size());
  for_each_logits(model, data, batch, pad, [&](std::size_t first, const auto& logits, const token_batch& b) {
    for (index_t s = 0; s < b.batch; ++s) {
      const tagging_example& e = data.examples[first + static_cast<std::size_t>(s)];
      std::vector<int> tags(e.first_piece.size(), -1);
      for (std::size_t w = 0; w < tags.size(); ++w) {
        if (e.first_piece[w] < 0) continue;
        index_t best = 0;
        logits.value().row(s * b.seq + e.first_piece[w]).maxCoeff(&best);
        tags[w] = static_cast<int>(best);
      }
      out.push_back(std::move(tags));
    }
  });
  return out;
}

// Each question's answer text, from a span head's logits over all its windows (tasks/squad.hpp).
template <class Model>
std::vector<std::string> predict_answers(Model& model, const qa_dataset& data, index_t batch, token_id pad, const squad_options& options) {
  answer_extractor extractor(data, options);
  std::vector<float> start, end;
  for_each_logits(model, data, batch, pad, [&](std::size_t first, const auto& logits, const token_batch& b) {
    for (index_t s = 0; s < b.batch; ++s) {
      start.resize(static_cast<std::size_t>(b.seq));
      end.resize(static_cast<std::size_t>(b.seq));
      for (index_t i = 0; i < b.seq; ++i) {
        start[static_cast<std::size_t>(i)] = static_cast<float>(logits.value()(s * b.seq + i, 0));
        end[static_cast<std::size_t>(i)] = static_cast<float>(logits.value()(s * b.seq + i, 1));
      }
      extractor.add(first + static_cast<std::size_t>(s), start, end);
    }
  });
  return extractor.answers();
}

template <class Model>
double classification_accuracy(Model& model, const classification_dataset& data, index_t batch, token_id pad) {
  if (data.examples.empty()) return 0.0;
  const sentence_predictions predicted = predict_sentences(model, data, batch, pad);
  return accuracy(predicted.classes, data.gold_labels());
}

}  // namespace earlybert
