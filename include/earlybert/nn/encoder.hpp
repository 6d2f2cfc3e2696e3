// SPDX-License-Identifier: Apache-2.0
#pragma once
// The blocks of a BERT encoder, as HuggingFace's BertEmbeddings, BertAttention, BertIntermediate +
// BertOutput, and BertLayer (post-LN).
//
//   embeddings      ids, type_ids [tokens] -> LayerNorm(word[ids] + position[s] + token_type[type]) -> dropout
//   attention       x [tokens, hidden] -> LayerNorm(x + dropout(W_O concat_h(c_h) + b_O))
//                   c_h = dropout(softmax(Q_h K_h^T / sqrt(head_dim) + padding mask)) V_h
//   feed_forward    x [tokens, hidden] -> LayerNorm(x + dropout(W_2 GELU(W_1 x + b_1) + b_2))
//   encoder_layer   feed_forward(attention(x))
//
// Heads and FFN neurons are the structures of the mask-aware linear layers (nn/linear.hpp), and each
// block's structures() is their family (nn/structure.hpp): the attention runs on however many heads
// its projections hold, so a compacted layer does less work.
// Every forward accumulates gradients through the tape; nothing is cached outside it. The blocks take
// their sizes from the configuration (the model checks it against its Shape once).
//
// EarlyBERT's slimming coefficients (one per head, one per FFN neuron) live in the blocks and join the
// model while set_slimming(true): a head's coefficient scales its context columns before W_O, a
// neuron's its GELU output before W_2 (ops/scale_columns.hpp).

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "earlybert/core/parameter.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/nn/linear.hpp"
#include "earlybert/nn/structure.hpp"
#include "earlybert/ops/activation.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/dropout.hpp"
#include "earlybert/ops/gather.hpp"
#include "earlybert/ops/heads.hpp"
#include "earlybert/ops/layer_norm.hpp"
#include "earlybert/ops/matmul.hpp"
#include "earlybert/ops/scale_columns.hpp"
#include "earlybert/ops/softmax.hpp"

namespace earlybert {

template <class Scalar>
struct forward_context;

// The per-layer intermediates a data-driven criterion or an analysis reads, without copying a block's
// forward: derive, override what you need, and hand it to bert_model::set_observer. Called during the
// forward pass, once per layer; a var is valid only during the call (in inference a layer's memory is
// reused as soon as the layer is done). Observing changes nothing the model computes.
template <class Scalar>
struct forward_observer {
  virtual ~forward_observer() = default;
  // The attention probabilities after the softmax (before attention dropout), [batch * heads * seq, seq]:
  // row (b * heads + h) * seq + i is query position i of sequence b in held head h, whose original
  // index is kept_heads[h]. Padding keys have probability exactly 0.
  virtual void attention_probabilities(int /*layer*/, std::span<const index_t> /*kept_heads*/, const var<Scalar>& /*probabilities*/,
                                       const forward_context<Scalar>& /*context*/) {}
  // The FFN's GELU output (before slimming coefficients), [tokens, held neurons]; column j is the
  // neuron whose original index is kept_neurons[j].
  virtual void ffn_activations(int /*layer*/, std::span<const index_t> /*kept_neurons*/, const var<Scalar>& /*activations*/,
                               const forward_context<Scalar>& /*context*/) {}
};

// Where a model holds its observer. The observer watches one model object, not its value: a copy (or a
// model moved from it) starts without one, since it would otherwise report the copy's forward passes to
// the original's observer, and an assignment leaves the target's observer as it was.
template <class Scalar>
class observer_slot {
 public:
  observer_slot() = default;
  observer_slot(const observer_slot&) noexcept {}
  observer_slot(observer_slot&&) noexcept {}
  observer_slot& operator=(const observer_slot&) noexcept { return *this; }
  observer_slot& operator=(observer_slot&&) noexcept { return *this; }
  ~observer_slot() = default;

  void set(forward_observer<Scalar>* observer) noexcept { observer_ = observer; }
  forward_observer<Scalar>* get() const noexcept { return observer_; }

