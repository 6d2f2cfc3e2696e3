// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checkpoints: a directory that HuggingFace's from_pretrained() reads, and that this library reads back.
//
//   config.json         HuggingFace BertConfig keys (hidden_size, num_hidden_layers, ...), the
//                       architecture, and for a pruned model the structure it keeps:
//                         "pruned_heads"        {"layer": [removed heads]}, HuggingFace's own key, so
//                                               from_pretrained() prunes the same heads before loading
//                         "earlybert_kept_heads" [[kept head indices] per layer]
//                         "earlybert_kept_ffn"   [[kept FFN neuron indices] per layer]
//                       and "earlybert_format": {"name": "earlybert-checkpoint", "version": 1}.
//   model.safetensors   every parameter under its HuggingFace name, F32; metadata "format": "pt" (which
//                       transformers requires) and the kept structure again ("earlybert.kept_heads",
//                       "earlybert.kept_ffn", as JSON text). The MLM decoder weight is tied to the word
//                       embeddings and, as HuggingFace saves it, not stored twice.
//   vocab.txt           the vocabulary the model was trained with.
//   tokenizer_config.json  what HuggingFace's BertTokenizer reads back with it: "do_lower_case" and
//                       "model_max_length" (the longest input the model was trained on; the
//                       program's --max-seq), "tokenizer_class": "BertTokenizer".
//
// A model whose FFN widths differ between layers has no HuggingFace equivalent (BertConfig has one
// intermediate_size); it reloads here, and from_pretrained() reports the size mismatch.
//
// Loading a checkpoint of another task into a model is allowed as HuggingFace allows it: encoder
// parameters must all be present (the pooler may be absent, coming from a masked-LM checkpoint);
// task-head parameters that are absent keep their initialisation, and the report lists them.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/io/files.hpp"
#include "earlybert/io/json.hpp"
#include "earlybert/io/safetensors.hpp"
#include "earlybert/io/vocabulary.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/nn/config.hpp"

