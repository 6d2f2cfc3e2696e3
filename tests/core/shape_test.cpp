// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/shape.hpp"

#include <doctest/doctest.h>

using namespace earlybert;

TEST_CASE("bert_shape: the named shapes carry their dimensions and head size") {
  CHECK(shapes::tiny::layers == 2);
  CHECK(shapes::tiny::head_dim == 64);
  CHECK(shapes::mini::hidden == 256);
  CHECK(shapes::mini::head_dim == 64);
  CHECK(shapes::small::heads == 8);
  CHECK(shapes::medium::layers == 8);
  CHECK(shapes::base::ffn == 3072);
  CHECK(shapes::base::head_dim == 64);
}

TEST_CASE("bert_shape: a dynamic dimension is read at run time, a shape is fixed only when all four are") {
  static_assert(shapes::any::layers == dynamic && !shapes::any::fixed);
  static_assert(shapes::base::fixed);
  using wide_heads = bert_shape<dynamic, 96, 3, dynamic>;
  static_assert(wide_heads::head_dim == 32 && !wide_heads::fixed);
  using open_heads = bert_shape<4, 96, dynamic, 160>;
  CHECK(open_heads::hidden == 96);
}

// A head size is a compile-time member only where both of its factors are (the compile_fail test
// head_dim_of_dynamic shows the error); bert_config::head_dim() gives it at run time.
template <class Shape>
constexpr bool has_head_dim = requires { Shape::head_dim; };

TEST_CASE("bert_shape: a shape with a dynamic hidden size or head count has no compile-time head size") {
  static_assert(has_head_dim<shapes::tiny> && has_head_dim<bert_shape<dynamic, 96, 3, dynamic>>);
  static_assert(!has_head_dim<shapes::any>);
  static_assert(!has_head_dim<bert_shape<4, 96, dynamic, 160>>);
  static_assert(!has_head_dim<bert_shape<4, dynamic, 4, 160>>);
}
