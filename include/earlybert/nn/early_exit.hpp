// SPDX-License-Identifier: Apache-2.0
#pragma once
// Token classification with an exit after every encoder layer, and inference in which words leave the
// encoder early (Li et al., ACL 2021, "Accelerating BERT Inference for Sequence Labeling via
// Early-Exit").
//
// bert_for_token_classification_with_exits holds BertForTokenClassification's encoder and its
// "classifier", which is the exit after the last layer (so a checkpoint is a BertForTokenClassification
// checkpoint with the other exits' tensors beside it), and a linear exit after every other
// layer l, "exits.{l}" [num_labels, hidden].
//
//   logits(t, b, true, key)    every exit's logits, [layers * tokens, num_labels], layer l's rows at
//                              l * tokens .. (l + 1) * tokens: the joint model, dropout on
//   loss(t, logits, b)         sum over layers l of CE_l, the mean cross-entropy of layer l's labelled
//                              tokens (the sum of the exits' losses, as the paper)
//   joint_logits, joint_loss   the same under a halting plan (exit_layer [tokens]): token i is computed
//                              up to layer exit_layer[i] and its state copied upward after that, still a
//                              key and value for the others, and it leaves CE_l for l > exit_layer[i]
//                              (self-sampling fine-tuning: training sees what inference will)
//   logits(t, b, false, 0)     [tokens, num_labels]: each token's logits at the layer where it left
//                              under the exit policy (set_exit_policy); exit_mode::none is the full
//                              model, the last exit on every token
//
// Who halts: words, not pieces (token_batch::word_of). A word's uncertainty at layer l is its first
// piece's under exit l; its other pieces leave with it; [CLS], [SEP] and padding run until every word
// of their sentence has left. Uncertainty is the normalised entropy H(p) / log(num_labels) or
// 1 - max p, both in [0, 1]; a word is confident when its uncertainty is below the threshold (strictly,
// so threshold 0 halts nothing).
//   sentence mode   the sentence leaves at the first layer where all its words are confident
//   token mode      a word leaves at the first layer where it and every word within `window` of it are
//                   confident, a word that has left counting as confident (leave_by_window)
// The last layer's exit takes whoever is left.
//
// The saving is real: each layer computes, for the sentences that still have running words, the keys
// and values of all their positions (halted ones still serve as keys and values, from their copied
// states), the queries, attention and W_O of the running positions, padded per sentence to the most
// running positions of any (so the attention products stay one block per sentence and head), and the
// FFN and the exit of the running positions alone. A sentence in which nothing has halted yet computes
// as the full model does, padding included, so threshold 0 is the full model bit for bit.
// exit_statistics counts the rows each part computed and their FLOPs beside the full model's.
// Inference only: the early-exit forward runs on a tape that is not recording (no_recording), holding
// one layer's work at a time.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/gather.hpp"
#include "earlybert/ops/loss.hpp"

namespace earlybert {

enum class exit_mode { none, sentence, token };
enum class uncertainty_measure { entropy, max_probability };

// How words leave at inference. The defaults are the paper's code's setting for a 3x speed-up on
// OntoNotes (normalised entropy below 0.15, a window of 5 words).
struct exit_policy {
  exit_mode mode = exit_mode::none;
  uncertainty_measure measure = uncertainty_measure::entropy;
  double threshold = 0.15;
  int window = 2;  // words on each side

