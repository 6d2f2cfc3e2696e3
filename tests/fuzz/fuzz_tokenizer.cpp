// SPDX-License-Identifier: Apache-2.0
// Fuzzes the WordPiece tokenizer with BERT's uncased vocabulary: any bytes, valid UTF-8 or not, as a
// single text and as a pair.
#include <string_view>

#include "earlybert/io/tokenizer.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const earlybert::wordpiece_tokenizer tokenizer(
      earlybert::vocabulary::load(EARLYBERT_DATA_DIR "/vocab/bert-base-uncased-vocab.txt"),
      earlybert::tokenizer_options{.lower_case = true, .never_split = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}});
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  earlybert::fuzz::expect_success_or_library_error([&] {
    (void)tokenizer.encode(text);
    const std::size_t half = size / 2;
    (void)tokenizer.encode(text.substr(0, half), text.substr(half), true);
  });
  return 0;
}
