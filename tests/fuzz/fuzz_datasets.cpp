// SPDX-License-Identifier: Apache-2.0
// Fuzzes the TSV reader (GLUE layout: header, text columns, label) and the raw-text corpus reader,
// then builds batches from what they return. The first input byte picks the reader.
#include <numeric>
#include <vector>

#include "earlybert/io/datasets.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const earlybert::wordpiece_tokenizer tokenizer(
      earlybert::vocabulary::load(EARLYBERT_DATA_DIR "/vocab/bert-base-uncased-vocab.txt"),
      earlybert::tokenizer_options{.lower_case = true, .never_split = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}});
  static const earlybert::special_tokens special = earlybert::special_tokens::of(tokenizer.vocab());
  if (size == 0) return 0;
  const bool tsv = data[0] % 2 == 0;
  const auto path = earlybert::fuzz::input_file(data + 1, size - 1, tsv ? ".tsv" : ".txt");
  earlybert::fuzz::expect_success_or_library_error([&] {
    earlybert::token_batch batch;
    if (tsv) {
      const auto dataset = earlybert::read_classification_tsv(path, tokenizer, 16, 2);
      std::vector<std::size_t> all(std::min<std::size_t>(dataset.examples.size(), 8));
      std::iota(all.begin(), all.end(), std::size_t{0});
      earlybert::make_classification_batch(dataset, all, special.pad, batch);
    } else {
      const auto corpus = earlybert::read_corpus(path, tokenizer);
      std::vector<std::size_t> all(static_cast<std::size_t>(std::min<earlybert::index_t>(corpus.sequences(16), 8)));
      std::iota(all.begin(), all.end(), std::size_t{0});
      earlybert::make_corpus_batch(corpus, all, 16, special, batch);
    }
  });
  return 0;
}