namespace earlybert {

inline constexpr std::string_view checkpoint_format_name = "earlybert-checkpoint";
inline constexpr int checkpoint_format_version = 1;

// What a checkpoint's config.json says.
struct checkpoint_config {
  bert_config model;
  std::string architecture;  // "BertForMaskedLM", "BertForSequenceClassification", ... ("" if absent)
};

namespace detail {
template <class T>
T config_value(const nlohmann::json& j, const std::string& path, const char* key, const T& fallback, bool required) {
  if (!j.contains(key)) {
    if (required) throw io_error(fmt::format("config '{}': key '{}' is missing", path, key));
    return fallback;
  }
  if constexpr (std::is_integral_v<T>) {
    return read_whole_number<T>(j.at(key), fmt::format("config '{}': key '{}'", path, key));
  } else {
    try {
      return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw io_error(fmt::format("config '{}': key '{}' is {}, expected a {}", path, key, detail::json_excerpt(j.at(key)),
                                 std::is_floating_point_v<T> ? "number" : "string"));
    }
  }
}

// The list of index lists, one per layer, under `key`; empty if the key is absent.
inline std::vector<std::vector<index_t>> kept_lists(const nlohmann::json& j, const std::string& path, const char* key) {
  if (!j.contains(key)) return {};
  const auto& lists = j.at(key);
  const std::string what = fmt::format("config '{}': key '{}'", path, key);
  if (!lists.is_array()) throw io_error(fmt::format("{} is {}, expected a list of index lists", what, json_excerpt(lists)));
  std::vector<std::vector<index_t>> out;
  for (std::size_t l = 0; l < lists.size(); ++l) out.push_back(read_whole_numbers<index_t>(lists[l], fmt::format("{}[{}]", what, l)));
  return out;
}

// HuggingFace's "pruned_heads", {"layer": [removed heads]} in the original numbering (a layer may lose
// every head), as the removed heads of each of `layers` layers; empty when it prunes nothing (absent,
// null or {}). A layer or head the model does not have is an io_error naming the file.
inline std::vector<std::vector<index_t>> removed_heads(const nlohmann::json& pruned, const std::string& path, int layers, int heads) {
  if (pruned.is_null() || (pruned.is_object() && pruned.empty())) return {};
  if (!pruned.is_object()) {
    throw io_error(fmt::format("config '{}': key 'pruned_heads' is {}, expected an object {{\"layer\": [removed heads]}}", path,
                               json_excerpt(pruned)));
  }
  std::vector<std::vector<index_t>> removed(static_cast<std::size_t>(layers));
  for (const auto& [layer, list] : pruned.items()) {
    const bool digits = !layer.empty() && layer.size() <= 9 && std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    const long index = digits ? std::stol(layer) : -1;
    if (!digits || index >= layers || std::to_string(index) != layer) {
      throw io_error(fmt::format("config '{}': pruned_heads names layer '{}', expected a layer index in [0, {})", path, layer, layers));
    }
    for (const index_t h : read_whole_numbers<index_t>(list, fmt::format("config '{}': pruned_heads['{}']", path, layer))) {
      if (h < 0 || h >= heads) throw io_error(fmt::format("config '{}': pruned_heads['{}'] removes head {}, expected a head in [0, {})", path, layer, h, heads));
      removed[static_cast<std::size_t>(index)].push_back(h);
    }
  }
  return removed;
}
}  // namespace detail

inline nlohmann::ordered_json config_to_json(const bert_config& c, const std::string& architecture) {
  nlohmann::ordered_json j;
  j["architectures"] = {architecture};
  j["model_type"] = "bert";
  j["hidden_size"] = c.hidden;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["intermediate_size"] = c.ffn;
  j["hidden_act"] = "gelu";
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_positions;
  j["type_vocab_size"] = c.type_vocab_size;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["hidden_dropout_prob"] = c.hidden_dropout;
  j["attention_probs_dropout_prob"] = c.attention_dropout;
  j["initializer_range"] = c.initializer_range;
  j["pad_token_id"] = c.pad_token_id;
  j["position_embedding_type"] = "absolute";
  j["num_labels"] = c.num_labels;
  nlohmann::ordered_json id2label, label2id;
  for (int i = 0; i < c.num_labels; ++i) {
    id2label[std::to_string(i)] = c.label_name(i);
    label2id[c.label_name(i)] = i;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  if (c.regression()) j["problem_type"] = "regression";
  if (!c.finetuning_task.empty()) j["finetuning_task"] = c.finetuning_task;
  if (c.pruned()) {
    nlohmann::ordered_json pruned = nlohmann::ordered_json::object();
    for (std::size_t l = 0; l < c.kept_heads.size(); ++l) {
      std::vector<index_t> removed;
      for (index_t h = 0, k = 0; h < c.heads; ++h) {
        if (k < static_cast<index_t>(c.kept_heads[l].size()) && c.kept_heads[l][static_cast<std::size_t>(k)] == h) ++k;
        else removed.push_back(h);
      }
      if (!removed.empty()) pruned[std::to_string(l)] = removed;
    }
    j["pruned_heads"] = pruned;
    j["earlybert_kept_heads"] = c.kept_heads;
    j["earlybert_kept_ffn"] = c.kept_ffn;
  }
  j["earlybert_format"] = {{"name", checkpoint_format_name}, {"version", checkpoint_format_version}};
  return j;
}

// Parses config.json. Missing optional keys take BertConfig's defaults; values are range-checked.
inline checkpoint_config read_config(const std::filesystem::path& path) {
  const std::string p = path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, "config"));
  } catch (const nlohmann::json::exception& e) {
    throw io_error(fmt::format("config '{}': not valid JSON ({})", p, e.what()));
  }
  if (!j.is_object()) throw io_error(fmt::format("config '{}': expected a JSON object", p));
  if (j.contains("earlybert_format")) {
    const auto& version = member_or_null(j["earlybert_format"], "version");
    if (whole_number<int>(version) != checkpoint_format_version) {
      throw io_error(fmt::format("config '{}': earlybert checkpoint format version {}, expected {} (written by another "
                                 "release; re-save it with that release)", p, detail::json_excerpt(version), checkpoint_format_version));
    }
  }
  checkpoint_config out;
  bert_config& c = out.model;
  using detail::config_value;
  c.hidden = config_value<int>(j, p, "hidden_size", 0, true);
  c.layers = config_value<int>(j, p, "num_hidden_layers", 0, true);
  c.heads = config_value<int>(j, p, "num_attention_heads", 0, true);
  c.ffn = config_value<int>(j, p, "intermediate_size", 0, true);
  if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.ffn <= 0 || c.hidden % c.heads != 0) {
    throw io_error(fmt::format("config '{}': hidden_size {}, num_hidden_layers {}, num_attention_heads {} and "
                               "intermediate_size {} do not describe a BERT (all positive, heads dividing hidden)",
                               p, c.hidden, c.layers, c.heads, c.ffn));
  }
  // The kept structure is one index per head and per FFN neuron of every layer; a bound on their count
  // turns a config with absurd sizes into an error instead of an allocation that cannot succeed.
  constexpr std::int64_t max_structure_units = std::int64_t{1} << 24;  // BERT-large has 24 x (16 + 4096)
  if (std::int64_t{c.layers} * (std::int64_t{c.heads} + c.ffn) > max_structure_units) {
    throw io_error(fmt::format("config '{}': num_hidden_layers x (num_attention_heads + intermediate_size) is {} x ({} + {}), "
                               "expected at most {} heads and neurons in all", p, c.layers, c.heads, c.ffn, max_structure_units));
  }
  c.vocab_size = config_value<index_t>(j, p, "vocab_size", 0, true);
  c.max_positions = config_value<index_t>(j, p, "max_position_embeddings", 512, false);
  c.type_vocab_size = config_value<index_t>(j, p, "type_vocab_size", 2, false);
  c.layer_norm_eps = config_value<double>(j, p, "layer_norm_eps", 1e-12, false);
  c.hidden_dropout = config_value<double>(j, p, "hidden_dropout_prob", 0.1, false);
  c.attention_dropout = config_value<double>(j, p, "attention_probs_dropout_prob", 0.1, false);
  c.initializer_range = config_value<double>(j, p, "initializer_range", 0.02, false);
  c.pad_token_id = config_value<token_id>(j, p, "pad_token_id", 0, false);
  // Any shape is built from these numbers (shapes::any), so they bound the memory the model takes: a
  // config whose weights could not be held is an error here, not a failed allocation later.
  const double weights = static_cast<double>(c.layers) * (4.0 * c.hidden * c.hidden + 2.0 * c.hidden * c.ffn) +
                         (static_cast<double>(c.vocab_size) + static_cast<double>(c.max_positions) + static_cast<double>(c.type_vocab_size)) * c.hidden;
  constexpr double max_weights = 4e9;  // BERT-large has 3.4e8
  if (weights > max_weights) {
    throw io_error(fmt::format("config '{}': the sizes describe {:.3g} weights, expected at most {:.3g}", p, weights, max_weights));
  }
  const auto activation = config_value<std::string>(j, p, "hidden_act", "gelu", false);
  if (activation != "gelu") {
    throw io_error(fmt::format("config '{}': hidden_act is '{}', expected 'gelu' (the exact erf form, the only one "
                               "implemented)", p, activation));
  }
  const auto position = config_value<std::string>(j, p, "position_embedding_type", "absolute", false);
  if (position != "absolute") {
    throw io_error(fmt::format("config '{}': position_embedding_type is '{}', expected 'absolute'", p, position));
  }
  if (j.contains("num_labels")) c.num_labels = config_value<int>(j, p, "num_labels", 2, false);
  else if (j.contains("id2label") && j["id2label"].is_object()) c.num_labels = static_cast<int>(j["id2label"].size());
  if (j.contains("id2label") && j["id2label"].is_object()) {
    // Names when the keys are exactly "0" ... "num_labels - 1" (HuggingFace writes them so).
    std::vector<std::string> names(static_cast<std::size_t>(std::max(c.num_labels, 0)));
    bool complete = j["id2label"].size() == names.size();
    for (std::size_t i = 0; complete && i < names.size(); ++i) {
      const auto it = j["id2label"].find(std::to_string(i));
      complete = it != j["id2label"].end() && it->is_string();
      if (complete) names[i] = it->get<std::string>();
    }
    if (complete) c.label_names = std::move(names);
  }
  if (j.contains("finetuning_task") && !j["finetuning_task"].is_null()) c.finetuning_task = config_value<std::string>(j, p, "finetuning_task", "", false);
  if (j.contains("problem_type") && !j["problem_type"].is_null()) {
    const auto problem = config_value<std::string>(j, p, "problem_type", "", false);
    const bool fits = (problem == "regression" && c.num_labels == 1) || (problem == "single_label_classification" && c.num_labels >= 2);
    if (!fits) {
      throw io_error(fmt::format("config '{}': problem_type is '{}' with num_labels {}, expected 'regression' with one label or "
                                 "'single_label_classification' with two or more", p, problem, c.num_labels));
    }
  }
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    out.architecture = j["architectures"][0].get<std::string>();
  }
  c.kept_heads = detail::kept_lists(j, p, "earlybert_kept_heads");
  c.kept_ffn = detail::kept_lists(j, p, "earlybert_kept_ffn");
  // A checkpoint pruned by HuggingFace (PreTrainedModel.prune_heads) records only the removed heads.
  if (c.kept_heads.empty() && j.contains("pruned_heads")) {
    const std::vector<std::vector<index_t>> removed = detail::removed_heads(j["pruned_heads"], p, c.layers, c.heads);
    for (const std::vector<index_t>& gone : removed) {
      std::vector<index_t> kept;
      for (index_t h = 0; h < c.heads; ++h) {
        if (std::find(gone.begin(), gone.end(), h) == gone.end()) kept.push_back(h);
      }
      c.kept_heads.push_back(kept);
    }
  }
  if (c.kept_heads.empty() != c.kept_ffn.empty()) {
    // One of the two is pruned: the other keeps everything.
    const auto all = [&](int n) {
      std::vector<index_t> v(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
      return std::vector<std::vector<index_t>>(static_cast<std::size_t>(c.layers), v);
    };
    if (c.kept_heads.empty()) c.kept_heads = all(c.heads);
    else c.kept_ffn = all(c.ffn);
  }
  try {
    c.check();
  } catch (const config_error& e) {
    throw io_error(fmt::format("config '{}': {}", p, e.what()));
  }
  return out;
}

