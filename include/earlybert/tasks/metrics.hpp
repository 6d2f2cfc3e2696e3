// SPDX-License-Identifier: Apache-2.0
#pragma once
// The official metrics of the tasks (tasks/registry.hpp), as the reference implementations compute
// them, on plain vectors of predictions and gold values:
//
//   accuracy(predicted, gold)                   the fraction equal
//   matthews_correlation(predicted, gold)       CoLA; scikit-learn's matthews_corrcoef (the K-class
//                                               form, which is the binary one for two classes); 0 when
//                                               the denominator is 0 (a constant prediction or gold)
//   binary_f1(predicted, gold, positive)        MRPC, QQP; F1 of the positive class; 0 when there is
//                                               no true positive (scikit-learn's zero_division=0 for
//                                               0 / 0)
//   pearson(x, y), spearman(x, y)               STS-B; Spearman is Pearson on ranks, ties given their
//                                               average rank (scipy.stats.spearmanr); 0 when either
//                                               side is constant (scipy returns NaN there)
//   entity_spans(tags), entity_scores(...)      NER: chunks as conlleval reads them (IOB1 and IOB2
//                                               alike), precision / recall / F1 over exact (span,
//                                               type) matches, micro-averaged over sentences
//
// Every function checks that the two sides have the same length and are not empty. metric_values
// holds a task's named results in order, its main metric first.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"

