// SPDX-License-Identifier: Apache-2.0
#pragma once
// A WordPiece vocabulary: BERT's vocab.txt, one token per line, the id of a token being its 0-based
// line number. Continuation pieces carry the prefix "##".

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/io/files.hpp"

namespace earlybert {

namespace detail {
// Hash that accepts std::string and std::string_view alike, so lookups of substrings allocate nothing.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace detail

class vocabulary {
 public:
  vocabulary() = default;

  // Tokens in id order. Throws config_error on an empty list or a repeated token.
  explicit vocabulary(std::vector<std::string> tokens, std::string origin = "vocabulary")
      : tokens_(std::move(tokens)), origin_(std::move(origin)) {
    if (tokens_.empty()) throw config_error(fmt::format("{}: the vocabulary is empty, expected at least one token", origin_));
    ids_.reserve(tokens_.size());
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (!ids_.emplace(tokens_[i], static_cast<token_id>(i)).second) {
        throw config_error(fmt::format("{}: token '{}' appears twice (lines {} and {}), expected each token once", origin_,
                                       tokens_[i], ids_.find(tokens_[i])->second + 1, i + 1));
      }
    }
  }

  // Reads vocab.txt. Lines end with '\n' (a trailing '\r' is dropped); an empty last line is not a token.
  static vocabulary load(const std::filesystem::path& path) {
    const std::string text = read_file(path, "vocabulary");
    std::vector<std::string> tokens;
    for (std::size_t begin = 0; begin < text.size();) {
      std::size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(begin, end - begin);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      tokens.push_back(std::move(line));
      begin = end + 1;
    }
    if (tokens.empty()) throw io_error(fmt::format("vocabulary '{}': the file is empty, expected one token per line", path.string()));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].empty()) {
        throw io_error(fmt::format("vocabulary '{}': line {} is empty, expected one token per line", path.string(), i + 1));
      }
    }
    try {
      return vocabulary(std::move(tokens), fmt::format("vocabulary '{}'", path.string()));
    } catch (const config_error& e) {
      throw io_error(e.what());
    }
  }

  index_t size() const noexcept { return static_cast<index_t>(tokens_.size()); }
  const std::string& origin() const noexcept { return origin_; }

  std::optional<token_id> find(std::string_view token) const {
    const auto it = ids_.find(token);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  bool contains(std::string_view token) const { return ids_.find(token) != ids_.end(); }

  // The id of a token that must be present (a special token), or config_error naming it.
  token_id require(std::string_view token) const {
    if (const auto id = find(token)) return *id;
    throw config_error(fmt::format("{}: has no {} token, expected the special tokens [PAD], [UNK], [CLS], [SEP] and [MASK]",
                                   origin_, token));
  }

  const std::string& token(token_id id) const {
    if (id < 0 || id >= size()) {
      throw shape_error(fmt::format("vocabulary::token: id {} is outside [0, {})", id, size()));
    }
    return tokens_[static_cast<std::size_t>(id)];
  }
  const std::vector<std::string>& tokens() const noexcept { return tokens_; }

  // True when every token is the same in lower case: an uncased vocabulary, whose tokenizer must lower-case
  // and strip accents. (Checked over ASCII letters, which every BERT vocabulary has plenty of.)
  bool looks_uncased() const {
    for (const auto& t : tokens_) {
      if (t.size() > 2 && t.front() == '[' && t.back() == ']') continue;  // [CLS], [unused0], ...
      for (char ch : t) {
        if (ch >= 'A' && ch <= 'Z') return false;
      }
    }
    return true;
  }

  // Writes vocab.txt atomically (used by checkpoints).
  void save(const std::filesystem::path& path) const {
    std::string text;
    for (const auto& t : tokens_) {
      text += t;
      text += '\n';
    }
    write_file_atomically(path, text);
  }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, token_id, detail::string_hash, std::equal_to<>> ids_;
  std::string origin_ = "vocabulary";
};

// The five special tokens every BERT vocabulary holds, by id.
struct special_tokens {
  token_id pad, unk, cls, sep, mask;

  static special_tokens of(const vocabulary& v) {
    return {v.require("[PAD]"), v.require("[UNK]"), v.require("[CLS]"), v.require("[SEP]"), v.require("[MASK]")};
  }
};

}  // namespace earlybert