template <class Model>
std::string architecture_of() {
  using scalar = typename Model::scalar_type;
  using shape = typename Model::shape;
  if constexpr (std::is_same_v<Model, bert_for_masked_lm<scalar, shape>>) return "BertForMaskedLM";
  else if constexpr (std::is_same_v<Model, bert_for_sequence_classification<scalar, shape>>) return "BertForSequenceClassification";
  else if constexpr (std::is_same_v<Model, bert_for_question_answering<scalar, shape>>) return "BertForQuestionAnswering";
  else return "BertForTokenClassification";
}

// The tensor holding a linear layer's unstructured mask: "<layer>.weight_mask" (1 keep, 0 masked).
template <class Scalar>
std::string weight_mask_name(const linear<Scalar>& l) {
  return l.weight.name + "_mask";
}

namespace detail {
template <class Scalar>
matrix<Scalar> mask_matrix(const linear<Scalar>& l) {
  matrix<Scalar> m(l.outputs(), l.inputs());
  const auto mask = l.weight_mask();
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = mask[static_cast<std::size_t>(i)] != 0 ? Scalar(1) : Scalar(0);
  return m;
}

// Sets l's unstructured mask from `m`, the tensor `name` of file `path`, read with the weight's shape:
// every entry must be 0 or 1.
template <class Scalar>
void set_weight_mask_from(const matrix<Scalar>& m, const std::string& path, const std::string& name, linear<Scalar>& l) {
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(m.size()));
  for (index_t i = 0; i < m.size(); ++i) {
    const Scalar v = m.data()[i];
    if (v != Scalar(0) && v != Scalar(1)) {
      throw io_error(fmt::format("safetensors '{}': tensor '{}' holds {} at ({}, {}), expected a mask of 0 and 1", path, name,
                                 static_cast<double>(v), i / m.cols(), i % m.cols()));
    }
    mask[static_cast<std::size_t>(i)] = v == Scalar(1);
  }
  l.set_weight_mask(mask);
}
}  // namespace detail

