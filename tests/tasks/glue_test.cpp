// SPDX-License-Identifier: Apache-2.0
// GLUE's layouts read from crafted files in their exact formats (CoLA's headerless rows, MNLI's
// parse columns and text labels, QQP's columns, STS-B's scores), their errors, and the metrics each
// task names.
#include "earlybert/tasks/glue.hpp"

#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "support/data_files.hpp"

using namespace earlybert;
namespace fs = std::filesystem;

namespace {
const wordpiece_tokenizer& uncased() { return testing::uncased_tokenizer(); }

// A scratch file named temp/earlybert_glue_<name>.
struct scratch_file : testing::scratch_file {
  scratch_file(const std::string& name, const std::string& contents) : testing::scratch_file("earlybert_glue_", name, contents) {}
};

const tsv_layout& layout_of(const char* name) {
  const sentence_task* task = find_glue_task(name);
  REQUIRE(task != nullptr);
  return task->layout;
}

std::string error_of(const char* task, const std::string& file, const std::string& contents) {
  const scratch_file f(file, contents);
  try {
    read_sentence_tsv(f.path, layout_of(task), uncased(), 64);
  } catch (const io_error& e) {
    return e.what();
  }
  return "no error";
}

const std::string prefix = "dataset '" + (fs::temp_directory_path() / "earlybert_glue_").string();
}  // namespace

TEST_CASE("glue: every task named once, with a main metric, a train file and a dev file") {
  std::vector<std::string> names;
  for (const sentence_task& task : glue_tasks()) {
    names.push_back(task.name);
    CHECK_FALSE(task.metrics.empty());
    CHECK_FALSE(task.dev.empty());
    CHECK(task.dev.front().name.empty());
    CHECK(task.layout.num_labels == (task.layout.label_names.empty() ? task.layout.num_labels : static_cast<int>(task.layout.label_names.size())));
  }
  CHECK(names == std::vector<std::string>{"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"});
  CHECK(find_glue_task("squad") == nullptr);
  CHECK(find_glue_task("cola")->metrics.front() == "mcc");
  CHECK(find_glue_task("stsb")->layout.regression());
}

TEST_CASE("glue: CoLA's headerless rows, its empty and one-space marks and a last line without newline") {
  const scratch_file f("cola.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n"
                                   "gj04\t0\t*\tThe sailors rode clear of the rocks the breeze.\n"
                                   "s_97\t1\t \tThey said so.");
  const classification_dataset data = read_sentence_tsv(f.path, layout_of("cola"), uncased(), 64);
  REQUIRE(data.examples.size() == 3);
  CHECK_FALSE(data.sentence_pairs);
  CHECK(data.examples[0].label == 1);
  CHECK(data.examples[1].label == 0);
  CHECK(data.examples[2].label == 1);
  CHECK(data.examples[2].ids.size() == 6);  // [CLS] they said so . [SEP]
  // A header line in a headerless layout is a row whose label is not an integer.
  CHECK(error_of("cola", "cola_header.tsv", "source\tlabel\tmark\tsentence\ngj04\t1\t\tFine.\n") ==
        prefix + "cola_header.tsv': line 1: label 'label' is not an integer");
  CHECK(error_of("cola", "cola_columns.tsv", "gj04\t1\tFine.\n") ==
        prefix + "cola_columns.tsv': line 1: found 3 tab-separated fields, expected 4 as in the layout");
  CHECK(error_of("cola", "cola_empty.tsv", "") == prefix + "cola_empty.tsv': the file is empty, expected examples");
}

TEST_CASE("glue: MNLI's train and dev layouts (parse columns, label1..label5) with text labels") {
  const std::string parses = "( ( A ) )\t( ( B ) )\t(ROOT (S A))\t(ROOT (S B))";
  const scratch_file train("mnli_train.tsv",
                           "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
                           "sentence1\tsentence2\tlabel1\tgold_label\n"
                           "0\t31193\t31193n\tgovernment\t" + parses + "\tConceptually cream skimming has two dimensions.\t"
                           "Product and geography are what make cream skimming work.\tneutral\tneutral\n"
                           "1\t101457\t101457e\ttelephone\t" + parses + "\tyou know during the season\tYou lose the things.\tentailment\tentailment\n");
  const classification_dataset t = read_sentence_tsv(train.path, layout_of("mnli"), uncased(), 64);
  REQUIRE(t.examples.size() == 2);
  CHECK(t.sentence_pairs);
  CHECK(t.examples[0].label == 2);  // contradiction 0, entailment 1, neutral 2 (HuggingFace's order)
  CHECK(t.examples[1].label == 1);
  const scratch_file dev("mnli_dev.tsv",
                         "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
                         "sentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
                         "0\t63735\t63735n\tslate\t" + parses + "\tThe new rights are nice enough\tEveryone really likes the newest benefits \t"
                         "neutral\tentailment\tneutral\tneutral\tneutral\tneutral\n"
                         "1\t91383\t91383c\tgovernment\t" + parses + "\tThis site includes a list.\tThe Government Executive articles housed on the website "
                         "are not able to be searched.\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\n");
  const classification_dataset d = read_sentence_tsv(dev.path, layout_of("mnli"), uncased(), 64);
  REQUIRE(d.examples.size() == 2);
  CHECK(d.examples[0].label == 2);
  CHECK(d.examples[1].label == 0);
  CHECK(error_of("mnli", "mnli_label.tsv", "sentence1\tsentence2\tgold_label\na\tb\t-\n") ==
        prefix + "mnli_label.tsv': line 2: label '-' is not one of contradiction, entailment, neutral");
  CHECK(error_of("mnli", "mnli_missing.tsv", "sentence1\tgold_label\na\tneutral\n") ==
        prefix + "mnli_missing.tsv': line 1: the header has no text column 'sentence2' (found 'sentence1', 'gold_label')");
}