  void check() const {
    if (!(threshold >= 0 && threshold <= 1)) throw config_error(fmt::format("exit policy: threshold is {}, expected a value in [0, 1]", threshold));
    if (window < 0) throw config_error(fmt::format("exit policy: window is {}, expected at least 0", window));
  }
};

// The uncertainty of one row of logits [num_labels], in [0, 1].
template <class Row>
double uncertainty(const Row& logits, uncertainty_measure measure) {
  const auto classes = static_cast<index_t>(logits.size());
  double largest = static_cast<double>(logits(0));
  for (index_t c = 1; c < classes; ++c) largest = std::max(largest, static_cast<double>(logits(c)));
  double sum = 0;
  for (index_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(logits(c)) - largest);
  if (measure == uncertainty_measure::max_probability) return 1 - 1 / sum;
  if (classes < 2) return 0;
  double entropy = 0;  // -sum p log p, with log p = (l - largest) - log sum
  const double log_sum = std::log(sum);
  for (index_t c = 0; c < classes; ++c) {
    const double log_p = static_cast<double>(logits(c)) - largest - log_sum;
    entropy -= std::exp(log_p) * log_p;
  }
  return std::clamp(entropy / std::log(static_cast<double>(classes)), 0.0, 1.0);
}

// One layer of the token rule for one sentence's words: `confident[w]` says whether word w is confident
// at this layer (read only for words still running); `left[w]` is 1 for a word that has left, and words
// that leave now are set to 1. Returns how many left now.
inline index_t leave_by_window(std::span<const std::uint8_t> confident, std::span<std::uint8_t> left, int window) {
  const auto words = static_cast<index_t>(left.size());
  if (static_cast<index_t>(confident.size()) != words) {
    throw shape_error(fmt::format("leave_by_window: {} confidence flags for {} words, expected one per word", confident.size(), words));
  }
  const auto sure = [&](index_t w) { return left[static_cast<std::size_t>(w)] != 0 || confident[static_cast<std::size_t>(w)] != 0; };
  // A word that leaves now was confident, so marking it at once changes no later decision.
  index_t leaving = 0;
  for (index_t w = 0; w < words; ++w) {
    if (left[static_cast<std::size_t>(w)] != 0 || confident[static_cast<std::size_t>(w)] == 0) continue;
    bool all = true;
    for (index_t v = std::max<index_t>(0, w - window); all && v <= std::min(words - 1, w + window); ++v) all = sure(v);
    if (all) {
      left[static_cast<std::size_t>(w)] = 1;
      ++leaving;
    }
  }
  return leaving;
}

// What early-exit inference computed, summed over the batches since reset(): rows of each part and
// forward FLOPs (encoder and exits), beside what the full model computes for the same batches.
struct exit_statistics {
  std::vector<double> word_exits;  // [layers]: words that left after layer l
  double key_rows = 0;             // positions whose keys and values were computed, over layers
  double query_rows = 0;           // positions whose queries, attention and W_O were computed (padding included)
  double running_rows = 0;         // positions whose FFN and exit were computed
  double full_rows = 0;            // positions the full model computes: tokens x layers
  double flops = 0, full_flops = 0;

  void reset(int layers) { *this = exit_statistics{std::vector<double>(static_cast<std::size_t>(layers), 0.0)}; }
  double words() const {
    double n = 0;
    for (double w : word_exits) n += w;
    return n;
  }
  // The mean number of layers a word runs through (1 .. layers).
  double mean_layers() const {
    double total = 0;
    for (std::size_t l = 0; l < word_exits.size(); ++l) total += static_cast<double>(l + 1) * word_exits[l];
    return words() == 0 ? 0.0 : total / words();
  }
  double flops_ratio() const { return full_flops == 0 ? 0.0 : flops / full_flops; }
};

template <class Scalar, bert_shape_type Shape>
class bert_for_token_classification_with_exits : public detail::bert_with_classifier<Scalar, Shape> {
  using base = detail::bert_with_classifier<Scalar, Shape>;

 public:
  std::vector<linear<Scalar>> exits;  // after layers 0 .. layers - 2; the last layer's is `classifier`
  exit_statistics statistics;         // of the inference forwards since statistics.reset()

  explicit bert_for_token_classification_with_exits(const bert_config& config) : base(config, false) {
    for (int l = 0; l + 1 < config.layers; ++l) exits.emplace_back(fmt::format("exits.{}", l), config.hidden, config.num_labels);
    statistics.reset(config.layers);
  }

  int layers() const noexcept { return this->bert.built_config().layers; }
  linear<Scalar>& exit(int layer) { return layer + 1 == layers() ? this->classifier : exits[static_cast<std::size_t>(layer)]; }

  void set_exit_policy(const exit_policy& policy) {
    policy.check();
    policy_ = policy;
  }
  const exit_policy& policy() const noexcept { return policy_; }

  // The layer at which each token of the last inference batch left, [tokens]: a word's pieces at the
  // word's, [CLS], [SEP] and padding at the last of their sentence's words' (the layer after which the
  // sentence was done). As a halting plan (joint_logits) it computes the same logits densely.
  const std::vector<int>& token_exit_layers() const noexcept { return token_exit_layer_; }

