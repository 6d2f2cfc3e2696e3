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
