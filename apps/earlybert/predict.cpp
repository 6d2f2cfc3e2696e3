// SPDX-License-Identifier: Apache-2.0
// `earlybert predict`: an input file through a fine-tuned checkpoint, read in the layout of the task
// the checkpoint was fine-tuned on (config.json's finetuning_task) and tokenised as it was trained
// (tokenizer_config.json: lower-casing, and the longest input unless --max-seq says otherwise).
//
//   sentence task   a GLUE task's dev layout (labels optional), or a custom TSV whose header names its
//                   text column(s); --out holds a JSON line per row, {"index", "logits", "label",
//                   "label_name"} or {"index", "score"}; beside it <stem>.submission.tsv, GLUE's
//                   submission layout ("index<TAB>prediction": class names, or scores)
//   tagging         CoNLL-U (upos) or a CoNLL NER file (ner), tags optional; --out holds a JSON line
//                   per sentence, {"index", "words", "tags"} (null for a word cut off by --max-seq);
//                   beside it <stem>.conll, a word and its predicted tag per line (run_ner's
//                   predictions.txt). A checkpoint with exits tags under the --exit-* policy and
//                   --exit-report writes what it computed
//   question answering  a SQuAD v1.1 JSON file; --out is the official prediction file, {"id":
//                   "answer"}; beside it <stem>.nbest.json, each question's n best answers with their
//                   logits and probabilities (run_qa's nbest_predictions.json)
//   masked LM       raw text (WikiText layout, as pretrain reads it), cut into sequences of the
//                   checkpoint's length (its tokenizer_config.json, or --max-seq) and masked as
//                   pretrain's held-out evaluation masks them (evaluate_masked_lm): --out holds the
//                   masked-LM loss and accuracy over every full sequence, as JSON
//
// An input that holds the gold answers (labels, tags, answers) is scored with the task's official
// metrics: printed on stdout and written to <stem>.metrics.json. Every file is written atomically at
// the end; an input in another task's layout is one error naming the checkpoint's task and the layout
// it reads.
#include <algorithm>
#include <fstream>
#include <numeric>
#include <optional>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "flag_rules.hpp"

