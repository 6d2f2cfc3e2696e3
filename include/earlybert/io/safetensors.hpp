// SPDX-License-Identifier: Apache-2.0
#pragma once
// The safetensors format (huggingface/safetensors), read and written.
//
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    a JSON object: "__metadata__" (string to string, optional) and, per tensor,
//                       "<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
//   bytes [8 + N, ...)  the data; a tensor's bytes are [begin, end) of this region, little-endian,
//                       row-major
//
// Reading trusts nothing: the header length, the JSON, every dtype, shape and offset are checked
// against the file (offsets inside the data, sizes equal to the shape's, no two tensors overlapping)
// and any violation is an io_error naming the file and the tensor. Tensors are converted to the
// caller's Scalar on read (F32, F64, F16 and BF16 are accepted); they are written as F32, F16 or BF16
// (add: weights; F16 and BF16 round to nearest, ties to even, as PyTorch's .half() and .bfloat16()
// do, and a finite value beyond the type's range is refused rather than written as infinity), or in
// their own type, F32 or F64 (add_exact: training states, which must round-trip bit for bit).
// The host must be little-endian (x86-64 and AArch64 are), which is checked at compile time.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/io/files.hpp"

namespace earlybert {

static_assert(std::endian::native == std::endian::little, "earlybert's safetensors I/O assumes a little-endian host");

enum class tensor_dtype { f32, f64, f16, bf16, i32, i64 };

namespace detail {
inline std::size_t dtype_bytes(tensor_dtype d) {
  switch (d) {
    case tensor_dtype::f16: case tensor_dtype::bf16: return 2;
    case tensor_dtype::f32: case tensor_dtype::i32: return 4;
    default: return 8;
  }
}

inline bool parse_dtype(const std::string& name, tensor_dtype& out) {
  static const std::map<std::string, tensor_dtype> names{{"F32", tensor_dtype::f32}, {"F64", tensor_dtype::f64},
                                                         {"F16", tensor_dtype::f16}, {"BF16", tensor_dtype::bf16},
                                                         {"I32", tensor_dtype::i32}, {"I64", tensor_dtype::i64}};
  const auto it = names.find(name);
  if (it == names.end()) return false;
  out = it->second;
  return true;
}

// IEEE half precision to float, exactly (subnormals, infinities and NaN included).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  float magnitude;
  if (exponent == 0) magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31) magnitude = mantissa == 0 ? INFINITY : NAN;
  else magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), static_cast<int>(exponent) - 25);
  return sign != 0 ? -magnitude : magnitude;
}
// Float to IEEE half precision, rounding to nearest with ties to even; NaN stays NaN, and a value
// whose magnitude rounds beyond 65504 becomes infinity (the caller decides whether that is an error).
inline std::uint16_t float_to_half(float value) {
  constexpr std::uint32_t infinity = 255u << 23, half_overflow = (127u + 16) << 23;
  constexpr std::uint32_t subnormal_magic = ((127u - 15) + (23 - 10) + 1) << 23;
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = bits & 0x80000000u;
  bits ^= sign;
  std::uint16_t half;
  if (bits >= half_overflow) {
    half = bits > infinity ? 0x7E00 : 0x7C00;
  } else if (bits < (113u << 23)) {
    // A half subnormal or zero: adding the magic number aligns the 10 mantissa bits at the bottom of
    // a float, and the float addition rounds to nearest even.
    const float aligned = std::bit_cast<float>(bits) + std::bit_cast<float>(subnormal_magic);
    half = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(aligned) - subnormal_magic);
  } else {
    const std::uint32_t odd = (bits >> 13) & 1;
    bits += ((15u - 127u) << 23) + 0xFFF + odd;  // rebias the exponent; round half to even
    half = static_cast<std::uint16_t>(bits >> 13);
  }
  return static_cast<std::uint16_t>(half | (sign >> 16));
}

// Float to bfloat16 (float's upper half), rounding to nearest with ties to even; NaN stays NaN.
inline std::uint16_t float_to_bfloat16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<std::uint16_t>(bits >> 16);
}

