// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/arena.hpp"

#include <cstdint>

#include <doctest/doctest.h>

using earlybert::arena;

TEST_CASE("arena: allocations are aligned to 64 bytes and do not overlap") {
  arena a(1024);
  auto* x = a.allocate<float>(3);
  auto* y = a.allocate<double>(5);
  CHECK(reinterpret_cast<std::uintptr_t>(x) % 64 == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(y) % 64 == 0);
  CHECK(reinterpret_cast<std::byte*>(y) >= reinterpret_cast<std::byte*>(x + 3));
}

TEST_CASE("arena: rewind reuses the same memory, and a repeated step needs no new block") {
  arena a(256);
  auto step = [&] {
    auto* first = a.allocate<float>(10);
    a.allocate<float>(1000);  // does not fit the first block: grows
    a.allocate<double>(70);
    return first;
  };
  auto* first = step();
  const auto grown = a.capacity_bytes();
  for (int i = 0; i < 5; ++i) {
    a.rewind();
    CHECK(step() == first);
    CHECK(a.capacity_bytes() == grown);
  }
}

TEST_CASE("arena: a request larger than any block gets a block of its own") {
  arena a(128);
  auto* big = a.allocate<float>(10000);
  big[9999] = 1.0f;
  CHECK(a.capacity_bytes() >= 40000);
}

TEST_CASE("arena: rewind_to a mark frees what came after it and keeps what came before") {
  arena a(256);
  auto* kept = a.allocate<float>(10);
  kept[0] = 3.0f;
  const arena::mark before = a.position();
  auto* first = a.allocate<float>(1000);  // grows into a second block
  a.allocate<float>(20);
  a.rewind_to(before);
  const auto grown = a.capacity_bytes();
  CHECK(a.allocate<float>(1000) == first);  // the same memory again, no new block
  CHECK(a.capacity_bytes() == grown);
  CHECK(kept[0] == 3.0f);
}
