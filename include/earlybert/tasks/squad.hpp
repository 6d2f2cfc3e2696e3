// SPDX-License-Identifier: Apache-2.0
#pragma once
// SQuAD v1.1 extractive question answering: the JSON reader, the sliding-window features, answer
// extraction and the official exact-match and F1.
//
// read_squad: {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers":
// [{"text", "answer_start"}]}]}]}]}; answer_start counts code points of the context (not bytes), and
// every answer's text must be found there; anything else is an io_error naming the file and the
// question id.
//
// Features (make_qa_features), as google-research/bert's run_squad.py: the question's pieces
// (at most max_query), then windows over the context's pieces of at most max_seq - query - 3 pieces,
// each starting `stride` pieces after the previous one (stride is the step between windows, as there;
// HuggingFace's run_qa.py calls the overlap its stride):  [CLS] question [SEP] window [SEP], token
// types 0 then 1. A window's label is the first and last piece of the first gold answer when both lie
// inside it, else position 0 ([CLS]). Every context piece keeps its code-point span of the context,
// and whether this window is the one where it has the most context on both sides ("max context").
//
// Extraction (best_answers): per window the n_best highest start and end logits; a span counts when
// both ends are context pieces, end >= start, it is at most max_answer pieces long and its start has
// its max context here; the best span of a question is the highest start + end logit over all its
// windows, and its text is the context between the span's character offsets. No valid span: "". The
// extractor also keeps each question's n_best spans (a span proposed by several windows once, at its
// highest score) with their probabilities, the softmax of their scores, as HuggingFace's run_qa writes
// them to nbest_predictions.json.
//
// Scoring, as the official evaluate-v1.1.py: normalise (lower case; drop ASCII punctuation; drop the
// words a, an, the; collapse whitespace), exact match = equal normalised strings, F1 over the bag of
// whitespace tokens; the maximum over a question's gold answers, averaged and reported x 100.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "earlybert/core/error.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/io/files.hpp"
#include "earlybert/io/json.hpp"
#include "earlybert/io/tokenizer.hpp"
#include "earlybert/nn/config.hpp"
#include "earlybert/tasks/metrics.hpp"