inline const char* dtype_name(tensor_dtype d) {
  switch (d) {
    case tensor_dtype::f32: return "F32";
    case tensor_dtype::f64: return "F64";
    case tensor_dtype::f16: return "F16";
    case tensor_dtype::bf16: return "BF16";
    case tensor_dtype::i32: return "I32";
    default: return "I64";
  }
}
}  // namespace detail

// The floating-point types weights can be written in: "f32", "f16" or "bf16" (and back).
inline tensor_dtype weight_dtype_of(std::string_view name) {
  if (name == "f32") return tensor_dtype::f32;
  if (name == "f16") return tensor_dtype::f16;
  if (name == "bf16") return tensor_dtype::bf16;
  throw config_error(fmt::format("weight type '{}' is not one of f32, f16, bf16", name));
}

struct tensor_entry {
  std::string name;
  tensor_dtype dtype;
  std::vector<std::int64_t> shape;
  std::size_t begin;  // byte offsets into the data region
  std::size_t end;

  std::int64_t elements() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

class safetensors_reader {
 public:
  // Reads and validates the whole file.
  static safetensors_reader open(const std::filesystem::path& path) {
    safetensors_reader r;
    r.path_ = path.string();
    r.bytes_ = read_file(path, "safetensors");
    r.parse();
    return r;
  }

  const std::string& path() const noexcept { return path_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  const std::vector<tensor_entry>& tensors() const noexcept { return tensors_; }

  const tensor_entry* find(const std::string& name) const {
    for (const auto& t : tensors_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }

  // Copies tensor `name` into `out` ([rows, cols]) converted to Scalar. A [1, n] destination accepts
  // a 1-D tensor of n elements (biases, LayerNorm weights). Throws io_error if it is missing, of
  // another shape, or not a floating-point tensor.
  template <class Scalar>
  void read(const std::string& name, matrix<Scalar>& out) const {
    const tensor_entry* t = find(name);
    if (t == nullptr) throw io_error(fmt::format("safetensors '{}': no tensor '{}'", path_, name));
    const bool matches = (t->shape.size() == 2 && t->shape[0] == out.rows() && t->shape[1] == out.cols()) ||
                         (t->shape.size() == 1 && out.rows() == 1 && t->shape[0] == out.cols());
    if (!matches) {
      throw io_error(fmt::format("safetensors '{}': tensor '{}' has shape [{}], expected [{}]", path_, name,
                                 fmt::join(t->shape, ", "),
                                 out.rows() == 1 ? fmt::format("{}", out.cols()) : fmt::format("{}, {}", out.rows(), out.cols())));
    }
    const char* data = bytes_.data() + data_start_ + t->begin;
    const auto n = static_cast<std::size_t>(out.size());
    Scalar* dst = out.data();
    switch (t->dtype) {
      case tensor_dtype::f32: copy_as<float>(data, n, dst, [](float v) { return v; }); break;
      case tensor_dtype::f64: copy_as<double>(data, n, dst, [](double v) { return v; }); break;
      case tensor_dtype::f16: copy_as<std::uint16_t>(data, n, dst, detail::half_to_float); break;
      case tensor_dtype::bf16:
        copy_as<std::uint16_t>(data, n, dst, [](std::uint16_t v) { return std::bit_cast<float>(std::uint32_t{v} << 16); });
        break;
      default:
        throw io_error(fmt::format("safetensors '{}': tensor '{}' holds integers, expected a floating-point dtype", path_, name));
    }
  }

 private:
  template <class Stored, class Scalar, class Convert>
  static void copy_as(const char* data, std::size_t n, Scalar* dst, Convert convert) {
    for (std::size_t i = 0; i < n; ++i) {
      Stored v;
      std::memcpy(&v, data + i * sizeof(Stored), sizeof(Stored));
      dst[i] = static_cast<Scalar>(convert(v));
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw io_error(fmt::format("safetensors '{}': {}", path_, what)); }

  void parse() {
    if (bytes_.size() < 8) fail(fmt::format("the file has {} bytes, expected at least 8 (the header length)", bytes_.size()));
    std::uint64_t header_length = 0;
    std::memcpy(&header_length, bytes_.data(), 8);
    if (header_length > bytes_.size() - 8) {
      fail(fmt::format("the header length is {} bytes, but only {} bytes follow it", header_length, bytes_.size() - 8));
    }
    data_start_ = 8 + static_cast<std::size_t>(header_length);
    const std::size_t data_size = bytes_.size() - data_start_;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(bytes_.begin() + 8, bytes_.begin() + static_cast<std::ptrdiff_t>(data_start_));
    } catch (const nlohmann::json::exception& e) {
      fail(fmt::format("the header is not valid JSON ({})", e.what()));
    }
    if (!header.is_object()) fail("the header is not a JSON object");
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        if (!value.is_object()) fail("'__metadata__' is not an object of strings");
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) fail(fmt::format("metadata '{}' is not a string", k));
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      tensors_.push_back(parse_entry(key, value, data_size));
    }
    // No two tensors may share bytes. An empty tensor (a layer that lost every head or neuron) holds
    // none, so it overlaps nothing wherever its offsets point.
    std::vector<const tensor_entry*> by_offset;
    for (const auto& t : tensors_) {
      if (t.end > t.begin) by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      if (by_offset[i]->begin < by_offset[i - 1]->end) {
        fail(fmt::format("tensors '{}' and '{}' overlap", by_offset[i - 1]->name, by_offset[i]->name));
      }
    }
  }