 private:
  forward_observer<Scalar>* observer_ = nullptr;
};

// What every block's forward needs besides its input: the batch layout, the padding mask, and the
// dropout settings of this step.
template <class Scalar>
struct forward_context {
  index_t batch = 0;
  index_t seq = 0;
  var<Scalar> additive_mask;  // [batch, seq]: 0 for real tokens, padding_score for padding
  Scalar hidden_dropout = 0;  // 0 at evaluation
  Scalar attention_dropout = 0;
  std::uint64_t dropout_key = 0;  // derive_key(dropout_key, site) gives each dropout its own stream
  const std::uint8_t* attention = nullptr;   // [batch * seq]: 1 for a real token, 0 for padding
  forward_observer<Scalar>* observer = nullptr;  // null: nobody is watching

  // Whether position i of sequence b is a real token (not padding).
  bool real_token(index_t b, index_t i) const noexcept { return attention[b * seq + i] != 0; }

  // The additive score of a padding position: exp underflows to exactly 0 after the row maximum is
  // subtracted (original BERT's constant).
  static constexpr Scalar padding_score = Scalar(-10000);

  var<Scalar> hidden_dropout_of(tape<Scalar>& t, const var<Scalar>& x, std::uint64_t site) const {
    return dropout(t, x, hidden_dropout, derive_key(dropout_key, site));
  }
};

// A LayerNorm's two parameters, named as HuggingFace names them ("<name>.weight", "<name>.bias").
template <class Scalar>
struct layer_norm_parameters {
  parameter<Scalar> gamma;
  parameter<Scalar> beta;

  layer_norm_parameters() = default;
  layer_norm_parameters(const std::string& name, index_t width)
      : gamma(name + ".weight", 1, width, false), beta(name + ".bias", 1, width, false) {
    gamma.value.setOnes();
  }
  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x, double epsilon) {
    return layer_norm(t, x, t.watch(gamma), t.watch(beta), static_cast<Scalar>(epsilon));
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(gamma);
    f(beta);
  }
  // LayerNorm(x + residual): a sub-layer's residual connection and its norm in one op.
  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x, const var<Scalar>& residual, double epsilon) {
    return add_layer_norm(t, x, residual, t.watch(gamma), t.watch(beta), static_cast<Scalar>(epsilon));
  }
};

template <class Scalar>
class embeddings {
 public:
  parameter<Scalar> word;        // [vocab, hidden]
  parameter<Scalar> position;    // [max_positions, hidden]
  parameter<Scalar> token_type;  // [type_vocab, hidden]
  layer_norm_parameters<Scalar> norm;

  explicit embeddings(const bert_config& c)
      : word("bert.embeddings.word_embeddings.weight", c.vocab_size, c.hidden),
        position("bert.embeddings.position_embeddings.weight", c.max_positions, c.hidden),
        token_type("bert.embeddings.token_type_embeddings.weight", c.type_vocab_size, c.hidden),
        norm("bert.embeddings.LayerNorm", c.hidden),
        epsilon_(c.layer_norm_eps),
        pad_(c.pad_token_id) {}

  // [tokens, hidden]. Position s of every sequence looks up row s of the position table.
  var<Scalar> forward(tape<Scalar>& t, const token_batch& b, const forward_context<Scalar>& context) {
    if (b.seq > position.rows()) {
      throw shape_error(fmt::format("embeddings: sequence length {} exceeds max_position_embeddings = {}",
                                    b.seq, position.rows()));
    }
    token_id* positions = t.template scratch<token_id>(b.tokens());
    for (index_t i = 0; i < b.tokens(); ++i) positions[i] = static_cast<token_id>(i % b.seq);
    const auto tokens = static_cast<std::size_t>(b.tokens());
    var<Scalar> x = embedding(t, t.watch(word), std::span<const token_id>(b.ids.data(), tokens), pad_);
    x = add(t, x, embedding(t, t.watch(position), std::span<const token_id>(positions, tokens)));
    const var<Scalar> type = embedding(t, t.watch(token_type), std::span<const token_id>(b.type_ids.data(), tokens));
    return context.hidden_dropout_of(t, norm.forward(t, x, type, epsilon_), 0);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(word);
    f(position);
    f(token_type);
    norm.for_each_parameter(f);
  }