  template <class Random>
  void initialise(Random& random) {
    base::initialise(random);
    for (auto& e : exits) e.initialise(random, this->bert.built_config().initializer_range);
  }

  template <class F>
  void for_each_linear(F&& f) {
    base::for_each_linear(f);
    for (auto& e : exits) f(e);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    base::for_each_parameter(f);
    for (auto& e : exits) {
      f(e.weight);
      f(e.bias);
    }
  }

  var<Scalar> logits(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) {
    if (training) return joint_logits(t, b, true, dropout_key, {});
    return exit_logits(t, b);
  }

  // Every exit's logits [layers * tokens, num_labels]; exit_layer empty (everyone runs every layer) or
  // [tokens], each in [0, layers).
  var<Scalar> joint_logits(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key, std::span<const int> exit_layer) {
    check_plan(b, exit_layer);
    const int count = layers();
    const index_t tokens = b.tokens();
    const auto c = this->bert.context(t, b, training, dropout_key);
    var<Scalar> x = this->bert.embedding.forward(t, b, c);
    var<Scalar>* parts = t.template scratch<var<Scalar>>(count);
    std::uint8_t* running = t.template scratch<std::uint8_t>(tokens);
    for (int l = 0; l < count; ++l) {
      const var<Scalar> y = this->bert.layers[static_cast<std::size_t>(l)].forward(t, x, c);
      if (exit_layer.empty()) {
        x = y;
      } else {
        for (index_t i = 0; i < tokens; ++i) running[i] = exit_layer[static_cast<std::size_t>(i)] >= l;
        x = choose_rows(t, std::span<const std::uint8_t>(running, static_cast<std::size_t>(tokens)), y, x);
      }
      new (parts + l) var<Scalar>(exit(l).forward(t, c.hidden_dropout_of(t, x, exit_site(l))));
    }
    return stack_rows(t, std::span<const var<Scalar>>(parts, static_cast<std::size_t>(count)));
  }

  var<Scalar> loss(tape<Scalar>& t, const var<Scalar>& logits, const token_batch& b) { return joint_loss(t, logits, b, {}); }

  // sum_l CE_l over the joint logits, a token counted at the layers up to its exit layer.
  var<Scalar> joint_loss(tape<Scalar>& t, const var<Scalar>& logits, const token_batch& b, std::span<const int> exit_layer) {
    check_plan(b, exit_layer);
    const int count = layers();
    const index_t tokens = b.tokens();
    if (logits.rows() != count * tokens || static_cast<index_t>(b.labels.size()) != tokens) {
      throw shape_error(fmt::format("bert_for_token_classification_with_exits: loss of {} rows of logits and {} labels, expected the joint "
                                    "logits of {} layers x {} tokens and a label per token", logits.rows(), b.labels.size(), count, tokens));
    }
    token_id* rows = t.template scratch<token_id>(tokens);
    token_id* labels = t.template scratch<token_id>(tokens);
    var<Scalar> total;
    for (int l = 0; l < count; ++l) {
      for (index_t i = 0; i < tokens; ++i) {
        rows[i] = static_cast<token_id>(l * tokens + i);
        const bool counted = exit_layer.empty() || exit_layer[static_cast<std::size_t>(i)] >= l;
        labels[i] = counted ? b.labels[static_cast<std::size_t>(i)] : ignore_label;
      }
      const auto n = static_cast<std::size_t>(tokens);
      const var<Scalar> layer_loss = cross_entropy(t, gather_rows(t, logits, std::span<const token_id>(rows, n)), std::span<const token_id>(labels, n));
      total = l == 0 ? layer_loss : add(t, total, layer_loss);
    }
    return total;
  }

  // Forward FLOPs of the full model on a batch: the encoder and the last exit on every token.
  double forward_flops(const token_batch& b) const { return forward_flops(b, 1); }
  // Forward FLOPs of joint_logits on a batch: the encoder and every exit on every token (a halting plan
  // saves nothing in training: halted rows are computed, then replaced by their copies).
  double joint_forward_flops(const token_batch& b) const { return forward_flops(b, layers()); }

 private:
  // Dropout sites: the last exit uses the classifier's (it is BertForTokenClassification's), exit l < L - 1
  // the ones after it.
  std::uint64_t exit_site(int l) const noexcept {
    return this->classifier_site() + (l + 1 == layers() ? 0 : 1 + static_cast<std::uint64_t>(l));
  }

