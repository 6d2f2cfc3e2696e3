// SPDX-License-Identifier: Apache-2.0
// `earlybert inspect`: what a checkpoint holds: its shape and task, parameters, encoder FLOPs at the
// sequence length it was trained at, the structure it keeps, its unstructured masks, its exits, the
// tokenizer's settings, and what the run that wrote it left beside it (the EarlyBERT ticket, an IMP
// level, the dev metrics). The weights are read and validated too.
#include <optional>

#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

namespace {
// A JSON file the run left beside the checkpoint, or null when there is none.
nlohmann::ordered_json beside_checkpoint(const inspect_options& o, const char* name) {
  const fs::path path = fs::path(o.directory) / name;
  std::error_code ec;
  if (!fs::exists(path, ec)) return nullptr;
  try {
    return nlohmann::ordered_json::parse(read_file(path, name));
  } catch (const nlohmann::json::exception& e) {
    throw io_error(fmt::format("'{}': not valid JSON ({})", path.string(), e.what()));
  }
}

template <class Model>
int describe(const inspect_options& o, const checkpoint_config& config) {
  Model model(config.model);
  const load_report loaded = load_weights(o.directory, model);
  tell_unread("inspect", o.directory, load_report{{}, {}, loaded.unread_layers});  // the exits are counted below
  // Exits (finetune --early-exit) are tensors a plain token classifier does not read: counted here.
  int exits = 0;
  for (const std::string& name : loaded.unused) exits += name.starts_with("exits.") && name.ends_with(".weight");
  const std::optional<tokenizer_settings> tokenizer = read_tokenizer_config(o.directory, {true, 512});
  // FLOPs at the length the model was trained at (its tokenizer_config.json), unless --seq says.
  const index_t seq = o.seq > 0 ? o.seq : tokenizer ? tokenizer->max_length : 128;
  const std::string seq_source = o.seq > 0 ? "--seq" : tokenizer ? "the length it was trained at" : "a default; the checkpoint records no length";
  const nlohmann::ordered_json ticket = beside_checkpoint(o, "earlybert_ticket.json");
  const nlohmann::ordered_json level = beside_checkpoint(o, "level.json");
  const nlohmann::ordered_json results = beside_checkpoint(o, "eval_results.json");
  index_t parameters = 0;
  model.for_each_parameter([&](const parameter<float>& p) { parameters += p.size(); });
  bert_config dense_config = config.model;
  dense_config.kept_heads.clear();
  dense_config.kept_ffn.clear();
  const bert_model<float, shapes::any> dense(dense_config, false);
  const double flops = model.bert.encoder_flops_per_token(seq), dense_flops = dense.encoder_flops_per_token(seq);
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
                             {"seq", seq},
                             {"seq_from", seq_source},
                             {"encoder_flops_per_token", flops},
                             {"dense_encoder_flops_per_token", dense_flops},
                             {"flops_ratio", flops / dense_flops},
                             {"heads_kept", heads_kept},
                             {"ffn_kept", ffn_kept},
                             {"kept_heads", head_indices},
                             {"unstructured_sparsity", sparsity.overall()},
                             {"exits", exits}};
    if (tokenizer) j["tokenizer"] = {{"lower_case", tokenizer->lower_case}, {"max_length", tokenizer->max_length}};
    if (!ticket.is_null()) {
      j["ticket"] = {{"step", ticket.value("ticket_step", -1L)}, {"detected", ticket.value("detected", false)},
                     {"steps_per_epoch", ticket.value("steps_per_epoch", 0L)}};
    }
    if (!level.is_null()) j["imp_level"] = level;
    if (!results.is_null()) j["eval_results"] = results;
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
  if (tokenizer) {
    fmt::print("tokenizer: {}, inputs of at most {} pieces\n", tokenizer->lower_case ? "lower-cased" : "cased", tokenizer->max_length);
  }
  if (sparsity.overall() > 0) {
    std::size_t masked = 0;
    for (const auto& f : sparsity.families) masked += f.active < f.size;
    fmt::print("unstructured masks: {:.2f}% of the encoder's linear weights masked, in {} of {} matrices\n", 100 * sparsity.overall(), masked,
               sparsity.families.size());
  }
  if (exits > 0) fmt::print("exits: {} exit classifiers beside the final one (finetune --early-exit)\n", exits);
  if (!ticket.is_null()) {
    const long step = ticket.value("ticket_step", -1L), per_epoch = ticket.value("steps_per_epoch", 0L);
    fmt::print("EarlyBERT ticket: drawn at search step {}{} ({})\n", step,
               per_epoch > 0 ? fmt::format(", {:.2f} of an epoch", static_cast<double>(step) / static_cast<double>(per_epoch)) : "",
               ticket.value("detected", false) ? "the early bird was detected" : "the search budget ran out");
  }
  if (!level.is_null()) {
    fmt::print("IMP level {}: {:.2f}% of the weights pruned, {} steps\n", level.value("level", -1), 100 * level.value("sparsity", 0.0),
               level.value("steps", 0L));
  }
  if (!results.is_null()) {
    std::string line;
    for (const auto& item : results.items()) {
      const std::string& key = item.key();
      if (key.starts_with("eval_") && item.value().is_number()) {
        line += fmt::format("{}{} {:.4f}", line.empty() ? "" : ", ", key.substr(5), item.value().template get<double>());
      }
    }
    fmt::print("dev metrics of the run that wrote it: {}\n", line);
  }
  fmt::print("encoder forward FLOPs per token at seq {} ({}): {:.4g} ({:.3f} of the unpruned {:.4g})\n", seq, seq_source, flops,
             flops / dense_flops, dense_flops);
  for (std::size_t l = 0; l < heads_kept.size(); ++l) {
    fmt::print("layer {}: heads kept {}/{} [{}], FFN kept {}/{}\n", l, heads_kept[l], shape.heads,
               fmt::join(head_indices[l], ", "), ffn_kept[l], shape.ffn);
  }
  return 0;
}
}  // namespace

int run_inspect(const inspect_options& o) {
  if (o.seq < 0) throw config_error(fmt::format("--seq is {}, expected at least 1 (or 0: the length the model was trained at)", o.seq));
  const checkpoint_config config = read_config(fs::path(o.directory) / "config.json");
  if (config.architecture == "BertForMaskedLM") return describe<bert_for_masked_lm<float, shapes::any>>(o, config);
  if (config.architecture == "BertForTokenClassification") return describe<bert_for_token_classification<float, shapes::any>>(o, config);
  if (config.architecture == "BertForQuestionAnswering") return describe<bert_for_question_answering<float, shapes::any>>(o, config);
  return describe<bert_for_sequence_classification<float, shapes::any>>(o, config);
}

}  // namespace earlybert::cli