namespace earlybert {

struct squad_answer {
  std::string text;
  index_t start = 0;  // code points into the context
};

struct squad_question {
  std::string id, question;
  std::size_t paragraph = 0;  // index into squad_data::contexts
  std::size_t article = 0;    // index into squad_data::titles
  std::vector<squad_answer> answers;
};

struct squad_data {
  std::vector<std::string> titles;
  std::vector<std::string> contexts;
  std::vector<squad_question> questions;
};

inline squad_data read_squad(const std::filesystem::path& path) {
  const std::string p = path.string();
  const std::string text = read_file(path, "SQuAD file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range (406)
    throw io_error(fmt::format("SQuAD file '{}': not valid JSON ({})", p, e.what()));
  }
  const auto expect = [&](const nlohmann::json& v, const char* key, bool array, const std::string& where) -> const nlohmann::json& {
    if (!v.is_object() || !v.contains(key) || (array ? !v[key].is_array() : !v[key].is_string())) {
      throw io_error(fmt::format("SQuAD file '{}': {} has no {} '{}'", p, where, array ? "list" : "string", key));
    }
    return v[key];
  };
  squad_data data;
  const auto& articles = expect(j, "data", true, "the top level");
  for (std::size_t a = 0; a < articles.size(); ++a) {
    const std::string where_article = fmt::format("article {}", a + 1);
    data.titles.push_back(articles[a].is_object() && articles[a].contains("title") && articles[a]["title"].is_string()
                              ? articles[a]["title"].get<std::string>()
                              : where_article);
    for (const auto& paragraph : expect(articles[a], "paragraphs", true, where_article)) {
      const std::string where = fmt::format("{}, paragraph {}", where_article, data.contexts.size() + 1);
      const std::string context = expect(paragraph, "context", false, where).get<std::string>();
      std::u32string code_points;
      try {
        code_points = decode_utf8(context);
      } catch (const io_error& e) {
        throw io_error(fmt::format("SQuAD file '{}': {}: the context: {}", p, where, e.what()));
      }
      data.contexts.push_back(context);
      for (const auto& qa : expect(paragraph, "qas", true, where)) {
        squad_question q;
        q.id = expect(qa, "id", false, where + ", a question").get<std::string>();
        q.question = expect(qa, "question", false, "question '" + q.id + "'").get<std::string>();
        q.paragraph = data.contexts.size() - 1;
        q.article = a;
        for (const auto& answer : expect(qa, "answers", true, "question '" + q.id + "'")) {
          squad_answer s;
          s.text = expect(answer, "text", false, "an answer of question '" + q.id + "'").get<std::string>();
          const auto start = answer.is_object() && answer.contains("answer_start") ? whole_number<index_t>(answer["answer_start"]) : std::nullopt;
          if (!start) throw io_error(fmt::format("SQuAD file '{}': an answer of question '{}' has no whole-number 'answer_start'", p, q.id));
          s.start = *start;
          std::u32string answer_points;
          try {
            answer_points = decode_utf8(s.text);
          } catch (const io_error& e) {
            throw io_error(fmt::format("SQuAD file '{}': question '{}': the answer: {}", p, q.id, e.what()));
          }
          if (s.start < 0 || static_cast<std::size_t>(s.start) + answer_points.size() > code_points.size() ||
              code_points.compare(static_cast<std::size_t>(s.start), answer_points.size(), answer_points) != 0) {
            throw io_error(fmt::format("SQuAD file '{}': question '{}': the answer '{}' is not at character {} of its context", p, q.id,
                                       s.text, s.start));
          }
          q.answers.push_back(std::move(s));
        }
        data.questions.push_back(std::move(q));
      }
    }
  }
  if (data.questions.empty()) throw io_error(fmt::format("SQuAD file '{}': no questions", p));
  return data;
}

struct squad_options {
  index_t max_seq = 384;
  index_t stride = 128;
  index_t max_query = 64;
  int n_best = 20;
  index_t max_answer = 30;
};

// One window of one question.
struct qa_feature {
  std::size_t question = 0;  // index into squad_data::questions
  std::vector<token_id> ids, type_ids;
  std::vector<std::pair<index_t, index_t>> spans;  // [pieces]: code-point span in the context, (-1, -1) outside it
  std::vector<std::uint8_t> max_context;            // [pieces]: 1 where this window gives the piece its most context
  token_id start = 0, end = 0;                      // the answer's pieces, 0 ([CLS]) when it is not inside
};

struct qa_dataset {
  squad_data source;
  std::vector<qa_feature> examples;  // every window of every question, question by question
};

inline qa_dataset make_qa_features(squad_data source, const wordpiece_tokenizer& tokenizer, const squad_options& o) {
  if (o.max_seq < o.max_query + 4 || o.stride < 1 || o.max_query < 1) {
    throw config_error(fmt::format("make_qa_features: max_seq {}, max_query {}, stride {}: expected max_seq >= max_query + 4 and positive sizes",
                                   o.max_seq, o.max_query, o.stride));
  }
  const special_tokens special = special_tokens::of(tokenizer.vocab());
  qa_dataset data;
  std::vector<std::vector<word_piece>> context_pieces(source.contexts.size());
  for (std::size_t c = 0; c < source.contexts.size(); ++c) context_pieces[c] = tokenizer.tokenize(source.contexts[c]);
  for (std::size_t q = 0; q < source.questions.size(); ++q) {
    const squad_question& question = source.questions[q];
    std::vector<token_id> query;
    for (const auto& piece : tokenizer.tokenize(question.question)) query.push_back(piece.id);
    if (static_cast<index_t>(query.size()) > o.max_query) query.resize(static_cast<std::size_t>(o.max_query));
    const std::vector<word_piece>& pieces = context_pieces[question.paragraph];
    const auto n = static_cast<index_t>(pieces.size());
    // The first gold answer's pieces: those overlapping its characters.
    index_t answer_first = -1, answer_last = -1;
    if (!question.answers.empty()) {
      const index_t begin = question.answers.front().start;
      const index_t end = begin + static_cast<index_t>(decode_utf8(question.answers.front().text).size());
      for (index_t i = 0; i < n; ++i) {
        if (pieces[static_cast<std::size_t>(i)].end > begin && pieces[static_cast<std::size_t>(i)].begin < end) {
          if (answer_first < 0) answer_first = i;
          answer_last = i;
        }
      }
    }
    const index_t window = o.max_seq - static_cast<index_t>(query.size()) - 3;
    std::vector<std::pair<index_t, index_t>> windows;  // [start, length)
    for (index_t start = 0;; start += std::min(window, o.stride)) {
      windows.emplace_back(start, std::min(window, n - start));
      if (start + window >= n) break;
    }
    for (const auto& [start, length] : windows) {
      qa_feature f;
      f.question = q;
      f.ids.push_back(special.cls);
      f.ids.insert(f.ids.end(), query.begin(), query.end());
      f.ids.push_back(special.sep);
      f.type_ids.assign(f.ids.size(), 0);
      f.spans.assign(f.ids.size(), {-1, -1});
      f.max_context.assign(f.ids.size(), 0);
      const index_t offset = static_cast<index_t>(f.ids.size());
      for (index_t i = start; i < start + length; ++i) {
        const word_piece& piece = pieces[static_cast<std::size_t>(i)];
        f.ids.push_back(piece.id);
        f.type_ids.push_back(1);
        f.spans.emplace_back(piece.begin, piece.end);
        // Max context (run_squad.py's _check_is_max_context): the window where min(left, right) + 0.01 * length is largest.
        double best = -1;
        index_t best_window = -1;
        for (std::size_t w = 0; w < windows.size(); ++w) {
          const auto [ws, wl] = windows[w];
          if (i < ws || i >= ws + wl) continue;
          const double score = static_cast<double>(std::min(i - ws, ws + wl - 1 - i)) + 0.01 * static_cast<double>(wl);
          if (score > best) {
            best = score;
            best_window = ws;
          }
        }
        f.max_context.push_back(best_window == start ? 1 : 0);
      }
      f.ids.push_back(special.sep);
      f.type_ids.push_back(1);
      f.spans.emplace_back(-1, -1);
      f.max_context.push_back(0);
      if (answer_first >= start && answer_last < start + length && answer_first >= 0) {
        f.start = static_cast<token_id>(offset + answer_first - start);
        f.end = static_cast<token_id>(offset + answer_last - start);
      }
      data.examples.push_back(std::move(f));
    }
  }
  data.source = std::move(source);
  return data;
}

// Fills `out` with the windows at `indices`, padded to the longest; labels are (start, end) per window.
inline void make_batch(const qa_dataset& data, std::span<const std::size_t> indices, token_id pad, token_batch& out) {
  pad_to_longest(data.examples, indices, pad, out);
  out.labels.resize(2 * indices.size());
  for (std::size_t b = 0; b < indices.size(); ++b) {
    out.labels[2 * b] = data.examples[indices[b]].start;
    out.labels[2 * b + 1] = data.examples[indices[b]].end;
  }
}

// One of a question's n best answers (HuggingFace's nbest_predictions.json): its text, the logits of
// its two ends, and its probability, the softmax of start + end logit over the question's n best.
struct scored_answer {
  std::string text;
  double start_logit = 0, end_logit = 0;
  double probability = 0;
};

// Collects every window's candidate spans and keeps each question's n_best (see above); a span that
// several windows propose counts once, with its highest score. The best answer is the highest score,
// the first proposed among equals.
class answer_extractor {
 public:
  answer_extractor(const qa_dataset& data, const squad_options& o) : data_(data), options_(o), kept_(data.source.questions.size()) {}

