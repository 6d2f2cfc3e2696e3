// SPDX-License-Identifier: Apache-2.0
#pragma once
// Datasets: GLUE-style TSV classification files, raw-text corpora for masked-LM pre-training, and
// the batching that turns either into token_batch (padded to the longest sequence of the batch).
//
// Sentence-task TSV files (read_sentence_tsv, with a tsv_layout; tasks/glue.hpp has GLUE's):
//   - a header line names the columns, or, for a headerless file (CoLA), the layout does; a UTF-8
//     byte-order mark first is skipped;
//   - fields are split on tabs only, with no quote handling (MRPC's sentences hold unmatched '"');
//   - labels are integers in [0, num_labels), names from the layout's list (RTE's "entailment"), or,
//     with num_labels 1, finite real scores (STS-B);
//   - every row must have as many fields as the header and valid UTF-8; any violation is an io_error
//     naming the file and line.
// read_classification_tsv reads a custom file whose header names its columns: the label column is
// 'label' or 'Quality'; text columns are the first one or two of 'sentence', 'sentence1',
// 'sentence2', 'question', 'question1', 'question2', 'text', 'text_a', 'text_b', '#1 String',
// '#2 String', in file order; two text columns make a sentence-pair task.
// Each example is encoded as [CLS] a [SEP] (b [SEP]) and truncated longest-first to max_seq tokens.
//
// Raw-text corpus (read_corpus, WikiText-2's layout): every non-blank line is tokenised and the
// tokens of all lines are concatenated; the literal WikiText token "<unk>" becomes [UNK]. Sequence i
// of length L is [CLS] tokens[i(L-2), (i+1)(L-2)) [SEP]. Several files (read_corpora; corpus_files
// lists a folder's) are read in order into one corpus, their tokens concatenated: a sequence can
// span the end of one file and the start of the next, as it spans paragraphs within a file.
// With corpus_layout::segment_pairs, sequence i is laid out as BERT's pre-training inputs, without the
// next-sentence objective: [CLS] A [SEP] B [SEP], where A and B are the first seq - 3 of those tokens
// (the last one is dropped), B continuing A, split after segment_split(i, seq) tokens (uniform in
// [1, seq - 4] by a hash of i: the same split on every pass); B and its [SEP] have type id 1. It
// teaches the segment embedding of type 1 and a [SEP] inside a sequence, which sentence-pair tasks
// (STS-B, QNLI, SQuAD) feed the model; with the single layout both stay untrained.
// Masked-LM masking (mask_tokens), as BERT and HuggingFace's data collator: every real, non-special
// token is chosen with probability 0.15; a chosen token becomes [MASK] with probability 0.8, a
// uniformly random id with probability 0.1, and stays itself otherwise; its label is the original id
// and every other position's label is ignore_label.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/io/files.hpp"
#include "earlybert/io/tokenizer.hpp"
#include "earlybert/nn/config.hpp"

namespace earlybert {

struct encoded_example {
  std::vector<token_id> ids;       // [CLS] a [SEP] (b [SEP])
  std::vector<token_id> type_ids;  // 0 for a and its delimiters, 1 for b and its [SEP]
  token_id label = ignore_label;   // the class; ignore_label when the file has no label column (or it holds scores)
  double target = 0;               // the score of a regression task (STS-B)
};

struct classification_dataset {
  std::vector<encoded_example> examples;
  bool sentence_pairs = false;
  bool labelled = false;
  bool regression = false;  // labels are scores (encoded_example::target)
  std::vector<std::string> text_columns;

