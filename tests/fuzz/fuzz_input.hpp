// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the fuzz targets share: the input as a file (the readers under test take paths, and reading
// the file is part of what is tested), and the rule that the only acceptable failure is an
// earlybert::error. Anything else (a crash, a sanitizer report, another exception, a leak) is a bug.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "earlybert/core/error.hpp"

namespace earlybert::fuzz {

// The fuzz input written to a file of this process, named with `suffix` (some readers look at it).
inline std::filesystem::path input_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("earlybert_fuzz_" + std::to_string(::getpid()) + suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs f(); a library error is the expected answer to a malformed input.
template <class F>
void expect_success_or_library_error(F&& f) {
  try {
    f();
  } catch (const earlybert::error&) {
  }
}

}  // namespace earlybert::fuzz
