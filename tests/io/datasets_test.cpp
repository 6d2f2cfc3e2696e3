// SPDX-License-Identifier: Apache-2.0
#include "earlybert/io/datasets.hpp"

#include <filesystem>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

using namespace earlybert;
namespace fs = std::filesystem;

namespace {
const std::string data_dir = EARLYBERT_DATA_DIR;

const wordpiece_tokenizer& uncased() {
  static const wordpiece_tokenizer tokenizer(vocabulary::load(data_dir + "/vocab/bert-base-uncased-vocab.txt"),
                                             tokenizer_options{.lower_case = true, .never_split = {"[UNK]", "[MASK]"}});
  return tokenizer;
}

struct scratch_file {
  fs::path path;
  scratch_file(const std::string& name, const std::string& contents) : path(fs::temp_directory_path() / ("earlybert_test_" + name)) {
    write_file_atomically(path, contents);
  }
  ~scratch_file() { fs::remove(path); }
};

std::vector<token_id> ids_of(const std::string& text) {
  std::vector<token_id> ids;
  for (const auto& p : uncased().tokenize(text)) ids.push_back(p.id);
  return ids;
}
}  // namespace

TEST_CASE("datasets: the bundled SST-2 files read as single sentences with labels") {
  const auto train = read_classification_tsv(data_dir + "/sst2/train_subset.tsv", uncased(), 128, 2);
  CHECK(train.examples.size() == 8419);
  CHECK_FALSE(train.sentence_pairs);
  CHECK(train.text_columns == std::vector<std::string>{"sentence"});
  // "hide new secretions from the parental units " with label 0.
  const auto& first = train.examples[0];
  std::vector<token_id> expected{101};
  for (token_id id : ids_of("hide new secretions from the parental units")) expected.push_back(id);
  expected.push_back(102);
  CHECK(first.ids == expected);
  CHECK(first.label == 0);
  const auto dev = read_classification_tsv(data_dir + "/sst2/dev.tsv", uncased(), 128, 2);
  CHECK(dev.examples.size() == 872);
}

TEST_CASE("datasets: the MRPC layout: a byte-order mark, five columns, unmatched quotes, sentence pairs") {
  const scratch_file file("mrpc.tsv",
                          "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                          "1\t702876\t702977\tHe said \"the witness, of his.\tReferring to him as \"the witness\".\n"
                          "0\t2108705\t2108831\tYucaipa owned.\tYucaipa bought.\n");
  const auto data = read_classification_tsv(file.path, uncased(), 128, 2);
  REQUIRE(data.examples.size() == 2);
  CHECK(data.sentence_pairs);
  CHECK(data.text_columns == std::vector<std::string>{"#1 String", "#2 String"});
  const auto& e = data.examples[1];
  std::vector<token_id> expected{101};
  for (token_id id : ids_of("Yucaipa owned.")) expected.push_back(id);
  expected.push_back(102);
  const std::size_t first_part = expected.size();
  for (token_id id : ids_of("Yucaipa bought.")) expected.push_back(id);
  expected.push_back(102);
  CHECK(e.ids == expected);
  CHECK(e.type_ids == [&] {
    std::vector<token_id> t(expected.size(), 1);
    std::fill_n(t.begin(), first_part, 0);
    return t;
  }());
  CHECK(e.label == 0);
  CHECK(data.examples[0].label == 1);
}

TEST_CASE("datasets: pairs are truncated longest first to max_seq") {
  const special_tokens special = special_tokens::of(uncased().vocab());
  const auto e = encode_example(uncased(), special, "one two three four five six", "seven", true, 7);
  CHECK(e.ids.size() == 7);
  CHECK(e.ids == std::vector<token_id>{101, ids_of("one")[0], ids_of("two")[0], ids_of("three")[0], 102, ids_of("seven")[0], 102});
}