  // Every example's class, and every example's score (regression), in order.
  std::vector<int> gold_labels() const {
    std::vector<int> out;
    for (const encoded_example& e : examples) out.push_back(e.label);
    return out;
  }
  std::vector<double> gold_scores() const {
    std::vector<double> out;
    for (const encoded_example& e : examples) out.push_back(e.target);
    return out;
  }
};

namespace detail {
inline std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return fields;
}

// Lines of a text file, without their '\n' (or "\r\n"); a final line without '\n' counts.
inline std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// Drops tokens from the longer of the two texts until both fit in `budget` (HuggingFace's
// "longest_first" truncation).
inline void truncate_pair(std::vector<token_id>& a, std::vector<token_id>& b, std::size_t budget) {
  while (a.size() + b.size() > budget) {
    if (a.size() >= b.size()) a.pop_back();
    else b.pop_back();
  }
}
}  // namespace detail

// Encodes one text or pair with [CLS]/[SEP], truncated to max_seq tokens (>= 3 for a pair, 2 otherwise).
inline encoded_example encode_example(const wordpiece_tokenizer& tokenizer, const special_tokens& special,
                                      std::string_view a, std::string_view b, bool pair, index_t max_seq) {
  const auto ids_of = [&](std::string_view text) {
    std::vector<token_id> ids;
    for (const auto& p : tokenizer.tokenize(text)) ids.push_back(p.id);
    return ids;
  };
  std::vector<token_id> first = ids_of(a), second = pair ? ids_of(b) : std::vector<token_id>{};
  const auto budget = static_cast<std::size_t>(std::max<index_t>(max_seq - (pair ? 3 : 2), 0));
  detail::truncate_pair(first, second, budget);
  encoded_example e;
  e.ids.push_back(special.cls);
  e.ids.insert(e.ids.end(), first.begin(), first.end());
  e.ids.push_back(special.sep);
  e.type_ids.assign(e.ids.size(), 0);
  if (pair) {
    e.ids.insert(e.ids.end(), second.begin(), second.end());
    e.ids.push_back(special.sep);
    e.type_ids.resize(e.ids.size(), 1);
  }
  return e;
}

// What the columns of a sentence-task TSV file hold (tasks/glue.hpp lists GLUE's).
struct tsv_layout {
  std::vector<std::string> columns;  // a headerless file's column names, in order; empty: the first line names them
  std::string text_a, text_b;        // the text column(s); text_b empty for single sentences
  std::string label;                 // the label column ("": none)
  std::vector<std::string> label_names;  // text labels, as their class indices; empty: integer labels
  int num_labels = 2;                // classes; 1: a real-valued score (regression)

  bool sentence_pairs() const noexcept { return !text_b.empty(); }
  bool regression() const noexcept { return num_labels == 1; }
};

// The layout of a custom file from its header (see above): text and label columns found by name.
inline tsv_layout infer_tsv_layout(const std::string& path, std::span<const std::string_view> header, int num_labels, bool require_labels) {
  static const std::vector<std::string_view> text_names{"sentence", "sentence1", "sentence2", "question", "question1",
                                                        "question2", "text", "text_a", "text_b", "#1 String", "#2 String"};
  tsv_layout layout;
  layout.num_labels = num_labels;
  std::vector<std::string> texts;
  for (const std::string_view name : header) {
    if (name == "label" || name == "Quality") layout.label = name;
    else if (std::find(text_names.begin(), text_names.end(), name) != text_names.end() && texts.size() < 2) texts.emplace_back(name);
  }
  // What the header holds, quoted; at most 120 characters of it (a file of another kind may have a
  // whole document on its first line).
  const auto found = [&] {
    std::string text = fmt::format("'{}'", fmt::join(header, "', '"));
    if (text.size() > 120) text = text.substr(0, 117) + "...";
    return text;
  };
  if (texts.empty()) {
    throw io_error(fmt::format("dataset '{}': line 1: the header has no text column (found {}, expected one of sentence, "
                               "sentence1, sentence2, question, text, #1 String, ...)", path, found()));
  }
  if (require_labels && layout.label.empty()) {
    throw io_error(fmt::format("dataset '{}': line 1: the header has no label column (found {}, expected 'label' or 'Quality')",
                               path, found()));
  }
  layout.text_a = texts[0];
  if (texts.size() == 2) layout.text_b = texts[1];
  return layout;
}

