// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the reader tests share: BERT's uncased tokenizer from the bundled vocabulary (the suite defines
// EARLYBERT_DATA_DIR) and a file in the temporary directory that lives as long as its object.
#include <filesystem>
#include <string>

#include "earlybert/io/files.hpp"
#include "earlybert/io/tokenizer.hpp"

namespace earlybert::testing {

inline const wordpiece_tokenizer& uncased_tokenizer() {
  static const wordpiece_tokenizer tokenizer = bert_tokenizer(vocabulary::load(std::string(EARLYBERT_DATA_DIR) + "/vocab/bert-base-uncased-vocab.txt"));
  return tokenizer;
}

// temp/<prefix><name> holding `contents`, removed with the object.
struct scratch_file {
  std::filesystem::path path;
  scratch_file(const std::string& prefix, const std::string& name, const std::string& contents)
      : path(std::filesystem::temp_directory_path() / (prefix + name)) {
    write_file_atomically(path, contents);
  }
  scratch_file(const scratch_file&) = delete;
  scratch_file& operator=(const scratch_file&) = delete;
  ~scratch_file() { std::filesystem::remove(path); }
};

}  // namespace earlybert::testing