// The tokenizer's settings a checkpoint keeps (tokenizer_config.json).
struct tokenizer_settings {
  bool lower_case = true;     // "do_lower_case"
  index_t max_length = 512;   // "model_max_length": the longest encoded input the model was trained with
};

inline void write_tokenizer_config(const std::filesystem::path& directory, const tokenizer_settings& t) {
  if (t.max_length < 1) throw config_error(fmt::format("tokenizer_settings: max_length is {}, expected at least 1", t.max_length));
  nlohmann::ordered_json j{{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", t.lower_case}, {"model_max_length", t.max_length}};
  write_file_atomically(directory / "tokenizer_config.json", j.dump(2) + "\n");
}

// The settings in `directory`/tokenizer_config.json, or nothing when the file is absent (a checkpoint
// written before it existed, or another tool's without one). Keys that are absent keep the defaults of
// `fallback`; a key of the wrong type is an io_error naming the file.
inline std::optional<tokenizer_settings> read_tokenizer_config(const std::filesystem::path& directory, tokenizer_settings fallback) {
  const std::filesystem::path path = directory / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const std::string p = path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, "tokenizer config"));
  } catch (const nlohmann::json::exception& e) {
    throw io_error(fmt::format("tokenizer config '{}': not valid JSON ({})", p, e.what()));
  }
  if (!j.is_object()) throw io_error(fmt::format("tokenizer config '{}': expected a JSON object", p));
  if (j.contains("do_lower_case")) {
    if (!j["do_lower_case"].is_boolean()) {
      throw io_error(fmt::format("tokenizer config '{}': key 'do_lower_case' is {}, expected true or false", p, detail::json_excerpt(j["do_lower_case"])));
    }
    fallback.lower_case = j["do_lower_case"].get<bool>();
  }
  // HuggingFace writes a huge number (1e30) for "no limit": only a length that fits is a length.
  if (j.contains("model_max_length") && j["model_max_length"].is_number_integer()) {
    const auto length = j["model_max_length"].get<std::int64_t>();
    if (length < 1) throw io_error(fmt::format("tokenizer config '{}': key 'model_max_length' is {}, expected at least 1", p, length));
    if (length <= (std::int64_t{1} << 20)) fallback.max_length = static_cast<index_t>(length);
  }
  return fallback;
}

