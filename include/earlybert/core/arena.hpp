// SPDX-License-Identifier: Apache-2.0
#pragma once
// A bump allocator for per-step memory, rewound (not freed) at the start of every step.
//
// Memory comes from a list of blocks that is only ever appended to. allocate() bumps an offset within
// the current block and moves to the next block when the request does not fit; a new block is taken
// from the heap only when the list runs out. rewind() returns to the first block. A training step
// makes the same requests in the same order every time, so after the first step has grown the list
// to its peak, no later step touches the heap.
//
// The arena never runs destructors: it holds only trivially destructible objects (scalars, indices,
// and the tape's backward closures, which are checked for this when they are recorded).

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "earlybert/core/types.hpp"

namespace earlybert {

class arena {
 public:
  // Every allocation is aligned to this many bytes (a cache line, and the widest SIMD register).
  static constexpr std::size_t alignment = 64;

  explicit arena(std::size_t first_block_bytes = std::size_t{1} << 20)
      : first_block_bytes_(std::max(round_up(first_block_bytes), alignment)) {}

  arena(const arena&) = delete;
  arena& operator=(const arena&) = delete;
  arena(arena&&) noexcept = default;
  arena& operator=(arena&&) noexcept = default;

  // Uninitialised storage for `count` objects of trivially destructible type T, aligned to
  // `alignment`. Valid until the next rewind().
  template <class T>
  T* allocate(index_t count) {
    static_assert(std::is_trivially_destructible_v<T>,
                  "earlybert::arena holds only trivially destructible objects");
    static_assert(alignof(T) <= alignment);
    return static_cast<T*>(allocate_bytes(sizeof(T) * static_cast<std::size_t>(count)));
  }

  void* allocate_bytes(std::size_t bytes) {
    bytes = round_up(std::max<std::size_t>(bytes, 1));
    while (current_ < blocks_.size()) {
      if (offset_ + bytes <= blocks_[current_].size) {
        std::byte* where = blocks_[current_].data.get() + offset_;
        offset_ += bytes;
        return where;
      }
      ++current_;
      offset_ = 0;
    }
    // Grow geometrically so that warm-up needs few blocks.
    const std::size_t last = blocks_.empty() ? first_block_bytes_ : 2 * blocks_.back().size;
    const std::size_t size = std::max(last, bytes);
    auto* data = static_cast<std::byte*>(std::aligned_alloc(alignment, size));
    if (data == nullptr) throw std::bad_alloc();
    blocks_.push_back(block{std::unique_ptr<std::byte[], free_deleter>(data), size});
    current_ = blocks_.size() - 1;
    offset_ = bytes;
    return data;
  }

  // Makes all memory reusable; keeps every block.
  void rewind() noexcept {
    current_ = 0;
    offset_ = 0;
  }

  // Where the next allocation would go, and a return there: everything allocated since becomes
  // reusable (and invalid), everything before stays.
  struct mark {
    std::size_t block, offset;
  };
  mark position() const noexcept { return {current_, offset_}; }
  void rewind_to(mark m) noexcept {
    current_ = m.block;
    offset_ = m.offset;
  }

  // Bytes held from the heap (the high-water mark of any step so far, plus block tails).
  std::size_t capacity_bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& b : blocks_) total += b.size;
    return total;
  }

 private:
  struct free_deleter {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  struct block {
    std::unique_ptr<std::byte[], free_deleter> data;
    std::size_t size;
  };

  static constexpr std::size_t round_up(std::size_t bytes) {
    return (bytes + alignment - 1) / alignment * alignment;
  }

  std::size_t first_block_bytes_;
  std::vector<block> blocks_;
  std::size_t current_ = 0;  // block being bumped
  std::size_t offset_ = 0;   // bytes used in that block
};

}  // namespace earlybert
