// SPDX-License-Identifier: Apache-2.0
// SQuAD v1.1: the official normalisation and scores, the reader's checks (code-point offsets in
// multi-byte text, an answer away from its offset), the sliding windows (an answer across a window
// boundary, max context) and answer extraction.
#include "earlybert/tasks/squad.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/data_files.hpp"

using namespace earlybert;
namespace fs = std::filesystem;

namespace {
const wordpiece_tokenizer& uncased() { return testing::uncased_tokenizer(); }

// A scratch file named temp/earlybert_squad_<name>.
struct scratch_file : testing::scratch_file {
  scratch_file(const std::string& name, const std::string& contents) : testing::scratch_file("earlybert_squad_", name, contents) {}
};

std::string one_question(const std::string& context, const std::string& answer, int start) {
  return R"({"data": [{"title": "T", "paragraphs": [{"context": ")" + context + R"(", "qas": [{"answers": [{"answer_start": )" +
         std::to_string(start) + R"(, "text": ")" + answer + R"("}], "question": "What is it?", "id": "q1"}]}]}], "version": "1.1"})";
}

std::string error_of(const std::string& name, const std::string& contents) {
  const scratch_file f(name, contents);
  try {
    read_squad(f.path);
  } catch (const io_error& e) {
    return e.what();
  }
  return "no error";
}

const std::string dir = (fs::temp_directory_path() / "earlybert_squad_").string();
}  // namespace

TEST_CASE("squad: the official normalisation: lower case, ASCII punctuation, articles as whole words, whitespace") {
  using tokens = std::vector<std::string>;
  CHECK(squad_normalized_tokens("The Cat!") == tokens{"cat"});
  CHECK(squad_normalized_tokens("an apple, a pear and THE end.") == tokens{"apple", "pear", "and", "end"});
  CHECK(squad_normalized_tokens("theatre and another") == tokens{"theatre", "and", "another"});  // not whole words
  CHECK(squad_normalized_tokens("U.S.  Army\tdivision") == tokens{"us", "army", "division"});
  CHECK(squad_normalized_tokens("a-the") == tokens{"athe"});  // punctuation goes first, joining the words
  CHECK(squad_normalized_tokens("Ça — l’été") == tokens{"ça", "—", "l’été"});  // non-ASCII punctuation stays, as in Python
  CHECK(squad_normalized_tokens("the’s") == tokens{"’s"});  // \b between "the" and a non-word character
  CHECK(squad_exact_match("The Broncos", "broncos") == 1.0);
  CHECK(squad_exact_match("Denver Broncos", "broncos") == 0.0);
  // "the big cat" vs "a big dog": one shared token of two each: precision 1/2, recall 1/2.
  CHECK(squad_f1("the big cat", "a big dog") == doctest::Approx(0.5));
  CHECK(squad_f1("big big cat", "big cat cat dog") == doctest::Approx(2 * (2.0 / 3) * (2.0 / 4) / (2.0 / 3 + 2.0 / 4)));
  CHECK(squad_f1("", "cat") == 0.0);
  CHECK(squad_f1("the", "a") == 0.0);  // both normalise to nothing: the official script gives 0
}

TEST_CASE("squad: metrics take the best gold answer per question, x 100") {
  squad_data gold;
  gold.contexts = {"c"};
  gold.questions = {{"1", "q", 0, 0, {{"Denver Broncos", 0}, {"Broncos", 0}}}, {"2", "q", 0, 0, {{"Santa Clara, California", 0}}}};
  const std::vector<std::string> predictions{"broncos", "Santa Clara"};
  const metric_values m = squad_metrics(gold, predictions);
  CHECK(m.items().front().first == "f1");
  CHECK(m.at("exact_match") == doctest::Approx(50.0));
  CHECK(m.at("f1") == doctest::Approx(100 * (1.0 + 0.8) / 2));  // "santa clara" vs "santa clara california": 2 * 1 * 2/3 / (5/3)
}

TEST_CASE("squad: answer offsets count code points, so multi-byte text is found, an offset off its text is an error") {
  // "Café " is five code points and six bytes: the answer starts at code point 5.
  const scratch_file f("multibyte.json", one_question("Café au lait est bon.", "au lait", 5));
  const squad_data data = read_squad(f.path);
  REQUIRE(data.questions.size() == 1);
  CHECK(data.questions[0].answers[0].start == 5);
  CHECK(error_of("bytes.json", one_question("Café au lait est bon.", "au lait", 6)) ==
        "SQuAD file '" + dir + "bytes.json': question 'q1': the answer 'au lait' is not at character 6 of its context");
  CHECK(error_of("past.json", one_question("Short.", "Short.", 3)) ==
        "SQuAD file '" + dir + "past.json': question 'q1': the answer 'Short.' is not at character 3 of its context");
  CHECK(error_of("json.json", "{\"data\": [") .starts_with("SQuAD file '" + dir + "json.json': not valid JSON"));
  CHECK(error_of("big.json", "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": 1e9999}]}]}")
            .starts_with("SQuAD file '" + dir + "big.json': not valid JSON"));  // a number out of range
  CHECK(error_of("data.json", "{\"version\": \"1.1\"}") == "SQuAD file '" + dir + "data.json': the top level has no list 'data'");
  CHECK(error_of("start.json", R"({"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q9", "question": "?", "answers": [{"text": "x", "answer_start": 0.5}]}]}]}]})") ==
        "SQuAD file '" + dir + "start.json': an answer of question 'q9' has no whole-number 'answer_start'");
  CHECK(error_of("empty.json", R"({"data": []})") == "SQuAD file '" + dir + "empty.json': no questions");
}

