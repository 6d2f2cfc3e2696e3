// SPDX-License-Identifier: Apache-2.0
#pragma once
// Compile-time BERT shapes: the dimensions fixed by an architecture.
//
// Layers, hidden size, heads and FFN width are template parameters, checked when the type is
// instantiated; batch, sequence length, vocabulary size and the sets of active heads and FFN neurons
// stay runtime. A shape that cannot be a BERT (a hidden size the heads do not divide) fails to
// compile with a message that says so.

#include <concepts>

namespace earlybert {

template <int Layers, int Hidden, int Heads, int Ffn>
struct bert_shape {
  static_assert(Layers > 0, "earlybert::bert_shape: the number of layers must be positive");
  static_assert(Hidden > 0, "earlybert::bert_shape: the hidden size must be positive");
  static_assert(Heads > 0, "earlybert::bert_shape: the number of attention heads must be positive");
  static_assert(Ffn > 0, "earlybert::bert_shape: the FFN width must be positive");
  static_assert(Hidden % Heads == 0,
                "earlybert::bert_shape: the hidden size must be divisible by the number of heads");

  static constexpr int layers = Layers;
  static constexpr int hidden = Hidden;
  static constexpr int heads = Heads;
  static constexpr int head_dim = Hidden / Heads;
  static constexpr int ffn = Ffn;
};

template <class T>
concept bert_shape_type = requires {
  { T::layers } -> std::convertible_to<int>;
  { T::hidden } -> std::convertible_to<int>;
  { T::heads } -> std::convertible_to<int>;
  { T::head_dim } -> std::convertible_to<int>;
  { T::ffn } -> std::convertible_to<int>;
};

// The named shapes (layers / hidden / heads / ffn).
namespace shapes {
using tiny = bert_shape<2, 128, 2, 512>;
using mini = bert_shape<4, 256, 4, 1024>;
using small = bert_shape<4, 512, 8, 2048>;
using medium = bert_shape<8, 512, 8, 2048>;
using base = bert_shape<12, 768, 12, 3072>;
}  // namespace shapes

static_assert(bert_shape_type<shapes::tiny>);
static_assert(bert_shape_type<shapes::base>);

}  // namespace earlybert
