// SPDX-License-Identifier: Apache-2.0
#pragma once
// The processes a data-parallel run spans, as the trainer sees them: how many there are, which one
// this is, and the few collective operations training needs. Every collective must be called by every
// process of the group, in the same order, with the same sizes.
//
//   start_sum(values)  begins an elementwise sum over the processes, in place, in rank order:
//                      (((v_0 + v_1) + v_2) + ... + v_{N-1}), every process receiving the same bits,
//                      whatever algorithm the transport would use for its own reduction; returns at
//                      once with a handle. `values` must be left alone until the sum is finished:
//   finished(handle)   lets every sum in flight advance (cheap: call it often while computing) and
//                      says whether this one is done (the handle is spent once it said so)
//   wait(handle)       returns once it is done (the handle is spent)
//   sum(values)        start_sum and wait
//   all_gather(mine)   every process's equal-sized bytes, in rank order, to every process (blocking)
//
// Sums started one after another may be in flight together (gradient_reducer.hpp overlaps them with
// the backward pass); each gives the same bits as it would alone.
//
// single_process is the group of one (every collective a no-op); distributed/mpi.hpp is the group of
// an MPI job. The library without MPI knows only this file.

#include <algorithm>
#include <cstddef>
#include <span>

#include "earlybert/core/error.hpp"

namespace earlybert {

// A collective operation that failed, or processes that do not agree on one.
class distributed_error : public error {
 public:
  using error::error;
};

class process_group {
 public:
  using sum_handle = std::size_t;

  virtual ~process_group() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  virtual sum_handle start_sum(std::span<float> values) = 0;
  virtual sum_handle start_sum(std::span<double> values) = 0;
  virtual bool finished(sum_handle handle) = 0;
  virtual void wait(sum_handle handle) = 0;
  // `all` holds size() * mine.size() bytes.
  virtual void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;

  void sum(std::span<float> values) { wait(start_sum(values)); }
  void sum(std::span<double> values) { wait(start_sum(values)); }
};

class single_process final : public process_group {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  sum_handle start_sum(std::span<float>) override { return 0; }
  sum_handle start_sum(std::span<double>) override { return 0; }
  bool finished(sum_handle) override { return true; }
  void wait(sum_handle) override {}
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override { std::copy(mine.begin(), mine.end(), all.begin()); }
};

}  // namespace earlybert
