// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fine-tuning as a function, shared by `earlybert finetune` and `earlybert demo`.

#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "common.hpp"

namespace earlybert::cli {

// A sentence task's data as a run needs it: the training set, the dev set(s) and what to measure on
// them (tasks/glue.hpp), read from a GLUE task's files or from custom --train/--dev files.
struct sentence_task_data {
  std::string title;                   // "CoLA", or "custom" for --train/--dev files
  std::string name;                    // the --task name ("" for custom files)
  classification_dataset train;
  std::vector<std::pair<std::string, classification_dataset>> dev;  // (suffix, set); the first has suffix ""
  std::vector<std::string> metrics;    // the first is the main metric
  std::vector<std::string> label_names;
  int num_labels = 2;
};

// Reads the task's training and dev sets as the options say (--task/--data or --train/--dev).
sentence_task_data read_sentence_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer);

// A token classification task's data (tasks/tagging.hpp): UPOS tagging of CoNLL-U files, or named
// entities in CoNLL-style files; the tag set is UD's 17 UPOS tags, or for NER every tag of the
// training and dev files.
struct tagging_task_data {
  std::string title;  // "UPOS", "NER"
  std::string name;   // "upos", "ner"
  tagging_dataset train;
  std::vector<std::pair<std::string, tagging_dataset>> dev;
  std::vector<std::string> metrics;  // the first is the main metric
  std::vector<std::string> label_names;
  int num_labels = 0;
  bool entities = false;  // score entity spans (NER), not only words
};

// SQuAD v1.1 (tasks/squad.hpp): train-v1.1.json and dev-v1.1.json, or --train/--dev files in their format.
struct squad_task_data {
  std::string title = "SQuAD v1.1";
  std::string name = "squad";
  qa_dataset train;
  std::vector<std::pair<std::string, qa_dataset>> dev;
  std::vector<std::string> metrics{"f1", "exact_match"};
  std::vector<std::string> label_names;
  int num_labels = 2;
  squad_options options;
};
squad_task_data read_squad_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer);

// The token classification tasks --task knows.
inline bool is_tagging_task(const std::string& name) { return name == "upos" || name == "ner"; }
tagging_task_data read_tagging_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer);

struct finetune_result {
  double dev_accuracy = 0;  // on the first dev set, where the task measures accuracy (0 otherwise)
  std::string main_metric;  // the task's main metric and its value on the first dev set
  double dev_main = 0;
  metric_values dev_metrics;
  double train_wall_s = 0;  // training only: evaluations excluded
  double train_flops = 0;   // the method's cost model, training = 3 x forward
  double tokens = 0;        // real tokens trained on
  long total_steps = 0;
  long ticket_step = -1;    // -1: no ticket (dense)
  long search_steps = 0;
  std::vector<index_t> heads_kept, ffn_kept;
  double flops_ratio = 1;   // pruned / dense encoder FLOPs per token
  nlohmann::ordered_json ticket_record;  // the recorded masks (EarlyBERT), written beside the checkpoint
  nlohmann::ordered_json early_exit;     // --early-exit: the dev set under the exit policy, beside the full model
  nlohmann::ordered_json summary;        // the run's summary event: the method's own figures
};

// The metrics as a JSON object {"name": value, ...}, the main metric first.
inline nlohmann::ordered_json metrics_json(const metric_values& metrics) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : metrics.items()) out[name] = value;
  return out;
}

// Throws config_error for options outside their ranges (before any work).
void check_finetune_options(const finetune_options& o);

// Trains on already-tokenised data; saves a checkpoint into o.out unless it is empty.
finetune_result finetune_with(const finetune_options& o, const vocabulary& vocab, const sentence_task_data& data);

}  // namespace earlybert::cli