  // One window's start and end logits, [positions] each (positions past the window's end are padding).
  void add(std::size_t feature, std::span<const float> start_logits, std::span<const float> end_logits) {
    const qa_feature& f = data_.examples[feature];
    const auto n = static_cast<index_t>(f.ids.size());
    const auto top = [&](std::span<const float> logits) {
      std::vector<index_t> order(static_cast<std::size_t>(n));
      std::iota(order.begin(), order.end(), index_t{0});
      const auto k = std::min<std::size_t>(order.size(), static_cast<std::size_t>(options_.n_best));
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), [&](index_t a, index_t b) {
        return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)] || (logits[static_cast<std::size_t>(a)] == logits[static_cast<std::size_t>(b)] && a < b);
      });
      order.resize(k);
      return order;
    };
    std::vector<candidate>& kept = kept_[f.question];
    for (index_t s : top(start_logits)) {
      for (index_t e : top(end_logits)) {
        const auto si = static_cast<std::size_t>(s), ei = static_cast<std::size_t>(e);
        if (f.spans[si].first < 0 || f.spans[ei].first < 0 || e < s || e - s + 1 > options_.max_answer || f.max_context[si] == 0) continue;
        const candidate c{static_cast<double>(start_logits[si]), static_cast<double>(end_logits[ei]), f.spans[si].first, f.spans[ei].second, proposed_++};
        const auto same = std::find_if(kept.begin(), kept.end(), [&](const candidate& k) { return k.begin == c.begin && k.end == c.end; });
        if (same == kept.end()) kept.push_back(c);
        else if (c.score() > same->score()) *same = c;
      }
    }
    const auto better = [](const candidate& a, const candidate& b) { return a.score() > b.score() || (a.score() == b.score() && a.order < b.order); };
    std::sort(kept.begin(), kept.end(), better);
    if (kept.size() > static_cast<std::size_t>(options_.n_best)) kept.resize(static_cast<std::size_t>(options_.n_best));
  }

  // Each question's answer text, in question order ("" where no window gave a valid span).
  std::vector<std::string> answers() const {
    std::vector<std::string> out;
    for (std::size_t q = 0; q < kept_.size(); ++q) out.push_back(kept_[q].empty() ? std::string() : text_of(q, kept_[q].front()));
    return out;
  }

  // Each question's n best answers, best first (empty where no window gave a valid span).
  std::vector<std::vector<scored_answer>> n_best_answers() const {
    std::vector<std::vector<scored_answer>> out(kept_.size());
    for (std::size_t q = 0; q < kept_.size(); ++q) {
      if (kept_[q].empty()) continue;
      const double top = kept_[q].front().score();
      double total = 0;
      for (const candidate& c : kept_[q]) total += std::exp(c.score() - top);
      for (const candidate& c : kept_[q]) out[q].push_back({text_of(q, c), c.start_logit, c.end_logit, std::exp(c.score() - top) / total});
    }
    return out;
  }

 private:
  struct candidate {
    double start_logit, end_logit;
    index_t begin, end;  // code points of the context
    std::size_t order;   // when it was proposed: the first among equal scores wins
    double score() const noexcept { return start_logit + end_logit; }
  };

  std::string text_of(std::size_t question, const candidate& c) const {
    const std::u32string context = decode_utf8(data_.source.contexts[data_.source.questions[question].paragraph]);
    std::string text;
    for (index_t i = c.begin; i < c.end; ++i) append_utf8(text, context[static_cast<std::size_t>(i)]);
    return text;
  }

  const qa_dataset& data_;
  squad_options options_;
  std::vector<std::vector<candidate>> kept_;
  std::size_t proposed_ = 0;
};

