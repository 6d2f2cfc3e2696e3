// SPDX-License-Identifier: Apache-2.0
#pragma once
// Whole numbers from JSON that someone else wrote (config.json, a training state's records).
//
// nlohmann's get<int>() converts any JSON number with a static_cast: 2.5 becomes 2 without a word,
// true becomes 1, and 1e300 is undefined behaviour. These readers take a whole number that fits the
// target type and nothing else; 3.0 is accepted (it is written that way by some tools).

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"

namespace earlybert {

// `j` as a T if it is a whole number that T holds; nullopt for anything else (a fraction, a number out
// of T's range, a boolean, a string, ...).
template <std::integral T>
std::optional<T> whole_number(const nlohmann::json& j) {
  if (j.is_number_unsigned()) {
    const auto v = j.get<std::uint64_t>();
    return std::in_range<T>(v) ? std::optional<T>(static_cast<T>(v)) : std::nullopt;
  }
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    return std::in_range<T>(v) ? std::optional<T>(static_cast<T>(v)) : std::nullopt;
  }
  if (j.is_number_float()) {
    const double v = j.get<double>();
    // [-2^63, 2^63) is where the cast to int64 is defined; every whole double in it converts exactly.
    if (!std::isfinite(v) || v != std::trunc(v) || v < -0x1p63 || v >= 0x1p63) return std::nullopt;
    const auto w = static_cast<std::int64_t>(v);
    return std::in_range<T>(w) ? std::optional<T>(static_cast<T>(w)) : std::nullopt;
  }
  return std::nullopt;
}

// j[key] if `j` is an object that holds `key`; null otherwise. For reading a field of input whose
// shape is not known yet: a missing key and a non-object read the same, and nothing throws.
inline const nlohmann::json& member_or_null(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null;
  if (!j.is_object()) return null;
  const auto it = j.find(key);
  return it == j.end() ? null : *it;
}

namespace detail {
// A JSON value for an error message, cut to a readable length (at a UTF-8 character boundary).
inline std::string json_excerpt(const nlohmann::json& j) {
  std::string text = j.dump();
  if (text.size() <= 60) return text;
  std::size_t cut = 57;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return text.substr(0, cut) + "...";
}
}  // namespace detail

// `j` as a T; an io_error naming `what`, the value found and the range expected otherwise.
template <std::integral T>
T read_whole_number(const nlohmann::json& j, std::string_view what) {
  if (const auto v = whole_number<T>(j)) return *v;
  throw io_error(fmt::format("{} is {}, expected a whole number from {} to {}", what, detail::json_excerpt(j),
                             std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
}

// `j` as a list of T; an io_error naming `what` if it is not a list or an element is not a T.
template <std::integral T>
std::vector<T> read_whole_numbers(const nlohmann::json& j, std::string_view what) {
  if (!j.is_array()) throw io_error(fmt::format("{} is {}, expected a list of whole numbers", what, detail::json_excerpt(j)));
  std::vector<T> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(read_whole_number<T>(j[i], fmt::format("{}[{}]", what, i)));
  return out;
}

}  // namespace earlybert
