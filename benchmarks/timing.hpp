// SPDX-License-Identifier: Apache-2.0
#pragma once
// What every benchmark times with: the wall time of a call, and the median of repeated timings.

#include <algorithm>
#include <chrono>
#include <vector>

namespace earlybert::bench {

// Seconds f() takes, by the steady clock.
template <class F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The median of a non-empty set of timings (the upper one of an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace earlybert::bench
