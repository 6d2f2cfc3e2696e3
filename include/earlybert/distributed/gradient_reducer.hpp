// SPDX-License-Identifier: Apache-2.0
#pragma once
// Sums the trainable parameters' gradients over a process group in buckets, each bucket started as
// soon as the backward pass has completed every gradient in it, so that the communication runs while
// the rest of backward computes (the overlap of PyTorch DDP's and Horovod's reducers).
//
// In a step whose last micro-batch is recorded on tape `t`:
//   reducer.begin(group, parameters, &t, losses);  // plans the buckets, agrees on them, sums `losses`
//   t.backward(loss, [&](std::size_t remaining) { reducer.on_backward(remaining); });
//   reducer.finish();                              // every trainable gradient now holds the sum
// Without overlap, backward runs without the observer and finish() starts every bucket itself; without
// a tape (begin(group, parameters)), every gradient counts as complete from the start.
//
// Buckets. The trainable parameters are ordered by when backward completes their gradients: the
// position of their first watch on the tape, latest first (tape.hpp: a gradient is complete once the
// closures recorded after its first watch have run), a parameter the tape never watched first of all,
// ties in the parameters' order. Their gradients, flattened in that order into one buffer, are cut
// into buckets of bucket_elements (a parameter larger than a bucket spans several). Bucket k starts
// once its last gradient is complete; buckets start in order; on_backward, called after every
// closure, starts those that became ready, lets the sums in flight advance, and copies each finished
// bucket back into its gradients.
//
// Determinism: each sum is elementwise in rank order (process_group.hpp), so the gradients hold the
// same bits however they are cut into buckets, and with or without overlap.
//
// Agreement: the processes must cut the same buckets, or the sums would pair unrelated values. begin()
// exchanges a fingerprint of the plan (with, in the same small message, the values of `losses`, which
// it adds in rank order) and throws distributed_error on every process when the plans differ.
//
// Memory: one buffer holding every trainable gradient (an MPI group holds about as much again for its
// exchanges), sized on first use and when the model grows; after that nothing here touches the heap.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/distributed/process_group.hpp"

namespace earlybert {

template <class Scalar>
class gradient_reducer {
 public:
  static constexpr std::size_t max_losses = 4;  // values begin() can add over the processes

  explicit gradient_reducer(std::size_t bucket_elements = std::size_t{1} << 20) : bucket_elements_(bucket_elements) {
    if (bucket_elements == 0) throw config_error("gradient_reducer: bucket_elements is 0, expected at least 1");
  }

  // Plans the buckets of `parameters` (every process passing parameters of the same shapes in the
  // same order), the order of completion read from `recorded` (null: all complete now); checks that
  // every process planned the same; replaces each of `losses` by its sum over the processes.
  void begin(process_group& group, std::span<parameter<Scalar>* const> parameters, const tape<Scalar>* recorded = nullptr,
             std::span<double> losses = {}) {
    const auto start = clock::now();
    group_ = &group;
    seconds_ = 0;
    next_start_ = next_finish_ = 0;
    if (group.size() == 1) return;
    if (losses.size() > max_losses) {
      throw config_error(fmt::format("gradient_reducer::begin: {} losses to sum, expected at most {}", losses.size(), max_losses));
    }
    plan(parameters, recorded);
    agree(losses);
    seconds_ += since(start);
  }

  // After the backward closure that left `remaining` closures to run.
  void on_backward(std::size_t remaining) {
    if (group_ == nullptr || group_->size() == 1) return;
    const auto start = clock::now();
    while (next_start_ < buckets_.size() && remaining <= buckets_[next_start_].ready_at) start_bucket(buckets_[next_start_++]);
    while (next_finish_ < next_start_ && group_->finished(buckets_[next_finish_].handle)) copy_back(buckets_[next_finish_++]);
    seconds_ += since(start);
  }

  // Starts what has not started, waits for every bucket and writes the sums into the gradients.
  void finish() {
    if (group_ == nullptr || group_->size() == 1) return;
    const auto start = clock::now();
    while (next_start_ < buckets_.size()) start_bucket(buckets_[next_start_++]);
    waiting_s_ = 0;
    while (next_finish_ < buckets_.size()) {
      group_->wait(buckets_[next_finish_].handle);
      copy_back(buckets_[next_finish_++]);
    }
    waiting_s_ = since(start);
    seconds_ += waiting_s_;
    group_ = nullptr;
  }

  // Since begin(): the time spent in begin, on_backward and finish (the step's cost of communicating),
  // and of it the time in finish (what the backward pass did not hide).
  double seconds() const noexcept { return seconds_; }
  double finish_seconds() const noexcept { return waiting_s_; }
  std::size_t bucket_count() const noexcept { return buckets_.size(); }

 private:
  using clock = std::chrono::steady_clock;
  static double since(clock::time_point start) { return std::chrono::duration<double>(clock::now() - start).count(); }
  static constexpr std::size_t never_watched = std::numeric_limits<std::size_t>::max();

  struct entry {
    parameter<Scalar>* gradient_of;
    std::size_t position;  // of its first watch (never_watched: complete from the start)
    std::size_t index;     // in the parameters as given
    std::size_t offset;    // in the buffer
  };
  struct bucket {
    std::size_t begin, end;  // in the buffer
    std::size_t first_entry;
    std::size_t ready_at;  // ready once at most this many closures remain
    process_group::sum_handle handle = 0;
  };