// Writes config.json, model.safetensors, vocab.txt and tokenizer_config.json into `directory` (created
// if needed), each atomically. Without `tokenizer`, lower-casing follows the vocabulary
// (vocabulary::looks_uncased) and the longest input is the model's max_positions. The weights (and
// masks) are stored as `weights`: F32, or F16 or BF16 at half the size (safetensors_writer::add).
template <class Model>
void save_checkpoint(const std::filesystem::path& directory, Model& model, const vocabulary& vocab,
                     std::optional<tokenizer_settings> tokenizer = std::nullopt, tensor_dtype weights = tensor_dtype::f32) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec || !std::filesystem::is_directory(directory)) {
    throw io_error(fmt::format("checkpoint '{}': cannot create the directory ({})", directory.string(), ec.message()));
  }
  const bert_config config = model.bert.config();
  if (vocab.size() != config.vocab_size) {
    throw config_error(fmt::format("save_checkpoint: the vocabulary has {} tokens, the model {}", vocab.size(), config.vocab_size));
  }
  safetensors_writer tensors;
  tensors.set_metadata("format", "pt");
  if (config.pruned()) {
    tensors.set_metadata("earlybert.kept_heads", nlohmann::json(config.kept_heads).dump());
    tensors.set_metadata("earlybert.kept_ffn", nlohmann::json(config.kept_ffn).dump());
  }
  using scalar = typename Model::scalar_type;
  model.for_each_parameter([&](parameter<scalar>& p) {
    std::vector<std::int64_t> shape = p.rows() == 1 ? std::vector<std::int64_t>{p.cols()}
                                                    : std::vector<std::int64_t>{p.rows(), p.cols()};
    tensors.add(p.name, p.value, shape, weights);
  });
  // Unstructured masks beside their weights, as PyTorch's torch.nn.utils.prune names its buffers.
  model.for_each_linear([&](const linear<scalar>& l) {
    if (l.has_weight_mask()) tensors.add(weight_mask_name(l), detail::mask_matrix<scalar>(l), {l.outputs(), l.inputs()}, weights);
  });
  tensors.write(directory / "model.safetensors");
  write_file_atomically(directory / "config.json", config_to_json(config, architecture_of<Model>()).dump(2) + "\n");
  vocab.save(directory / "vocab.txt");
  write_tokenizer_config(directory, tokenizer.value_or(tokenizer_settings{vocab.looks_uncased(), config.max_positions}));
}

