// SPDX-License-Identifier: Apache-2.0
// `earlybert predict`: every row of a TSV file through a fine-tuned sentence checkpoint; one JSON line
// per row, written atomically:
//   classification  {"index": i, "logits": [...], "label": class, "label_name": its name}
//   regression      {"index": i, "score": s}
// A token-classification checkpoint reads its task's format (CoNLL-U for upos, a CoNLL NER file for
// ner; tags optional) and writes a line per sentence, {"index": i, "words": [...], "tags": [...]},
// null for a word cut off by --max-seq. A checkpoint with exits (finetune --early-exit) tags under
// --exit-mode and says what it computed; --exit-report writes that (for any token classifier: the
// wall time of the forward passes), and the metrics when the input holds gold tags, as JSON.
// A question-answering checkpoint reads a SQuAD v1.1 JSON file and writes the official prediction
// file, {"question id": "answer text", ...}.
// The input is read in the layout of the task the checkpoint was fine-tuned on (config.json's
// finetuning_task: a GLUE task's dev layout, labels optional), else as a custom file whose header
// names its columns.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

namespace {
int predict_squad(const predict_options& o, const checkpoint_config& config, const vocabulary& vocab) {
  bert_for_question_answering<float, shapes::any> model(config.model);
  load_weights(o.checkpoint, model);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  squad_options options;
  options.max_seq = std::min(o.max_seq, config.model.max_positions);
  options.stride = o.doc_stride;
  options.max_query = o.max_query;
  if (options.stride < 1 || options.max_query < 1 || options.max_seq < options.max_query + 4) {
    throw config_error(fmt::format("--max-seq {} (at most the model's {} positions), --max-query {}, --doc-stride {}: expected max-seq >= "
                                   "max-query + 4 and positive sizes", o.max_seq, config.model.max_positions, o.max_query, o.doc_stride));
  }
  const qa_dataset data = make_qa_features(read_squad(o.input), tokenizer, options);
  const std::vector<std::string> answers = predict_answers(model, data, o.batch, special_tokens::of(vocab).pad, options);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (std::size_t q = 0; q < answers.size(); ++q) out[data.source.questions[q].id] = answers[q];
  write_file_atomically(o.out, out.dump() + "\n");
  messages::status("predict", "{} questions answered into '{}'", answers.size(), o.out);
  return 0;
}

int predict_tags_of(const predict_options& o, const checkpoint_config& config, const vocabulary& vocab) {
  const std::string& task = config.model.finetuning_task;
  if (task != "upos" && task != "ner") {
    throw config_error(fmt::format("--checkpoint '{}' is a token classifier for task '{}', expected upos or ner (its input format)", o.checkpoint, task));
  }
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  std::vector<std::string> names;
  for (int i = 0; i < config.model.num_labels; ++i) names.push_back(config.model.label_name(i));
  const tagging_dataset data = encode_tagging(task == "upos" ? read_conllu(o.input, 3, false) : read_conll_ner(o.input, false), tokenizer,
                                              std::min(o.max_seq, config.model.max_positions), names, fmt::format("'{}'", o.input), false);
  const token_id pad = special_tokens::of(vocab).pad;
  // A model with exits (its checkpoint holds "exits.0.weight") predicts under the exit policy.
  const bool exits = config.model.layers > 1 && safetensors_reader::open(fs::path(o.checkpoint) / "model.safetensors").find("exits.0.weight") != nullptr;
  const exit_policy policy = o.exit.policy();
  if (!exits && policy.mode != exit_mode::none) {
    throw config_error(fmt::format("--checkpoint '{}' has no exits (fine-tune it with --early-exit); --exit-mode {} needs them", o.checkpoint, o.exit.mode));
  }
  // What the forward passes computed, for --exit-report: a model without exits is its own full model.
  nlohmann::ordered_json report{{"mode", o.exit.mode}, {"measure", o.exit.measure}, {"threshold", policy.threshold}, {"window", policy.window},
                                {"batch", o.batch}, {"exits", exits}};
  std::vector<std::vector<int>> predicted;
  if (exits) {
    bert_for_token_classification_with_exits<float, shapes::any> model(config.model);
    load_weights(o.checkpoint, model);
    model.set_exit_policy(policy);
    const stopwatch clock;  // the forward passes alone
    predicted = predict_tags(model, data, o.batch, pad);
    const exit_statistics& st = model.statistics;
    report["wall_s"] = clock.seconds();
    report["mean_layers"] = st.mean_layers();
    report["layers"] = model.layers();
    report["flops_ratio"] = st.flops_ratio();
    report["running_rows_ratio"] = st.running_rows / st.full_rows;
    report["query_rows_ratio"] = st.query_rows / st.full_rows;
    report["word_exits"] = st.word_exits;
    messages::status("predict", "early exit ({}): a word ran {:.2f} of {} layers; {:.3f} of the full model's FLOPs; {:.2f} s", o.exit.mode, st.mean_layers(),
                     model.layers(), st.flops_ratio(), report["wall_s"].get<double>());
  } else {
    bert_for_token_classification<float, shapes::any> model(config.model);
    load_weights(o.checkpoint, model);
    const stopwatch clock;
    predicted = predict_tags(model, data, o.batch, pad);
    report["wall_s"] = clock.seconds();
    report["mean_layers"] = config.model.layers;
    report["layers"] = config.model.layers;
  }
  if (!o.exit_report.empty()) {
    report["sentences"] = predicted.size();
    const bool gold = std::all_of(data.sentences.begin(), data.sentences.end(), [](const tagged_sentence& s) {
      return std::none_of(s.tags.begin(), s.tags.end(), [](const std::string& tag) { return tag.empty(); });
    });
    if (gold) {
      const metric_values metrics = tagging_metrics(data, predicted, task == "ner");
      nlohmann::ordered_json values = nlohmann::ordered_json::object();
      for (const auto& [name, value] : metrics.items()) values[name] = value;
      report["metrics"] = values;
    }
    write_file_atomically(o.exit_report, report.dump(1) + "\n");
  }
  std::string lines;
  for (std::size_t s = 0; s < predicted.size(); ++s) {
    nlohmann::ordered_json tags = nlohmann::ordered_json::array();
    for (int c : predicted[s]) tags.push_back(c < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(names[static_cast<std::size_t>(c)]));
    lines += nlohmann::ordered_json{{"index", s}, {"words", data.sentences[s].words}, {"tags", tags}}.dump() + "\n";
  }
  write_file_atomically(o.out, lines);
  if (data.cut_words > 0) messages::note("predict", "{} words do not fit in --max-seq {} and have no tag (null)", data.cut_words, o.max_seq);
  messages::status("predict", "{} sentences tagged into '{}'", predicted.size(), o.out);
  return 0;
}

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
  const fs::path directory(o.checkpoint);
  const checkpoint_config config = read_config(directory / "config.json");
  const bool answering = config.architecture == "BertForQuestionAnswering";
  const bool tagging = config.architecture == "BertForTokenClassification";
  if (config.architecture != "BertForSequenceClassification" && !answering && !tagging) {
    throw config_error(fmt::format("--checkpoint '{}' holds a {}, expected a BertForSequenceClassification, BertForTokenClassification or "
                                   "BertForQuestionAnswering (fine-tune it first)",
                                   o.checkpoint, config.architecture.empty() ? "model of unknown architecture" : config.architecture));
  }
  predict_options resolved = o;
  if (resolved.max_seq == 0) resolved.max_seq = answering ? 384 : 128;  // not given
  if (resolved.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", resolved.max_seq));
  const vocabulary vocab = vocabulary::load(directory / "vocab.txt");
  if (tagging) return predict_tags_of(resolved, config, vocab);
  return answering ? predict_squad(resolved, config, vocab) : predict(resolved, config, vocab);
}

}  // namespace earlybert::cli
