// SPDX-License-Identifier: Apache-2.0
#pragma once
// GLUE's sentence tasks by name: each task's files, columns, labels and official metrics, as one
// entry of glue_tasks(). Adding a task of this kind is adding an entry.
//
//   task   files (in --data DIR)                      text columns            labels                    metrics (main first)
//   cola   train.tsv, dev.tsv (no header: source,     sentence                0 / 1                     mcc
//          label, original mark, sentence)
//   sst2   train.tsv, dev.tsv                         sentence                0 / 1                     accuracy
//   mrpc   train.tsv, dev.tsv                         #1 String, #2 String    Quality 0 / 1             f1, accuracy
//   stsb   train.tsv, dev.tsv                         sentence1, sentence2    score in [0, 5]           pearson, spearman
//   qqp    train.tsv, dev.tsv                         question1, question2    is_duplicate 0 / 1        f1, accuracy
//   mnli   train.tsv, dev_matched.tsv,                sentence1, sentence2    gold_label: contradiction, accuracy (each dev set)
//          dev_mismatched.tsv                                                 entailment, neutral
//   qnli   train.tsv, dev.tsv                         question, sentence      entailment, not_entailment accuracy
//   rte    train.tsv, dev.tsv                         sentence1, sentence2    entailment, not_entailment accuracy
//
// Text labels take HuggingFace's class order (its GLUE processors), so checkpoints agree on what
// class i means. Classes written as 0 / 1 in the files have names too (class_names: CoLA's
// unacceptable / acceptable, SST-2's negative / positive, MRPC's not_equivalent / equivalent, QQP's
// not_duplicate / duplicate, as the GLUE datasets' features name them), which checkpoints record in
// id2label and predictions print. STS-B is a regression (one output, mean squared error), as
// BertForSequenceClassification with num_labels 1.

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "earlybert/core/error.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/tasks/metrics.hpp"

namespace earlybert {

// One dev set of a task: its name in metrics ("" for a task's only one) and its file.
struct dev_split {
  std::string name;
  std::string file;
};

struct sentence_task {
  std::string name;   // the --task name, lower case
  std::string title;  // as GLUE writes it
  tsv_layout layout;
  std::string train_file;
  std::vector<dev_split> dev;        // the first is the one the main metric is read on
  std::vector<std::string> metrics;  // names as metric_values holds them; the first is the main metric
  std::vector<std::string> numbered_class_names = {};  // names of classes the files write as 0, 1, ...

  // The name of each class: the file's own text labels, or the names of its numbered classes.
  const std::vector<std::string>& class_names() const { return layout.label_names.empty() ? numbered_class_names : layout.label_names; }
};

inline const std::vector<sentence_task>& glue_tasks() {
  static const std::vector<sentence_task> tasks = [] {
    const std::vector<dev_split> one_dev{{"", "dev.tsv"}};
    const std::vector<std::string> entailment{"entailment", "not_entailment"};
    std::vector<sentence_task> t;
    t.push_back({"cola", "CoLA", {{"source", "label", "original_mark", "sentence"}, "sentence", "", "label", {}, 2}, "train.tsv", one_dev, {"mcc", "accuracy"},
                 {"unacceptable", "acceptable"}});
    t.push_back({"sst2", "SST-2", {{}, "sentence", "", "label", {}, 2}, "train.tsv", one_dev, {"accuracy"}, {"negative", "positive"}});
    t.push_back({"mrpc", "MRPC", {{}, "#1 String", "#2 String", "Quality", {}, 2}, "train.tsv", one_dev, {"f1", "accuracy"},
                 {"not_equivalent", "equivalent"}});
    t.push_back({"stsb", "STS-B", {{}, "sentence1", "sentence2", "score", {}, 1}, "train.tsv", one_dev, {"pearson", "spearman"}});
    t.push_back({"qqp", "QQP", {{}, "question1", "question2", "is_duplicate", {}, 2}, "train.tsv", one_dev, {"f1", "accuracy"},
                 {"not_duplicate", "duplicate"}});
    t.push_back({"mnli", "MNLI", {{}, "sentence1", "sentence2", "gold_label", {"contradiction", "entailment", "neutral"}, 3}, "train.tsv",
                 {{"", "dev_matched.tsv"}, {"mismatched", "dev_mismatched.tsv"}}, {"accuracy"}});
    t.push_back({"qnli", "QNLI", {{}, "question", "sentence", "label", entailment, 2}, "train.tsv", one_dev, {"accuracy"}});
    t.push_back({"rte", "RTE", {{}, "sentence1", "sentence2", "label", entailment, 2}, "train.tsv", one_dev, {"accuracy"}});
    return t;
  }();
  return tasks;
}

// The GLUE task called `name`, or nullptr.
inline const sentence_task* find_glue_task(std::string_view name) {
  for (const sentence_task& task : glue_tasks()) {
    if (task.name == name) return &task;
  }
  return nullptr;
}

// What a sentence model predicts for a dataset: a class per example, or a score (regression).
struct sentence_predictions {
  std::vector<int> classes;
  std::vector<double> scores;
};

// The named metrics (accuracy, mcc, f1, pearson, spearman) of `predicted` against the dataset's gold
// labels, each name suffixed with `suffix` ("accuracy_mismatched").
inline metric_values sentence_metrics(std::span<const std::string> names, const sentence_predictions& predicted,
                                      const classification_dataset& gold, const std::string& suffix = "") {
  if (!gold.labelled) throw config_error("sentence_metrics: the dataset has no labels to score against");
  const std::vector<int> classes = gold.gold_labels();
  const std::vector<double> scores = gold.gold_scores();
  metric_values out;
  for (const std::string& name : names) {
    const std::string key = suffix.empty() ? name : name + "_" + suffix;
    if (name == "pearson" || name == "spearman") {
      if (!gold.regression) throw config_error(fmt::format("sentence_metrics: '{}' scores a regression, and the dataset holds classes", name));
      out.add(key, name == "pearson" ? pearson(predicted.scores, scores) : spearman(predicted.scores, scores));
      continue;
    }
    if (gold.regression) throw config_error(fmt::format("sentence_metrics: '{}' scores classes, and the dataset holds scores", name));
    if (name == "accuracy") out.add(key, accuracy(predicted.classes, classes));
    else if (name == "mcc") out.add(key, matthews_correlation(predicted.classes, classes));
    else if (name == "f1") out.add(key, binary_f1(predicted.classes, classes));
    else throw config_error(fmt::format("sentence_metrics: unknown metric '{}' (expected accuracy, mcc, f1, pearson or spearman)", name));
  }
  return out;
}

}  // namespace earlybert