struct load_report {
  std::vector<std::string> initialised;  // parameters absent from the checkpoint, left as initialised
  std::vector<std::string> unused;       // tensors in the checkpoint that the model does not have
  // Encoder layers the file holds beyond the model's (a config.json describing fewer layers than the
  // weights, or a model kept shallower on purpose), ascending; their tensors are in `unused` too.
  std::vector<int> unread_layers;
};

namespace detail {
// The encoder layer a tensor name belongs to ("bert.encoder.layer.3.output.dense.weight" -> 3, also
// without "bert."), or -1.
inline int encoder_layer_of(std::string_view name) {
  if (name.starts_with("bert.")) name.remove_prefix(5);
  constexpr std::string_view prefix = "encoder.layer.";
  if (!name.starts_with(prefix)) return -1;
  name.remove_prefix(prefix.size());
  int layer = 0;
  std::size_t digits = 0;
  for (; digits < name.size() && digits < 6 && name[digits] >= '0' && name[digits] <= '9'; ++digits) layer = layer * 10 + (name[digits] - '0');
  return digits > 0 && digits < name.size() && name[digits] == '.' ? layer : -1;
}

// Every linear layer's unstructured mask from `file` (cleared where the file holds none, which masks
// nothing); returns the names of the mask tensors read.
template <class Model>
std::vector<std::string> read_weight_masks(const safetensors_reader& file, Model& model) {
  using scalar = typename Model::scalar_type;
  std::vector<std::string> read;
  model.for_each_linear([&](linear<scalar>& l) {
    const std::string name = weight_mask_name(l);
    if (file.find(name) == nullptr) return l.clear_weight_mask();
    matrix<scalar> m(l.outputs(), l.inputs());
    file.read(name, m);
    set_weight_mask_from(m, file.path(), name, l);
    read.push_back(name);
  });
  return read;
}
}  // namespace detail

// The unstructured masks of the checkpoint in `directory` (a level of iterative magnitude pruning) on
// `model`, whose weights are otherwise left as they are (masked ones become zero): training a ticket
// from other weights than the ones it was found with. The model must have the checkpoint's
// architecture; an io_error when the checkpoint holds no mask at all.
template <class Model>
void load_weight_masks(const std::filesystem::path& directory, Model& model) {
  const auto file = safetensors_reader::open(directory / "model.safetensors");
  if (detail::read_weight_masks(file, model).empty()) {
    throw io_error(fmt::format("safetensors '{}': no weight masks ('<layer>.weight_mask' tensors); expected a checkpoint of a pruned run",
                               file.path()));
  }
}