  tensor_entry parse_entry(const std::string& name, const nlohmann::json& value, std::size_t data_size) const {
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets")) {
      fail(fmt::format("tensor '{}' lacks dtype, shape or data_offsets", name));
    }
    tensor_entry t{name, tensor_dtype::f32, {}, 0, 0};
    const auto& dtype = value["dtype"];
    if (!dtype.is_string() || !detail::parse_dtype(dtype.get<std::string>(), t.dtype)) {
      fail(fmt::format("tensor '{}' has dtype {}, expected one of F32, F64, F16, BF16, I32, I64", name, dtype.dump()));
    }
    const auto& shape = value["shape"];
    if (!shape.is_array()) fail(fmt::format("tensor '{}' has a shape that is not a list", name));
    std::uint64_t elements = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > (std::uint64_t{1} << 40)) {
        fail(fmt::format("tensor '{}' has shape {}, expected non-negative extents", name, shape.dump()));
      }
      t.shape.push_back(d.get<std::int64_t>());
      elements *= d.get<std::uint64_t>();
      if (elements > (std::uint64_t{1} << 40)) fail(fmt::format("tensor '{}' has shape {}, too large", name, shape.dump()));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      fail(fmt::format("tensor '{}' has data_offsets {}, expected [begin, end]", name, offsets.dump()));
    }
    const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    if (begin > end || end > data_size) {
      fail(fmt::format("tensor '{}' has data_offsets [{}, {}], outside the {} data bytes", name, begin, end, data_size));
    }
    const std::uint64_t expected = elements * detail::dtype_bytes(t.dtype);
    if (end - begin != expected) {
      fail(fmt::format("tensor '{}' spans {} bytes, expected {} for shape {} of {}", name, end - begin, expected,
                       shape.dump(), dtype.get<std::string>()));
    }
    t.begin = static_cast<std::size_t>(begin);
    t.end = static_cast<std::size_t>(end);
    return t;
  }

  std::string path_;
  std::string bytes_;
  std::size_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<tensor_entry> tensors_;
};

class safetensors_writer {
 public:
  // Adds a tensor with the given shape (whose product must be the matrix's size), stored as F32, F16
  // or BF16 (see above; io_error for a finite value beyond F16's or BF16's range).
  template <class Scalar>
  void add(const std::string& name, const matrix<Scalar>& values, std::vector<std::int64_t> shape,
           tensor_dtype stored = tensor_dtype::f32) {
    switch (stored) {
      case tensor_dtype::f32: append<float>(name, values, std::move(shape)); break;
      case tensor_dtype::f16: append_half(name, values, std::move(shape), stored, detail::float_to_half); break;
      case tensor_dtype::bf16: append_half(name, values, std::move(shape), stored, detail::float_to_bfloat16); break;
      default:
        throw config_error(fmt::format("safetensors_writer: tensor '{}': weights are written as F32, F16 or BF16, not {}", name,
                                       detail::dtype_name(stored)));
    }
  }