 private:
  double epsilon_;
  token_id pad_;
};

template <class Scalar>
class attention {
 public:
  linear<Scalar> query, key, value;  // [kept_heads * head_dim, hidden], structured by output rows
  linear<Scalar> output;             // [hidden, kept_heads * head_dim], structured by input columns
  layer_norm_parameters<Scalar> norm;
  // EarlyBERT's slimming coefficient of each held head: scales the head's context before W_O.
  slimming_coefficients<Scalar> coefficients;

  attention(int layer, const std::string& prefix, const bert_config& c)
      : query(prefix + ".attention.self.query", c.hidden, c.hidden, structure_axis::outputs, c.head_dim()),
        key(prefix + ".attention.self.key", c.hidden, c.hidden, structure_axis::outputs, c.head_dim()),
        value(prefix + ".attention.self.value", c.hidden, c.hidden, structure_axis::outputs, c.head_dim()),
        output(prefix + ".attention.output.dense", c.hidden, c.hidden, structure_axis::inputs, c.head_dim()),
        norm(prefix + ".attention.output.LayerNorm", c.hidden),
        coefficients(prefix + ".attention.self.slimming_coefficients"),
        epsilon_(c.layer_norm_eps),
        layer_(layer),
        original_heads_(c.heads) {}

  // The heads as a prunable family: Q, K, V by output rows, W_O by input columns, the coefficients.
  structure_family<Scalar> structures() {
    return structure_family<Scalar>(structure_kind::heads, layer_, {&query, &key, &value, &output}, &coefficients, original_heads_);
  }
  const structure_family<Scalar> structures() const { return const_cast<attention*>(this)->structures(); }

  // Heads held (all of them until compacted), and the width of each.
  index_t heads() const noexcept { return query.groups(); }
  index_t head_dim() const noexcept { return query.group_size(); }

  // x [tokens, hidden] -> [tokens, hidden]. `site` numbers this layer's dropout streams.
  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x, const forward_context<Scalar>& context, std::uint64_t site) {
    return forward(t, x, x, context, site);
  }

  // Attention of some positions over all of them: keys [batch * seq, hidden] are every position's
  // states (the context's batch and seq), queries [batch * queries, hidden] the states of the
  // positions computed, `queries` per sequence (rows that are padding are allowed and harmless:
  // their outputs are to be ignored); returns [batch * queries, hidden], the queries' residual added.
  // With queries the keys themselves this is the layer's self-attention, bit for bit.
  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& keys, const var<Scalar>& queries, const forward_context<Scalar>& context,
                      std::uint64_t site) {
    const index_t batch = context.batch, h = heads(), head_dim = this->head_dim();
    if (h == 0) {  // every head pruned (HuggingFace allows it): the sub-layer adds only W_O's bias
      const var<Scalar> no_heads = t.make(queries.rows(), 0, false);
      return norm.forward(t, context.hidden_dropout_of(t, output.forward(t, no_heads), site + 1), queries, epsilon_);
    }
    // The projections stay [rows, h * head_dim]; the attention products read each (sequence, head)
    // block in place. Scores [batch*h*queries, seq], scaled inside the softmax; the padding mask row of
    // sequence b covers its h*queries score rows.
    const index_t per_sequence = queries.rows() / batch;
    const var<Scalar> q = query.forward(t, queries), k = key.forward(t, keys), v = value.forward(t, keys);
    const Scalar inverse_sqrt_dim = Scalar(1) / std::sqrt(static_cast<Scalar>(head_dim));
    var<Scalar> probabilities = softmax(t, head_scores(t, q, k, batch, h), context.additive_mask, h * per_sequence, inverse_sqrt_dim);
    if (context.observer != nullptr) context.observer->attention_probabilities(layer_, query.kept_groups(), probabilities, context);
    probabilities = dropout(t, probabilities, context.attention_dropout, derive_key(context.dropout_key, site));
    var<Scalar> heads_context = head_context(t, probabilities, v, batch, h);  // [batch * queries, h * head_dim]
    heads_context = coefficients.apply(t, heads_context, head_dim);
    const var<Scalar> projected = context.hidden_dropout_of(t, output.forward(t, heads_context), site + 1);
    return norm.forward(t, projected, queries, epsilon_);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    for (linear<Scalar>* l : {&query, &key, &value, &output}) {
      f(l->weight);
      f(l->bias);
    }
    norm.for_each_parameter(f);
    coefficients.for_each_parameter(f);
  }

 private:
  double epsilon_;
  int layer_;
  int original_heads_;
};

