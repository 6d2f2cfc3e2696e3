// SPDX-License-Identifier: Apache-2.0
#pragma once
// From run-time names and configs to the compiled shapes.
//
// Shapes are template parameters, so a program chooses among the shapes it compiled: the named
// shapes of core/shape.hpp. with_named_shape("mini", f) and with_shape_of(config, f) call
// f.template operator()<Shape>() for the matching shape and throw config_error otherwise, naming
// what was asked for and what is available.

#include <string>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/nn/config.hpp"

namespace earlybert {

template <bert_shape_type Shape>
struct named_shape {
  using shape = Shape;
  std::string_view name;
};

inline constexpr auto compiled_shapes =
    std::tuple{named_shape<shapes::tiny>{"tiny"}, named_shape<shapes::mini>{"mini"}, named_shape<shapes::small>{"small"},
               named_shape<shapes::medium>{"medium"}, named_shape<shapes::base>{"base"}};

// "tiny (2/128/2/512), mini (4/256/4/1024), ...": layers / hidden / heads / ffn.
inline std::string compiled_shape_list() {
  std::string list;
  std::apply([&](const auto&... s) {
    ((list += fmt::format("{}{} ({}/{}/{}/{})", list.empty() ? "" : ", ", s.name, std::remove_cvref_t<decltype(s)>::shape::layers,
                          std::remove_cvref_t<decltype(s)>::shape::hidden, std::remove_cvref_t<decltype(s)>::shape::heads,
                          std::remove_cvref_t<decltype(s)>::shape::ffn)), ...);
  }, compiled_shapes);
  return list;
}

// Tries the compiled shapes in order, from the I-th on.
template <std::size_t I = 0, class Match, class F>
auto with_matching_shape(Match&& match, F&& f, const std::string& asked)
    -> decltype(std::declval<F&>().template operator()<shapes::tiny>()) {
  if constexpr (I == std::tuple_size_v<std::remove_const_t<decltype(compiled_shapes)>>) {
    throw config_error(fmt::format("{}, which is not a compiled shape; the compiled shapes are {}", asked, compiled_shape_list()));
  } else {
    const auto& candidate = std::get<I>(compiled_shapes);
    if (match(candidate)) return f.template operator()<typename std::remove_cvref_t<decltype(candidate)>::shape>();
    return with_matching_shape<I + 1>(match, f, asked);
  }
}

template <class F>
decltype(auto) with_named_shape(std::string_view name, F&& f) {
  return with_matching_shape([&](const auto& s) { return s.name == name; }, std::forward<F>(f),
                             fmt::format("shape '{}' was asked for", name));
}

template <class F>
decltype(auto) with_shape_of(const bert_config& c, F&& f) {
  return with_matching_shape(
      [&](const auto& s) {
        using shape = typename std::remove_cvref_t<decltype(s)>::shape;
        return c.layers == shape::layers && c.hidden == shape::hidden && c.heads == shape::heads && c.ffn == shape::ffn;
      },
      std::forward<F>(f), fmt::format("the config describes {}/{}/{}/{} (layers/hidden/heads/ffn)", c.layers, c.hidden, c.heads, c.ffn));
}

// The name of the compiled shape a config describes, or "" if none.
inline std::string shape_name_of(const bert_config& c) {
  std::string name;
  std::apply([&](const auto&... s) {
    ((c.layers == std::remove_cvref_t<decltype(s)>::shape::layers && c.hidden == std::remove_cvref_t<decltype(s)>::shape::hidden &&
              c.heads == std::remove_cvref_t<decltype(s)>::shape::heads && c.ffn == std::remove_cvref_t<decltype(s)>::shape::ffn
          ? (name = s.name, 0) : 0), ...);
  }, compiled_shapes);
  return name;
}

}  // namespace earlybert
