// SPDX-License-Identifier: Apache-2.0
// Fuzzes the vocabulary reader and the special-token lookup.
#include "earlybert/io/vocabulary.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = earlybert::fuzz::input_file(data, size, "_vocab.txt");
  earlybert::fuzz::expect_success_or_library_error([&] {
    const auto vocab = earlybert::vocabulary::load(path);
    (void)earlybert::special_tokens::of(vocab);
  });
  return 0;
}
