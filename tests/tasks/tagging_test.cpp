// SPDX-License-Identifier: Apache-2.0
// Token classification: the CoNLL-U and CoNLL NER readers on crafted files (comments, multiword
// tokens, empty nodes, WNUT's tab-only separators, CoNLL-2003's columns and -DOCSTART-), their
// errors, the first-piece labelling, cut-off words and the scorers.
#include "earlybert/tasks/tagging.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/data_files.hpp"

using namespace earlybert;
namespace fs = std::filesystem;

namespace {
const wordpiece_tokenizer& uncased() { return testing::uncased_tokenizer(); }

// A scratch file named temp/earlybert_tagging_<name>.
struct scratch_file : testing::scratch_file {
  scratch_file(const std::string& name, const std::string& contents) : testing::scratch_file("earlybert_tagging_", name, contents) {}
};

template <class Read>
std::string error_of(Read read, const std::string& name, const std::string& contents) {
  const scratch_file f(name, contents);
  try {
    read(f.path);
  } catch (const io_error& e) {
    return e.what();
  }
  return "no error";
}

const std::string dir = (fs::temp_directory_path() / "earlybert_tagging_").string();

std::string conllu_word(int id, const std::string& form, const std::string& upos) {
  return std::to_string(id) + "\t" + form + "\t_\t" + upos + "\t_\t_\t0\troot\t_\t_\n";
}
}  // namespace

TEST_CASE("tagging: CoNLL-U's syntactic words with their UPOS, comments, multiword tokens and empty nodes skipped") {
  const scratch_file f("ud.conllu", "# newdoc id = a\n# sent_id = 1\n# text = I don't know.\n" + conllu_word(1, "I", "PRON") +
                                        "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n" + conllu_word(2, "do", "AUX") + conllu_word(3, "n't", "PART") +
                                        "3.1\tknow\t_\t_\t_\t_\t_\t_\t_\t_\n" + conllu_word(4, "know", "VERB") + conllu_word(5, ".", "PUNCT") +
                                        "\n# sent_id = 2\n" + conllu_word(1, "Yes", "INTJ"));  // no final empty line
  const std::vector<tagged_sentence> s = read_conllu(f.path);
  REQUIRE(s.size() == 2);
  CHECK(s[0].words == std::vector<std::string>{"I", "do", "n't", "know", "."});
  CHECK(s[0].tags == std::vector<std::string>{"PRON", "AUX", "PART", "VERB", "PUNCT"});
  CHECK(s[1].tags == std::vector<std::string>{"INTJ"});
  CHECK(error_of([](const fs::path& p) { return read_conllu(p); }, "columns.conllu", "1\tI\tPRON\n") ==
        "CoNLL-U file '" + dir + "columns.conllu': line 1: found 3 tab-separated fields, expected 10");
  CHECK(error_of([](const fs::path& p) { return read_conllu(p); }, "id.conllu", "# c\nx\tI\t_\tPRON\t_\t_\t0\troot\t_\t_\n") ==
        "CoNLL-U file '" + dir + "id.conllu': line 2: word id 'x' is not a number, a range or a decimal");
  CHECK(error_of([](const fs::path& p) { return read_conllu(p); }, "tag.conllu", conllu_word(1, "I", "_")) ==
        "CoNLL-U file '" + dir + "tag.conllu': line 1: the word 'I' has no tag in column 4");
  CHECK(error_of([](const fs::path& p) { return read_conllu(p); }, "empty.conllu", "# only a comment\n\n") ==
        "CoNLL-U file '" + dir + "empty.conllu': no sentences, expected word lines of ten columns");
}

TEST_CASE("tagging: NER files: WNUT's word<TAB>tag with tab-only separators, CoNLL-2003's columns and -DOCSTART-") {
  const scratch_file wnut("wnut.conll", "@paulwalk\tO\nIt\tO\n's\tO\nthe\tO\nEmpire\tB-location\nState\tI-location\n\t\nfrom\tO\nNYC\tB-location\n");
  const std::vector<tagged_sentence> w = read_conll_ner(wnut.path);
  REQUIRE(w.size() == 2);
  CHECK(w[0].words.size() == 6);
  CHECK(w[0].tags[4] == "B-location");
  CHECK(w[1].words == std::vector<std::string>{"from", "NYC"});
  const scratch_file conll("conll2003.txt", "-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\n");
  const std::vector<tagged_sentence> c = read_conll_ner(conll.path);
  REQUIRE(c.size() == 1);
  CHECK(c[0].words == std::vector<std::string>{"EU", "rejects", "German"});
  CHECK(c[0].tags == std::vector<std::string>{"I-ORG", "O", "I-MISC"});  // IOB1
  CHECK(entity_spans(c[0].tags) == std::vector<entity_span>{{0, 1, "ORG"}, {2, 3, "MISC"}});
  CHECK(error_of([](const fs::path& p) { return read_conll_ner(p); }, "one.conll", "word\tO\nlonely\n") ==
        "NER file '" + dir + "one.conll': line 2: found 1 column ('lonely'), expected a word and its tag");
  CHECK(error_of([](const fs::path& p) { return read_conll_ner(p); }, "tag.conll", "word\tPER\n") ==
        "NER file '" + dir + "tag.conll': line 1: tag 'PER' is not O, B-TYPE or I-TYPE");
  // A CoNLL-U file is not read as NER (its comments would be words), with or without tags required;
  // a lone "#" word is still a word.
  for (const bool tags : {true, false}) {
    CHECK(error_of([&](const fs::path& p) { return read_conll_ner(p, tags); }, "ud.conllu", "# sent_id = 1\n" + conllu_word(1, "Hi", "INTJ")) ==
          "NER file '" + dir + "ud.conllu': line 1: this is CoNLL-U (a '# key = value' comment), expected a word and its tag per line");
    CHECK(error_of([&](const fs::path& p) { return read_conll_ner(p, tags); }, "ud.conllu", conllu_word(1, "Hi", "INTJ")) ==
          "NER file '" + dir + "ud.conllu': line 1: this is CoNLL-U (ten tab-separated columns), expected a word and its tag per line");
  }
  const scratch_file hashtag("hashtag.conll", "#\tO\nfun\tO\n");
  CHECK(read_conll_ner(hashtag.path).front().words == std::vector<std::string>{"#", "fun"});
}

