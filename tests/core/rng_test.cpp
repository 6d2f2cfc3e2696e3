// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/rng.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include <doctest/doctest.h>

using namespace earlybert;

TEST_CASE("rng: SplitMix64 reproduces its published first output for seed 0") {
  rng random(0);
  CHECK(random.next() == 0xe220a8397b1dcdafULL);
}

TEST_CASE("rng: uniform, below and normal stay in range and have the right moments") {
  rng random(123);
  double total = 0, squares = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = random.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    REQUIRE(random.below(7) < 7);
    const double z = random.normal();
    total += z;
    squares += z * z;
  }
  // Standard errors: mean 0.007, variance 0.01.
  CHECK(std::abs(total / n) < 0.03);
  CHECK(std::abs(squares / n - 1.0) < 0.05);
}

TEST_CASE("rng: shuffle is a deterministic permutation") {
  std::vector<int> a(50), b(50);
  std::iota(a.begin(), a.end(), 0);
  b = a;
  rng r1(9), r2(9);
  r1.shuffle(a);
  r2.shuffle(b);
  CHECK(a == b);
  CHECK_FALSE(std::is_sorted(a.begin(), a.end()));
  std::sort(a.begin(), a.end());
  for (int i = 0; i < 50; ++i) CHECK(a[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("counter_rng: a pure function of key and counter, keys are independent") {
  const counter_rng a(derive_key(1, 2)), same(derive_key(1, 2)), other(derive_key(1, 3));
  int equal = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    CHECK(a.bits(i) == same.bits(i));
    equal += a.bits(i) == other.bits(i);
    const float u = a.uniform_float(i);
    CHECK(u >= 0.0f);
    CHECK(u < 1.0f);
  }
  CHECK(equal == 0);
}
