// SPDX-License-Identifier: Apache-2.0
#pragma once
// Metrics as JSON lines: one object per line, written whole and flushed, so a reader following the
// file (or a crash) never sees a partial line.
//
//   {"event":"step","step":…,"loss":…,"lr":…,"tokens_per_s":…,"elapsed_s":…}
//   {"event":"eval","step":…,"accuracy":…}            (masked LM: "mlm_accuracy" and "loss")
// Other events (the EarlyBERT pipeline's) follow the same shape: an "event" name first.
// A resumed run continues the file of the interrupted one: the lines written after its training
// state are cut off (position() is recorded in the state) and writing goes on from there.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

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
  // Continues `path`, first cutting it to its first `length` bytes (a position() of an earlier run).
  metrics_log(const std::filesystem::path& path, std::int64_t length) : path_(path.string()) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || static_cast<std::uint64_t>(length) > size || length < 0) {
      throw io_error(fmt::format("metrics '{}': {}, but the training state records {} bytes written (was the file changed?)", path_,
                                 ec ? "cannot read its size (" + ec.message() + ")" : fmt::format("the file has {} bytes", size), length));
    }
    std::filesystem::resize_file(path, static_cast<std::uintmax_t>(length), ec);
    if (ec) throw io_error(fmt::format("metrics '{}': cannot cut the file to {} bytes ({})", path_, length, ec.message()));
    file_ = std::fopen(path_.c_str(), "a");
    if (file_ == nullptr) throw io_error(fmt::format("metrics '{}': cannot open the file for appending", path_));
    if (std::fseek(file_, 0, SEEK_END) != 0) {
      std::fclose(file_);
      throw io_error(fmt::format("metrics '{}': cannot seek to the end of the file", path_));
    }
  }
  metrics_log(const metrics_log&) = delete;
  metrics_log& operator=(const metrics_log&) = delete;
  ~metrics_log() {
    if (file_ != nullptr) std::fclose(file_);
  }

  bool enabled() const noexcept { return file_ != nullptr; }
  const std::string& path() const noexcept { return path_; }

  // Bytes written so far (every line is flushed as it is written); 0 when disabled.
  std::int64_t position() const {
    if (file_ == nullptr) return 0;
    const long at = std::ftell(file_);
    if (at < 0) throw io_error(fmt::format("metrics '{}': cannot tell the write position", path_));
    return at;
  }

  // The last event named "summary" written, or null: kept whether or not the log has a file, so that a
  // program can save a run's summary beside its checkpoint.
  const nlohmann::ordered_json& last_summary() const noexcept { return last_summary_; }

  void write(const nlohmann::ordered_json& event) {
    if (event.is_object() && event.contains("event") && event["event"] == "summary") last_summary_ = event;
    if (file_ == nullptr) return;
    const std::string line = event.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
      throw io_error(fmt::format("metrics '{}': writing failed", path_));
    }
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  nlohmann::ordered_json last_summary_;
};

}  // namespace earlybert