TEST_CASE("squad: sliding windows: an answer across a window boundary is labelled only where it fits, max context decides") {
  // 20 one-piece words; the answer "w10 w11" (words 10 and 11, counting from 0).
  std::string context;
  for (int i = 0; i < 20; ++i) context += (i ? " " : "") + std::string(1, static_cast<char>('a' + i));
  const scratch_file f("windows.json", one_question(context, "k l", 20));  // "k" is word 10 at character 20
  squad_options o;
  o.max_query = 4;
  o.max_seq = 4 + 3 + 8;  // question "what is it ?" (4 pieces), windows of 8 context pieces
  o.stride = 5;
  const qa_dataset data = make_qa_features(read_squad(f.path), uncased(), o);
  // Windows start at pieces 0, 5, 10, 15 (the last reaches the end): [0, 8), [5, 13), [10, 18), [15, 20).
  REQUIRE(data.examples.size() == 4);
  const index_t offset = 1 + 4 + 1;  // [CLS] question [SEP]
  CHECK(data.examples[0].start == 0);  // pieces 10, 11 are not in [0, 8)
  CHECK(data.examples[1].start == offset + 5);
  CHECK(data.examples[1].end == offset + 6);
  CHECK(data.examples[2].start == offset + 0);
  CHECK(data.examples[3].start == 0);
  const qa_feature& second = data.examples[1];
  CHECK(second.ids.size() == static_cast<std::size_t>(offset + 8 + 1));
  CHECK(second.spans[static_cast<std::size_t>(offset + 5)] == std::pair<index_t, index_t>{20, 21});
  CHECK(second.type_ids[static_cast<std::size_t>(offset)] == 1);
  // Piece 10 sits 5 from [5, 13)'s start and 2 from its end (min 2), 0 and 7 in [10, 18) (min 0): max context in the second.
  CHECK(second.max_context[static_cast<std::size_t>(offset + 5)] == 1);
  CHECK(data.examples[2].max_context[static_cast<std::size_t>(offset)] == 0);
  token_batch b;
  make_batch(data, std::vector<std::size_t>{1, 3}, 0, b);
  CHECK(b.labels == std::vector<token_id>{offset + 5, offset + 6, 0, 0});
  CHECK(b.seq == offset + 9);
}

TEST_CASE("squad: extraction keeps the best valid span over all windows and cuts its text by character offsets") {
  const scratch_file f("extract.json", one_question("Zürich is big. Bern is small.", "Bern", 15));
  squad_options o;
  const qa_dataset data = make_qa_features(read_squad(f.path), uncased(), o);
  REQUIRE(data.examples.size() == 1);
  const qa_feature& feature = data.examples[0];
  const auto n = feature.ids.size();
  // Spans count code points: "Zürich" is 6 of them (7 bytes); the answer "Bern" starts at 15.
  CHECK(feature.spans[6] == std::pair<index_t, index_t>{0, 6});
  CHECK(feature.spans[10] == std::pair<index_t, index_t>{15, 19});
  CHECK(feature.start == 10);
  CHECK(feature.end == 10);
  // Context pieces start after [CLS] what is it ? [SEP] (6): zurich is big . bern is small .
  std::vector<float> start(n, 0), end(n, 0);
  start[0] = end[0] = 50;  // [CLS] scores highest, but it is not a context piece
  start[6] = 10;           // "zurich"
  end[6] = 9;
  start[10] = 8;  // "bern" ... "small": a longer span with a lower score
  end[12] = 8;
  end[13] = 20;  // "." after "small" ends the best span with start "zurich": 10 + 20
  answer_extractor extractor(data, o);
  extractor.add(0, start, end);
  CHECK(extractor.answers() == std::vector<std::string>{"Zürich is big. Bern is small."});
  // At most 3 pieces: "zurich" alone scores 10 + 9 = 19, "is small ." 0 + 20 = 20 (the first of the
  // spans ending at 13 that tie at 20, in order of their start).
  o.max_answer = 3;
  answer_extractor shorter(data, o);
  shorter.add(0, start, end);
  CHECK(shorter.answers() == std::vector<std::string>{"is small."});
  end[13] = 0;
  answer_extractor zurich(data, o);
  zurich.add(0, start, end);
  CHECK(zurich.answers() == std::vector<std::string>{"Zürich"});
  answer_extractor none(data, o);
  CHECK(none.answers() == std::vector<std::string>{""});
}
