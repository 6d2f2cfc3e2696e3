// SPDX-License-Identifier: Apache-2.0
#pragma once
// The processes a data-parallel run spans, as the trainer sees them: how many there are, which one
// this is, and the few collective operations training needs. Every collective must be called by every
// process of the group, in the same order, with the same sizes.
//
//   sum(values)        elementwise sum over the processes, in place, in rank order:
//                      (((v_0 + v_1) + v_2) + ... + v_{N-1}), every process receiving the same bits,
//                      whatever algorithm the transport would use for its own reduction
//   all_gather(mine)   every process's equal-sized bytes, in rank order, to every process
//
// single_process is the group of one (every collective a no-op); distributed/mpi.hpp is the group of
// an MPI job. The library without MPI knows only this file.
//
// sum_gradients sums the trainable parameters' gradients over the group in fixed-size buckets (the
// parameters in order, flattened; a parameter larger than a bucket spans several), so the
// communication buffers stay bounded whatever the model's size, and after its first call nothing here
// touches the heap.

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "earlybert/core/parameter.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

class process_group {
 public:
  virtual ~process_group() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  virtual void sum(std::span<float> values) = 0;
  virtual void sum(std::span<double> values) = 0;
  // `all` holds size() * mine.size() bytes.
  virtual void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;
};

class single_process final : public process_group {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  void sum(std::span<float>) override {}
  void sum(std::span<double>) override {}
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override { std::copy(mine.begin(), mine.end(), all.begin()); }
};

// Sums the gradients of the trainable `parameters` over `group` through `bucket` (resized once to
// bucket_elements). Every process must pass parameters of the same shapes in the same order.
template <class Scalar>
void sum_gradients(process_group& group, std::span<parameter<Scalar>* const> parameters, std::vector<Scalar>& bucket,
                   std::size_t bucket_elements = std::size_t{1} << 22) {
  if (group.size() == 1) return;
  bucket.resize(bucket_elements);
  // A bucket is filled from the parameters in order, summed, and written back the same way.
  struct cursor {
    std::size_t parameter = 0;
    std::size_t offset = 0;
  };
  const auto walk = [&](cursor& at, std::size_t capacity, auto&& copy) {
    std::size_t filled = 0;
    while (at.parameter < parameters.size() && filled < capacity) {
      parameter<Scalar>& p = *parameters[at.parameter];
      const std::size_t size = static_cast<std::size_t>(p.gradient.size());
      if (!p.trainable || at.offset == size) {
        ++at.parameter;
        at.offset = 0;
        continue;
      }
      const std::size_t n = std::min(size - at.offset, capacity - filled);
      copy(p.gradient.data() + at.offset, bucket.data() + filled, n);
      at.offset += n;
      filled += n;
    }
    return filled;
  };
  cursor read, write;
  for (;;) {
    const std::size_t filled = walk(read, bucket_elements, [](const Scalar* g, Scalar* b, std::size_t n) { std::copy_n(g, n, b); });
    if (filled == 0) break;
    group.sum(std::span<Scalar>(bucket.data(), filled));
    walk(write, filled, [](Scalar* g, const Scalar* b, std::size_t n) { std::copy_n(b, n, g); });
  }
}

}  // namespace earlybert
