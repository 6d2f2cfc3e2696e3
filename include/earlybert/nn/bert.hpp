// SPDX-License-Identifier: Apache-2.0
#pragma once
// BERT, as HuggingFace's BertModel, and its task heads: BertForMaskedLM, BertForSequenceClassification
// and BertForTokenClassification. Parameter names are HuggingFace's, so a checkpoint maps one to one.
//
//   bert_model<Scalar, Shape>       embeddings -> encoder layers -> (pooler on [CLS])
//   bert_for_masked_lm               + cls.predictions: dense -> GELU -> LayerNorm -> word_embeddings^T
//                                      + bias, computed only at the positions that carry a label
//   bert_for_sequence_classification + dropout -> classifier on the pooled [CLS] vector (num_labels
//                                      1: a regression head, one score, mean squared error)
//   bert_for_token_classification    + dropout -> classifier on every token
//   bert_for_question_answering      + qa_outputs: start and end logits on every token (SQuAD)
//
// Shapes: the batch is token_batch (nn/config.hpp); hidden states are [tokens, hidden], row-major,
// sequence by sequence. Pruning is by family (nn/structure.hpp): for_each_family visits the heads and
// the FFN neurons of every layer, which mask, compact and keep, and the kept original indices travel
// in config().kept_heads / kept_ffn.
//
// Sizes come from the bert_config; Shape (core/shape.hpp) fixes some or all of the four architecture
// numbers, checked once when the model is built, or leaves them dynamic (shapes::any: any BERT).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "earlybert/core/rng.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/nn/encoder.hpp"
#include "earlybert/nn/linear.hpp"
#include "earlybert/ops/activation.hpp"
#include "earlybert/ops/gather.hpp"
#include "earlybert/ops/loss.hpp"
#include "earlybert/ops/matmul.hpp"
#include "earlybert/ops/reduce.hpp"

namespace earlybert {

template <class Scalar, bert_shape_type Shape>
class bert_model {
 public:
  using shape = Shape;

  embeddings<Scalar> embedding;
  std::vector<encoder_layer<Scalar>> layers;
  linear<Scalar> pooler;  // "bert.pooler.dense"; absent (has_pooler() false) in the masked-LM model

  // Builds the model `config` describes, pruned to its kept structure if it lists one; parameters
  // are zero until initialise() or a checkpoint fills them.
  bert_model(const bert_config& config, bool with_pooler)
      : embedding(checked(config)), config_(config), with_pooler_(with_pooler) {
    layers.reserve(static_cast<std::size_t>(config_.layers));
    for (int l = 0; l < config_.layers; ++l) layers.emplace_back(l, config_);
    if (with_pooler_) pooler = linear<Scalar>("bert.pooler.dense", config_.hidden, config_.hidden);
    for_each_family([&](structure_family<Scalar> family) {
      const auto& kept = family.kind() == structure_kind::heads ? config_.kept_heads : config_.kept_ffn;
      if (!kept.empty()) family.keep(kept[static_cast<std::size_t>(family.layer())]);
    });
  }

  bool has_pooler() const noexcept { return with_pooler_; }

  // Sets the dropout probabilities of training forward passes from now on (config.json's
  // hidden_dropout_prob and attention_probs_dropout_prob); config_error outside [0, 1). Pre-training
  // may train without dropout and restore BERT's 0.1 before it saves, for fine-tuning.
  void set_dropout(double hidden, double attention) {
    bert_config c = config_;
    c.hidden_dropout = hidden;
    c.attention_dropout = attention;
    c.check();
    config_ = c;
  }

  // The configuration as built, without recomputing the kept structure (cheap: for every step).
  const bert_config& built_config() const noexcept { return config_; }

  // The configuration, with kept_heads / kept_ffn describing the structure held now (built anew: for
  // checkpoints and reports, not for every step).
  bert_config config() const {
    bert_config c = config_;
    c.kept_heads.clear();
    c.kept_ffn.clear();
    bool pruned = false;
    for_each_family([&](const structure_family<Scalar>& family) { pruned = pruned || family.size() != family.original_size(); });
    if (!pruned) return c;
    for_each_family([&](const structure_family<Scalar>& family) {
      (family.kind() == structure_kind::heads ? c.kept_heads : c.kept_ffn).emplace_back(family.kept().begin(), family.kept().end());
    });
    return c;
  }

