// SPDX-License-Identifier: Apache-2.0
#pragma once
// The run-time half of a BERT's configuration, as HuggingFace's BertConfig, and the model's input.
//
// The model is built from these numbers. The architecture's four (layers, hidden, heads, ffn) may also
// be fixed by the Shape type (core/shape.hpp), and are then checked against it; the rest is always
// run-time: vocabulary, position table, token types, dropout, LayerNorm epsilon, the number of labels
// of a classifier, and the structure a pruned model keeps.

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

struct bert_config {
  // The architecture (HuggingFace keys in comments).
  int layers = 0;        // num_hidden_layers
  int hidden = 0;        // hidden_size
  int heads = 0;         // num_attention_heads
  int ffn = 0;           // intermediate_size
  // Run-time sizes.
  index_t vocab_size = 30522;
  index_t max_positions = 512;   // max_position_embeddings
  index_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double hidden_dropout = 0.1;     // hidden_dropout_prob
  double attention_dropout = 0.1;  // attention_probs_dropout_prob
  double initializer_range = 0.02;
  token_id pad_token_id = 0;
  int num_labels = 2;                    // classes of a task head; 1: a regression head (one score)
  std::vector<std::string> label_names;  // id2label: class i's name; empty for LABEL_0, LABEL_1, ...
  std::string finetuning_task;           // the task the head was trained on ("cola", ...), "" if none
  // The structure kept after pruning: per layer, the original indices of the kept heads and FFN
  // neurons, ascending. Empty means unpruned (every head and neuron).
  std::vector<std::vector<index_t>> kept_heads;
  std::vector<std::vector<index_t>> kept_ffn;

  bool regression() const noexcept { return num_labels == 1; }
  // Class i's name: label_names[i], or HuggingFace's default "LABEL_i".
  std::string label_name(int i) const {
    return static_cast<std::size_t>(i) < label_names.size() ? label_names[static_cast<std::size_t>(i)] : "LABEL_" + std::to_string(i);
  }
  bool pruned() const noexcept { return !kept_heads.empty() || !kept_ffn.empty(); }
  int head_dim() const noexcept { return heads > 0 ? hidden / heads : 0; }

  // The configuration of a fixed shape with the given vocabulary.
  template <bert_shape_type Shape>
  static bert_config for_shape(index_t vocab) {
    static_assert(Shape::fixed, "bert_config::for_shape: the shape has dynamic dimensions; set them in the config");
    bert_config c;
    c.layers = Shape::layers;
    c.hidden = Shape::hidden;
    c.heads = Shape::heads;
    c.ffn = Shape::ffn;
    c.vocab_size = vocab;
    return c;
  }

  // Throws config_error when the numbers cannot describe a model of `Shape` (each fixed dimension
  // must match; a dynamic one takes the config's).
  template <bert_shape_type Shape>
  void check_against() const {
    const auto mismatch = [](const char* key, int found, int expected) {
      if (expected != dynamic && found != expected) {
        throw config_error(fmt::format("bert_config: '{}' is {}, expected {} for this shape", key, found, expected));
      }
    };
    mismatch("num_hidden_layers", layers, Shape::layers);
    mismatch("hidden_size", hidden, Shape::hidden);
    mismatch("num_attention_heads", heads, Shape::heads);
    mismatch("intermediate_size", ffn, Shape::ffn);
    check();
  }

  // Throws config_error on values outside their legal ranges.
  void check() const {
    const auto require = [](bool ok, const char* key, auto found, const char* expected) {
      if (!ok) throw config_error(fmt::format("bert_config: '{}' is {}, expected {}", key, found, expected));
    };
    require(layers >= 1, "num_hidden_layers", layers, "at least 1");
    require(hidden >= 1, "hidden_size", hidden, "at least 1");
    require(heads >= 1 && heads <= hidden, "num_attention_heads", heads, "a number in [1, hidden_size]");
    require(hidden % heads == 0, "hidden_size", hidden, fmt::format("a multiple of num_attention_heads = {}", heads).c_str());
    require(ffn >= 1, "intermediate_size", ffn, "at least 1");
    require(vocab_size >= 1, "vocab_size", vocab_size, "at least 1");
    require(max_positions >= 1, "max_position_embeddings", max_positions, "at least 1");
    require(type_vocab_size >= 1, "type_vocab_size", type_vocab_size, "at least 1");
    require(layer_norm_eps > 0, "layer_norm_eps", layer_norm_eps, "a positive value");
    require(hidden_dropout >= 0 && hidden_dropout < 1, "hidden_dropout_prob", hidden_dropout, "a value in [0, 1)");
    require(attention_dropout >= 0 && attention_dropout < 1, "attention_probs_dropout_prob", attention_dropout,
            "a value in [0, 1)");
    require(initializer_range >= 0, "initializer_range", initializer_range, "a non-negative value");
    require(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id", pad_token_id, "an id in the vocabulary");
    require(num_labels >= 1, "num_labels", num_labels, "at least 1");
    if (!label_names.empty() && label_names.size() != static_cast<std::size_t>(num_labels)) {
      throw config_error(fmt::format("bert_config: {} label names for num_labels = {}, expected as many", label_names.size(), num_labels));
    }
    check_kept("kept heads", kept_heads, heads);
    check_kept("kept FFN neurons", kept_ffn, ffn);
  }

 private:
  // A layer may keep none (every head or neuron pruned, as HuggingFace allows).
  void check_kept(const char* what, const std::vector<std::vector<index_t>>& kept, int total) const {
    if (kept.empty()) return;
    if (static_cast<int>(kept.size()) != layers) {
      throw config_error(fmt::format("bert_config: {} lists {} layers, expected {}", what, kept.size(), layers));
    }
    for (std::size_t l = 0; l < kept.size(); ++l) {
      for (std::size_t i = 0; i < kept[l].size(); ++i) {
        const index_t k = kept[l][i];
        if (k < 0 || k >= total || (i > 0 && k <= kept[l][i - 1])) {
          throw config_error(fmt::format("bert_config: {} of layer {} holds {} at position {}, expected strictly "
                                         "ascending indices in [0, {})", what, l, k, i, total));
        }
      }
    }
  }
};

// One batch of token sequences, padded to a common length: the model's input.
//   ids, type_ids, attention: [batch * seq], row-major by sequence; attention is 1 for a real token
//   and 0 for padding. labels: [batch] (sequence classification) or [batch * seq] (masked LM and token
//   classification, ignore_label where there is nothing to predict).
struct token_batch {
  index_t batch = 0;
  index_t seq = 0;
  std::vector<token_id> ids;
  std::vector<token_id> type_ids;
  std::vector<std::uint8_t> attention;
  std::vector<token_id> labels;   // classes: [batch] (sequences) or [tokens]; ignore_label where none
  std::vector<double> targets;    // [batch] regression targets (empty for classification)
  // Token classification: [tokens], the word of its sentence (0, 1, ...) a token is a piece of, -1 for
  // [CLS], [SEP] and padding; empty for every other task. Early exit halts words (nn/early_exit.hpp).
  std::vector<index_t> word_of;

  index_t tokens() const noexcept { return batch * seq; }
  // Real (non-padding) tokens.
  index_t real_tokens() const noexcept {
    index_t n = 0;
    for (auto a : attention) n += a;
    return n;
  }
};

}  // namespace earlybert
