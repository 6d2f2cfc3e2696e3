// SPDX-License-Identifier: Apache-2.0
#pragma once
// Random numbers that are identical on every platform and for every thread count.
//
// The standard library's distributions are implementation-defined, so the library draws its own:
//   - counter_rng: a stateless, counter-based generator. Element i of a random tensor is a pure
//     function of (key, i), so threads can fill any part of a tensor in any order and the result is
//     bit-identical (dropout masks, random tickets).
//   - rng: a small sequential generator (SplitMix64) for shuffling and initialisation.

#include <cmath>
#include <cstdint>
#include <iterator>
#include <numbers>
#include <utility>

namespace earlybert {

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Derives an independent key from a parent key and a label (a step, a layer, a call site).
constexpr std::uint64_t derive_key(std::uint64_t key, std::uint64_t label) noexcept {
  return mix64(key ^ mix64(label + 0x9e3779b97f4a7c15ULL));
}

class counter_rng {
 public:
  explicit constexpr counter_rng(std::uint64_t key) noexcept : key_(key) {}

  constexpr std::uint64_t bits(std::uint64_t counter) const noexcept {
    return mix64(key_ + mix64(counter + 0x9e3779b97f4a7c15ULL));
  }
  // The counter-th output of SplitMix64 seeded with the key: one mix instead of two, for the hot
  // loops (dropout). Streams of different keys would overlap only if the keys differed by a multiple
  // of the increment; keys come from derive_key, so that is as likely as a 64-bit collision.
  constexpr std::uint64_t stream_bits(std::uint64_t counter) const noexcept {
    return mix64(key_ + (counter + 1) * 0x9e3779b97f4a7c15ULL);
  }
  // Uniform in [0, 1), 24 random bits: exact in float.
  constexpr float uniform_float(std::uint64_t counter) const noexcept {
    return static_cast<float>(bits(counter) >> 40) * 0x1.0p-24f;
  }
  // Uniform in [0, 1), 53 random bits.
  constexpr double uniform(std::uint64_t counter) const noexcept {
    return static_cast<double>(bits(counter) >> 11) * 0x1.0p-53;
  }

 private:
  std::uint64_t key_;
};

class rng {
 public:
  explicit constexpr rng(std::uint64_t seed) noexcept : state_(seed) {}

  constexpr std::uint64_t next() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Uniform in [0, 1).
  constexpr double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here).
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    __extension__ typedef unsigned __int128 wide;
    return static_cast<std::uint64_t>((static_cast<wide>(next()) * n) >> 64);
  }
  // Standard normal (Box-Muller; one of the pair is discarded to keep the state simple).
  double normal() noexcept {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  // Fisher-Yates shuffle of a random-access range.
  template <class Range>
  void shuffle(Range& range) noexcept {
    const auto n = static_cast<std::uint64_t>(std::size(range));
    for (std::uint64_t i = n; i > 1; --i) {
      const auto j = below(i);
      using std::swap;
      swap(range[i - 1], range[j]);
    }
  }

  constexpr std::uint64_t state() const noexcept { return state_; }

 private:
  std::uint64_t state_;
};

}  // namespace earlybert