  // BERT's initialisation: weights and embeddings ~ N(0, initializer_range^2), biases 0, LayerNorm
  // 1 and 0, the padding row of the word embeddings 0.
  template <class Random>
  void initialise(Random& random) {
    const double stddev = config_.initializer_range;
    for (parameter<Scalar>* table : {&embedding.word, &embedding.position, &embedding.token_type}) {
      for (index_t i = 0; i < table->size(); ++i) table->value.data()[i] = static_cast<Scalar>(stddev * random.normal());
    }
    embedding.word.value.row(config_.pad_token_id).setZero();
    for (auto& layer : layers) layer.for_each_linear([&](linear<Scalar>& l) { l.initialise(random, stddev); });
    if (with_pooler_) pooler.initialise(random, stddev);
  }

  // The per-step context: the additive padding mask in the arena, and dropout iff `training`.
  forward_context<Scalar> context(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) const {
    check_batch(b);
    forward_context<Scalar> c;
    c.batch = b.batch;
    c.seq = b.seq;
    c.additive_mask = t.make(b.batch, b.seq, false);
    Scalar* mask = c.additive_mask.value_data();
    for (index_t i = 0; i < b.tokens(); ++i) {
      mask[i] = b.attention[static_cast<std::size_t>(i)] != 0 ? Scalar(0) : forward_context<Scalar>::padding_score;
    }
    c.hidden_dropout = training ? static_cast<Scalar>(config_.hidden_dropout) : Scalar(0);
    c.attention_dropout = training ? static_cast<Scalar>(config_.attention_dropout) : Scalar(0);
    c.dropout_key = dropout_key;
    c.attention = b.attention.data();
    c.observer = observer_.get();
    return c;
  }

  // Who sees the per-layer intermediates of every forward pass of this model object from now on
  // (nn/encoder.hpp, forward_observer); null stops it. The model does not own the observer. A copy of
  // the model starts without one; an assignment keeps the target's (observer_slot).
  void set_observer(forward_observer<Scalar>* observer) noexcept { observer_.set(observer); }
  forward_observer<Scalar>* observer() const noexcept { return observer_.get(); }

  // Hidden states [tokens, hidden] after the last layer.
  // In inference (the tape not recording) a layer's intermediate values die with it: its output is
  // copied into one of two buffers and the arena returns to where it stood before the layer, so
  // memory holds one layer's work instead of every layer's.
  var<Scalar> encode(tape<Scalar>& t, const token_batch& b, const forward_context<Scalar>& c) {
    var<Scalar> x = embedding.forward(t, b, c);
    if (t.recording()) {
      for (auto& layer : layers) x = layer.forward(t, x, c);
      return x;
    }
    const var<Scalar> buffers[2] = {t.make(x.rows(), x.cols(), false), t.make(x.rows(), x.cols(), false)};
    std::size_t next = 0;
    for (auto& layer : layers) {
      const auto before = t.mark();
      const var<Scalar> y = layer.forward(t, x, c);
      buffers[next].value() = y.value();
      t.release_to(before);
      x = buffers[next];
      next ^= 1;
    }
    return x;
  }

  // The pooled [CLS] vectors [batch, hidden]: tanh(W h_cls + b) with h_cls the first row of each sequence.
  var<Scalar> pool(tape<Scalar>& t, const var<Scalar>& hidden, const forward_context<Scalar>& c) {
    if (!with_pooler_) throw config_error("bert_model::pool: this model was built without a pooler");
    token_id* first = t.template scratch<token_id>(c.batch);
    for (index_t i = 0; i < c.batch; ++i) first[i] = static_cast<token_id>(i * c.seq);
    const var<Scalar> cls = gather_rows(t, hidden, std::span<const token_id>(first, static_cast<std::size_t>(c.batch)));
    return earlybert::tanh(t, pooler.forward(t, cls));
  }

  // ---- Prunable structure (nn/structure.hpp) ----