namespace detail {
// The body of read_sentence_tsv, on the file's text `view` (its byte-order mark removed); `p` names the file.
inline classification_dataset sentence_tsv_from_text(const std::string& p, std::string_view view, const tsv_layout& layout,
                                                     const wordpiece_tokenizer& tokenizer, index_t max_seq, bool require_labels) {
  if (max_seq < 3) throw config_error(fmt::format("read_sentence_tsv: max_seq is {}, expected at least 3", max_seq));
  if (layout.num_labels < 1) throw config_error(fmt::format("read_sentence_tsv: num_labels is {}, expected at least 1", layout.num_labels));
  const auto lines = split_lines(view);
  const bool has_header = layout.columns.empty();
  if (lines.empty()) {
    throw io_error(fmt::format("dataset '{}': the file is empty, expected {}examples", p, has_header ? "a header line and " : ""));
  }
  std::vector<std::string_view> header;
  if (has_header) header = detail::split_tabs(lines[0]);
  else header.assign(layout.columns.begin(), layout.columns.end());
  const auto column = [&](const std::string& name) -> std::optional<std::size_t> {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? std::nullopt : std::optional<std::size_t>(static_cast<std::size_t>(it - header.begin()));
  };
  const auto required_column = [&](const std::string& name, const char* what) {
    const auto c = column(name);
    if (!c) throw io_error(fmt::format("dataset '{}': line 1: the header has no {} column '{}' (found '{}')", p, what, name, fmt::join(header, "', '")));
    return *c;
  };
  classification_dataset data;
  // Column indices; `absent` for a second text or a label the file does not have (a plain index,
  // not an optional: GCC's -Wmaybe-uninitialized misreads optionals read inside the loop below).
  constexpr std::size_t absent = static_cast<std::size_t>(-1);
  const std::size_t text_a = required_column(layout.text_a, "text");
  const std::size_t text_b = layout.sentence_pairs() ? required_column(layout.text_b, "text") : absent;
  const std::size_t label_column =
      require_labels ? required_column(layout.label, "label") : layout.label.empty() ? absent : column(layout.label).value_or(absent);
  data.text_columns.push_back(layout.text_a);
  if (text_b != absent) data.text_columns.push_back(layout.text_b);
  data.sentence_pairs = text_b != absent;
  data.labelled = label_column != absent;
  data.regression = layout.regression();

  const special_tokens special = special_tokens::of(tokenizer.vocab());
  data.examples.reserve(lines.size());
  for (std::size_t l = has_header ? 1 : 0; l < lines.size(); ++l) {
    if (lines[l].empty() && l + 1 == lines.size()) break;
    const auto fields = detail::split_tabs(lines[l]);
    if (fields.size() != header.size()) {
      throw io_error(fmt::format("dataset '{}': line {}: found {} tab-separated fields, expected {} as in the {}", p, l + 1, fields.size(),
                                 header.size(), has_header ? "header" : "layout"));
    }
    encoded_example e;
    try {
      e = encode_example(tokenizer, special, fields[text_a], text_b != absent ? fields[text_b] : "", data.sentence_pairs, max_seq);
    } catch (const io_error& error) {
      throw io_error(fmt::format("dataset '{}': line {}: {}", p, l + 1, error.what()));
    }
    if (label_column != absent) {
      const std::string_view field = fields[label_column];
      if (layout.regression()) {
        double score = 0;
        const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), score);
        if (ec != std::errc() || end != field.data() + field.size() || !std::isfinite(score)) {
          throw io_error(fmt::format("dataset '{}': line {}: score '{}' is not a finite number", p, l + 1, field));
        }
        e.target = score;
      } else if (!layout.label_names.empty()) {
        const auto it = std::find(layout.label_names.begin(), layout.label_names.end(), field);
        if (it == layout.label_names.end()) {
          throw io_error(fmt::format("dataset '{}': line {}: label '{}' is not one of {}", p, l + 1, field, fmt::join(layout.label_names, ", ")));
        }
        e.label = static_cast<token_id>(it - layout.label_names.begin());
      } else {
        int label = -1;
        const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), label);
        if (ec != std::errc() || end != field.data() + field.size()) {
          throw io_error(fmt::format("dataset '{}': line {}: label '{}' is not an integer", p, l + 1, field));
        }
        if (label < 0 || label >= layout.num_labels) {
          throw io_error(fmt::format("dataset '{}': line {}: label {} is outside [0, {})", p, l + 1, label, layout.num_labels));
        }
        e.label = label;
      }
    }
    data.examples.push_back(std::move(e));
  }
  if (data.examples.empty()) throw io_error(fmt::format("dataset '{}': the file has {}no examples", p, has_header ? "a header but " : ""));
  return data;
}