TEST_CASE("tagging: a word's tag sits on its first piece, others and specials are ignored, cut-off words are counted") {
  std::vector<tagged_sentence> s{{{"the", "embeddings", "work"}, {"DET", "NOUN", "VERB"}}};
  const std::vector<tagged_sentence>* sets[] = {&s};
  const std::vector<std::string> tags = tag_set(sets);
  CHECK(tags == std::vector<std::string>{"DET", "NOUN", "VERB"});
  const tagging_dataset data = encode_tagging(s, uncased(), 64, tags, "test");
  const tagging_example& e = data.examples[0];
  // [CLS] the em ##bed ##ding ##s work [SEP]
  REQUIRE(e.ids.size() == 8);
  CHECK(e.labels == std::vector<token_id>{ignore_label, 0, 1, ignore_label, ignore_label, ignore_label, 2, ignore_label});
  CHECK(e.first_piece == std::vector<index_t>{1, 2, 6});
  CHECK(data.cut_words == 0);
  // With room for [CLS], 'the' and [SEP] only, the last two words are cut off.
  const tagging_dataset cut = encode_tagging(s, uncased(), 4, tags, "test");
  CHECK(cut.examples[0].first_piece == std::vector<index_t>{1, -1, -1});
  CHECK(cut.cut_words == 2);
  CHECK(cut.examples[0].ids.size() == 3);
  token_batch b;
  make_batch(data, std::vector<std::size_t>{0}, 0, b);
  CHECK(b.labels == e.labels);
  CHECK(b.word_of == std::vector<index_t>{-1, 0, 1, 1, 1, 1, 2, -1});
  // Of the cut sentence only the first word is there: [CLS] the [SEP].
  make_batch(cut, std::vector<std::size_t>{0}, 0, b);
  CHECK(b.word_of == std::vector<index_t>{-1, 0, -1});
  std::vector<tagged_sentence> unknown{{{"run"}, {"ADV"}}};
  CHECK_THROWS_WITH_AS(encode_tagging(unknown, uncased(), 64, tags, "'dev.conllu'"),
                       "'dev.conllu': sentence 1, word 1 ('run'): tag 'ADV' is not among the task's 3 tags", io_error);
}

TEST_CASE("tagging: word accuracy counts cut-off words as wrong, entity scores read them as O") {
  std::vector<tagged_sentence> s{{{"Ann", "met", "Bob", "Lee"}, {"B-PER", "O", "B-PER", "I-PER"}}};
  const std::vector<std::string> tags{"B-PER", "I-PER", "O"};
  const tagging_dataset data = encode_tagging(s, uncased(), 64, tags, "test");
  // Ann B-PER (right), met O (right), Bob B-PER (right), Lee cut off: one of two entities found.
  const std::vector<std::vector<int>> predicted{{0, 2, 0, -1}};
  const metric_values m = tagging_metrics(data, predicted, true);
  CHECK(m.items().front().first == "f1");
  CHECK(m.at("accuracy") == doctest::Approx(0.75));
  CHECK(m.at("precision") == doctest::Approx(0.5));  // Bob [2, 3) is not Bob Lee [2, 4)
  CHECK(m.at("recall") == doctest::Approx(0.5));
  CHECK(m.at("f1") == doctest::Approx(0.5));
  const metric_values upos = tagging_metrics(data, predicted, false, "test");
  CHECK(upos.items().size() == 1);
  CHECK(upos.at("accuracy_test") == doctest::Approx(0.75));
  CHECK_THROWS_AS(tagging_metrics(data, std::vector<std::vector<int>>{{0, 1}}, false), shape_error);
}

TEST_CASE("tagging: text to tag: missing tags read as none and are not scored") {
  const scratch_file ud("untagged.conllu", conllu_word(1, "Hi", "_") + conllu_word(2, "there", "_"));
  CHECK_THROWS_AS(read_conllu(ud.path), io_error);
  const std::vector<tagged_sentence> s = read_conllu(ud.path, 3, false);
  REQUIRE(s.size() == 1);
  CHECK(s[0].tags == std::vector<std::string>{"", ""});
  const scratch_file ner("untagged.conll", "Hello\nParis\tB-location\n");
  const std::vector<tagged_sentence> n = read_conll_ner(ner.path, false);
  CHECK(n[0].tags == std::vector<std::string>{"", "B-location"});
  const std::vector<std::string> tags{"B-location", "O"};
  CHECK_THROWS_AS(encode_tagging(n, uncased(), 16, tags, "t"), io_error);
  const tagging_dataset data = encode_tagging(n, uncased(), 16, tags, "t", false);
  CHECK(data.examples[0].labels == std::vector<token_id>{ignore_label, ignore_label, 0, ignore_label});
  CHECK(data.examples[0].first_piece == std::vector<index_t>{1, 2});
}
