// SPDX-License-Identifier: Apache-2.0
#pragma once
// Metrics as JSON lines: one object per line, written whole and flushed, so a reader following the
// file (or a crash) never sees a partial line.
//
//   {"event":"step","step":…,"loss":…,"lr":…,"tokens_per_s":…,"elapsed_s":…}
//   {"event":"eval","step":…,"accuracy":…}            (masked LM: "mlm_accuracy" and "loss")
// Other events (the EarlyBERT pipeline's) follow the same shape: an "event" name first.

#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"

namespace earlybert {

class metrics_log {
 public:
  metrics_log() = default;  // writes nothing
  explicit metrics_log(const std::filesystem::path& path) : path_(path.string()) {
    file_ = std::fopen(path_.c_str(), "w");
    if (file_ == nullptr) throw io_error(fmt::format("metrics '{}': cannot open the file for writing", path_));
  }
  metrics_log(const metrics_log&) = delete;
  metrics_log& operator=(const metrics_log&) = delete;
  ~metrics_log() {
    if (file_ != nullptr) std::fclose(file_);
  }

  bool enabled() const noexcept { return file_ != nullptr; }

  void write(const nlohmann::ordered_json& event) {
    if (file_ == nullptr) return;
    const std::string line = event.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
      throw io_error(fmt::format("metrics '{}': writing failed", path_));
    }
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace earlybert