// Fills `model` from `directory`/model.safetensors. The model must have been built from the
// checkpoint's config (so a pruned checkpoint's structure is already in place). A checkpoint that
// holds slimming coefficients turns the model's slimming on and fills them too.
template <class Model>
load_report load_weights(const std::filesystem::path& directory, Model& model) {
  const auto file = safetensors_reader::open(directory / "model.safetensors");
  load_report report;
  std::vector<std::string> used;
  // The structure recorded beside the tensors, where the file records one (this library's checkpoints
  // do; one pruned by HuggingFace records it in config.json alone), must be the one the model was
  // built with. Either way every tensor's shape is checked as it is read.
  const bert_config built = model.bert.config();
  for (const auto& [key, kept] : {std::pair{"earlybert.kept_heads", &built.kept_heads}, std::pair{"earlybert.kept_ffn", &built.kept_ffn}}) {
    const auto it = file.metadata().find(key);
    if (it == file.metadata().end()) continue;
    const std::string& recorded = it->second;
    const std::string expected = kept->empty() ? "" : nlohmann::json(*kept).dump();
    if (recorded != expected) {
      throw io_error(fmt::format("safetensors '{}': metadata '{}' is '{}', but config.json describes '{}'", file.path(),
                                 key, recorded, expected));
    }
  }
  // Slimming coefficients saved beside the weights (a model saved while slimming was on) come back
  // with them: the model turns slimming on, so that the reloaded model computes the saved function.
  const auto is_coefficient = [](const auto& t) { return t.name.ends_with(".slimming_coefficients"); };
  if (std::any_of(file.tensors().begin(), file.tensors().end(), is_coefficient) && !model.bert.slimming()) model.bert.set_slimming(true);
  using scalar = typename Model::scalar_type;
  model.for_each_parameter([&](parameter<scalar>& p) {
    // HuggingFace names, with the aliases older checkpoints use: no "bert." prefix (a bare BertModel)
    // and LayerNorm gamma/beta.
    std::vector<std::string> candidates{p.name};
    if (p.name.starts_with("bert.")) candidates.push_back(p.name.substr(5));
    for (std::size_t i = 0, n = candidates.size(); i < n; ++i) {
      const std::string c = candidates[i];  // a copy: push_back below may reallocate
      if (c.ends_with("LayerNorm.weight")) candidates.push_back(c.substr(0, c.size() - 6) + "gamma");
      if (c.ends_with("LayerNorm.bias")) candidates.push_back(c.substr(0, c.size() - 4) + "beta");
    }
    for (const auto& c : candidates) {
      if (file.find(c) != nullptr) {
        file.read(c, p.value);
        used.push_back(c);
        return;
      }
    }
    const bool optional = !p.name.starts_with("bert.") || p.name.starts_with("bert.pooler.");
    if (!optional) {
      throw io_error(fmt::format("safetensors '{}': no tensor '{}', which the model needs", file.path(), p.name));
    }
    report.initialised.push_back(p.name);
  });
  const std::vector<std::string> masks = detail::read_weight_masks(file, model);
  used.insert(used.end(), masks.begin(), masks.end());
  for (const auto& t : file.tensors()) {
    if (std::find(used.begin(), used.end(), t.name) != used.end()) continue;
    report.unused.push_back(t.name);
    const int layer = detail::encoder_layer_of(t.name);
    if (layer >= built.layers && std::find(report.unread_layers.begin(), report.unread_layers.end(), layer) == report.unread_layers.end()) {
      report.unread_layers.push_back(layer);
    }
  }
  std::sort(report.unread_layers.begin(), report.unread_layers.end());
  return report;
}

}  // namespace earlybert