  // Calls f(structure_family) for every family, layer by layer, each layer's heads before its FFN
  // neurons: the order in which scores, masks and tickets list them.
  template <class F>
  void for_each_family(F&& f) {
    for (auto& layer : layers) {
      f(layer.self_attention.structures());
      f(layer.ffn.structures());
    }
  }
  template <class F>
  void for_each_family(F&& f) const {
    for (const auto& layer : layers) {
      f(layer.self_attention.structures());
      f(layer.ffn.structures());
    }
  }

  // ---- EarlyBERT's slimming coefficients (nn/structure.hpp) ----

  void set_slimming(bool on) {
    for_each_family([&](structure_family<Scalar> family) { family.set_slimming(on); });
  }
  bool slimming() const noexcept { return !layers.empty() && layers.front().self_attention.coefficients.on(); }
  // Folds every coefficient into W_O / W_2 (the function is unchanged) and turns slimming off.
  void fold_slimming() {
    for_each_family([](structure_family<Scalar> family) { family.fold_slimming(); });
  }
  // The L1 penalty  l1_heads * sum |c_head| + l1_neurons * sum |c_neuron|  over all layers, [1, 1]: a plain
  // sum, added to the batch-mean task loss (subgradient sign(c), 0 at 0).
  var<Scalar> slimming_penalty(tape<Scalar>& t, double l1_heads, double l1_neurons) {
    if (!slimming()) throw config_error("bert_model::slimming_penalty: slimming is off (set_slimming(true) first)");
    var<Scalar> total = t.constant(matrix<Scalar>::Zero(1, 1));
    for (auto& layer : layers) {
      total = add(t, total, scale(t, l1_norm(t, t.watch(layer.self_attention.coefficients.values)), static_cast<Scalar>(l1_heads)));
      total = add(t, total, scale(t, l1_norm(t, t.watch(layer.ffn.coefficients.values)), static_cast<Scalar>(l1_neurons)));
    }
    return total;
  }

  // Every linear layer: per encoder layer W_Q, W_K, W_V, W_O, W_1, W_2, then the pooler if present.
  template <class F>
  void for_each_linear(F&& f) {
    for (auto& layer : layers) layer.for_each_linear(f);
    if (with_pooler_) f(pooler);
  }

  // The single weights of the encoder's linear layers as families (unstructured pruning's usual scope,
  // as Chen et al. 2020: embeddings, pooler and task heads excluded; weight_family(layer) takes any
  // other linear layer).
  template <class F>
  void for_each_weight_family(F&& f) {
    for (auto& layer : layers) layer.for_each_linear([&](linear<Scalar>& l) { f(weight_family<Scalar>(l)); });
  }

  template <class F>
  void for_each_parameter(F&& f) {
    embedding.for_each_parameter(f);
    for (auto& layer : layers) layer.for_each_parameter(f);
    if (with_pooler_) {
      f(pooler.weight);
      f(pooler.bias);
    }
  }

  // Forward multiply-adds x 2 per token of a sequence of length `seq` through the encoder, as the
  // method's cost model counts them: 8 d (h d_h) + 4 n (h d_h) + 4 d f per layer, with the kept h and f.
  double encoder_flops_per_token(index_t seq) const {
    double flops = 0;
    const double d = config_.hidden;
    for_each_family([&](const structure_family<Scalar>& family) {
      const double width = static_cast<double>(family.active_count() * family.member_width());  // h d_h, or f
      flops += family.kind() == structure_kind::heads ? 8 * d * width + 4 * static_cast<double>(seq) * width : 4 * d * width;
    });
    return flops;
  }

 private:
  static const bert_config& checked(const bert_config& c) {
    c.check_against<Shape>();
    return c;
  }

  void check_batch(const token_batch& b) const {
    if (b.batch < 1 || b.seq < 1) {
      throw shape_error(fmt::format("bert_model: batch is [{}, {}], expected at least one sequence of one token",
                                    b.batch, b.seq));
    }
    const auto tokens = static_cast<std::size_t>(b.tokens());
    if (b.ids.size() != tokens || b.type_ids.size() != tokens || b.attention.size() != tokens) {
      throw shape_error(fmt::format("bert_model: batch holds {} ids, {} type ids and {} attention flags, expected {} each",
                                    b.ids.size(), b.type_ids.size(), b.attention.size(), tokens));
    }
    if (b.seq > config_.max_positions) {
      throw shape_error(fmt::format("bert_model: sequence length {} exceeds max_position_embeddings = {}", b.seq,
                                    config_.max_positions));
    }
    for (std::size_t i = 0; i < tokens; ++i) {
      if (b.ids[i] < 0 || b.ids[i] >= config_.vocab_size) {
        throw shape_error(fmt::format("bert_model: token id {} at position {} is outside the vocabulary [0, {})",
                                      b.ids[i], i, config_.vocab_size));
      }
      if (b.type_ids[i] < 0 || b.type_ids[i] >= config_.type_vocab_size) {
        throw shape_error(fmt::format("bert_model: token type {} at position {} is outside [0, {})", b.type_ids[i], i,
                                      config_.type_vocab_size));
      }
    }
  }