  void plan(std::span<parameter<Scalar>* const> parameters, const tape<Scalar>* recorded) {
    entries_.clear();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      if (parameters[i]->trainable) entries_.push_back({parameters[i], never_watched, i, 0});
    }
    if (recorded != nullptr) {
      // Look each watch up among the entries sorted by address; the first watch of each sets its position.
      std::sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) { return a.gradient_of < b.gradient_of; });
      for (const auto& w : recorded->watches()) {
        auto it = std::lower_bound(entries_.begin(), entries_.end(), w.watched,
                                   [](const entry& e, const parameter<Scalar>* p) { return e.gradient_of < p; });
        if (it != entries_.end() && it->gradient_of == w.watched && it->position == never_watched) it->position = w.position;
      }
    }
    // Latest first watch first (never watched before all), then the given order: a strict order, so
    // std::sort (which, unlike std::stable_sort, allocates nothing) gives the one answer.
    std::sort(entries_.begin(), entries_.end(),
              [](const entry& a, const entry& b) { return a.position != b.position ? a.position > b.position : a.index < b.index; });
    std::size_t total = 0;
    for (entry& e : entries_) {
      e.offset = total;
      total += static_cast<std::size_t>(e.gradient_of->gradient.size());
    }
    if (buffer_.size() < total) buffer_.resize(total);
    buckets_.clear();
    std::size_t e = 0;
    for (std::size_t begin = 0; begin < total; begin += bucket_elements_) {
      const std::size_t end = std::min(begin + bucket_elements_, total);
      while (end_of(entries_[e]) <= begin) ++e;
      std::size_t last = e;
      while (end_of(entries_[last]) < end) ++last;
      buckets_.push_back({begin, end, e, entries_[last].position});
    }
  }

  static std::size_t end_of(const entry& e) { return e.offset + static_cast<std::size_t>(e.gradient_of->gradient.size()); }

  // One message per process: the plan's fingerprint and the losses; every process compares and adds
  // the same gathered bytes, so all throw or all go on.
  void agree(std::span<double> losses) {
    std::uint64_t fingerprint = 0xcbf29ce484222325ULL;  // FNV-1a over the plan
    const auto mix = [&](std::uint64_t v) {
      for (int byte = 0; byte < 8; ++byte) fingerprint = (fingerprint ^ ((v >> (8 * byte)) & 0xff)) * 0x100000001b3ULL;
    };
    mix(bucket_elements_);
    for (const entry& e : entries_) {
      mix(e.index);
      mix(static_cast<std::uint64_t>(e.gradient_of->gradient.size()));
    }
    constexpr std::size_t message_bytes = sizeof(std::uint64_t) + max_losses * sizeof(double);
    std::byte message[message_bytes] = {};
    std::memcpy(message, &fingerprint, sizeof fingerprint);
    if (!losses.empty()) std::memcpy(message + sizeof fingerprint, losses.data(), losses.size_bytes());
    const auto processes = static_cast<std::size_t>(group_->size());
    gathered_.resize(processes * message_bytes);
    group_->all_gather(std::span<const std::byte>(message, message_bytes), gathered_);
    for (std::size_t r = 0; r < processes; ++r) {
      std::uint64_t theirs = 0;
      std::memcpy(&theirs, gathered_.data() + r * message_bytes, sizeof theirs);
      if (theirs != fingerprint) {
        group_ = nullptr;
        throw distributed_error(fmt::format("gradient_reducer: process {} cut its gradients into other buckets than process 0 (the "
                                            "processes' models differ in their trainable parameters, or in the order backward reaches "
                                            "them)", r));
      }
    }
    for (std::size_t i = 0; i < losses.size(); ++i) {
      double total = 0;
      for (std::size_t r = 0; r < processes; ++r) {
        double value = 0;
        std::memcpy(&value, gathered_.data() + r * message_bytes + sizeof fingerprint + i * sizeof(double), sizeof value);
        total = r == 0 ? value : total + value;
      }
      losses[i] = total;
    }
  }

  // Calls copy(gradient, buffer, n) for each stretch of a gradient inside bucket `b`.
  template <class Copy>
  void for_each_piece(const bucket& b, Copy&& copy) {
    for (std::size_t e = b.first_entry; e < entries_.size() && entries_[e].offset < b.end; ++e) {
      const entry& x = entries_[e];
      const std::size_t from = std::max(b.begin, x.offset), to = std::min(b.end, end_of(x));
      copy(x.gradient_of->gradient.data() + (from - x.offset), buffer_.data() + from, to - from);
    }
  }
  void start_bucket(bucket& b) {
    for_each_piece(b, [](const Scalar* g, Scalar* buffer, std::size_t n) { std::copy_n(g, n, buffer); });
    b.handle = group_->start_sum(std::span<Scalar>(buffer_.data() + b.begin, b.end - b.begin));
  }
  void copy_back(const bucket& b) {
    for_each_piece(b, [](Scalar* g, const Scalar* buffer, std::size_t n) { std::copy_n(buffer, n, g); });
  }

  std::size_t bucket_elements_;
  process_group* group_ = nullptr;  // between begin() and finish()
  std::vector<entry> entries_;      // the trainable parameters in bucket order
  std::vector<bucket> buckets_;
  std::vector<Scalar> buffer_;
  std::vector<std::byte> gathered_;
  std::size_t next_start_ = 0, next_finish_ = 0;
  double seconds_ = 0, waiting_s_ = 0;
};

}  // namespace earlybert