// A file's text without its UTF-8 byte-order mark.
inline std::string_view without_bom(std::string_view text) noexcept {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  return text;
}
}  // namespace detail

// Reads a sentence-task TSV file laid out as `layout` says (see above). With require_labels a file
// without the label column is an error; without it (prediction inputs) labels are read when present.
inline classification_dataset read_sentence_tsv(const std::filesystem::path& path, const tsv_layout& layout, const wordpiece_tokenizer& tokenizer,
                                                index_t max_seq, bool require_labels = true) {
  const std::string text = read_file(path, "dataset");
  return detail::sentence_tsv_from_text(path.string(), detail::without_bom(text), layout, tokenizer, max_seq, require_labels);
}

// Reads a custom TSV file, its layout inferred from the header (see above); num_labels 1 reads the
// label column as a real-valued score.
inline classification_dataset read_classification_tsv(const std::filesystem::path& path, const wordpiece_tokenizer& tokenizer,
                                                      index_t max_seq, int num_labels, bool require_labels = true) {
  const std::string p = path.string();
  const std::string text = read_file(path, "dataset");
  const std::string_view view = detail::without_bom(text);
  if (view.empty()) throw io_error(fmt::format("dataset '{}': the file is empty, expected a header line and examples", p));
  const auto header = detail::split_tabs(view.substr(0, view.find('\n')));
  std::vector<std::string_view> names(header.begin(), header.end());
  if (!names.empty() && names.back().ends_with('\r')) names.back().remove_suffix(1);
  return detail::sentence_tsv_from_text(p, view, infer_tsv_layout(p, names, num_labels, require_labels), tokenizer, max_seq, require_labels);
}

// Lays out the examples at `indices` (anything with ids and type_ids) padded to the longest: ids,
// token types and attention of `out`, reusing its capacity; the caller adds the labels.
template <class Example>
void pad_to_longest(const std::vector<Example>& examples, std::span<const std::size_t> indices, token_id pad, token_batch& out) {
  std::size_t longest = 0;
  for (auto i : indices) longest = std::max(longest, examples[i].ids.size());
  out.batch = static_cast<index_t>(indices.size());
  out.seq = static_cast<index_t>(longest);
  const std::size_t tokens = indices.size() * longest;
  out.ids.assign(tokens, pad);
  out.type_ids.assign(tokens, 0);
  out.attention.assign(tokens, 0);
  out.targets.clear();
  out.word_of.clear();
  for (std::size_t b = 0; b < indices.size(); ++b) {
    const auto& e = examples[indices[b]];
    const auto offset = static_cast<std::ptrdiff_t>(b * longest);
    std::copy(e.ids.begin(), e.ids.end(), out.ids.begin() + offset);
    std::copy(e.type_ids.begin(), e.type_ids.end(), out.type_ids.begin() + offset);
    std::fill_n(out.attention.begin() + offset, e.ids.size(), std::uint8_t{1});
  }
}