  bert_config config_;
  bool with_pooler_;
  observer_slot<Scalar> observer_;
};

// BertForMaskedLM: the encoder (no pooler) and the tied prediction head.
template <class Scalar, bert_shape_type Shape>
class bert_for_masked_lm {
 public:
  using scalar_type = Scalar;
  using shape = Shape;

  bert_model<Scalar, Shape> bert;
  linear<Scalar> transform;                      // "cls.predictions.transform.dense"
  layer_norm_parameters<Scalar> transform_norm;  // "cls.predictions.transform.LayerNorm"
  parameter<Scalar> decoder_bias;                // "cls.predictions.bias" [1, vocab]; the decoder's weight is
                                                 // the word embedding table (tied)

  explicit bert_for_masked_lm(const bert_config& config)
      : bert(config, false),
        transform("cls.predictions.transform.dense", config.hidden, config.hidden),
        transform_norm("cls.predictions.transform.LayerNorm", config.hidden),
        decoder_bias("cls.predictions.bias", 1, config.vocab_size, false) {}

  template <class Random>
  void initialise(Random& random) {
    bert.initialise(random);
    transform.initialise(random, bert.built_config().initializer_range);
  }

  struct output {
    var<Scalar> loss;         // [1, 1] mean cross-entropy over the labelled positions
    var<Scalar> logits;       // [labelled, vocab]
    const token_id* labels;   // [labelled], in the arena
    index_t labelled;
  };

  // b.labels is [tokens]: the original token at a masked position, ignore_label elsewhere.
  output forward(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) {
    if (static_cast<index_t>(b.labels.size()) != b.tokens()) {
      throw shape_error(fmt::format("bert_for_masked_lm: batch holds {} labels, expected {} (one per token)",
                                    b.labels.size(), b.tokens()));
    }
    const auto c = bert.context(t, b, training, dropout_key);
    const var<Scalar> hidden = bert.encode(t, b, c);
    // Only the labelled positions go through the head: the decoder is the most expensive GEMM.
    index_t labelled = 0;
    for (token_id label : b.labels) labelled += label != ignore_label;
    token_id* rows = t.template scratch<token_id>(labelled);
    token_id* labels = t.template scratch<token_id>(labelled);
    for (index_t i = 0, k = 0; i < b.tokens(); ++i) {
      if (b.labels[static_cast<std::size_t>(i)] == ignore_label) continue;
      rows[k] = static_cast<token_id>(i);
      labels[k++] = b.labels[static_cast<std::size_t>(i)];
    }
    const auto n = static_cast<std::size_t>(labelled);
    const var<Scalar> picked = gather_rows(t, hidden, std::span<const token_id>(rows, n));
    const var<Scalar> h = transform_norm.forward(t, gelu(t, transform.forward(t, picked)), bert.built_config().layer_norm_eps);
    const var<Scalar> logits = affine(t, h, t.watch(bert.embedding.word), t.watch(decoder_bias));
    return {cross_entropy(t, logits, std::span<const token_id>(labels, n)), logits, labels, labelled};
  }

  // Forward FLOPs of a batch (the method's cost model): the encoder on every token, the head (transform
  // and decoder, 2 d^2 + 2 d V) on the labelled positions only.
  double forward_flops(const token_batch& b) const {
    index_t labelled = 0;
    for (token_id label : b.labels) labelled += label != ignore_label;
    const double d = bert.built_config().hidden, v = static_cast<double>(decoder_bias.cols());
    return static_cast<double>(b.tokens()) * bert.encoder_flops_per_token(b.seq) + static_cast<double>(labelled) * (2 * d * d + 2 * d * v);
  }

