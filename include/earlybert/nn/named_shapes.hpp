// SPDX-License-Identifier: Apache-2.0
#pragma once
// The named shapes at run time: from a name ("mini") to a configuration, and back.
//
// A program that takes a shape on its command line or from a config.json builds
// bert_model<Scalar, shapes::any> from the configuration; the names are a table of the fixed shapes of
// core/shape.hpp, so the two can never disagree.

#include <array>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/nn/config.hpp"

namespace earlybert {

struct named_shape {
  std::string_view name;
  int layers, hidden, heads, ffn;

  template <bert_shape_type Shape>
  static constexpr named_shape of(std::string_view name) {
    static_assert(Shape::fixed, "earlybert::named_shape: a named shape fixes every dimension");
    return {name, Shape::layers, Shape::hidden, Shape::heads, Shape::ffn};
  }
  bool describes(const bert_config& c) const noexcept {
    return c.layers == layers && c.hidden == hidden && c.heads == heads && c.ffn == ffn;
  }
};

inline constexpr std::array named_shapes{
    named_shape::of<shapes::tiny>("tiny"),     named_shape::of<shapes::mini>("mini"), named_shape::of<shapes::small>("small"),
    named_shape::of<shapes::medium>("medium"), named_shape::of<shapes::base>("base")};

// "tiny (2/128/2/512), mini (4/256/4/1024), ...": layers / hidden / heads / ffn.
inline std::string named_shape_list() {
  std::string list;
  for (const named_shape& s : named_shapes) {
    list += fmt::format("{}{} ({}/{}/{}/{})", list.empty() ? "" : ", ", s.name, s.layers, s.hidden, s.heads, s.ffn);
  }
  return list;
}

// The configuration of the named shape with the given vocabulary; config_error for an unknown name.
inline bert_config named_shape_config(std::string_view name, index_t vocab) {
  for (const named_shape& s : named_shapes) {
    if (s.name != name) continue;
    bert_config c;
    c.layers = s.layers;
    c.hidden = s.hidden;
    c.heads = s.heads;
    c.ffn = s.ffn;
    c.vocab_size = vocab;
    return c;
  }
  throw config_error(fmt::format("shape '{}' is not a named shape; the named shapes are {}", name, named_shape_list()));
}

// The name of the named shape a config describes, or "" if none.
inline std::string shape_name_of(const bert_config& c) {
  for (const named_shape& s : named_shapes) {
    if (s.describes(c)) return std::string(s.name);
  }
  return "";
}

}  // namespace earlybert