TEST_CASE("datasets: bad TSV files are io_errors naming the file and line") {
  const auto error_of = [](const std::string& name, const std::string& contents) {
    const scratch_file file(name, contents);
    try {
      read_classification_tsv(file.path, uncased(), 128, 2);
    } catch (const io_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string prefix = fmt::format("dataset '{}", (fs::temp_directory_path() / "earlybert_test_").string());
  CHECK(error_of("empty.tsv", "") == prefix + "empty.tsv': the file is empty, expected a header line and examples");
  CHECK(error_of("header.tsv", "sentence\tlabel\n") == prefix + "header.tsv': the file has a header but no examples");
  CHECK(error_of("columns.tsv", "sentence\tlabel\na b\t1\nc d\n") ==
        prefix + "columns.tsv': line 3: found 1 tab-separated fields, expected 2 as in the header");
  CHECK(error_of("label.tsv", "sentence\tlabel\na b\tyes\n") == prefix + "label.tsv': line 2: label 'yes' is not an integer");
  CHECK(error_of("range.tsv", "sentence\tlabel\na b\t2\n") == prefix + "range.tsv': line 2: label 2 is outside [0, 2)");
  CHECK(error_of("utf8.tsv", "sentence\tlabel\nab\xC3\t1\n") == prefix + "utf8.tsv': line 2: invalid UTF-8 at byte 2");
  CHECK(error_of("nolabel.tsv", "sentence\tscore\na\t1\n") ==
        prefix + "nolabel.tsv': line 1: the header has no label column (found 'sentence', 'score', expected 'label' or 'Quality')");
  CHECK(error_of("notext.tsv", "id\tlabel\n1\t1\n").starts_with(prefix + "notext.tsv': line 1: the header has no text column"));
  // Another kind of file (a JSON document on one line) is quoted in part.
  CHECK(error_of("long.tsv", "{\"data\": [" + std::string(500, 'x') + "]}\nmore\n") ==
        prefix + "long.tsv': line 1: the header has no text column (found '{\"data\": [" + std::string(106, 'x') + "..., expected one of "
                 "sentence, sentence1, sentence2, question, text, #1 String, ...)");
}

TEST_CASE("datasets: batches pad to the longest example and mark padding") {
  classification_dataset data;
  data.examples = {{{101, 5, 102}, {0, 0, 0}, 1}, {{101, 5, 6, 7, 102}, {0, 0, 0, 0, 0}, 0}};
  token_batch b;
  const std::vector<std::size_t> order{1, 0};
  make_classification_batch(data, order, 0, b);
  CHECK(b.batch == 2);
  CHECK(b.seq == 5);
  CHECK(b.ids == std::vector<token_id>{101, 5, 6, 7, 102, 101, 5, 102, 0, 0});
  CHECK(b.attention == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  CHECK(b.labels == std::vector<token_id>{0, 1});
  CHECK(b.real_tokens() == 8);
}

TEST_CASE("datasets: the corpus reader maps WikiText's <unk> to the UNK token and skips blank lines") {
  const scratch_file file("corpus.txt", " = Title = \n \n the <unk> cat sat \n");
  const text_corpus corpus = read_corpus(file.path, uncased());
  CHECK(corpus.lines == 2);
  std::vector<token_id> expected = ids_of("= Title =");
  for (token_id id : ids_of("the")) expected.push_back(id);
  expected.push_back(100);
  for (token_id id : ids_of("cat sat")) expected.push_back(id);
  CHECK(corpus.tokens == expected);
  token_batch b;
  make_corpus_batch(corpus, std::vector<std::size_t>{1}, 5, special_tokens::of(uncased().vocab()), b);
  CHECK(b.ids == std::vector<token_id>{101, expected[3], expected[4], expected[5], 102});
}

TEST_CASE("datasets: segment pairs lay a corpus sequence out as [CLS] A [SEP] B [SEP], B continuing A with type id 1") {
  text_corpus corpus;
  for (token_id id = 1000; id < 1400; ++id) corpus.tokens.push_back(id);
  const special_tokens special = special_tokens::of(uncased().vocab());
  constexpr index_t seq = 12;
  const std::size_t body = seq - 2;
  std::vector<std::size_t> indices(corpus.tokens.size() / body);
  std::iota(indices.begin(), indices.end(), std::size_t{0});
  token_batch b;
  make_corpus_batch(corpus, indices, seq, special, b, corpus_layout::segment_pairs);
  std::vector<int> splits_seen(seq, 0);
  for (std::size_t i : indices) {
    const index_t a = segment_split(i, seq);
    REQUIRE(a >= 1);
    REQUIRE(a <= seq - 4);
    ++splits_seen[static_cast<std::size_t>(a)];
    const auto row = [&](std::size_t p) { return b.ids[i * seq + p]; };
    const auto type = [&](std::size_t p) { return b.type_ids[i * seq + p]; };
    CHECK(row(0) == special.cls);
    CHECK(row(static_cast<std::size_t>(a) + 1) == special.sep);
    CHECK(row(seq - 1) == special.sep);
    // The text: the window's first seq - 3 tokens in order, around the inner [SEP].
    std::vector<token_id> text;
    for (std::size_t p = 1; p + 1 < static_cast<std::size_t>(seq); ++p) {
      if (p != static_cast<std::size_t>(a) + 1) text.push_back(row(p));
    }
    const std::vector<token_id> window(corpus.tokens.begin() + static_cast<std::ptrdiff_t>(i * body),
                                       corpus.tokens.begin() + static_cast<std::ptrdiff_t>(i * body + body - 1));
    CHECK(text == window);
    for (std::size_t p = 0; p < static_cast<std::size_t>(seq); ++p) CHECK(type(p) == (p >= static_cast<std::size_t>(a) + 2 ? 1 : 0));
  }
  // Every split length in [1, seq - 4] occurs over 40 sequences (uniform: 5 each on average), and the
  // layout is a function of the index alone: a batch of one sequence repeats its row.
  for (index_t a = 1; a <= seq - 4; ++a) CHECK(splits_seen[static_cast<std::size_t>(a)] > 0);
  token_batch one;
  make_corpus_batch(corpus, std::vector<std::size_t>{7}, seq, special, one, corpus_layout::segment_pairs);
  CHECK(std::equal(one.ids.begin(), one.ids.end(), b.ids.begin() + 7 * seq));
  CHECK(std::equal(one.type_ids.begin(), one.type_ids.end(), b.type_ids.begin() + 7 * seq));
  CHECK_THROWS_AS(make_corpus_batch(corpus, indices, 4, special, b, corpus_layout::segment_pairs), shape_error);
}

TEST_CASE("datasets: several corpus files read in order into one corpus, a folder listing its .txt files by name") {
  const fs::path folder = fs::temp_directory_path() / "earlybert_test_corpus_folder";
  fs::remove_all(folder);
  fs::create_directories(folder);
  write_file_atomically(folder / "b.txt", "dog ran\n");
  write_file_atomically(folder / "a.txt", "\n the cat \n sat \n");
  write_file_atomically(folder / "notes.md", "never read\n");
  const std::vector<fs::path> listed = corpus_files(folder);
  CHECK(listed == std::vector<fs::path>{folder / "a.txt", folder / "b.txt"});
  const scratch_file extra("corpus_extra.txt", "bird <unk>\n");
  std::vector<fs::path> files = listed;
  files.push_back(extra.path);
  const text_corpus corpus = read_corpora(files, uncased());
  std::vector<token_id> expected = ids_of("the cat sat dog ran bird");
  expected.push_back(100);
  CHECK(corpus.tokens == expected);
  CHECK(corpus.lines == 4);
  REQUIRE(corpus.sources.size() == 3);
  CHECK(corpus.sources[0].path == folder / "a.txt");
  CHECK(corpus.sources[0].lines == 2);
  CHECK(corpus.sources[0].tokens == ids_of("the cat sat").size());
  CHECK(corpus.sources[2].tokens == 2);
  // A single file is itself; read_corpus is read_corpora of one file.
  CHECK(corpus_files(extra.path) == std::vector<fs::path>{extra.path});
  CHECK(read_corpus(extra.path, uncased()).tokens == read_corpora(std::vector<fs::path>{extra.path}, uncased()).tokens);

  // What is refused, naming the path.
  files.push_back(folder / "." / "a.txt");
  CHECK_THROWS_WITH_AS(read_corpora(files, uncased()), fmt::format("corpus '{}': listed twice, expected each file once", (folder / "." / "a.txt").string()).c_str(), io_error);
  CHECK_THROWS_WITH_AS(read_corpora(std::vector<fs::path>{}, uncased()), "corpus: no file given, expected at least one", io_error);
  write_file_atomically(folder / "c.txt", " \n\n");
  CHECK_THROWS_WITH_AS(read_corpora(corpus_files(folder), uncased()), fmt::format("corpus '{}': no text, expected lines of text", (folder / "c.txt").string()).c_str(), io_error);
  const fs::path empty_folder = folder / "empty";
  fs::create_directories(empty_folder);
  CHECK_THROWS_WITH_AS(corpus_files(empty_folder), fmt::format("corpus '{}': a folder without a .txt file, expected text files", empty_folder.string()).c_str(), io_error);
  CHECK_THROWS_WITH_AS(corpus_files(folder / "missing.txt"), fmt::format("corpus '{}': no such file or folder", (folder / "missing.txt").string()).c_str(), io_error);
  fs::remove_all(folder);
}

TEST_CASE("datasets: masking picks 15% of real tokens, 80% MASK, 10% random, 10% unchanged, never specials") {
  const special_tokens special = special_tokens::of(uncased().vocab());
  token_batch b;
  b.batch = 400;
  b.seq = 128;
  rng words(1);
  for (index_t s = 0; s < b.batch; ++s) {
    for (index_t i = 0; i < b.seq; ++i) {
      const bool padding = i >= 120;
      b.ids.push_back(i == 0 ? special.cls : i == 119 ? special.sep : padding ? special.pad : static_cast<token_id>(1000 + words.below(20000)));
      b.type_ids.push_back(0);
      b.attention.push_back(padding ? 0 : 1);
    }
  }
  const std::vector<token_id> original = b.ids;
  rng random(7);
  mask_tokens(b, random, special, 30522);
  std::map<std::string, double> counts;
  for (std::size_t i = 0; i < b.ids.size(); ++i) {
    const bool candidate = b.attention[i] != 0 && original[i] != special.cls && original[i] != special.sep;
    if (b.labels[i] == ignore_label) {
      CHECK(b.ids[i] == original[i]);
      continue;
    }
    REQUIRE(candidate);
    CHECK(b.labels[i] == original[i]);
    counts["masked"] += 1;
    counts[b.ids[i] == special.mask ? "mask" : b.ids[i] == original[i] ? "same" : "random"] += 1;
  }
  const double candidates = 400.0 * 118;
  CHECK(counts["masked"] / candidates == doctest::Approx(0.15).epsilon(0.05));
  CHECK(counts["mask"] / counts["masked"] == doctest::Approx(0.8).epsilon(0.03));
  CHECK(counts["random"] / counts["masked"] == doctest::Approx(0.1).epsilon(0.15));
  CHECK(counts["same"] / counts["masked"] == doctest::Approx(0.1).epsilon(0.15));
  // The same rng state masks the same way.
  token_batch again = b;
  again.ids = original;
  rng same(7);
  mask_tokens(again, same, special, 30522);
  CHECK(again.ids == b.ids);
  CHECK(again.labels == b.labels);
}