  // Every linear layer: the encoder's, then the prediction head's transform.
  template <class F>
  void for_each_linear(F&& f) {
    bert.for_each_linear(f);
    f(transform);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    bert.for_each_parameter(f);
    f(transform.weight);
    f(transform.bias);
    f(transform_norm.gamma);
    f(transform_norm.beta);
    f(decoder_bias);
  }
};

namespace detail {
// What the two classification models share: the encoder and a linear classifier ("classifier",
// [num_labels, hidden]) on top of it, with a mean cross-entropy loss.
template <class Scalar, bert_shape_type Shape>
class bert_with_classifier {
 public:
  using scalar_type = Scalar;
  using shape = Shape;

  bert_model<Scalar, Shape> bert;
  linear<Scalar> classifier;

  template <class Random>
  void initialise(Random& random) {
    bert.initialise(random);
    classifier.initialise(random, bert.built_config().initializer_range);
  }

  // The task loss, as HuggingFace's: with one label (a regression head) the mean squared error of the
  // scores against b.targets; otherwise the mean cross-entropy against b.labels (ignore_label rows
  // skipped).
  var<Scalar> loss(tape<Scalar>& t, const var<Scalar>& logits, const token_batch& b) {
    if (bert.built_config().regression()) return mean_squared_error(t, logits, std::span<const double>(b.targets));
    return cross_entropy(t, logits, std::span<const token_id>(b.labels));
  }

  // Every linear layer: the encoder's (and the pooler), then the classifier.
  template <class F>
  void for_each_linear(F&& f) {
    bert.for_each_linear(f);
    f(classifier);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    bert.for_each_parameter(f);
    f(classifier.weight);
    f(classifier.bias);
  }

 protected:
  bert_with_classifier(const bert_config& config, bool with_pooler)
      : bert(config, with_pooler), classifier("classifier", config.hidden, config.num_labels) {}

  // The classifier's dropout site, after the encoder's.
  std::uint64_t classifier_site() const noexcept { return 1 + 3 * static_cast<std::uint64_t>(bert.built_config().layers); }
};
}  // namespace detail

// BertForSequenceClassification: the pooled [CLS] vector, dropout, and a linear classifier.
// loss() takes b.labels [batch].
template <class Scalar, bert_shape_type Shape>
class bert_for_sequence_classification : public detail::bert_with_classifier<Scalar, Shape> {
 public:
  explicit bert_for_sequence_classification(const bert_config& config)
      : detail::bert_with_classifier<Scalar, Shape>(config, true) {}

  // Logits [batch, num_labels].
  var<Scalar> logits(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) {
    const auto c = this->bert.context(t, b, training, dropout_key);
    const var<Scalar> pooled = this->bert.pool(t, this->bert.encode(t, b, c), c);
    return this->classifier.forward(t, c.hidden_dropout_of(t, pooled, this->classifier_site()));
  }

  // Forward FLOPs of a batch: the encoder on every token, the pooler and classifier per sequence.
  double forward_flops(const token_batch& b) const {
    const double d = this->bert.built_config().hidden;
    return static_cast<double>(b.tokens()) * this->bert.encoder_flops_per_token(b.seq) +
           static_cast<double>(b.batch) * (2 * d * d + 2 * d * static_cast<double>(this->classifier.outputs()));
  }
};

// BertForTokenClassification: dropout and a linear classifier on every token's hidden state.
// loss() takes b.labels [tokens], ignore_label at padding and sub-word continuations.
template <class Scalar, bert_shape_type Shape>
class bert_for_token_classification : public detail::bert_with_classifier<Scalar, Shape> {
 public:
  explicit bert_for_token_classification(const bert_config& config)
      : detail::bert_with_classifier<Scalar, Shape>(config, false) {}

  // Logits [tokens, num_labels].
  var<Scalar> logits(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) {
    const auto c = this->bert.context(t, b, training, dropout_key);
    const var<Scalar> hidden = this->bert.encode(t, b, c);
    return this->classifier.forward(t, c.hidden_dropout_of(t, hidden, this->classifier_site()));
  }

