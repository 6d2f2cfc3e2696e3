// SPDX-License-Identifier: Apache-2.0
// The official metrics on cases computed by hand (the arithmetic in the comments).
#include "earlybert/tasks/metrics.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace earlybert;

TEST_CASE("accuracy: the fraction of predictions equal to the gold labels") {
  const std::vector<int> predicted{1, 0, 1, 1}, gold{1, 1, 1, 0};
  CHECK(accuracy(predicted, gold) == doctest::Approx(0.5));
  CHECK_THROWS_WITH_AS(accuracy(std::vector<int>{1}, gold), "accuracy: 1 predictions for 4 gold values, expected as many", shape_error);
  CHECK_THROWS_WITH_AS(accuracy(std::vector<int>{}, std::vector<int>{}), "accuracy: no predictions, expected at least one", shape_error);
}

TEST_CASE("matthews_correlation: binary, K-class and the zero-denominator case") {
  // tp 2 (0, 4), fp 1 (1), fn 1 (3), tn 1 (2): (2 * 1 - 1 * 1) / sqrt(3 * 3 * 2 * 2) = 1/6.
  const std::vector<int> predicted{1, 1, 0, 0, 1}, gold{1, 0, 0, 1, 1};
  CHECK(matthews_correlation(predicted, gold) == doctest::Approx(1.0 / 6.0).epsilon(1e-12));
  CHECK(matthews_correlation(gold, gold) == doctest::Approx(1.0));
  const std::vector<int> flipped{0, 1, 1, 0, 0};
  CHECK(matthews_correlation(flipped, gold) == doctest::Approx(-1.0));
  // Three classes: s 4, c 2, p = (2, 1, 1), t = (1, 1, 2); sum p t = 5, sum p^2 = sum t^2 = 6:
  // (2 * 4 - 5) / sqrt((16 - 6)(16 - 6)) = 0.3.
  CHECK(matthews_correlation(std::vector<int>{0, 1, 2, 0}, std::vector<int>{0, 2, 2, 1}) == doctest::Approx(0.3).epsilon(1e-12));
  // A constant prediction (a collapsed CoLA model) has no correlation: 0, not NaN.
  CHECK(matthews_correlation(std::vector<int>{1, 1, 1, 1, 1}, gold) == 0.0);
  CHECK(matthews_correlation(std::vector<int>{1, 0, 1}, std::vector<int>{1, 1, 1}) == 0.0);
}

TEST_CASE("binary_f1: the positive class's F1, 0 without a true positive") {
  const std::vector<int> predicted{1, 1, 0, 0, 1}, gold{1, 0, 0, 1, 1};
  CHECK(binary_f1(predicted, gold) == doctest::Approx(2.0 * 2 / (2 * 2 + 1 + 1)));  // tp 2, fp 1, fn 1
  CHECK(binary_f1(predicted, gold, 0) == doctest::Approx(2.0 * 1 / (2 * 1 + 1 + 1)));  // class 0: tp 1, fp 1, fn 1
  CHECK(binary_f1(std::vector<int>{0, 0}, std::vector<int>{0, 0}) == 0.0);
  CHECK(binary_f1(std::vector<int>{0, 0}, std::vector<int>{1, 0}) == 0.0);
}

TEST_CASE("pearson and spearman: hand-computed values, ties at their average rank, constant sides") {
  // mx 2.5, my 5.25: sxy 11.5, sxx 5, syy 26.75; r = 11.5 / sqrt(133.75).
  const std::vector<double> x{1, 2, 3, 4}, y{2, 4, 6, 9};
  CHECK(pearson(x, y) == doctest::Approx(11.5 / std::sqrt(133.75)).epsilon(1e-12));
  CHECK(spearman(x, y) == doctest::Approx(1.0));  // monotone
  // Ties: ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5) = 0.9486832980505138 (scipy's spearmanr).
  CHECK(average_ranks(std::vector<double>{1, 2, 2, 3}) == std::vector<double>{1, 2.5, 2.5, 4});
  CHECK(average_ranks(std::vector<double>{3, 1, 3, 3}) == std::vector<double>{3, 1, 3, 3});
  CHECK(spearman(std::vector<double>{1, 2, 2, 3}, std::vector<double>{1, 3, 2, 4}) == doctest::Approx(0.9486832980505138).epsilon(1e-12));
  CHECK(pearson(std::vector<double>{2, 2, 2}, std::vector<double>{1, 2, 3}) == 0.0);
  CHECK(spearman(std::vector<double>{1, 2, 3}, std::vector<double>{5, 5, 5}) == 0.0);
}

TEST_CASE("entity_spans: conlleval's chunks from IOB2 and IOB1 tags") {
  using tags = std::vector<std::string>;
  CHECK(entity_spans(tags{"B-PER", "I-PER", "O", "B-LOC"}) == std::vector<entity_span>{{0, 2, "PER"}, {3, 4, "LOC"}});
  // IOB1: I- starts a chunk after O or another type; B- only separates two chunks of one type.
  CHECK(entity_spans(tags{"I-PER", "I-PER", "B-PER", "I-LOC"}) == std::vector<entity_span>{{0, 2, "PER"}, {2, 3, "PER"}, {3, 4, "LOC"}});
  // A type change inside a run of I- tags ends the chunk.
  CHECK(entity_spans(tags{"B-creative-work", "I-creative-work", "I-product"}) ==
        std::vector<entity_span>{{0, 2, "creative-work"}, {2, 3, "product"}});
  CHECK(entity_spans(tags{"O", "O"}).empty());
  CHECK_THROWS_WITH_AS(entity_spans(tags{"O", "PER"}), "entity tag 'PER' at word 2 is not O, B-TYPE or I-TYPE", io_error);
}

TEST_CASE("entity_scores: exact span and type, partial and mistyped spans count as wrong") {
  using tags = std::vector<std::string>;
  entity_scores scores;
  // Gold: PER [0, 2), LOC [3, 4). Predicted: PER [0, 1) (partial), ORG [3, 4) (mistyped).
  scores.add(tags{"B-PER", "O", "O", "B-ORG"}, tags{"B-PER", "I-PER", "O", "B-LOC"});
  CHECK(scores.correct == 0);
  CHECK(scores.f1() == 0.0);
  // Second sentence: gold PER [0, 1), LOC [2, 4); predicted the same.
  scores.add(tags{"B-PER", "O", "B-LOC", "I-LOC"}, tags{"B-PER", "O", "B-LOC", "I-LOC"});
  CHECK(scores.predicted == 4);
  CHECK(scores.gold == 4);
  CHECK(scores.correct == 2);
  CHECK(scores.precision() == doctest::Approx(0.5));
  CHECK(scores.recall() == doctest::Approx(0.5));
  CHECK(scores.f1() == doctest::Approx(0.5));
  // A prediction of one entity where the gold has two: precision 1, recall 1/2, F1 2/3.
  entity_scores one;
  one.add(tags{"B-X", "O", "O"}, tags{"B-X", "O", "B-Y"});
  CHECK(one.precision() == doctest::Approx(1.0));
  CHECK(one.recall() == doctest::Approx(0.5));
  CHECK(one.f1() == doctest::Approx(2.0 / 3.0));
  CHECK_THROWS_AS(one.add(tags{"O"}, tags{"O", "O"}), shape_error);
}
