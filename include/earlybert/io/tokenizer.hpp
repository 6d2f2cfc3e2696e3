// SPDX-License-Identifier: Apache-2.0
#pragma once
// BERT's tokenizer: the basic tokenizer followed by greedy longest-match WordPiece, as Google's
// tokenization.py and HuggingFace's BertTokenizer do it.
//
// Basic tokenisation of a UTF-8 text:
//   1. cleaning: NUL, U+FFFD and control characters (category C*, except \t \n \r) are removed;
//      whitespace (space, \t, \n, \r, category Zs) becomes a space;
//   2. every CJK ideograph becomes a word of its own;
//   3. the text is split on whitespace; a word listed in never_split is kept as it is; any other word
//      is lower-cased and its accents stripped (NFD, then marks of category Mn dropped) when the
//      vocabulary is uncased, then split into runs of non-punctuation and single punctuation
//      characters (ASCII symbols and category P*).
// WordPiece: a word longer than 100 characters is [UNK]; otherwise the longest prefix found in the
// vocabulary is taken, then the longest "##"-prefixed continuation, and so on; if some remainder has
// no match, the whole word is [UNK].
//
// Offsets are [begin, end) in Unicode code points of the input, as Python's string indices, so they
// can be checked against HuggingFace's; a sub-word's offsets cover the characters it came from.
// Text that is not valid UTF-8 is an io_error naming the byte offset.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <utf8proc.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/io/vocabulary.hpp"

namespace earlybert {

// Character classes of the basic tokenizer (google-research/bert tokenization.py).
inline bool is_bert_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ZS;
}

inline bool is_bert_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

inline bool is_bert_punctuation(char32_t c) {
  // All non-letter, non-number ASCII symbols count, e.g. '$' and '`', which Unicode does not call P*.
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// The CJK Unified Ideographs blocks (not Japanese kana or Hangul, which are written with spaces).
inline bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// A UTF-8 string as code points. Throws io_error at the first invalid sequence.
inline std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t at = 0;
  while (at < text.size()) {
    utf8proc_int32_t c = 0;
    const auto n = utf8proc_iterate(bytes + at, static_cast<utf8proc_ssize_t>(text.size() - at), &c);
    if (n <= 0 || c < 0) throw io_error(fmt::format("invalid UTF-8 at byte {}", at));
    out.push_back(static_cast<char32_t>(c));
    at += static_cast<std::size_t>(n);
  }
  return out;
}

inline void append_utf8(std::string& out, char32_t c) {
  utf8proc_uint8_t buffer[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(n));
}

struct tokenizer_options {
  bool lower_case = true;               // uncased vocabularies: lower-case and strip accents
  std::vector<std::string> never_split;  // words kept whole and unchanged, e.g. "[MASK]"
  index_t max_word_chars = 100;         // longer words become [UNK]
};

// A word of the basic tokenizer: its normalised text and where each of its characters came from.
struct basic_token {
  std::string text;              // UTF-8
  std::vector<index_t> sources;  // per code point of text: its code-point offset in the input
  index_t begin = 0;             // [begin, end) in the input
  index_t end = 0;

  void append(char32_t c, index_t source) {
    append_utf8(text, c);
    if (sources.empty()) begin = source;
    sources.push_back(source);
    end = source + 1;
  }
};

// A sub-word token of the full tokenizer.
struct word_piece {
  token_id id;
  index_t begin;  // code-point offsets into the input
  index_t end;
  index_t word;   // index of the basic word it came from
};

// The result of encoding one text or a pair, with or without [CLS]/[SEP].
struct encoding {
  std::vector<token_id> ids;
  std::vector<token_id> type_ids;
  std::vector<std::pair<index_t, index_t>> offsets;  // [0, 0] for special tokens
};

class wordpiece_tokenizer {
 public:
  // A tokenizer for `vocab`, which must contain [UNK].
  explicit wordpiece_tokenizer(vocabulary vocab, tokenizer_options options = {})
      : vocab_(std::move(vocab)), options_(std::move(options)), unk_(vocab_.require("[UNK]")) {}

  const vocabulary& vocab() const noexcept { return vocab_; }
  const tokenizer_options& options() const noexcept { return options_; }

  // Steps 1-3 above: the words, normalised, with their offsets.
  std::vector<basic_token> basic_tokenize(std::string_view text) const {
    const std::u32string input = decode_utf8(text);
    // Cleaned and CJK-spaced characters, each with its input offset; a space marks a word boundary.
    std::vector<std::pair<char32_t, index_t>> chars;
    chars.reserve(input.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
      const char32_t c = input[i];
      const auto at = static_cast<index_t>(i);
      if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
      if (is_bert_whitespace(c)) {
        chars.emplace_back(U' ', at);
      } else if (is_cjk_ideograph(c)) {
        chars.emplace_back(U' ', at);
        chars.emplace_back(c, at);
        chars.emplace_back(U' ', at);
      } else {
        chars.emplace_back(c, at);
      }
    }
    std::vector<basic_token> words;
    std::size_t i = 0;
    while (i < chars.size()) {
      if (chars[i].first == U' ') {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < chars.size() && chars[j].first != U' ') ++j;
      split_word(std::span(chars).subspan(i, j - i), words);
      i = j;
    }
    return words;
  }

