// SPDX-License-Identifier: Apache-2.0
// Fuzzes config.json parsing: JSON syntax, key types, ranges, the kept-structure lists.
#include "earlybert/io/checkpoint.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = earlybert::fuzz::input_file(data, size, "_config.json");
  earlybert::fuzz::expect_success_or_library_error([&] { (void)earlybert::read_config(path); });
  return 0;
}