  void check_plan(const token_batch& b, std::span<const int> exit_layer) const {
    if (exit_layer.empty()) return;
    if (static_cast<index_t>(exit_layer.size()) != b.tokens()) {
      throw shape_error(fmt::format("bert_for_token_classification_with_exits: a halting plan of {} exit layers, expected one per token ({})",
                                    exit_layer.size(), b.tokens()));
    }
    for (std::size_t i = 0; i < exit_layer.size(); ++i) {
      if (exit_layer[i] < 0 || exit_layer[i] >= layers()) {
        throw shape_error(fmt::format("bert_for_token_classification_with_exits: the halting plan gives token {} exit layer {}, expected [0, {})", i,
                                      exit_layer[i], layers()));
      }
    }
  }

  // The encoder on every token and `exit_count` exits' classifiers.
  double forward_flops(const token_batch& b, int exit_count) const {
    const double d = this->bert.built_config().hidden;
    const double classifiers = static_cast<double>(exit_count) * 2 * d * static_cast<double>(this->classifier.outputs());
    return static_cast<double>(b.tokens()) * (this->bert.encoder_flops_per_token(b.seq) + classifiers);
  }

  // Forward FLOPs of one layer's parts per row, with the active heads and neurons as
  // encoder_flops_per_token counts them.
  struct layer_costs {
    double key, query, running;
  };
  layer_costs costs(int l, index_t seq) {
    auto& layer = this->bert.layers[static_cast<std::size_t>(l)];
    const double d = this->bert.built_config().hidden;
    const double width = static_cast<double>(layer.self_attention.structures().active_count() * layer.self_attention.head_dim());
    const double ffn = static_cast<double>(layer.ffn.structures().active_count());
    const double classes = static_cast<double>(this->classifier.outputs());
    return {4 * d * width, 4 * d * width + 4 * static_cast<double>(seq) * width, 4 * d * ffn + 2 * d * classes};
  }

  var<Scalar> exit_logits(tape<Scalar>& t, const token_batch& b);

