// SPDX-License-Identifier: Apache-2.0
// Fuzzes the safetensors reader: the header, the offsets, the dtypes, and reading every tensor.
#include "earlybert/io/safetensors.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = earlybert::fuzz::input_file(data, size, ".safetensors");
  earlybert::fuzz::expect_success_or_library_error([&] {
    const auto reader = earlybert::safetensors_reader::open(path);
    for (const auto& t : reader.tensors()) {
      // Read each tensor as the shape it declares (rank 1 as one row), in float.
      if (t.shape.size() > 2) continue;
      const auto rows = t.shape.size() == 2 ? t.shape[0] : 1, cols = t.shape.empty() ? 1 : t.shape.back();
      earlybert::matrix<float> m(rows, cols);
      reader.read(t.name, m);
    }
  });
  return 0;
}
