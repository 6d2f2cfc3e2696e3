// SPDX-License-Identifier: Apache-2.0
// The tokenizer against every case of data/tokenizer_tests/bert_wordpiece_cases.json (transcribed from
// the test suites of google-research/bert, huggingface/tokenizers and pytorch/text).
#include "earlybert/io/tokenizer.hpp"

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "earlybert/io/files.hpp"

using namespace earlybert;
using json = nlohmann::json;

namespace {
const std::string data_dir = EARLYBERT_DATA_DIR;

const json& cases_file() {
  static const json cases = json::parse(read_file(data_dir + "/tokenizer_tests/bert_wordpiece_cases.json", "cases"));
  return cases;
}

const vocabulary& file_vocabulary(const std::string& relative) {
  static std::map<std::string, vocabulary> loaded;
  auto it = loaded.find(relative);
  if (it == loaded.end()) it = loaded.emplace(relative, vocabulary::load(data_dir + "/" + relative)).first;
  return it->second;
}

vocabulary case_vocabulary(const json& c) {
  if (c["vocab"] == "inline") return vocabulary(c["inline_vocab"].get<std::vector<std::string>>());
  if (c["vocab"].is_null()) return vocabulary(std::vector<std::string>{"[UNK]"});
  return file_vocabulary(c["vocab"].get<std::string>());
}

tokenizer_options case_options(const json& c) {
  tokenizer_options o;
  o.lower_case = c.value("do_lower_case", true);
  if (c.contains("never_split") && !c["never_split"].is_null()) o.never_split = c["never_split"].get<std::vector<std::string>>();
  return o;
}

std::vector<std::string> token_strings(const vocabulary& v, const std::vector<token_id>& ids) {
  std::vector<std::string> out;
  for (token_id id : ids) out.push_back(v.token(id));
  return out;
}
}  // namespace

TEST_CASE("tokenizer: every transcribed case reproduces exactly") {
  int checked = 0;
  for (const json& c : cases_file()["cases"]) {
    const std::string id = c["id"];
    CAPTURE(id);
    const wordpiece_tokenizer tokenizer(case_vocabulary(c), case_options(c));
    const std::string component = c.value("component", "");

    if (component == "BasicTokenizer") {
      std::vector<std::string> words;
      for (const auto& w : tokenizer.basic_tokenize(c["input"].get<std::string>())) words.push_back(w.text);
      CHECK(words == c["expected_tokens"].get<std::vector<std::string>>());
    } else if (component == "WordpieceTokenizer") {
      // The unit under test is WordPiece alone, on whitespace-split input.
      std::vector<word_piece> pieces;
      std::istringstream words(c["input"].get<std::string>());
      std::string w;
      for (index_t i = 0; words >> w; ++i) {
        basic_token word;
        const std::u32string chars = decode_utf8(w);
        for (std::size_t k = 0; k < chars.size(); ++k) word.append(chars[k], static_cast<index_t>(k));
        tokenizer.wordpiece(word, i, pieces);
      }
      std::vector<token_id> ids;
      for (const auto& p : pieces) ids.push_back(p.id);
      CHECK(token_strings(tokenizer.vocab(), ids) == c["expected_tokens"].get<std::vector<std::string>>());
    } else if (component == "convert_tokens_to_ids") {
      std::vector<token_id> ids;
      for (const auto& t : c["input_tokens"]) ids.push_back(*tokenizer.vocab().find(t.get<std::string>()));
      CHECK(ids == c["expected_ids"].get<std::vector<token_id>>());
    } else {
      // The full tokenizer (google FullTokenizer, torchtext, HuggingFace): ids, tokens, offsets, types.
      const bool pair = c.contains("input_pair");
      const encoding e = tokenizer.encode(c["input"].get<std::string>(), pair ? c["input_pair"].get<std::string>() : "",
                                          pair, c.value("add_special_tokens", false));
      CHECK(token_strings(tokenizer.vocab(), e.ids) == c["expected_tokens"].get<std::vector<std::string>>());
      if (c.contains("expected_ids")) CHECK(e.ids == c["expected_ids"].get<std::vector<token_id>>());
      if (c.contains("expected_type_ids")) CHECK(e.type_ids == c["expected_type_ids"].get<std::vector<token_id>>());
      if (c.contains("expected_offsets")) {
        std::vector<std::vector<index_t>> offsets;
        for (const auto& [b, end] : e.offsets) offsets.push_back({b, end});
        CHECK(offsets == c["expected_offsets"].get<std::vector<std::vector<index_t>>>());
      }
      if (c.contains("expected_word_ids")) {
        std::vector<index_t> words;
        for (const auto& p : tokenizer.tokenize(c["input"].get<std::string>())) words.push_back(p.word);
        CHECK(words == c["expected_word_ids"].get<std::vector<index_t>>());
      }
    }
    ++checked;
  }
  CHECK(checked == 41);
}