  exit_policy policy_;
  std::vector<int> token_exit_layer_;
};

template <class Scalar, bert_shape_type Shape>
var<Scalar> bert_for_token_classification_with_exits<Scalar, Shape>::exit_logits(tape<Scalar>& t, const token_batch& b) {
  const int count = layers();
  const index_t batch = b.batch, seq = b.seq, tokens = b.tokens();
  if (policy_.mode == exit_mode::none) {
    const auto c = this->bert.context(t, b, false, 0);
    const var<Scalar> out = this->classifier.forward(t, this->bert.encode(t, b, c));
    statistics.flops += forward_flops(b);
    statistics.full_flops += forward_flops(b);
    const double rows = static_cast<double>(tokens * count);
    statistics.key_rows += rows;
    statistics.query_rows += rows;
    statistics.running_rows += rows;
    statistics.full_rows += rows;
    token_exit_layer_.assign(static_cast<std::size_t>(tokens), count - 1);
    for (index_t i = 0; i < tokens; ++i) {
      if (b.word_of.empty()) break;
      const bool first_piece = b.word_of[static_cast<std::size_t>(i)] >= 0 && (i % seq == 0 || b.word_of[static_cast<std::size_t>(i - 1)] != b.word_of[static_cast<std::size_t>(i)]);
      statistics.word_exits.back() += first_piece;
    }
    return out;
  }
  if (t.recording()) {
    throw config_error("bert_for_token_classification_with_exits: early exit is inference; run it on a tape that is not recording (no_recording)");
  }
  if (static_cast<index_t>(b.word_of.size()) != tokens) {
    throw shape_error(fmt::format("bert_for_token_classification_with_exits: early exit needs the batch's words (word_of), found {} entries for {} "
                                  "tokens", b.word_of.size(), tokens));
  }
  const auto c = this->bert.context(t, b, false, 0);
  var<Scalar> state = this->bert.embedding.forward(t, b, c);  // [tokens, hidden]: every position's latest state
  var<Scalar> out = t.make(tokens, this->classifier.outputs(), false);
  out.value().setZero();

  // Words: sentence s's are word_begin[s] .. word_begin[s + 1], word w's first piece at first_piece[w].
  index_t* word_begin = t.template scratch<index_t>(batch + 1);
  word_begin[0] = 0;
  for (index_t s = 0; s < batch; ++s) {
    index_t words = 0;
    for (index_t i = 0; i < seq; ++i) words = std::max(words, b.word_of[static_cast<std::size_t>(s * seq + i)] + 1);
    word_begin[s + 1] = word_begin[s] + words;
  }
  const index_t all_words = word_begin[batch];
  index_t* first_piece = t.template scratch<index_t>(all_words);
  std::uint8_t* left = t.template scratch<std::uint8_t>(all_words);
  std::uint8_t* confident = t.template scratch<std::uint8_t>(all_words);
  int* word_exit = t.template scratch<int>(all_words);
  std::fill(left, left + all_words, std::uint8_t{0});
  std::fill(word_exit, word_exit + all_words, count - 1);
  for (index_t i = tokens - 1; i >= 0; --i) {
    const index_t w = b.word_of[static_cast<std::size_t>(i)];
    if (w >= 0) first_piece[word_begin[i / seq] + w] = i;
  }
  // Sentences: fresh (nothing has left: computed as the full model does), done (every word has left).
  std::uint8_t* fresh = t.template scratch<std::uint8_t>(batch);
  std::uint8_t* done = t.template scratch<std::uint8_t>(batch);
  std::fill(fresh, fresh + batch, std::uint8_t{1});
  std::fill(done, done + batch, std::uint8_t{0});
  const auto token_running = [&](index_t i) {
    if (b.attention[static_cast<std::size_t>(i)] == 0) return false;
    const index_t w = b.word_of[static_cast<std::size_t>(i)];
    return w < 0 || left[word_begin[i / seq] + w] == 0;
  };

  for (int l = 0; l < count; ++l) {
    auto& layer = this->bert.layers[static_cast<std::size_t>(l)];
    const auto site = static_cast<std::uint64_t>(1 + 3 * l);
    const auto before = t.mark();
    index_t active = 0, queries = 0;
    bool all_fresh = true;
    for (index_t s = 0; s < batch; ++s) {
      if (done[s] != 0) continue;
      ++active;
      all_fresh = all_fresh && fresh[s] != 0;
      index_t running = seq;
      if (fresh[s] == 0) {
        running = 0;
        for (index_t i = s * seq; i < (s + 1) * seq; ++i) running += token_running(i);
      }
      queries = std::max(queries, running);
    }
    if (active == 0) break;
    const layer_costs cost = costs(l, seq);
    var<Scalar> y, logits;
    token_id* rows = nullptr;  // the state row of each row of y
    index_t computed = 0;
    if (all_fresh && active == batch) {
      y = layer.forward(t, state, c);
      logits = exit(l).forward(t, y);
      computed = tokens;
      rows = t.template scratch<token_id>(tokens);
      for (index_t i = 0; i < tokens; ++i) rows[i] = static_cast<token_id>(i);
      statistics.key_rows += static_cast<double>(tokens);
      statistics.query_rows += static_cast<double>(tokens);
      statistics.flops += static_cast<double>(tokens) * (cost.key + cost.query);
    } else {
      // The active sentences' positions (keys), their running positions padded to `queries` per
      // sentence by repeating the first, and which of those are real.
      token_id* sentences = t.template scratch<token_id>(active);
      token_id* key_rows = t.template scratch<token_id>(active * seq);
      token_id* query_rows = t.template scratch<token_id>(active * queries);
      token_id* real = t.template scratch<token_id>(active * queries);
      rows = t.template scratch<token_id>(active * queries);
      std::uint8_t* attention = t.template scratch<std::uint8_t>(active * seq);
      for (index_t s = 0, a = 0; s < batch; ++s) {
        if (done[s] != 0) continue;
        sentences[a] = static_cast<token_id>(s);
        index_t n = 0;
        for (index_t i = s * seq; i < (s + 1) * seq; ++i) {
          key_rows[a * seq + i - s * seq] = static_cast<token_id>(i);
          attention[a * seq + i - s * seq] = b.attention[static_cast<std::size_t>(i)];
          if (fresh[s] != 0 || token_running(i)) {
            query_rows[a * queries + n] = static_cast<token_id>(i);
            real[computed] = static_cast<token_id>(a * queries + n);
            rows[computed++] = static_cast<token_id>(i);
            ++n;
          }
        }
        const token_id filler = n > 0 ? query_rows[a * queries] : static_cast<token_id>(s * seq);
        for (index_t j = n; j < queries; ++j) query_rows[a * queries + j] = filler;
        ++a;
      }
      forward_context<Scalar> sub;
      sub.batch = active;
      sub.seq = seq;
      sub.additive_mask = gather_rows(t, c.additive_mask, std::span<const token_id>(sentences, static_cast<std::size_t>(active)));
      sub.attention = attention;
      const auto span_of = [](const token_id* p, index_t n) { return std::span<const token_id>(p, static_cast<std::size_t>(n)); };
      const var<Scalar> keys = active == batch ? state : gather_rows(t, state, span_of(key_rows, active * seq));
      const var<Scalar> attended = layer.self_attention.forward(t, keys, gather_rows(t, state, span_of(query_rows, active * queries)), sub, site);
      const var<Scalar> computed_rows = computed == active * queries ? attended : gather_rows(t, attended, span_of(real, computed));
      y = layer.ffn.forward(t, computed_rows, sub, site + 2);
      logits = exit(l).forward(t, y);
      statistics.key_rows += static_cast<double>(active * seq);
      statistics.query_rows += static_cast<double>(active * queries);
      statistics.flops += static_cast<double>(active * seq) * cost.key + static_cast<double>(active * queries) * cost.query;
    }
    statistics.running_rows += static_cast<double>(computed);
    statistics.flops += static_cast<double>(computed) * cost.running;
    for (index_t r = 0; r < computed; ++r) {
      state.value().row(rows[r]) = y.value().row(r);
      out.value().row(rows[r]) = logits.value().row(r);
    }
    // Who leaves after this layer.
    const bool last = l + 1 == count;
    for (index_t s = 0; s < batch; ++s) {
      if (done[s] != 0) continue;
      const index_t w0 = word_begin[s], words = word_begin[s + 1] - w0;
      if (words == 0) continue;  // nothing to predict: runs to the end
      index_t leaving = 0;
      if (last) {
        for (index_t w = w0; w < w0 + words; ++w) leaving += left[w] == 0;
        std::fill(left + w0, left + w0 + words, std::uint8_t{1});
      } else {
        bool all = true;
        for (index_t w = w0; w < w0 + words; ++w) {
          if (left[w] != 0) continue;
          confident[w] = uncertainty(out.value().row(first_piece[w]), policy_.measure) < policy_.threshold;
          all = all && confident[w] != 0;
        }
        if (policy_.mode == exit_mode::sentence) {
          if (all) {
            leaving = words;
            std::fill(left + w0, left + w0 + words, std::uint8_t{1});
          }
        } else {
          leaving = leave_by_window(std::span<const std::uint8_t>(confident + w0, static_cast<std::size_t>(words)),
                                    std::span<std::uint8_t>(left + w0, static_cast<std::size_t>(words)), policy_.window);
        }
      }
      for (index_t w = w0; w < w0 + words; ++w) {
        if (left[w] != 0 && word_exit[w] == count - 1) word_exit[w] = l;
      }
      statistics.word_exits[static_cast<std::size_t>(l)] += static_cast<double>(leaving);
      if (leaving > 0) fresh[s] = 0;
      done[s] = std::all_of(left + w0, left + w0 + words, [](std::uint8_t x) { return x != 0; });
    }
    t.release_to(before);
  }
  statistics.full_rows += static_cast<double>(tokens * count);
  statistics.full_flops += forward_flops(b);
  token_exit_layer_.assign(static_cast<std::size_t>(tokens), count - 1);
  for (index_t s = 0; s < batch; ++s) {
    const index_t w0 = word_begin[s], words = word_begin[s + 1] - w0;
    const int sentence_exit = words == 0 ? count - 1 : *std::max_element(word_exit + w0, word_exit + w0 + words);
    for (index_t i = s * seq; i < (s + 1) * seq; ++i) {
      const index_t w = b.word_of[static_cast<std::size_t>(i)];
      token_exit_layer_[static_cast<std::size_t>(i)] = w >= 0 ? word_exit[w0 + w] : sentence_exit;
    }
  }
  return out;
}

// Self-sampling fine-tuning's halting plans (Li et al. 2021, §3.3): every sentence of a batch draws a
// threshold and a window from these choices, and its words leave where the token rule with them says,
// read from the model's own exits with nobody leaving. The defaults are the paper's code's (normalised
// entropy; thresholds up to 0.25; windows of 5 to 15 words).
struct self_sampling_options {
  std::vector<double> thresholds{0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.25};
  std::vector<int> windows{2, 3, 4, 5, 6, 7};  // words on each side
  uncertainty_measure measure = uncertainty_measure::entropy;

