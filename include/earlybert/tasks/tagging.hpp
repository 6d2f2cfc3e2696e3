// SPDX-License-Identifier: Apache-2.0
#pragma once
// Token classification: word-level tags read from CoNLL-U (Universal Dependencies; the UPOS column)
// and CoNLL-style NER files, encoded for BertForTokenClassification, and scored per word.
//
// CoNLL-U (read_conllu): ten tab-separated columns per word line; '#' lines are comments; an empty
// line ends a sentence; multiword-token lines (id "5-6") and empty nodes (id "8.1") are skipped, so
// the words are the syntactic words UPOS tags.
// CoNLL NER (read_conll_ner): one word per line, columns separated by tabs or spaces, the word first
// and its tag last (WNUT-17's "word<TAB>tag" and CoNLL-2003's "word POS chunk tag" alike); a line
// of whitespace only ends a sentence; "-DOCSTART-" lines are skipped. Tags are IOB2 or IOB1: the
// entity scorer (tasks/metrics.hpp, entity_spans) reads both.
// Each reader names the file and line of anything it cannot read.
//
// Encoding (encode_tagging): [CLS] pieces of word 1, pieces of word 2, ... [SEP]; a word's tag is the
// label of its first piece, every other position is ignore_label (HuggingFace's run_ner). A word the
// tokenizer turns into nothing (a lone control character) becomes [UNK]. Words that do not fit in
// max_seq are cut off: they have no prediction, and the scorers count them as wrong (tagging
// accuracy) or as untagged ("O" for entities), so a too-short max_seq shows in the metric.

#include <algorithm>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/io/files.hpp"
#include "earlybert/io/tokenizer.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/tasks/metrics.hpp"

namespace earlybert {

struct tagged_sentence {
  std::vector<std::string> words;
  std::vector<std::string> tags;  // one per word
};

namespace detail {
// Calls f(line_number, line) for each line of a UTF-8 text file (without its "\n" / "\r\n").
template <class F>
void for_each_line(const std::string& text, F&& f) {
  const auto lines = split_lines(text);
  for (std::size_t l = 0; l < lines.size(); ++l) f(l + 1, lines[l]);
}

inline bool blank(std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; }

inline std::vector<std::string_view> split_whitespace(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    start = line.find_first_not_of(" \t", start);
    if (start == std::string_view::npos) break;
    const std::size_t end = std::min(line.find_first_of(" \t", start), line.size());
    fields.push_back(line.substr(start, end - start));
    start = end;
  }
  return fields;
}

// The sentences of a file of one word per line: read_line(line_number, line, sentence) adds the
// line's word (or skips the line) and returns true, or returns false where a sentence ends.
template <class ReadLine>
std::vector<tagged_sentence> read_word_lines(const std::filesystem::path& path, const char* kind, const char* expected, ReadLine&& read_line) {
  const std::string text = read_file(path, kind);
  std::vector<tagged_sentence> sentences;
  tagged_sentence current;
  const auto finish = [&] {
    if (!current.words.empty()) sentences.push_back(std::move(current));
    current = {};
  };
  for_each_line(text, [&](std::size_t l, std::string_view line) {
    if (!read_line(l, line, current)) finish();
  });
  finish();
  if (sentences.empty()) throw io_error(fmt::format("{} '{}': no sentences, expected {}", kind, path.string(), expected));
  return sentences;
}
}  // namespace detail

// The sentences of a CoNLL-U file, each word with the tag in `column` (0-based; 3 is UPOS, 4 XPOS).
// Without require_tags (text to tag) a missing tag ("_") reads as "".
inline std::vector<tagged_sentence> read_conllu(const std::filesystem::path& path, int column = 3, bool require_tags = true) {
  const std::string p = path.string();
  return detail::read_word_lines(path, "CoNLL-U file", "word lines of ten columns", [&](std::size_t l, std::string_view line, tagged_sentence& sentence) {
    if (line.empty()) return false;
    if (line.front() == '#') return true;
    const auto fields = detail::split_tabs(line);
    if (fields.size() != 10) {
      throw io_error(fmt::format("CoNLL-U file '{}': line {}: found {} tab-separated fields, expected 10", p, l, fields.size()));
    }
    const std::string_view id = fields[0];
    if (id.find_first_of("-.") != std::string_view::npos) return true;  // a multiword token or an empty node
    if (id.empty() || id.find_first_not_of("0123456789") != std::string_view::npos) {
      throw io_error(fmt::format("CoNLL-U file '{}': line {}: word id '{}' is not a number, a range or a decimal", p, l, id));
    }
    const std::string_view tag = fields[static_cast<std::size_t>(column)];
    const bool missing = tag.empty() || tag == "_";
    if (missing && require_tags) {
      throw io_error(fmt::format("CoNLL-U file '{}': line {}: the word '{}' has no tag in column {}", p, l, fields[1], column + 1));
    }
    sentence.words.emplace_back(fields[1]);
    sentence.tags.emplace_back(missing ? std::string_view() : tag);
    return true;
  });
}