TEST_CASE("glue: QQP's columns, RTE's and QNLI's text labels") {
  const scratch_file qqp("qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                    "133273\t213221\t213222\tHow is the life of a math student?\tWhich level of prepration is enough?\t0\n"
                                    "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n");
  const classification_dataset q = read_sentence_tsv(qqp.path, layout_of("qqp"), uncased(), 64);
  REQUIRE(q.examples.size() == 2);
  CHECK(q.gold_labels() == std::vector<int>{0, 1});
  const scratch_file rte("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\t\"Quoted at the start.\tA hypothesis.\tnot_entailment\n"
                                    "1\tA premise.\tA hypothesis.\tentailment\n");
  const classification_dataset r = read_sentence_tsv(rte.path, layout_of("rte"), uncased(), 64);
  CHECK(r.gold_labels() == std::vector<int>{1, 0});
  const scratch_file qnli("qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe constitution came into force.\tentailment\n");
  CHECK(read_sentence_tsv(qnli.path, layout_of("qnli"), uncased(), 64).gold_labels() == std::vector<int>{0});
  CHECK(error_of("rte", "rte_label.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n") ==
        prefix + "rte_label.tsv': line 2: label '1' is not one of entailment, not_entailment");
}

TEST_CASE("glue: STS-B's scores read as regression targets, a bad score is an error") {
  const scratch_file f("stsb.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                                   "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man is dancing.\tA man wearing a hat is dancing.\t5.000\n"
                                   "1\tmain-forums\tdeft-forum\t2014\t0001\tnone\tnone\t\"Quoted.\tSo it is.\t0.800\n");
  const classification_dataset data = read_sentence_tsv(f.path, layout_of("stsb"), uncased(), 64);
  REQUIRE(data.examples.size() == 2);
  CHECK(data.regression);
  CHECK(data.examples[0].target == 5.0);
  CHECK(data.examples[1].target == doctest::Approx(0.8));
  token_batch b;
  make_classification_batch(data, std::vector<std::size_t>{1, 0}, 0, b);
  CHECK(b.targets == std::vector<double>{0.8, 5.0});
  const std::string header = "sentence1\tsentence2\tscore\n";
  CHECK(error_of("stsb", "stsb_score.tsv", header + "a\tb\thigh\n") == prefix + "stsb_score.tsv': line 2: score 'high' is not a finite number");
  CHECK(error_of("stsb", "stsb_nan.tsv", header + "a\tb\tnan\n") == prefix + "stsb_nan.tsv': line 2: score 'nan' is not a finite number");
  CHECK(error_of("stsb", "stsb_space.tsv", header + "a\tb\t3.5 \n") == prefix + "stsb_space.tsv': line 2: score '3.5 ' is not a finite number");
}

TEST_CASE("glue: sentence_metrics computes each task's metrics, suffixed for a second dev set") {
  classification_dataset gold;
  gold.labelled = true;
  for (int label : {1, 0, 0, 1, 1}) gold.examples.push_back({{101, 102}, {0, 0}, label, 0});
  sentence_predictions p;
  p.classes = {1, 1, 0, 0, 1};
  const std::vector<std::string> names{"mcc", "f1", "accuracy"};
  const metric_values m = sentence_metrics(names, p, gold, "mismatched");
  REQUIRE(m.items().size() == 3);
  CHECK(m.items()[0].first == "mcc_mismatched");
  CHECK(m.at("mcc_mismatched") == doctest::Approx(1.0 / 6.0));
  CHECK(m.at("f1_mismatched") == doctest::Approx(2.0 / 3.0));
  CHECK(m.at("accuracy_mismatched") == doctest::Approx(0.6));
  CHECK_THROWS_WITH_AS(m.at("pearson"), "metric 'pearson' was not computed (there are: mcc_mismatched, f1_mismatched, accuracy_mismatched)",
                       config_error);
  const std::vector<std::string> regression{"pearson"};
  CHECK_THROWS_WITH_AS(sentence_metrics(regression, p, gold), "sentence_metrics: 'pearson' scores a regression, and the dataset holds classes",
                       config_error);
}