  void check() const {
    if (thresholds.empty() || windows.empty()) throw config_error("self-sampling: no thresholds or no windows to draw from");
    for (double threshold : thresholds) exit_policy{exit_mode::token, measure, threshold, 0}.check();
    for (int window : windows) exit_policy{exit_mode::token, measure, 0.0, window}.check();
  }
};

// Fills exit_layer [tokens] with a halting plan for `b` (joint_logits, joint_loss): each word's exit layer
// under its sentence's draw (random streams from `key` and the sentence's index), [CLS], [SEP] and
// padding at their sentence's last word's. Runs the model once without recording (dropout off), on the
// tape it is given, whose memory it keeps until the tape's next rewind: call it inside a training step,
// before the step's forward. The model is the current one, where the paper's code samples from the
// predictions of the model that joint training left; so a plan follows what inference would do now.
template <class Scalar, bert_shape_type Shape>
void sample_halting_plan(bert_for_token_classification_with_exits<Scalar, Shape>& model, tape<Scalar>& t, const token_batch& b, std::uint64_t key,
                         const self_sampling_options& options, std::span<int> exit_layer) {
  const index_t batch = b.batch, seq = b.seq, tokens = b.tokens();
  const int count = model.layers();
  if (static_cast<index_t>(exit_layer.size()) != tokens || static_cast<index_t>(b.word_of.size()) != tokens) {
    throw shape_error(fmt::format("sample_halting_plan: {} exit layers and {} word indices for {} tokens, expected one of each per token",
                                  exit_layer.size(), b.word_of.size(), tokens));
  }
  var<Scalar> joint;
  {
    no_recording<Scalar> inference(t);
    joint = model.joint_logits(t, b, false, 0, {});
  }
  // Per sentence: its words' first pieces, which have left, and when.
  index_t* first_piece = t.template scratch<index_t>(seq);
  std::uint8_t* left = t.template scratch<std::uint8_t>(seq);
  std::uint8_t* confident = t.template scratch<std::uint8_t>(seq);
  int* word_exit = t.template scratch<int>(seq);
  for (index_t s = 0; s < batch; ++s) {
    rng random(derive_key(key, static_cast<std::uint64_t>(s)));
    const double threshold = options.thresholds[random.below(options.thresholds.size())];
    const int window = options.windows[random.below(options.windows.size())];
    index_t words = 0;
    for (index_t i = s * seq; i < (s + 1) * seq; ++i) {
      const index_t w = b.word_of[static_cast<std::size_t>(i)];
      if (w >= 0 && w == words) first_piece[words++] = i;
    }
    std::fill(left, left + words, std::uint8_t{0});
    std::fill(word_exit, word_exit + words, count - 1);
    for (int l = 0; l + 1 < count; ++l) {
      for (index_t w = 0; w < words; ++w) {
        confident[w] = uncertainty(joint.value().row(l * tokens + first_piece[w]), options.measure) < threshold;
      }
      leave_by_window(std::span<const std::uint8_t>(confident, static_cast<std::size_t>(words)), std::span<std::uint8_t>(left, static_cast<std::size_t>(words)),
                      window);
      for (index_t w = 0; w < words; ++w) {
        if (left[w] != 0 && word_exit[w] == count - 1) word_exit[w] = l;
      }
    }
    const int sentence_exit = words == 0 ? count - 1 : *std::max_element(word_exit, word_exit + words);
    for (index_t i = s * seq; i < (s + 1) * seq; ++i) {
      const index_t w = b.word_of[static_cast<std::size_t>(i)];
      exit_layer[static_cast<std::size_t>(i)] = w >= 0 ? word_exit[w] : sentence_exit;
    }
  }
}

}  // namespace earlybert
