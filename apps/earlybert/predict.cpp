// SPDX-License-Identifier: Apache-2.0
// `earlybert predict`: every row of a TSV file through a fine-tuned sentence checkpoint; one JSON line
// per row, written atomically:
//   classification  {"index": i, "logits": [...], "label": class, "label_name": its name}
//   regression      {"index": i, "score": s}
// The input is read in the layout of the task the checkpoint was fine-tuned on (config.json's
// finetuning_task: a GLUE task's dev layout, labels optional), else as a custom file whose header
// names its columns.
#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

namespace {
int predict(const predict_options& o, const checkpoint_config& config, const vocabulary& vocab) {
  bert_for_sequence_classification<float, shapes::any> model(config.model);
  load_weights(o.checkpoint, model);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  const special_tokens special = special_tokens::of(vocab);
  const index_t max_seq = std::min(o.max_seq, config.model.max_positions);
  const sentence_task* task = find_glue_task(config.model.finetuning_task);
  const classification_dataset data = task != nullptr ? read_sentence_tsv(o.input, task->layout, tokenizer, max_seq, false)
                                                      : read_classification_tsv(o.input, tokenizer, max_seq, config.model.num_labels, false);

  tape<float> t;
  no_recording<float> inference(t);
  token_batch b;
  std::vector<std::size_t> indices;
  std::string lines;
  for (std::size_t start = 0; start < data.examples.size(); start += static_cast<std::size_t>(o.batch)) {
    indices.clear();
    for (std::size_t i = start; i < std::min(data.examples.size(), start + static_cast<std::size_t>(o.batch)); ++i) indices.push_back(i);
    make_classification_batch(data, indices, special.pad, b);
    t.rewind();
    const auto logits = model.logits(t, b, false, 0);
    for (index_t r = 0; r < logits.rows(); ++r) {
      nlohmann::ordered_json line{{"index", start + static_cast<std::size_t>(r)}};
      if (config.model.regression()) {
        line["score"] = logits.value()(r, 0);
      } else {
        index_t best = 0;
        logits.value().row(r).maxCoeff(&best);
        line["logits"] = std::vector<float>(logits.value().row(r).begin(), logits.value().row(r).end());
        line["label"] = best;
        line["label_name"] = config.model.label_name(static_cast<int>(best));
      }
      lines += line.dump() + "\n";
    }
  }
  write_file_atomically(o.out, lines);
  messages::status("predict", "{} rows classified into '{}'", data.examples.size(), o.out);
  return 0;
}
}  // namespace

int run_predict(const predict_options& o) {
  apply_threads("predict", o.common.threads);
  if (o.batch < 1) throw config_error(fmt::format("--batch is {}, expected at least 1", o.batch));
  if (o.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", o.max_seq));
  const fs::path directory(o.checkpoint);
  const checkpoint_config config = read_config(directory / "config.json");
  if (config.architecture != "BertForSequenceClassification") {
    throw config_error(fmt::format("--checkpoint '{}' holds a {}, expected a BertForSequenceClassification (fine-tune it first)",
                                   o.checkpoint, config.architecture.empty() ? "model of unknown architecture" : config.architecture));
  }
  const vocabulary vocab = vocabulary::load(directory / "vocab.txt");
  return predict(o, config, vocab);
}

}  // namespace earlybert::cli
