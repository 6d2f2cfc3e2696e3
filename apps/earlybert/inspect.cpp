// SPDX-License-Identifier: Apache-2.0
// `earlybert inspect`: what a checkpoint holds. The weights are read and validated too.
#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

namespace {
template <class Model>
int describe(const inspect_options& o, const checkpoint_config& config) {
  Model model(config.model);
  load_weights(o.directory, model);
  index_t parameters = 0;
  model.for_each_parameter([&](const parameter<float>& p) { parameters += p.size(); });
  bert_config dense_config = config.model;
  dense_config.kept_heads.clear();
  dense_config.kept_ffn.clear();
  const bert_model<float, shapes::any> dense(dense_config, false);
  const double flops = model.bert.encoder_flops_per_token(o.seq), dense_flops = dense.encoder_flops_per_token(o.seq);
  std::vector<index_t> heads_kept, ffn_kept;
  std::vector<std::vector<index_t>> head_indices;
  model.bert.for_each_family([&](const structure_family<float>& family) {
    if (family.kind() == structure_kind::neurons) {
      ffn_kept.push_back(family.size());
      return;
    }
    heads_kept.push_back(family.size());
    head_indices.emplace_back(family.kept().begin(), family.kept().end());
  });
  const sparsity_report sparsity = unstructured_sparsity(model.bert);
  const bert_config& shape = config.model;
  const std::string name = shape_name_of(shape);
  if (o.json) {
    nlohmann::ordered_json j{{"directory", o.directory},
                             {"architecture", config.architecture},
                             {"shape", name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(name)},
                             {"layers", shape.layers},
                             {"hidden", shape.hidden},
                             {"heads", shape.heads},
                             {"ffn", shape.ffn},
                             {"vocab_size", config.model.vocab_size},
                             {"parameters", parameters},
                             {"seq", o.seq},
                             {"encoder_flops_per_token", flops},
                             {"dense_encoder_flops_per_token", dense_flops},
                             {"flops_ratio", flops / dense_flops},
                             {"heads_kept", heads_kept},
                             {"ffn_kept", ffn_kept},
                             {"kept_heads", head_indices},
                             {"unstructured_sparsity", sparsity.overall()}};
    if (!shape.finetuning_task.empty()) j["task"] = shape.finetuning_task;
    if (config.architecture != "BertForMaskedLM" && config.architecture != "BertForQuestionAnswering") {
      std::vector<std::string> labels;
      for (int i = 0; i < shape.num_labels; ++i) labels.push_back(shape.label_name(i));
      j["labels"] = labels;
    }
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("{}: {} of shape {} ({} layers, hidden {}, {} heads, ffn {}), vocabulary {}\n", o.directory,
             config.architecture.empty() ? "BERT" : config.architecture, name.empty() ? "(unnamed)" : name, shape.layers, shape.hidden, shape.heads,
             shape.ffn, config.model.vocab_size);
  fmt::print("parameters: {}\n", parameters);
  if (!shape.finetuning_task.empty()) {
    fmt::print("fine-tuned on: {}{}\n", shape.finetuning_task,
               shape.regression() ? " (a regression: one score)"
               : config.architecture == "BertForQuestionAnswering" ? ""
                                                                    : fmt::format(" ({} labels)", shape.num_labels));
  }
  if (sparsity.overall() > 0) {
    fmt::print("unstructured masks: {:.2f}% of the encoder's linear weights masked\n", 100 * sparsity.overall());
  }
  fmt::print("encoder forward FLOPs per token at seq {}: {:.4g} ({:.3f} of the unpruned {:.4g})\n", o.seq, flops,
             flops / dense_flops, dense_flops);
  for (std::size_t l = 0; l < heads_kept.size(); ++l) {
    fmt::print("layer {}: heads kept {}/{} [{}], FFN kept {}/{}\n", l, heads_kept[l], shape.heads,
               fmt::join(head_indices[l], ", "), ffn_kept[l], shape.ffn);
  }
  return 0;
}
}  // namespace

int run_inspect(const inspect_options& o) {
  if (o.seq < 1) throw config_error(fmt::format("--seq is {}, expected at least 1", o.seq));
  const checkpoint_config config = read_config(fs::path(o.directory) / "config.json");
  if (config.architecture == "BertForMaskedLM") return describe<bert_for_masked_lm<float, shapes::any>>(o, config);
  if (config.architecture == "BertForTokenClassification") return describe<bert_for_token_classification<float, shapes::any>>(o, config);
  if (config.architecture == "BertForQuestionAnswering") return describe<bert_for_question_answering<float, shapes::any>>(o, config);
  return describe<bert_for_sequence_classification<float, shapes::any>>(o, config);
}

}  // namespace earlybert::cli