  // Adds a tensor stored in its own type (F32 or F64), so that reading it back gives the same bits.
  template <class Scalar>
  void add_exact(const std::string& name, const matrix<Scalar>& values, std::vector<std::int64_t> shape) {
    append<Scalar>(name, values, std::move(shape));
  }

  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Writes the file atomically. The header is padded with spaces to a multiple of 8 bytes, so the data
  // that follows is aligned for every dtype.
  void write(const std::filesystem::path& path) const {
    nlohmann::ordered_json header;
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const std::size_t end = i + 1 < entries_.size() ? entries_[i + 1].begin : data_.size();
      header[entries_[i].name] = {{"dtype", entries_[i].dtype}, {"shape", entries_[i].shape}, {"data_offsets", {entries_[i].begin, end}}};
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string bytes(8, '\0');
    const std::uint64_t length = text.size();
    std::memcpy(bytes.data(), &length, 8);
    bytes += text;
    bytes += data_;
    write_file_atomically(path, bytes);
  }

 private:
  struct entry {
    std::string name;
    std::vector<std::int64_t> shape;
    std::size_t begin;
    const char* dtype;
  };

  template <class Scalar>
  void check_count(const std::string& name, const matrix<Scalar>& values, const std::vector<std::int64_t>& shape) const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    if (n != values.size()) {
      throw shape_error(fmt::format("safetensors_writer: tensor '{}' has {} values, shape [{}] needs {}", name,
                                    values.size(), fmt::join(shape, ", "), n));
    }
  }

  // F16 or BF16: each value converted to float, then rounded by `convert`.
  template <class Scalar, class Convert>
  void append_half(const std::string& name, const matrix<Scalar>& values, std::vector<std::int64_t> shape, tensor_dtype stored,
                   Convert convert) {
    check_count(name, values, shape);
    const std::size_t start = data_.size();
    std::string bytes(static_cast<std::size_t>(values.size()) * 2, '\0');
    for (index_t i = 0; i < values.size(); ++i) {
      const Scalar raw = values.data()[i];
      // A finite value that rounds to infinity is refused (a double beyond float's range first: its
      // conversion to float would be undefined).
      const bool beyond_float = std::isfinite(raw) && std::abs(static_cast<double>(raw)) > std::numeric_limits<float>::max();
      const auto v = beyond_float ? 0.0f : static_cast<float>(raw);
      const std::uint16_t h = convert(v);
      if (beyond_float || (std::isfinite(v) && (h & 0x7FFF) == (stored == tensor_dtype::f16 ? 0x7C00 : 0x7F80))) {
        throw io_error(fmt::format("safetensors_writer: tensor '{}' holds {} at index {}, beyond the range of {}", name,
                                   static_cast<double>(raw), i, detail::dtype_name(stored)));
      }
      std::memcpy(bytes.data() + static_cast<std::size_t>(i) * 2, &h, 2);
    }
    entries_.push_back({name, std::move(shape), start, detail::dtype_name(stored)});
    data_ += bytes;
  }

  template <class Stored, class Scalar>
  void append(const std::string& name, const matrix<Scalar>& values, std::vector<std::int64_t> shape) {
    static_assert(std::is_same_v<Stored, float> || std::is_same_v<Stored, double>);
    check_count(name, values, shape);
    entries_.push_back({name, std::move(shape), data_.size(), std::is_same_v<Stored, float> ? "F32" : "F64"});
    const std::size_t start = data_.size();
    data_.resize(start + static_cast<std::size_t>(values.size()) * sizeof(Stored));
    for (index_t i = 0; i < values.size(); ++i) {
      const auto v = static_cast<Stored>(values.data()[i]);
      std::memcpy(data_.data() + start + static_cast<std::size_t>(i) * sizeof(Stored), &v, sizeof(Stored));
    }
  }

  std::vector<entry> entries_;
  std::string data_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace earlybert