  // WordPiece on one normalised word; appends to `out` (ids with offsets), [UNK] for no match.
  void wordpiece(const basic_token& word, index_t word_index, std::vector<word_piece>& out) const {
    // Byte offset of every character boundary, so that candidates are views into word.text.
    std::vector<std::size_t> boundary;
    for (std::size_t b = 0; b < word.text.size(); ++b) {
      if ((static_cast<unsigned char>(word.text[b]) & 0xC0) != 0x80) boundary.push_back(b);
    }
    const auto length = static_cast<index_t>(boundary.size());
    boundary.push_back(word.text.size());
    if (length > options_.max_word_chars) {
      out.push_back({unk_, word.begin, word.end, word_index});
      return;
    }
    const auto source = [&](index_t c) { return word.sources[static_cast<std::size_t>(c)]; };
    const std::size_t first = out.size();
    std::string candidate;
    index_t start = 0;
    while (start < length) {
      index_t end = length;
      std::optional<token_id> found;
      for (; start < end; --end) {
        const auto b0 = boundary[static_cast<std::size_t>(start)], b1 = boundary[static_cast<std::size_t>(end)];
        const std::string_view piece = std::string_view(word.text).substr(b0, b1 - b0);
        if (start > 0) {
          candidate.assign("##");
          candidate.append(piece);
          found = vocab_.find(candidate);
        } else {
          found = vocab_.find(piece);
        }
        if (found) break;
      }
      if (!found) {
        out.resize(first);
        out.push_back({unk_, word.begin, word.end, word_index});
        return;
      }
      out.push_back({*found, source(start), source(end - 1) + 1, word_index});
      start = end;
    }
  }

  // Basic tokenisation then WordPiece: the sub-word tokens of a text.
  std::vector<word_piece> tokenize(std::string_view text) const {
    std::vector<word_piece> pieces;
    const auto words = basic_tokenize(text);
    for (std::size_t w = 0; w < words.size(); ++w) wordpiece(words[w], static_cast<index_t>(w), pieces);
    return pieces;
  }

  // Ids of a text, or of a pair (type ids 0 for the first text, 1 for the second). With special
  // tokens: [CLS] a [SEP] or [CLS] a [SEP] b [SEP], the second [SEP] of type 1.
  encoding encode(std::string_view text, std::string_view pair = {}, bool has_pair = false,
                  bool add_special_tokens = true) const {
    encoding e;
    const auto add = [&](token_id id, token_id type, index_t begin, index_t end) {
      e.ids.push_back(id);
      e.type_ids.push_back(type);
      e.offsets.emplace_back(begin, end);
    };
    const token_id cls = add_special_tokens ? vocab_.require("[CLS]") : 0;
    const token_id sep = add_special_tokens ? vocab_.require("[SEP]") : 0;
    if (add_special_tokens) add(cls, 0, 0, 0);
    for (const auto& p : tokenize(text)) add(p.id, 0, p.begin, p.end);
    if (add_special_tokens) add(sep, 0, 0, 0);
    if (has_pair) {
      for (const auto& p : tokenize(pair)) add(p.id, 1, p.begin, p.end);
      if (add_special_tokens) add(sep, 1, 0, 0);
    }
    return e;
  }

 private:
  using located = std::pair<char32_t, index_t>;

  bool never_split(std::span<const located> word) const {
    if (options_.never_split.empty()) return false;
    std::string text;
    for (const auto& [c, at] : word) append_utf8(text, c);
    for (const auto& keep : options_.never_split) {
      if (text == keep) return true;
    }
    return false;
  }

  // Normalises one whitespace-delimited word and splits it on punctuation.
  void split_word(std::span<const located> word, std::vector<basic_token>& words) const {
    if (never_split(word)) {
      basic_token t;
      for (const auto& [c, at] : word) t.append(c, at);
      words.push_back(std::move(t));
      return;
    }
    std::vector<located> normalised;
    normalised.reserve(word.size());
    for (const auto& [c, at] : word) {
      if (!options_.lower_case) {
        normalised.emplace_back(c, at);
        continue;
      }
      const auto lower = utf8proc_tolower(static_cast<utf8proc_int32_t>(c));
      utf8proc_int32_t decomposed[8];
      int last_boundary = 0;
      const auto n = utf8proc_decompose_char(lower, decomposed, 8, UTF8PROC_DECOMPOSE, &last_boundary);
      for (utf8proc_ssize_t k = 0; k < std::min<utf8proc_ssize_t>(n, 8); ++k) {
        if (utf8proc_category(decomposed[k]) == UTF8PROC_CATEGORY_MN) continue;
        normalised.emplace_back(static_cast<char32_t>(decomposed[k]), at);
      }
    }
    // Runs of non-punctuation, and each punctuation character on its own.
    basic_token current;
    for (const auto& [c, at] : normalised) {
      if (is_bert_punctuation(c)) {
        if (!current.sources.empty()) words.push_back(std::exchange(current, basic_token{}));
        basic_token p;
        p.append(c, at);
        words.push_back(std::move(p));
        continue;
      }
      current.append(c, at);
    }
    if (!current.sources.empty()) words.push_back(std::move(current));
  }

  vocabulary vocab_;
  tokenizer_options options_;
  token_id unk_;
};

// BERT's tokenizer for a vocabulary, as HuggingFace's BertTokenizer sets it up: lower-casing (and
// accent stripping) when the vocabulary looks uncased, and the special tokens never split.
// With `lower_case`, as a checkpoint's tokenizer_config.json says (io/checkpoint.hpp).
inline wordpiece_tokenizer bert_tokenizer(const vocabulary& vocab, bool lower_case) {
  tokenizer_options options;
  options.lower_case = lower_case;
  options.never_split = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return wordpiece_tokenizer(vocab, options);
}
inline wordpiece_tokenizer bert_tokenizer(const vocabulary& vocab) { return bert_tokenizer(vocab, vocab.looks_uncased()); }

}  // namespace earlybert