  // Forward FLOPs of a batch: the encoder and the classifier on every token.
  double forward_flops(const token_batch& b) const {
    const double d = this->bert.built_config().hidden;
    return static_cast<double>(b.tokens()) *
           (this->bert.encoder_flops_per_token(b.seq) + 2 * d * static_cast<double>(this->classifier.outputs()));
  }
};

// BertForQuestionAnswering: a linear span head ("qa_outputs", [2, hidden], no dropout, as HuggingFace)
// on every token's hidden state; column 0 scores a position as the answer's start, column 1 as its end.
// loss() takes b.labels [batch * 2]: each sequence's start and end position, interleaved, and returns
// (cross-entropy of the start logits + cross-entropy of the end logits) / 2, each a softmax over the
// sequence's real (non-padding) positions.
template <class Scalar, bert_shape_type Shape>
class bert_for_question_answering {
 public:
  using scalar_type = Scalar;
  using shape = Shape;

  bert_model<Scalar, Shape> bert;
  linear<Scalar> qa_outputs;

  explicit bert_for_question_answering(const bert_config& config) : bert(config, false), qa_outputs("qa_outputs", config.hidden, 2) {}

  template <class Random>
  void initialise(Random& random) {
    bert.initialise(random);
    qa_outputs.initialise(random, bert.built_config().initializer_range);
  }

  // Logits [tokens, 2]: start and end scores of every position.
  var<Scalar> logits(tape<Scalar>& t, const token_batch& b, bool training, std::uint64_t dropout_key) {
    const auto c = bert.context(t, b, training, dropout_key);
    return qa_outputs.forward(t, bert.encode(t, b, c));
  }

  var<Scalar> loss(tape<Scalar>& t, const var<Scalar>& logits, const token_batch& b) {
    if (static_cast<index_t>(b.labels.size()) != 2 * b.batch) {
      throw shape_error(fmt::format("bert_for_question_answering: batch holds {} labels, expected {} (start and end per sequence)",
                                    b.labels.size(), 2 * b.batch));
    }
    token_id* starts = t.template scratch<token_id>(b.batch);
    token_id* ends = t.template scratch<token_id>(b.batch);
    for (index_t i = 0; i < b.batch; ++i) {
      starts[i] = b.labels[static_cast<std::size_t>(2 * i)];
      ends[i] = b.labels[static_cast<std::size_t>(2 * i + 1)];
    }
    const auto n = static_cast<std::size_t>(b.batch);
    // Padding positions leave the softmax (HuggingFace keeps them; with batches padded to their longest
    // sequence that would make a sequence's loss depend on its batch-mates).
    var<Scalar> padding = t.make(b.batch, b.seq, false);
    for (index_t i = 0; i < b.tokens(); ++i) {
      padding.value_data()[i] = b.attention[static_cast<std::size_t>(i)] != 0 ? Scalar(0) : forward_context<Scalar>::padding_score;
    }
    const auto scores = [&](index_t column) { return add(t, column_as_sequences(t, logits, column, b.batch, b.seq), padding); };
    const var<Scalar> start = cross_entropy(t, scores(0), std::span<const token_id>(starts, n));
    const var<Scalar> end = cross_entropy(t, scores(1), std::span<const token_id>(ends, n));
    return scale(t, add(t, start, end), Scalar(0.5));
  }

  // Forward FLOPs of a batch: the encoder and the span head on every token.
  double forward_flops(const token_batch& b) const {
    const double d = bert.built_config().hidden;
    return static_cast<double>(b.tokens()) * (bert.encoder_flops_per_token(b.seq) + 2 * d * 2);
  }

  template <class F>
  void for_each_linear(F&& f) {
    bert.for_each_linear(f);
    f(qa_outputs);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    bert.for_each_parameter(f);
    f(qa_outputs.weight);
    f(qa_outputs.bias);
  }
};

// Every parameter of a model, in its for_each_parameter order (for the optimizer and checkpoints).
template <class Model>
std::vector<parameter<typename Model::scalar_type>*> parameters_of(Model& model) {
  std::vector<parameter<typename Model::scalar_type>*> all;
  model.for_each_parameter([&](parameter<typename Model::scalar_type>& p) { all.push_back(&p); });
  return all;
}

}  // namespace earlybert