TEST_CASE("tokenizer: the character classes of google-research/bert") {
  const json& classes = cases_file()["char_classes"];
  const auto check_class = [&](const char* name, auto predicate) {
    for (const bool expected : {true, false}) {
      for (const auto& ch : classes[name][expected ? "true" : "false"]) {
        const std::u32string c = decode_utf8(ch.get<std::string>());
        REQUIRE(c.size() == 1);
        CAPTURE(name);
        CAPTURE(static_cast<std::uint32_t>(c[0]));
        CHECK(predicate(c[0]) == expected);
      }
    }
  };
  check_class("is_whitespace", is_bert_whitespace);
  check_class("is_control", is_bert_control);
  check_class("is_punctuation", is_bert_punctuation);
}

TEST_CASE("tokenizer: a word over 100 characters is UNK, 100 characters are still split") {
  const wordpiece_tokenizer tokenizer(vocabulary(std::vector<std::string>{"[UNK]", "a", "##a"}));
  const auto long_word = tokenizer.tokenize(std::string(101, 'a'));
  REQUIRE(long_word.size() == 1);
  CHECK(long_word[0].id == 0);
  CHECK(long_word[0].end == 101);
  CHECK(tokenizer.tokenize(std::string(100, 'a')).size() == 100);
}

TEST_CASE("tokenizer: invalid UTF-8 is an io_error naming the byte") {
  const wordpiece_tokenizer tokenizer(vocabulary(std::vector<std::string>{"[UNK]"}));
  CHECK_THROWS_WITH_AS(tokenizer.tokenize("ab\xff"), "invalid UTF-8 at byte 2", io_error);
}

TEST_CASE("vocabulary: bad files and missing special tokens are clear errors") {
  CHECK_THROWS_WITH_AS(vocabulary::load("/nonexistent/vocab.txt"),
                       "vocabulary '/nonexistent/vocab.txt': cannot open the file for reading (No such file or directory)", io_error);
  CHECK_THROWS_WITH_AS(vocabulary(std::vector<std::string>{"a", "b", "a"}),
                       "vocabulary: token 'a' appears twice (lines 1 and 3), expected each token once", config_error);
  const vocabulary v(std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]"});
  CHECK_THROWS_WITH_AS(special_tokens::of(v),
                       "vocabulary: has no [MASK] token, expected the special tokens [PAD], [UNK], [CLS], [SEP] and [MASK]",
                       config_error);
  CHECK(file_vocabulary("vocab/bert-base-uncased-vocab.txt").looks_uncased());
  CHECK_FALSE(file_vocabulary("vocab/bert-base-cased-vocab.txt").looks_uncased());
  const special_tokens s = special_tokens::of(file_vocabulary("vocab/bert-base-uncased-vocab.txt"));
  CHECK(s.pad == 0);
  CHECK(s.unk == 100);
  CHECK(s.cls == 101);
  CHECK(s.sep == 102);
  CHECK(s.mask == 103);
}

TEST_CASE("bert_tokenizer: lower-cases for an uncased vocabulary, keeps case for a cased one, never splits the special tokens") {
  const vocabulary& uncased = file_vocabulary("vocab/bert-base-uncased-vocab.txt");
  const vocabulary& cased = file_vocabulary("vocab/bert-base-cased-vocab.txt");
  const auto pieces = [](const vocabulary& vocab, std::string_view text) {
    std::vector<std::string> out;
    for (const auto& p : bert_tokenizer(vocab).tokenize(text)) out.push_back(vocab.token(p.id));
    return out;
  };
  CHECK(pieces(uncased, "Hello [MASK] Café") == std::vector<std::string>{"hello", "[MASK]", "cafe"});
  CHECK(pieces(cased, "Hello [MASK]") == std::vector<std::string>{"Hello", "[MASK]"});
}
