// SPDX-License-Identifier: Apache-2.0
#pragma once
// A process group without a transport, for testing what runs over one: this process is rank 0 of
// `processes`, and every other process is taken to be an exact copy of it. A sum therefore doubles
// (for two processes) its values — exactly, in binary floating point — and all_gather repeats this
// process's bytes. A sum is finished at the first finished() or wait() after it started, so a caller
// that polls during backward sees it finish there. Counts what it was asked to do.

#include <algorithm>
#include <cstddef>
#include <span>

#include "earlybert/distributed/process_group.hpp"

namespace earlybert::testing {

class loopback_group final : public process_group {
 public:
  explicit loopback_group(int processes = 2) : processes_(processes) {}

  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return processes_; }
  sum_handle start_sum(std::span<float> values) override { return add_copies(values); }
  sum_handle start_sum(std::span<double> values) override { return add_copies(values); }
  bool finished(sum_handle) override { return true; }
  void wait(sum_handle) override {}
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    for (int r = 0; r < processes_; ++r) std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(r * mine.size()));
  }

  long sums_started = 0;
  std::size_t values_summed = 0;

 private:
  // v_0 + v_1 + ... + v_{N-1} with every v_r = v, added in rank order as the real groups do.
  template <class Scalar>
  sum_handle add_copies(std::span<Scalar> values) {
    for (Scalar& v : values) {
      const Scalar mine = v;
      for (int r = 1; r < processes_; ++r) v += mine;
    }
    ++sums_started;
    values_summed += values.size();
    return 0;
  }

  int processes_;
};

}  // namespace earlybert::testing