namespace earlybert::cli {

namespace {
using ordered_json = nlohmann::ordered_json;

// A file beside --out: its extension replaced ("p.jsonl" -> "p.metrics.json").
fs::path beside(const std::string& out, const char* extension) { return fs::path(out).replace_extension(extension); }

// What the checkpoint reads: its task's name and the layout of its input, for errors.
struct input_kind {
  std::string task;    // "cola", "ner", "squad", "custom", ...
  std::string layout;  // "a CoNLL-U file", ...
};

input_kind input_kind_of(const checkpoint_config& config) {
  const std::string& task = config.model.finetuning_task;
  if (config.architecture == "BertForQuestionAnswering") return {task.empty() ? "squad" : task, "a SQuAD v1.1 JSON file"};
  if (config.architecture == "BertForMaskedLM") return {"masked_lm", "raw text, one paragraph per line"};
  if (task == "upos") return {task, "a CoNLL-U file: UD's ten tab-separated columns, the word second and its UPOS tag fourth"};
  if (task == "ner") return {task, "a CoNLL NER file: a word and its tag per line, a blank line between sentences"};
  if (const sentence_task* glue = find_glue_task(task); glue != nullptr) {
    const tsv_layout& l = glue->layout;
    if (!l.columns.empty()) {
      return {task, fmt::format("a headerless TSV in {}'s layout ({}), labels optional", glue->title, fmt::join(l.columns, ", "))};
    }
    return {task, fmt::format("a TSV in {}'s layout, its header naming {}{}", glue->title, l.text_a, l.text_b.empty() ? "" : " and " + l.text_b)};
  }
  return {task.empty() ? "custom" : task, "a TSV whose header names its text column(s), labels optional"};
}

// Reads the input with `read`; a file that opens but does not parse is another task's input: the error
// says whose input the checkpoint reads. (A file that cannot be opened keeps the reader's own error.)
template <class Read>
auto read_input(const predict_options& o, const input_kind& kind, Read&& read) {
  std::error_code ec;
  const bool readable = fs::is_regular_file(o.input, ec) && std::ifstream(o.input).good();
  try {
    return read();
  } catch (const io_error& e) {
    if (!readable) throw;
    throw io_error(fmt::format("--input '{}' is not an input of the checkpoint's task {} ({}): {}", o.input, kind.task, kind.layout, e.what()));
  }
}

// Prints the metrics and writes them beside --out.
void report_metrics(const predict_options& o, const input_kind& kind, const metric_values& metrics, std::size_t scored, const char* unit) {
  ordered_json values = ordered_json::object();
  std::string line;
  for (const auto& [name, value] : metrics.items()) {
    values[name] = value;
    line += fmt::format("{}{} {:.4f}", line.empty() ? "" : ", ", name, value);
  }
  const ordered_json record{{"task", kind.task}, {"input", o.input}, {unit, scored}, {"metrics", values}};
  write_file_atomically(beside(o.out, ".metrics.json"), record.dump(2) + "\n");
  fmt::print("predict: {} on {} {} of '{}': {} (in '{}')\n", kind.task, scored, unit, o.input, line, beside(o.out, ".metrics.json").string());
}

int predict_masked_lm(const predict_options& o, const checkpoint_config& config, const wordpiece_tokenizer& tokenizer) {
  const input_kind kind = input_kind_of(config);
  bert_for_masked_lm<float, shapes::any> model(config.model);
  tell_unread("predict", o.checkpoint, load_weights(o.checkpoint, model));
  const text_corpus corpus = read_input(o, kind, [&] { return read_corpus(o.input, tokenizer); });
  const index_t count = corpus.sequences(o.max_seq);
  if (count == 0) {
    throw io_error(fmt::format("--input '{}' holds {} tokens, fewer than one sequence of {} (--max-seq)", o.input, corpus.tokens.size(), o.max_seq));
  }
  std::vector<std::size_t> sequences(static_cast<std::size_t>(count));
  std::iota(sequences.begin(), sequences.end(), std::size_t{0});
  pass_progress progress("predict:", "sequences");
  const special_tokens special = special_tokens::of(tokenizer.vocab());
  const masked_lm_metrics m = evaluate_masked_lm(model, corpus, sequences, o.max_seq, o.batch, special, tokenizer.vocab().size(), nullptr,
                                                 std::ref(progress));
  const ordered_json record{{"task", kind.task}, {"input", o.input}, {"sequences", count}, {"seq", o.max_seq}, {"masked", m.masked},
                            {"metrics", {{"masked_lm_loss", m.loss}, {"masked_lm_accuracy", m.accuracy}}}};
  write_file_atomically(o.out, record.dump(2) + "\n");
  fmt::print("predict: masked LM on {} sequences of {} tokens of '{}' ({} masked): masked_lm_loss {:.4f}, masked_lm_accuracy {:.4f} (in '{}')\n",
             count, o.max_seq, o.input, m.masked, m.loss, m.accuracy, o.out);
  return 0;
}

int predict_squad(const predict_options& o, const checkpoint_config& config, const wordpiece_tokenizer& tokenizer, token_id pad) {
  const input_kind kind = input_kind_of(config);
  bert_for_question_answering<float, shapes::any> model(config.model);
  tell_unread("predict", o.checkpoint, load_weights(o.checkpoint, model));
  squad_options options;
  options.max_seq = o.max_seq;
  options.stride = o.doc_stride;
  options.max_query = o.max_query;
  if (options.stride < 1 || options.max_query < 1 || options.max_seq < options.max_query + 4) {
    throw config_error(fmt::format("--max-seq {} (at most the model's {} positions), --max-query {}, --doc-stride {}: expected max-seq >= "
                                   "max-query + 4 and positive sizes", o.max_seq, config.model.max_positions, o.max_query, o.doc_stride));
  }
  const qa_dataset data = read_input(o, kind, [&] { return make_qa_features(read_squad(o.input), tokenizer, options); });
  pass_progress progress("predict:", "windows");
  const answer_extractor extracted = extract_answers(model, data, o.batch, pad, options, nullptr, std::ref(progress));
  const std::vector<std::string> answers = extracted.answers();
  const std::vector<std::vector<scored_answer>> n_best = extracted.n_best_answers();
  ordered_json out = ordered_json::object(), best = ordered_json::object();
  for (std::size_t q = 0; q < answers.size(); ++q) {
    const std::string& id = data.source.questions[q].id;
    out[id] = answers[q];
    ordered_json list = ordered_json::array();
    for (const scored_answer& a : n_best[q]) {
      list.push_back({{"text", a.text}, {"probability", a.probability}, {"start_logit", a.start_logit}, {"end_logit", a.end_logit}});
    }
    best[id] = list;
  }
  write_file_atomically(beside(o.out, ".nbest.json"), best.dump(1) + "\n");
  write_file_atomically(o.out, out.dump() + "\n");
  messages::status("predict", "{} questions answered into '{}' (n best in '{}')", answers.size(), o.out, beside(o.out, ".nbest.json").string());
  const auto& questions = data.source.questions;
  if (!questions.empty() && std::all_of(questions.begin(), questions.end(), [](const squad_question& q) { return !q.answers.empty(); })) {
    report_metrics(o, kind, squad_metrics(data.source, answers), questions.size(), "questions");
  }
  return 0;
}

int predict_tags_of(const predict_options& o, const checkpoint_config& config, bool exits, const wordpiece_tokenizer& tokenizer, token_id pad) {
  const input_kind kind = input_kind_of(config);
  const std::string& task = config.model.finetuning_task;
  if (task != "upos" && task != "ner") {
    throw config_error(fmt::format("--checkpoint '{}' is a token classifier for task '{}', expected upos or ner (its input format)", o.checkpoint, task));
  }
  const exit_policy policy = o.exit.policy();
  std::vector<std::string> names;
  for (int i = 0; i < config.model.num_labels; ++i) names.push_back(config.model.label_name(i));
  const tagging_dataset data = read_input(o, kind, [&] {
    return encode_tagging(task == "upos" ? read_conllu(o.input, 3, false) : read_conll_ner(o.input, false), tokenizer, o.max_seq, names,
                          fmt::format("'{}'", o.input), false);
  });
  // What the forward passes computed, for --exit-report: a model without exits is its own full model.
  ordered_json report{{"mode", o.exit.mode}, {"measure", o.exit.measure}, {"threshold", policy.threshold}, {"window", policy.window},
                      {"batch", o.batch}, {"exits", exits}};
  pass_progress progress("predict:", "sentences");
  std::vector<std::vector<int>> predicted;
  if (exits) {
    bert_for_token_classification_with_exits<float, shapes::any> model(config.model);
    tell_unread("predict", o.checkpoint, load_weights(o.checkpoint, model));
    model.set_exit_policy(policy);
    const stopwatch clock;  // the forward passes alone
    predicted = predict_tags(model, data, o.batch, pad, nullptr, std::ref(progress));
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
    tell_unread("predict", o.checkpoint, load_weights(o.checkpoint, model));
    const stopwatch clock;
    predicted = predict_tags(model, data, o.batch, pad, nullptr, std::ref(progress));
    report["wall_s"] = clock.seconds();
    report["mean_layers"] = config.model.layers;
    report["layers"] = config.model.layers;
  }
  const bool gold = !data.sentences.empty() && std::all_of(data.sentences.begin(), data.sentences.end(), [](const tagged_sentence& s) {
    return std::none_of(s.tags.begin(), s.tags.end(), [](const std::string& tag) { return tag.empty(); });
  });
  std::optional<metric_values> metrics;
  if (gold) metrics = tagging_metrics(data, predicted, task == "ner");
  if (!o.exit_report.empty()) {
    report["sentences"] = predicted.size();
    if (metrics) {
      ordered_json values = ordered_json::object();
      for (const auto& [name, value] : metrics->items()) values[name] = value;
      report["metrics"] = values;
    }
    write_file_atomically(o.exit_report, report.dump(1) + "\n");
  }
  std::string lines, conll;
  for (std::size_t s = 0; s < predicted.size(); ++s) {
    ordered_json tags = ordered_json::array();
    for (std::size_t w = 0; w < predicted[s].size(); ++w) {
      const int c = predicted[s][w];
      tags.push_back(c < 0 ? ordered_json(nullptr) : ordered_json(names[static_cast<std::size_t>(c)]));
      // A word cut off by --max-seq has no prediction: "O" in the CoNLL file, as the scorers count it.
      conll += fmt::format("{} {}\n", data.sentences[s].words[w], c < 0 ? "O" : names[static_cast<std::size_t>(c)]);
    }
    conll += "\n";
    lines += ordered_json{{"index", s}, {"words", data.sentences[s].words}, {"tags", tags}}.dump() + "\n";
  }
  write_file_atomically(beside(o.out, ".conll"), conll);
  write_file_atomically(o.out, lines);
  if (data.cut_words > 0) messages::note("predict", "{} words do not fit in --max-seq {} and have no tag (null)", data.cut_words, o.max_seq);
  messages::status("predict", "{} sentences tagged into '{}' (CoNLL tags in '{}')", predicted.size(), o.out, beside(o.out, ".conll").string());
  if (metrics) report_metrics(o, kind, *metrics, predicted.size(), "sentences");
  return 0;
}

int predict_sentences_of(const predict_options& o, const checkpoint_config& config, const wordpiece_tokenizer& tokenizer, token_id pad) {
  const input_kind kind = input_kind_of(config);
  bert_for_sequence_classification<float, shapes::any> model(config.model);
  tell_unread("predict", o.checkpoint, load_weights(o.checkpoint, model));
  const sentence_task* task = find_glue_task(config.model.finetuning_task);
  const classification_dataset data = read_input(o, kind, [&] {
    return task != nullptr ? read_sentence_tsv(o.input, task->layout, tokenizer, o.max_seq, false)
                           : read_classification_tsv(o.input, tokenizer, o.max_seq, config.model.num_labels, false);
  });
  pass_progress progress("predict:", "rows");
  std::string lines, submission = "index\tprediction\n";
  sentence_predictions predicted;
  for_each_logits(model, data, o.batch, pad, [&](std::size_t first, const auto& logits, const token_batch&) {
    for (index_t r = 0; r < logits.rows(); ++r) {
      const std::size_t index = first + static_cast<std::size_t>(r);
      ordered_json line{{"index", index}};
      if (config.model.regression()) {
        const float score = logits(r, 0);
        line["score"] = score;
        predicted.scores.push_back(score);
        submission += fmt::format("{}\t{:.3f}\n", index, score);
      } else {
        index_t best = 0;
        logits.row(r).maxCoeff(&best);
        line["logits"] = std::vector<float>(logits.row(r).begin(), logits.row(r).end());
        line["label"] = best;
        line["label_name"] = config.model.label_name(static_cast<int>(best));
        predicted.classes.push_back(static_cast<int>(best));
        submission += fmt::format("{}\t{}\n", index, config.model.label_name(static_cast<int>(best)));
      }
      lines += line.dump() + "\n";
    }
  }, nullptr, std::ref(progress));
  write_file_atomically(beside(o.out, ".submission.tsv"), submission);
  write_file_atomically(o.out, lines);
  messages::status("predict", "{} rows classified into '{}' (GLUE submission layout in '{}')", data.examples.size(), o.out,
                   beside(o.out, ".submission.tsv").string());
  if (data.labelled && !data.examples.empty()) {
    std::vector<std::string> names = task != nullptr ? task->metrics : std::vector<std::string>{};
    if (task == nullptr) names = config.model.regression() ? std::vector<std::string>{"pearson", "spearman"} : std::vector<std::string>{"accuracy"};
    report_metrics(o, kind, sentence_metrics(names, predicted, data), data.examples.size(), "rows");
  }
  return 0;
}
}  // namespace

int run_predict(const predict_options& o) {
  if (o.batch < 1) throw config_error(fmt::format("--batch is {}, expected at least 1", o.batch));
  const fs::path directory(o.checkpoint);
  const checkpoint_config config = read_config(directory / "config.json");
  const bool answering = config.architecture == "BertForQuestionAnswering";
  const bool tagging = config.architecture == "BertForTokenClassification";
  const bool masked_lm = config.architecture == "BertForMaskedLM";
  if (config.architecture != "BertForSequenceClassification" && !answering && !tagging && !masked_lm) {
    throw config_error(fmt::format("--checkpoint '{}' holds a {}, expected a BertForSequenceClassification, BertForTokenClassification, "
                                   "BertForQuestionAnswering or BertForMaskedLM",
                                   o.checkpoint, config.architecture.empty() ? "model of unknown architecture" : config.architecture));
  }
  if (!answering) {
    for (const char* flag : {"--doc-stride", "--max-query"}) {
      if (o.given.contains(flag)) {
        throw usage_error(fmt::format("{} applies only with a question-answering checkpoint, and '{}' is fine-tuned for {}", flag, o.checkpoint,
                                      input_kind_of(config).task));
      }
    }
  }
  if (!tagging) {
    for (const char* flag : {"--exit-mode", "--exit-measure", "--exit-threshold", "--exit-window", "--exit-report"}) {
      if (o.given.contains(flag)) {
        throw usage_error(fmt::format("{} applies only with a token classifier (upos or ner), and '{}' is fine-tuned for {}", flag, o.checkpoint,
                                      input_kind_of(config).task));
      }
    }
  }
  // A token classifier with exits (its checkpoint holds "exits.0.weight") predicts under the exit
  // policy; the policy's flags belong to it (--exit-mode none and --exit-report go with any).
  const bool exits = tagging && config.model.layers > 1 &&
                     safetensors_reader::open(directory / "model.safetensors").find("exits.0.weight") != nullptr;
  if (tagging && !exits) {
    for (const char* flag : {"--exit-mode", "--exit-measure", "--exit-threshold", "--exit-window"}) {
      if (o.given.contains(flag) && !(std::string_view(flag) == "--exit-mode" && o.exit.mode == "none")) {
        throw usage_error(fmt::format("{} applies only with a checkpoint with exits (finetune --early-exit), and '{}' has none", flag, o.checkpoint));
      }
    }
  }
  apply_threads("predict", o.common.threads);  // the flags are checked: the work begins
  const vocabulary vocab = vocabulary::load(directory / "vocab.txt");
  // As the checkpoint was trained: lower-casing, and the longest input unless --max-seq says otherwise
  // (a checkpoint without tokenizer_config.json: the vocabulary's casing, 384 pieces for question
  // answering and 128 otherwise, as finetune's defaults).
  const tokenizer_settings fallback{vocab.looks_uncased(), answering ? index_t{384} : index_t{128}};
  const tokenizer_settings kept = read_tokenizer_config(directory, fallback).value_or(fallback);
  predict_options resolved = o;
  if (resolved.max_seq == 0) resolved.max_seq = kept.max_length;
  if (resolved.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", resolved.max_seq));
  resolved.max_seq = std::min(resolved.max_seq, config.model.max_positions);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab, kept.lower_case);
  const token_id pad = special_tokens::of(vocab).pad;
  if (masked_lm) return predict_masked_lm(resolved, config, tokenizer);
  if (tagging) return predict_tags_of(resolved, config, exits, tokenizer, pad);
  return answering ? predict_squad(resolved, config, tokenizer, pad) : predict_sentences_of(resolved, config, tokenizer, pad);
}

}  // namespace earlybert::cli