template <class Scalar>
class feed_forward {
 public:
  linear<Scalar> intermediate;  // W_1 [kept_ffn, hidden], structured by output rows
  linear<Scalar> output;        // W_2 [hidden, kept_ffn], structured by input columns
  layer_norm_parameters<Scalar> norm;
  // EarlyBERT's slimming coefficient of each held neuron: scales its GELU output before W_2.
  slimming_coefficients<Scalar> coefficients;

  feed_forward(int layer, const std::string& prefix, const bert_config& c)
      : intermediate(prefix + ".intermediate.dense", c.hidden, c.ffn, structure_axis::outputs, 1),
        output(prefix + ".output.dense", c.ffn, c.hidden, structure_axis::inputs, 1),
        norm(prefix + ".output.LayerNorm", c.hidden),
        coefficients(prefix + ".intermediate.slimming_coefficients"),
        epsilon_(c.layer_norm_eps),
        layer_(layer),
        original_neurons_(c.ffn) {}

  // The neurons as a prunable family: W_1 and b_1 by output rows, W_2 by input columns, the coefficients.
  structure_family<Scalar> structures() {
    return structure_family<Scalar>(structure_kind::neurons, layer_, {&intermediate, &output}, &coefficients, original_neurons_);
  }
  const structure_family<Scalar> structures() const { return const_cast<feed_forward*>(this)->structures(); }

  // Neurons held (all of them until compacted).
  index_t neurons() const noexcept { return intermediate.groups(); }

  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x, const forward_context<Scalar>& context,
                      std::uint64_t site) {
    var<Scalar> activation = gelu(t, intermediate.forward(t, x));  // [tokens, kept_ffn]
    if (context.observer != nullptr) context.observer->ffn_activations(layer_, intermediate.kept_groups(), activation, context);
    activation = coefficients.apply(t, activation, 1);
    const var<Scalar> projected = context.hidden_dropout_of(t, output.forward(t, activation), site);
    return norm.forward(t, projected, x, epsilon_);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(intermediate.weight);
    f(intermediate.bias);
    f(output.weight);
    f(output.bias);
    norm.for_each_parameter(f);
    coefficients.for_each_parameter(f);
  }

 private:
  double epsilon_;
  int layer_;
  int original_neurons_;
};

template <class Scalar>
class encoder_layer {
 public:
  attention<Scalar> self_attention;
  feed_forward<Scalar> ffn;

  encoder_layer(int index, const bert_config& c)
      : self_attention(index, fmt::format("bert.encoder.layer.{}", index), c),
        ffn(index, fmt::format("bert.encoder.layer.{}", index), c),
        index_(index) {}

  var<Scalar> forward(tape<Scalar>& t, const var<Scalar>& x, const forward_context<Scalar>& context) {
    // Dropout sites: 3 per layer, after the embeddings' site 0.
    const auto site = static_cast<std::uint64_t>(1 + 3 * index_);
    return ffn.forward(t, self_attention.forward(t, x, context, site), context, site + 2);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    self_attention.for_each_parameter(f);
    ffn.for_each_parameter(f);
  }

  // The layer's six linear layers, in the order it computes them: W_Q, W_K, W_V, W_O, W_1, W_2.
  template <class F>
  void for_each_linear(F&& f) {
    for (linear<Scalar>* l : {&self_attention.query, &self_attention.key, &self_attention.value, &self_attention.output,
                              &ffn.intermediate, &ffn.output}) {
      f(*l);
    }
  }

 private:
  int index_;
};

}  // namespace earlybert