// The sentences of a CoNLL-style NER file (see above). Without require_tags (text to tag) a line of
// one column is a word without a tag ("").
inline std::vector<tagged_sentence> read_conll_ner(const std::filesystem::path& path, bool require_tags = true) {
  const std::string p = path.string();
  return detail::read_word_lines(path, "NER file", "lines of a word and its tag", [&](std::size_t l, std::string_view line, tagged_sentence& sentence) {
    if (detail::blank(line)) return false;
    // A CoNLL-U file read as NER: its "# key = value" comments and ten tab-separated columns are no
    // word-and-tag lines (a lone "#" word tagged O is, and stays readable).
    if ((line.starts_with("# ") && line.find(" = ") != std::string_view::npos) || std::count(line.begin(), line.end(), '\t') == 9) {
      throw io_error(fmt::format("NER file '{}': line {}: this is CoNLL-U ({}), expected a word and its tag per line", p, l,
                                 line.starts_with("#") ? "a '# key = value' comment" : "ten tab-separated columns"));
    }
    const auto fields = detail::split_whitespace(line);
    if (fields.front() == "-DOCSTART-") return true;
    if (fields.size() < 2) {
      if (require_tags) {
        throw io_error(fmt::format("NER file '{}': line {}: found 1 column ('{}'), expected a word and its tag", p, l, fields.front()));
      }
      sentence.words.emplace_back(fields.front());
      sentence.tags.emplace_back();
      return true;
    }
    const std::string_view tag = fields.back();
    const bool valid = tag == "O" || (tag.size() >= 3 && (tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-');
    if (!valid) throw io_error(fmt::format("NER file '{}': line {}: tag '{}' is not O, B-TYPE or I-TYPE", p, l, tag));
    sentence.words.emplace_back(fields.front());
    sentence.tags.emplace_back(tag);
    return true;
  });
}

// Universal Dependencies' 17 UPOS tags, sorted: UPOS tagging's fixed label set, so that class i
// means the same in every checkpoint whatever its training files held.
inline const std::vector<std::string>& universal_pos_tags() {
  static const std::vector<std::string> tags{"ADJ",  "ADP",   "ADV",   "AUX",   "CCONJ", "DET", "INTJ", "NOUN", "NUM",
                                             "PART", "PRON",  "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"};
  return tags;
}

// Every tag that occurs, sorted (the label set of a task: class i is tags[i]).
inline std::vector<std::string> tag_set(std::span<const std::vector<tagged_sentence>* const> sets) {
  std::vector<std::string> tags;
  for (const auto* sentences : sets) {
    for (const tagged_sentence& s : *sentences) tags.insert(tags.end(), s.tags.begin(), s.tags.end());
  }
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  return tags;
}

struct tagging_example {
  std::vector<token_id> ids, type_ids;
  std::vector<token_id> labels;         // [pieces]: the word's tag at its first piece, ignore_label elsewhere
  std::vector<index_t> first_piece;     // [words]: the position of each word's first piece; -1 when cut off
};

struct tagging_dataset {
  std::vector<tagged_sentence> sentences;
  std::vector<tagging_example> examples;  // one per sentence
  std::vector<std::string> label_names;
  index_t cut_words = 0;                  // words that did not fit in max_seq
};

// Encodes sentences for a label set (see above); a tag outside it is an io_error naming it, unless
// gold_required is false (text to tag), where an empty tag means none.
inline tagging_dataset encode_tagging(std::vector<tagged_sentence> sentences, const wordpiece_tokenizer& tokenizer, index_t max_seq,
                                      std::vector<std::string> label_names, const std::string& source, bool gold_required = true) {
  if (max_seq < 3) throw config_error(fmt::format("encode_tagging: max_seq is {}, expected at least 3", max_seq));
  const special_tokens special = special_tokens::of(tokenizer.vocab());
  const token_id unk = tokenizer.vocab().require("[UNK]");
  tagging_dataset data;
  data.label_names = std::move(label_names);
  data.examples.reserve(sentences.size());
  for (std::size_t s = 0; s < sentences.size(); ++s) {
    const tagged_sentence& sentence = sentences[s];
    tagging_example e;
    e.ids.push_back(special.cls);
    e.labels.push_back(ignore_label);
    for (std::size_t w = 0; w < sentence.words.size(); ++w) {
      const auto it = std::find(data.label_names.begin(), data.label_names.end(), sentence.tags[w]);
      const bool untagged = !gold_required && sentence.tags[w].empty();
      if (it == data.label_names.end() && !untagged) {
        throw io_error(fmt::format("{}: sentence {}, word {} ('{}'): tag '{}' is not among the task's {} tags", source, s + 1, w + 1, sentence.words[w],
                                   sentence.tags[w], data.label_names.size()));
      }
      std::vector<token_id> pieces;
      try {
        for (const auto& piece : tokenizer.tokenize(sentence.words[w])) pieces.push_back(piece.id);
      } catch (const io_error& error) {
        throw io_error(fmt::format("{}: sentence {}, word {}: {}", source, s + 1, w + 1, error.what()));
      }
      if (pieces.empty()) pieces.push_back(unk);
      if (static_cast<index_t>(e.ids.size() + pieces.size()) > max_seq - 1) {
        e.first_piece.resize(sentence.words.size(), -1);
        data.cut_words += static_cast<index_t>(sentence.words.size() - w);
        break;
      }
      e.first_piece.push_back(static_cast<index_t>(e.ids.size()));
      e.labels.push_back(untagged ? ignore_label : static_cast<token_id>(it - data.label_names.begin()));
      e.labels.resize(e.labels.size() + pieces.size() - 1, ignore_label);
      e.ids.insert(e.ids.end(), pieces.begin(), pieces.end());
    }
    e.ids.push_back(special.sep);
    e.labels.push_back(ignore_label);
    e.type_ids.assign(e.ids.size(), 0);
    data.examples.push_back(std::move(e));
  }
  data.sentences = std::move(sentences);
  return data;
}

// Fills `out` with the sentences at `indices`, padded to the longest; labels and word_of are [tokens]
// (a word's pieces run from its first piece to the next word's, or to [SEP]).
inline void make_batch(const tagging_dataset& data, std::span<const std::size_t> indices, token_id pad, token_batch& out) {
  pad_to_longest(data.examples, indices, pad, out);
  out.labels.assign(out.ids.size(), ignore_label);
  out.word_of.assign(out.ids.size(), -1);
  for (std::size_t b = 0; b < indices.size(); ++b) {
    const tagging_example& e = data.examples[indices[b]];
    const auto row = static_cast<std::ptrdiff_t>(b * static_cast<std::size_t>(out.seq));
    std::copy(e.labels.begin(), e.labels.end(), out.labels.begin() + row);
    const auto last = static_cast<index_t>(e.ids.size()) - 1;  // [SEP]
    for (std::size_t w = 0; w < e.first_piece.size() && e.first_piece[w] >= 0; ++w) {
      const index_t end = w + 1 < e.first_piece.size() && e.first_piece[w + 1] >= 0 ? e.first_piece[w + 1] : last;
      std::fill(out.word_of.begin() + row + e.first_piece[w], out.word_of.begin() + row + end, static_cast<index_t>(w));
    }
  }
}

// The metrics of predicted tags (one class per word, -1 for a cut-off word) against the dataset's:
// "accuracy" over words, and with `entities` "f1", "precision", "recall" over entity spans (F1 first);
// each name suffixed with `suffix` when it is not empty.
inline metric_values tagging_metrics(const tagging_dataset& gold, std::span<const std::vector<int>> predicted, bool entities,
                                     const std::string& suffix = "") {
  if (predicted.size() != gold.sentences.size()) {
    throw shape_error(fmt::format("tagging_metrics: predictions for {} sentences, expected {}", predicted.size(), gold.sentences.size()));
  }
  double words = 0, correct = 0;
  entity_scores scores;
  for (std::size_t s = 0; s < predicted.size(); ++s) {
    const tagged_sentence& sentence = gold.sentences[s];
    if (predicted[s].size() != sentence.tags.size()) {
      throw shape_error(fmt::format("tagging_metrics: sentence {} has {} predictions for {} words", s + 1, predicted[s].size(), sentence.tags.size()));
    }
    std::vector<std::string> tags(sentence.tags.size(), "O");
    for (std::size_t w = 0; w < tags.size(); ++w) {
      const int c = predicted[s][w];
      if (c >= 0) tags[w] = gold.label_names[static_cast<std::size_t>(c)];
      correct += c >= 0 && tags[w] == sentence.tags[w];
      ++words;
    }
    if (entities) scores.add(tags, sentence.tags);
  }
  const auto key = [&](const char* name) { return suffix.empty() ? std::string(name) : std::string(name) + "_" + suffix; };
  metric_values out;
  if (entities) {
    out.add(key("f1"), scores.f1());
    out.add(key("precision"), scores.precision());
    out.add(key("recall"), scores.recall());
  }
  out.add(key("accuracy"), correct / words);
  return out;
}

}  // namespace earlybert