// Fills `out` with the examples at `indices`, padded to the longest: labels [batch], and targets
// [batch] for a regression.
inline void make_classification_batch(const classification_dataset& data, std::span<const std::size_t> indices,
                                      token_id pad, token_batch& out) {
  pad_to_longest(data.examples, indices, pad, out);
  out.labels.resize(indices.size());
  out.targets.resize(data.regression ? indices.size() : 0);
  for (std::size_t b = 0; b < indices.size(); ++b) {
    out.labels[b] = data.examples[indices[b]].label;
    if (data.regression) out.targets[b] = data.examples[indices[b]].target;
  }
}

inline void make_batch(const classification_dataset& data, std::span<const std::size_t> indices, token_id pad, token_batch& out) {
  make_classification_batch(data, indices, pad, out);
}

// Where a corpus's tokens came from: one entry per file, in reading order.
struct corpus_source {
  std::filesystem::path path;
  index_t lines = 0;       // non-blank lines
  std::size_t tokens = 0;  // WordPiece tokens
};

// A tokenised raw-text corpus (see above).
struct text_corpus {
  std::vector<token_id> tokens;
  index_t lines = 0;
  std::vector<corpus_source> sources;

  // Sequences of length `seq` (with [CLS] and [SEP]) the corpus holds.
  index_t sequences(index_t seq) const { return static_cast<index_t>(tokens.size()) / std::max<index_t>(seq - 2, 1); }
};

namespace detail {
// Appends one file's text to `corpus` (see above); io_error names the file and line.
inline void append_corpus_text(text_corpus& corpus, const std::filesystem::path& path, const wordpiece_tokenizer& tokenizer) {
  const std::string text = read_file(path, "corpus");
  const token_id unk = tokenizer.vocab().require("[UNK]");
  corpus_source source{path, 0, 0};
  const std::size_t before = corpus.tokens.size();
  const auto lines = detail::split_lines(text);
  for (std::size_t l = 0; l < lines.size(); ++l) {
    std::string_view line = lines[l];
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    try {
      // Between the literal "<unk>" markers, ordinary text.
      while (true) {
        const auto marker = line.find("<unk>");
        for (const auto& piece : tokenizer.tokenize(line.substr(0, marker))) corpus.tokens.push_back(piece.id);
        if (marker == std::string_view::npos) break;
        corpus.tokens.push_back(unk);
        line.remove_prefix(marker + 5);
      }
    } catch (const io_error& error) {
      throw io_error(fmt::format("corpus '{}': line {}: {}", path.string(), l + 1, error.what()));
    }
    ++source.lines;
  }
  source.tokens = corpus.tokens.size() - before;
  if (source.tokens == 0) throw io_error(fmt::format("corpus '{}': no text, expected lines of text", path.string()));
  corpus.lines += source.lines;
  corpus.sources.push_back(std::move(source));
}
}  // namespace detail

inline text_corpus read_corpus(const std::filesystem::path& path, const wordpiece_tokenizer& tokenizer) {
  text_corpus corpus;
  detail::append_corpus_text(corpus, path, tokenizer);
  return corpus;
}

// The files a corpus argument names: a file is itself; a folder is every regular file directly in it
// whose name ends in ".txt", sorted by name (so the reading order, and with it the corpus, does not
// depend on the file system). io_error for a path that does not exist or a folder without such a file.
inline std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw io_error(fmt::format("corpus '{}': no such file or folder", path.string()));
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  if (ec) throw io_error(fmt::format("corpus '{}': cannot list the folder ({})", path.string(), ec.message()));
  if (files.empty()) throw io_error(fmt::format("corpus '{}': a folder without a .txt file, expected text files", path.string()));
  std::sort(files.begin(), files.end());
  return files;
}