// ---- The official scoring ----------------------------------------------------------------------

namespace detail {
inline bool python_word_char(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return c == U'_';
  }
}
inline bool python_space(char32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85) return true;
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
}
}  // namespace detail

// The official normalisation, as whitespace-separated tokens: lower(), drop string.punctuation,
// replace \b(a|an|the)\b by a space, split().
inline std::vector<std::string> squad_normalized_tokens(std::string_view text) {
  static constexpr std::string_view punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::u32string s;
  for (char32_t c : decode_utf8(text)) {
    c = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    if (c < 128 && punctuation.find(static_cast<char>(c)) != std::string_view::npos) continue;
    s.push_back(c);
  }
  std::u32string spaced;
  for (std::size_t i = 0; i < s.size();) {
    bool article = false;
    for (const std::u32string_view word : {std::u32string_view(U"an"), std::u32string_view(U"a"), std::u32string_view(U"the")}) {
      if (s.compare(i, word.size(), word) != 0) continue;
      const bool left = i == 0 || !detail::python_word_char(s[i - 1]);
      const bool right = i + word.size() == s.size() || !detail::python_word_char(s[i + word.size()]);
      if (left && right) {
        spaced.push_back(U' ');
        i += word.size();
        article = true;
        break;
      }
    }
    if (!article) spaced.push_back(s[i++]);
  }
  std::vector<std::string> tokens;
  std::string current;
  for (char32_t c : spaced) {
    if (detail::python_space(c)) {
      if (!current.empty()) tokens.push_back(std::move(current));
      current.clear();
    } else {
      append_utf8(current, c);
    }
  }
  if (!current.empty()) tokens.push_back(std::move(current));
  return tokens;
}

inline double squad_exact_match(std::string_view prediction, std::string_view gold) {
  return squad_normalized_tokens(prediction) == squad_normalized_tokens(gold) ? 1.0 : 0.0;
}

inline double squad_f1(std::string_view prediction, std::string_view gold) {
  const std::vector<std::string> p = squad_normalized_tokens(prediction), g = squad_normalized_tokens(gold);
  std::map<std::string, int> counts;
  for (const auto& token : g) ++counts[token];
  double same = 0;
  for (const auto& token : p) {
    if (auto it = counts.find(token); it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = same / static_cast<double>(p.size()), recall = same / static_cast<double>(g.size());
  return 2 * precision * recall / (precision + recall);
}

// "f1" and "exact_match" (x 100, the main metric F1 first) of one answer per question, the maximum
// over each question's gold answers; each name suffixed with `suffix` when it is not empty.
inline metric_values squad_metrics(const squad_data& gold, std::span<const std::string> predictions, const std::string& suffix = "") {
  if (predictions.size() != gold.questions.size()) {
    throw shape_error(fmt::format("squad_metrics: {} answers for {} questions, expected as many", predictions.size(), gold.questions.size()));
  }
  double em = 0, f1 = 0;
  for (std::size_t q = 0; q < predictions.size(); ++q) {
    double best_em = 0, best_f1 = 0;
    for (const squad_answer& answer : gold.questions[q].answers) {
      best_em = std::max(best_em, squad_exact_match(predictions[q], answer.text));
      best_f1 = std::max(best_f1, squad_f1(predictions[q], answer.text));
    }
    em += best_em;
    f1 += best_f1;
  }
  const auto key = [&](const char* name) { return suffix.empty() ? std::string(name) : std::string(name) + "_" + suffix; };
  metric_values out;
  out.add(key("f1"), 100 * f1 / static_cast<double>(predictions.size()));
  out.add(key("exact_match"), 100 * em / static_cast<double>(predictions.size()));
  return out;
}

}  // namespace earlybert
