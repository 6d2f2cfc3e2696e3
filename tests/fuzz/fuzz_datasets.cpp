// SPDX-License-Identifier: Apache-2.0
// Fuzzes the dataset readers, then builds batches from what they return. The first input byte picks
// the reader: a custom TSV file (layout from its header), a raw-text corpus, GLUE's CoLA (headerless),
// MNLI (text labels) or STS-B (scores) layouts, a CoNLL-U file, a CoNLL NER file, or a SQuAD JSON file
// (through the sliding windows).
#include <numeric>
#include <vector>

#include "earlybert/io/datasets.hpp"
#include "earlybert/tasks/glue.hpp"
#include "earlybert/tasks/squad.hpp"
#include "earlybert/tasks/tagging.hpp"
#include "fuzz_input.hpp"

namespace {
template <class Dataset>
void batch_of(const Dataset& data, earlybert::token_id pad) {
  earlybert::token_batch batch;
  std::vector<std::size_t> all(std::min<std::size_t>(data.examples.size(), 8));
  std::iota(all.begin(), all.end(), std::size_t{0});
  if (!all.empty()) earlybert::make_batch(data, all, pad, batch);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const earlybert::wordpiece_tokenizer tokenizer(
      earlybert::vocabulary::load(EARLYBERT_DATA_DIR "/vocab/bert-base-uncased-vocab.txt"),
      earlybert::tokenizer_options{.lower_case = true, .never_split = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}});
  static const earlybert::special_tokens special = earlybert::special_tokens::of(tokenizer.vocab());
  if (size == 0) return 0;
  const int reader = data[0] % 8;
  const auto path = earlybert::fuzz::input_file(data + 1, size - 1, reader == 1 ? ".txt" : ".tsv");
  earlybert::fuzz::expect_success_or_library_error([&] {
    switch (reader) {
      case 0: batch_of(earlybert::read_classification_tsv(path, tokenizer, 16, 2), special.pad); break;
      case 1: {
        earlybert::token_batch batch;
        const auto corpus = earlybert::read_corpus(path, tokenizer);
        std::vector<std::size_t> all(static_cast<std::size_t>(std::min<earlybert::index_t>(corpus.sequences(16), 8)));
        std::iota(all.begin(), all.end(), std::size_t{0});
        earlybert::make_corpus_batch(corpus, all, 16, special, batch);
        break;
      }
      case 2:
      case 3:
      case 4: {
        const char* task = reader == 2 ? "cola" : reader == 3 ? "mnli" : "stsb";
        batch_of(earlybert::read_sentence_tsv(path, earlybert::find_glue_task(task)->layout, tokenizer, 16), special.pad);
        break;
      }
      case 7: {
        earlybert::squad_options options;
        options.max_seq = 24;
        options.max_query = 6;
        options.stride = 5;
        batch_of(earlybert::make_qa_features(earlybert::read_squad(path), tokenizer, options), special.pad);
        break;
      }
      default: {
        auto sentences = reader == 5 ? earlybert::read_conllu(path) : earlybert::read_conll_ner(path);
        const std::vector<earlybert::tagged_sentence>* sets[] = {&sentences};
        std::vector<std::string> tags = earlybert::tag_set(sets);
        batch_of(earlybert::encode_tagging(std::move(sentences), tokenizer, 16, std::move(tags), "fuzz"), special.pad);
      }
    }
  });
  return 0;
}
