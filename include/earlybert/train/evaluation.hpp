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
//   extract_answers(model, data, batch, pad, o)    the same as an answer_extractor: the best answers and
//                                                  each question's n best with their probabilities
//   classification_accuracy(model, data, batch, pad)   the fraction whose arg-max logit is the label
//   mean_loss(model, data, batch, pad)             the task loss over the whole set: the mean
//                                                  cross-entropy of every labelled row (sequences or
//                                                  words), or a regression head's mean squared error
//   evaluate_masked_lm(model, corpus, sequences, seq, batch, special, vocab_size)
//                                                  a masked-LM model on held-out text: the loss and
//                                                  accuracy over the masked positions (see below)
//
// Each takes an optional process group (distributed/process_group.hpp): the processes then share the
// forward passes, batch i running on process i mod N, and exchange the logits, so that f sees every
// batch in dataset order on every process and every process gets the whole result. for_each_logits and
// the predict_* functions take an optional progress callback last, progress(done, total), called after
// every batch with the examples done so far (sequences, sentences or SQuAD windows).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/distributed/process_group.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/tasks/glue.hpp"
#include "earlybert/tasks/squad.hpp"
#include "earlybert/tasks/tagging.hpp"

namespace earlybert {

// progress(examples done, examples in all), after every batch.
using evaluation_progress = std::function<void(std::size_t, std::size_t)>;

template <class Model, class Dataset, class F>
void for_each_logits(Model& model, const Dataset& data, index_t batch, token_id pad, F&& f, process_group* group = nullptr,
                     const evaluation_progress& progress = {}) {
  using Scalar = typename Model::scalar_type;
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  token_batch b;
  std::vector<std::size_t> indices;
  const auto step = static_cast<std::size_t>(batch);
  const auto make = [&](std::size_t start) {
    indices.clear();
    for (std::size_t i = start; i < std::min(data.examples.size(), start + step); ++i) indices.push_back(i);
    make_batch(data, indices, pad, b);
  };
  const int processes = group == nullptr ? 1 : group->size();
  if (processes == 1) {
    for (std::size_t start = 0; start < data.examples.size(); start += step) {
      make(start);
      t.rewind();
      f(start, model.logits(t, b, false, 0).value(), b);
      if (progress) progress(std::min(data.examples.size(), start + step), data.examples.size());
    }
    return;
  }
  // Rounds of one batch per process: each runs its own, then all exchange the logits (padded to the
  // round's largest, which the sizes exchanged first tell).
  const auto p = static_cast<std::size_t>(processes);
  const auto rank = static_cast<std::size_t>(group->rank());
  std::vector<Scalar> mine, all;
  std::vector<std::int64_t> shapes(2 * p);
  for (std::size_t round = 0; round * p * step < data.examples.size(); ++round) {
    const std::size_t start = (round * p + rank) * step;
    std::int64_t shape[2] = {0, 0};
    if (start < data.examples.size()) {
      make(start);
      t.rewind();
      const matrix_map<Scalar> value = model.logits(t, b, false, 0).value();
      mine.assign(value.data(), value.data() + value.size());
      shape[0] = value.rows();
      shape[1] = value.cols();
    }
    group->all_gather(std::as_bytes(std::span<const std::int64_t>(shape, 2)), std::as_writable_bytes(std::span(shapes)));
    std::size_t largest = 0;
    for (std::size_t r = 0; r < p; ++r) largest = std::max(largest, static_cast<std::size_t>(shapes[2 * r] * shapes[2 * r + 1]));
    mine.resize(largest);
    all.resize(largest * p);
    group->all_gather(std::as_bytes(std::span<const Scalar>(mine)), std::as_writable_bytes(std::span(all)));
    for (std::size_t r = 0; r < p; ++r) {
      const std::size_t first = (round * p + r) * step;
      if (first >= data.examples.size()) break;
      make(first);
      f(first, matrix_map<Scalar>(all.data() + r * largest, shapes[2 * r], shapes[2 * r + 1]), b);
      if (progress) progress(std::min(data.examples.size(), first + step), data.examples.size());
    }
  }
}

template <class Model>
sentence_predictions predict_sentences(Model& model, const classification_dataset& data, index_t batch, token_id pad,
                                       process_group* group = nullptr, const evaluation_progress& progress = {}) {
  sentence_predictions out;
  const bool regression = model.bert.built_config().regression();
  for_each_logits(model, data, batch, pad, [&](std::size_t, const auto& logits, const token_batch&) {
    for (index_t r = 0; r < logits.rows(); ++r) {
      if (regression) {
        out.scores.push_back(static_cast<double>(logits(r, 0)));
        continue;
      }
      index_t best = 0;
      logits.row(r).maxCoeff(&best);
      out.classes.push_back(static_cast<int>(best));
    }
  }, group, progress);
  return out;
}

// Each sentence's predicted class per word (-1 for a word cut off by max_seq), from a token classifier.
template <class Model>
std::vector<std::vector<int>> predict_tags(Model& model, const tagging_dataset& data, index_t batch, token_id pad,
                                           process_group* group = nullptr, const evaluation_progress& progress = {}) {
  std::vector<std::vector<int>> out;
  out.reserve(data.examples.size());
  for_each_logits(model, data, batch, pad, [&](std::size_t first, const auto& logits, const token_batch& b) {
    for (index_t s = 0; s < b.batch; ++s) {
      const tagging_example& e = data.examples[first + static_cast<std::size_t>(s)];
      std::vector<int> tags(e.first_piece.size(), -1);
      for (std::size_t w = 0; w < tags.size(); ++w) {
        if (e.first_piece[w] < 0) continue;
        index_t best = 0;
        logits.row(s * b.seq + e.first_piece[w]).maxCoeff(&best);
        tags[w] = static_cast<int>(best);
      }
      out.push_back(std::move(tags));
    }
  }, group, progress);
  return out;
}

// Every window of every question through a span head: the extractor holds each question's best answer
// and its n best (tasks/squad.hpp). It refers to `data`, which must outlive it.
template <class Model>
answer_extractor extract_answers(Model& model, const qa_dataset& data, index_t batch, token_id pad, const squad_options& options,
                                 process_group* group = nullptr, const evaluation_progress& progress = {}) {
  answer_extractor extractor(data, options);
  std::vector<float> start, end;
  for_each_logits(model, data, batch, pad, [&](std::size_t first, const auto& logits, const token_batch& b) {
    for (index_t s = 0; s < b.batch; ++s) {
      start.resize(static_cast<std::size_t>(b.seq));
      end.resize(static_cast<std::size_t>(b.seq));
      for (index_t i = 0; i < b.seq; ++i) {
        start[static_cast<std::size_t>(i)] = static_cast<float>(logits(s * b.seq + i, 0));
        end[static_cast<std::size_t>(i)] = static_cast<float>(logits(s * b.seq + i, 1));
      }
      extractor.add(first + static_cast<std::size_t>(s), start, end);
    }
  }, group, progress);
  return extractor;
}

// Each question's answer text, from a span head's logits over all its windows (tasks/squad.hpp).
template <class Model>
std::vector<std::string> predict_answers(Model& model, const qa_dataset& data, index_t batch, token_id pad, const squad_options& options,
                                         process_group* group = nullptr, const evaluation_progress& progress = {}) {
  return extract_answers(model, data, batch, pad, options, group, progress).answers();
}

template <class Model>
double classification_accuracy(Model& model, const classification_dataset& data, index_t batch, token_id pad) {
  if (data.examples.empty()) return 0.0;
  const sentence_predictions predicted = predict_sentences(model, data, batch, pad);
  return accuracy(predicted.classes, data.gold_labels());
}

template <class Model, class Dataset>
double mean_loss(Model& model, const Dataset& data, index_t batch, token_id pad, process_group* group = nullptr) {
  double total = 0;
  double rows = 0;
  for_each_logits(
      model, data, batch, pad,
      [&](std::size_t, const auto& logits, const token_batch& b) {
        for (index_t r = 0; r < logits.rows(); ++r) {
          if (!b.targets.empty()) {
            const double error = static_cast<double>(logits(r, 0)) - b.targets[static_cast<std::size_t>(r)];
            total += error * error;
            rows += 1;
            continue;
          }
          const token_id label = b.labels[static_cast<std::size_t>(r)];
          if (label == ignore_label) continue;
          double largest = static_cast<double>(logits(r, 0));
          for (index_t c = 1; c < logits.cols(); ++c) largest = std::max(largest, static_cast<double>(logits(r, c)));
          double sum = 0;
          for (index_t c = 0; c < logits.cols(); ++c) sum += std::exp(static_cast<double>(logits(r, c)) - largest);
          total += largest + std::log(sum) - static_cast<double>(logits(r, label));
          rows += 1;
        }
      },
      group);
  return rows == 0 ? 0.0 : total / rows;
}

// Held-out masked-LM evaluation. The sequences are masked as training masks them (mask_tokens), by an
// rng seeded with held_out_masking_seed and drawn in sequence order: the masked positions depend on the
// text and the sequence length alone, never on the model, the run's seed, the batch size or the
// number of processes, so evaluations compare across steps, runs and programs.
struct masked_lm_metrics {
  double loss = 0;      // mean cross-entropy over the masked positions
  double accuracy = 0;  // fraction of masked positions whose arg-max is the original token
  index_t masked = 0;   // masked positions scored
};

inline constexpr std::uint64_t held_out_masking_seed = 0xE7A1;

// `sequences` index the corpus's sequences of length `seq` (make_corpus_batch). Under a process group,
// batch i runs on process i mod N (each process masks every batch, so the masking is one process's)
// and the counts are summed, so every process returns the whole result.
template <class Model>
masked_lm_metrics evaluate_masked_lm(Model& model, const text_corpus& corpus, std::span<const std::size_t> sequences, index_t seq, index_t batch,
                                     const special_tokens& special, index_t vocab_size, process_group* group = nullptr,
                                     const evaluation_progress& progress = {}) {
  using Scalar = typename Model::scalar_type;
  tape<Scalar> t;
  no_recording<Scalar> inference(t);
  rng masking(held_out_masking_seed);
  token_batch b;
  double loss_sum = 0, correct = 0, masked = 0;
  const int processes = group == nullptr ? 1 : group->size(), rank = group == nullptr ? 0 : group->rank();
  long index = 0;
  for (std::size_t start = 0; start < sequences.size(); start += static_cast<std::size_t>(batch), ++index) {
    const auto part = sequences.subspan(start, std::min(sequences.size() - start, static_cast<std::size_t>(batch)));
    make_corpus_batch(corpus, part, seq, special, b);
    mask_tokens(b, masking, special, vocab_size);
    if (index % processes == rank) {
      t.rewind();
      const auto out = model.forward(t, b, false, 0);
      loss_sum += static_cast<double>(out.loss.item()) * static_cast<double>(out.labelled);
      for (index_t r = 0; r < out.labelled; ++r) {
        index_t best = 0;
        out.logits.value().row(r).maxCoeff(&best);
        correct += best == out.labels[r];
      }
      masked += static_cast<double>(out.labelled);
    }
    if (progress) progress(start + part.size(), sequences.size());
  }
  if (processes > 1) {
    double counts[3] = {loss_sum, correct, masked};
    group->sum(std::span<double>(counts, 3));
    loss_sum = counts[0];
    correct = counts[1];
    masked = counts[2];
  }
  if (masked == 0) return {};
  return {loss_sum / masked, correct / masked, static_cast<index_t>(masked)};
}

}  // namespace earlybert