// The files, in order, read into one corpus (see above); `sources` lists them. io_error for an empty
// list, for a file without text (naming it), and for a file listed twice (twice the weight is then
// more likely a mistake than a plan: copy the file to mean it).
inline text_corpus read_corpora(std::span<const std::filesystem::path> paths, const wordpiece_tokenizer& tokenizer) {
  if (paths.empty()) throw io_error("corpus: no file given, expected at least one");
  std::vector<std::filesystem::path> seen;
  text_corpus corpus;
  for (const std::filesystem::path& path : paths) {
    std::error_code ec;
    const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) {
      throw io_error(fmt::format("corpus '{}': listed twice, expected each file once", path.string()));
    }
    seen.push_back(canonical);
    detail::append_corpus_text(corpus, path, tokenizer);
  }
  return corpus;
}

// How make_corpus_batch lays a sequence out (see above).
enum class corpus_layout { single, segment_pairs };

// Segment A's length for sequence `index` under corpus_layout::segment_pairs: in [1, seq - 4], so that
// A and B hold at least one token each. seq >= 5.
inline index_t segment_split(std::size_t index, index_t seq) {
  return 1 + static_cast<index_t>(mix64(derive_key(index, 0x5e6a)) % static_cast<std::uint64_t>(seq - 4));
}

// Fills `out` with the corpus sequences at `indices` (each of length seq), laid out as `layout` says.
// shape_error for segment pairs with seq < 5.
inline void make_corpus_batch(const text_corpus& corpus, std::span<const std::size_t> indices, index_t seq,
                              const special_tokens& special, token_batch& out, corpus_layout layout = corpus_layout::single) {
  if (layout == corpus_layout::segment_pairs && seq < 5) {
    throw shape_error(fmt::format("make_corpus_batch: segment pairs of {} tokens, expected at least 5 ([CLS] A [SEP] B [SEP])", seq));
  }
  const auto body = static_cast<std::size_t>(seq - 2);
  out.batch = static_cast<index_t>(indices.size());
  out.seq = seq;
  const std::size_t tokens = indices.size() * static_cast<std::size_t>(seq);
  out.ids.resize(tokens);
  out.type_ids.assign(tokens, 0);
  out.attention.assign(tokens, 1);
  for (std::size_t b = 0; b < indices.size(); ++b) {
    token_id* row = out.ids.data() + b * static_cast<std::size_t>(seq);
    const auto text = corpus.tokens.begin() + static_cast<std::ptrdiff_t>(indices[b] * body);
    row[0] = special.cls;
    row[seq - 1] = special.sep;
    if (layout == corpus_layout::single) {
      std::copy_n(text, body, row + 1);
      continue;
    }
    const auto a = static_cast<std::size_t>(segment_split(indices[b], seq));
    std::copy_n(text, a, row + 1);
    row[a + 1] = special.sep;
    std::copy_n(text + static_cast<std::ptrdiff_t>(a), body - 1 - a, row + a + 2);
    std::fill(out.type_ids.begin() + static_cast<std::ptrdiff_t>(b * static_cast<std::size_t>(seq) + a + 2),
              out.type_ids.begin() + static_cast<std::ptrdiff_t>((b + 1) * static_cast<std::size_t>(seq)), 1);
  }
}

// Masks a batch for the masked-LM objective in place (see above); deterministic for the rng's state.
// Positions with attention 0 and the special tokens are never chosen.
inline void mask_tokens(token_batch& b, rng& random, const special_tokens& special, index_t vocab_size,
                        double probability = 0.15) {
  b.labels.assign(b.ids.size(), ignore_label);
  for (std::size_t i = 0; i < b.ids.size(); ++i) {
    const token_id id = b.ids[i];
    const bool special_token = id == special.cls || id == special.sep || id == special.pad || id == special.mask;
    if (b.attention[i] == 0 || special_token) continue;
    if (random.uniform() >= probability) continue;
    b.labels[i] = id;
    const double action = random.uniform();
    if (action < 0.8) b.ids[i] = special.mask;
    else if (action < 0.9) b.ids[i] = static_cast<token_id>(random.below(static_cast<std::uint64_t>(vocab_size)));
  }
}

}  // namespace earlybert
