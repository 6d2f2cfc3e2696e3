// SPDX-License-Identifier: Apache-2.0
#pragma once
// BERT shapes: the four dimensions of an architecture (layers, hidden size, heads, FFN width), each
// fixed at compile time or `dynamic` (read from the configuration at run time), as Eigen's fixed and
// Dynamic sizes.
//
// The model computes with the configuration's numbers in every case; a fixed dimension adds two
// checks: a shape that cannot be a BERT (a hidden size the heads do not divide, a zero) fails to
// compile with a message that says so, and a configuration whose numbers differ from the shape's is
// refused when the model is built (bert_config::check_against). A fixed shape buys those checks and a
// type that names the architecture; it buys no speed (docs/model.md, "Compile-time and run-time
// shapes", has the measurement). Batch, sequence length, vocabulary size and the sets of active heads
// and FFN neurons are always run-time.

#include <concepts>

namespace earlybert {

// A dimension read from the configuration at run time.
inline constexpr int dynamic = -1;

namespace detail {
// The head size, a member only where the hidden size and the heads are both fixed: a shape that reads
// either at run time has no compile-time head size, and code that asks for one does not compile
// (instead of computing with dynamic, -1). At run time: bert_config::head_dim().
template <int Hidden, int Heads>
struct fixed_head_dim {};
template <int Hidden, int Heads>
  requires(Hidden > 0 && Heads > 0)
struct fixed_head_dim<Hidden, Heads> {
  static constexpr int head_dim = Hidden / Heads;
};
}  // namespace detail

template <int Layers, int Hidden, int Heads, int Ffn>
struct bert_shape : detail::fixed_head_dim<Hidden, Heads> {
  static_assert(Layers > 0 || Layers == dynamic, "earlybert::bert_shape: the number of layers must be positive");
  static_assert(Hidden > 0 || Hidden == dynamic, "earlybert::bert_shape: the hidden size must be positive");
  static_assert(Heads > 0 || Heads == dynamic, "earlybert::bert_shape: the number of attention heads must be positive");
  static_assert(Ffn > 0 || Ffn == dynamic, "earlybert::bert_shape: the FFN width must be positive");
  static_assert(Hidden == dynamic || Heads == dynamic || Hidden % Heads == 0,
                "earlybert::bert_shape: the hidden size must be divisible by the number of heads");

  static constexpr int layers = Layers;
  static constexpr int hidden = Hidden;
  static constexpr int heads = Heads;
  static constexpr int ffn = Ffn;
  // Every dimension fixed.
  static constexpr bool fixed = Layers != dynamic && Hidden != dynamic && Heads != dynamic && Ffn != dynamic;
};

template <class T>
concept bert_shape_type = requires {
  { T::layers } -> std::convertible_to<int>;
  { T::hidden } -> std::convertible_to<int>;
  { T::heads } -> std::convertible_to<int>;
  { T::ffn } -> std::convertible_to<int>;
  { T::fixed } -> std::convertible_to<bool>;
};

namespace shapes {
// The named shapes (layers / hidden / heads / ffn).
using tiny = bert_shape<2, 128, 2, 512>;
using mini = bert_shape<4, 256, 4, 1024>;
using small = bert_shape<4, 512, 8, 2048>;
using medium = bert_shape<8, 512, 8, 2048>;
using base = bert_shape<12, 768, 12, 3072>;
// Any BERT: every dimension from the configuration (a HuggingFace config.json of any shape).
using any = bert_shape<dynamic, dynamic, dynamic, dynamic>;
}  // namespace shapes

static_assert(bert_shape_type<shapes::tiny>);
static_assert(bert_shape_type<shapes::any>);

}  // namespace earlybert