namespace earlybert {

namespace detail {
inline void check_paired(const char* metric, std::size_t predicted, std::size_t gold) {
  if (predicted != gold) throw shape_error(fmt::format("{}: {} predictions for {} gold values, expected as many", metric, predicted, gold));
  if (predicted == 0) throw shape_error(fmt::format("{}: no predictions, expected at least one", metric));
}
}  // namespace detail

inline double accuracy(std::span<const int> predicted, std::span<const int> gold) {
  detail::check_paired("accuracy", predicted.size(), gold.size());
  std::size_t equal = 0;
  for (std::size_t i = 0; i < gold.size(); ++i) equal += predicted[i] == gold[i];
  return static_cast<double>(equal) / static_cast<double>(gold.size());
}

// MCC = (c s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2)(s^2 - sum_k t_k^2)), with s samples, c of
// them correct, p_k predicted and t_k true of class k (Gorodkin 2004; scikit-learn's form). Binary:
// (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)).
inline double matthews_correlation(std::span<const int> predicted, std::span<const int> gold) {
  detail::check_paired("matthews_correlation", predicted.size(), gold.size());
  std::map<int, double> p, t;
  double correct = 0;
  for (std::size_t i = 0; i < gold.size(); ++i) {
    p[predicted[i]] += 1;
    t[gold[i]] += 1;
    correct += predicted[i] == gold[i];
  }
  const double s = static_cast<double>(gold.size());
  double pt = 0, pp = 0, tt = 0;
  for (const auto& [k, n] : p) {
    pp += n * n;
    if (const auto it = t.find(k); it != t.end()) pt += n * it->second;
  }
  for (const auto& [k, n] : t) tt += n * n;
  const double denominator = std::sqrt((s * s - pp) * (s * s - tt));
  return denominator == 0 ? 0.0 : (correct * s - pt) / denominator;
}

struct binary_counts {
  double true_positive = 0, false_positive = 0, false_negative = 0;
  double precision() const { return true_positive + false_positive == 0 ? 0.0 : true_positive / (true_positive + false_positive); }
  double recall() const { return true_positive + false_negative == 0 ? 0.0 : true_positive / (true_positive + false_negative); }
  // 2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall, 0 without a true positive.
  double f1() const {
    const double denominator = 2 * true_positive + false_positive + false_negative;
    return denominator == 0 ? 0.0 : 2 * true_positive / denominator;
  }
};

inline double binary_f1(std::span<const int> predicted, std::span<const int> gold, int positive = 1) {
  detail::check_paired("binary_f1", predicted.size(), gold.size());
  binary_counts c;
  for (std::size_t i = 0; i < gold.size(); ++i) {
    c.true_positive += predicted[i] == positive && gold[i] == positive;
    c.false_positive += predicted[i] == positive && gold[i] != positive;
    c.false_negative += predicted[i] != positive && gold[i] == positive;
  }
  return c.f1();
}

inline double pearson(std::span<const double> x, std::span<const double> y) {
  detail::check_paired("pearson", x.size(), y.size());
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n, my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx == 0 || syy == 0 ? 0.0 : sxy / std::sqrt(sxx * syy);
}

// Ranks 1..n, tied values sharing the mean of the ranks they span.
inline std::vector<double> average_ranks(std::span<const double> x) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(x.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    const double rank = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;
    for (std::size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

inline double spearman(std::span<const double> x, std::span<const double> y) {
  detail::check_paired("spearman", x.size(), y.size());
  const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
  return pearson(rx, ry);
}

// Named metric values in a fixed order: the main metric first.
class metric_values {
 public:
  void add(std::string name, double value) { values_.emplace_back(std::move(name), value); }
  void append(const metric_values& other) { values_.insert(values_.end(), other.values_.begin(), other.values_.end()); }
  // The value called `name`; a config_error naming the ones there are if it is missing.
  double at(std::string_view name) const {
    for (const auto& [n, v] : values_) {
      if (n == name) return v;
    }
    std::vector<std::string_view> names;
    for (const auto& [n, v] : values_) names.push_back(n);
    throw config_error(fmt::format("metric '{}' was not computed (there are: {})", name, fmt::join(names, ", ")));
  }
  const std::vector<std::pair<std::string, double>>& items() const noexcept { return values_; }
  bool empty() const noexcept { return values_.empty(); }

 private:
  std::vector<std::pair<std::string, double>> values_;
};

// ---- Named entities ----------------------------------------------------------------------------

// A chunk [begin, end) of words with its type ("person", "PER", ...).
struct entity_span {
  std::size_t begin = 0, end = 0;
  std::string type;
  friend bool operator==(const entity_span&, const entity_span&) = default;
  friend auto operator<=>(const entity_span&, const entity_span&) = default;
};

// The chunks of one sentence's tags ("O", "B-X", "I-X"), as conlleval reads them: a chunk starts at
// B-X, or at I-X after anything but B-X / I-X of the same type (IOB1's starts, and IOB2's lenient
// reading of a stray I-); it goes on over I-X. A tag without a "B-"/"I-" prefix other than "O" is
// an error naming it.
inline std::vector<entity_span> entity_spans(std::span<const std::string> tags) {
  std::vector<entity_span> spans;
  std::string open;  // the type of the chunk being read, "" for none
  for (std::size_t i = 0; i < tags.size(); ++i) {
    const std::string_view tag = tags[i];
    if (tag == "O") {
      open.clear();
      continue;
    }
    if (tag.size() < 3 || tag[1] != '-' || (tag[0] != 'B' && tag[0] != 'I')) {
      throw io_error(fmt::format("entity tag '{}' at word {} is not O, B-TYPE or I-TYPE", tag, i + 1));
    }
    const std::string_view type = tag.substr(2);
    if (tag[0] == 'B' || open != type) {
      spans.push_back({i, i + 1, std::string(type)});
      open = type;
    } else {
      spans.back().end = i + 1;
    }
  }
  return spans;
}

// Precision, recall and F1 over exact matches of (begin, end, type), pooled over all sentences.
struct entity_scores {
  double predicted = 0, gold = 0, correct = 0;
  double precision() const { return predicted == 0 ? 0.0 : correct / predicted; }
  double recall() const { return gold == 0 ? 0.0 : correct / gold; }
  double f1() const { return predicted + gold == 0 ? 0.0 : 2 * correct / (predicted + gold); }

  // Adds one sentence's predicted and gold tags (as many of each).
  void add(std::span<const std::string> predicted_tags, std::span<const std::string> gold_tags) {
    if (predicted_tags.size() != gold_tags.size()) {
      throw shape_error(fmt::format("entity_scores: {} predicted tags for {} words, expected as many", predicted_tags.size(), gold_tags.size()));
    }
    const std::vector<entity_span> p = entity_spans(predicted_tags), g = entity_spans(gold_tags);
    predicted += static_cast<double>(p.size());
    gold += static_cast<double>(g.size());
    for (const entity_span& span : p) correct += std::find(g.begin(), g.end(), span) != g.end();
  }
};

}  // namespace earlybert
