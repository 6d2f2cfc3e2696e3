// SPDX-License-Identifier: Apache-2.0
#pragma once
// Whole-file reading, and atomic writing: a file is written to a temporary file in the same folder,
// flushed to disk and renamed over its destination, so that a crash at any moment leaves either the
// previous complete file or the new complete one, never a half-written one.

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"

namespace earlybert {

// The bytes of a file. `what` names it in errors ("safetensors", "config.json", ...).
inline std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw io_error(fmt::format("{} '{}': is a directory, expected a file", what, path.string()));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw io_error(fmt::format("{} '{}': cannot open the file for reading ({})", what, path.string(),
                               std::generic_category().message(errno)));
  }
  std::string bytes;
  char buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) bytes.append(buffer, got);
  const bool failed = std::ferror(file) != 0;
  const int code = errno;
  std::fclose(file);
  if (failed) throw io_error(fmt::format("{} '{}': reading failed ({})", what, path.string(), std::generic_category().message(code)));
  return bytes;
}

// Replaces `path` with `bytes` atomically (temporary file, fsync, rename).
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw io_error(fmt::format("'{}': cannot open the file for writing ({})", path.string(),
                               std::generic_category().message(errno)));
  }
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int code = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw io_error(fmt::format("'{}': writing failed ({})", path.string(), std::generic_category().message(code)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    throw io_error(fmt::format("'{}': flushing to disk failed", path.string()));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int code = errno;
    ::unlink(temporary.c_str());
    throw io_error(fmt::format("'{}': cannot replace the file ({})", path.string(), std::generic_category().message(code)));
  }
}

}  // namespace earlybert
