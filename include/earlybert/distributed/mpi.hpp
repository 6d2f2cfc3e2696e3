// SPDX-License-Identifier: Apache-2.0
#pragma once
// The process group of an MPI job (link earlybert::mpi, which brings MPI::MPI_CXX; the rest of the
// library does not need MPI).
//
//   mpi_environment   initialises MPI for the program's lifetime (MPI_Init_thread, funneled: only the
//                     thread that made it calls MPI) and finalises it; errors in MPI calls throw
//                     distributed_error (naming the call and MPI's message) instead of aborting
//                     inside the library
//   mpi_process_group MPI_COMM_WORLD as a process_group
//
// The sum is deterministic by construction: MPI only moves data, the additions are ours. For N
// processes and n values, chunk c is [c n / N, (c+1) n / N). An all-to-all sends chunk c of every
// process to process c, which adds the N copies in rank order, v_0 + v_1 + ... + v_{N-1}; an
// all-gather then gives every process every summed chunk. Each chunk is summed once, in one order, so
// every process holds the same bits, and a run repeats bit for bit — which MPI_Allreduce does not
// promise (its algorithm, and with it the order of the additions, may change with the message size,
// the process count or the library's version). Traffic per process: 2 (N - 1) / N of the values, as
// for a ring all-reduce. Both steps are nonblocking (MPI_Ialltoallv, MPI_Iallgatherv), so that sums
// can run while the backward pass computes; the additions happen in finished() or wait(), whichever
// first sees the exchange done.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/distributed/process_group.hpp"

namespace earlybert {

namespace detail {
inline void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  throw distributed_error(fmt::format("{}: {}", call, std::string(message, static_cast<std::size_t>(length))));
}
template <class Scalar>
MPI_Datatype mpi_type() {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>);
  return std::is_same_v<Scalar, float> ? MPI_FLOAT : MPI_DOUBLE;
}
}  // namespace detail

class mpi_environment {
 public:
  mpi_environment(int& argc, char**& argv) {
    int provided = 0;
    detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  ~mpi_environment() { MPI_Finalize(); }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;

  // Ends every process of the job at once (after an error on one of them, so that none waits forever
  // in a collective the failed one will never join).
  [[noreturn]] static void abort_job(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();
  }
};

class mpi_process_group final : public process_group {
 public:
  mpi_process_group() {
    detail::check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // One communicator per stage of the sum: MPI matches collectives on a communicator by the order
    // they are started in, and while exchanges are started in the order of the sums, a sum moves on
    // to its gather when this process sees its exchange done — which is at another moment on each
    // process. Gathers are started in the order of the sums too (advance() keeps them so), so each
    // stage is matched in order on its own communicator.
    detail::check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &exchange_), "MPI_Comm_dup");
    detail::check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &gather_), "MPI_Comm_dup");
  }
  ~mpi_process_group() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // a group that outlives MPI has nothing left to free
    MPI_Comm_free(&exchange_);
    MPI_Comm_free(&gather_);
  }
  mpi_process_group(const mpi_process_group&) = delete;
  mpi_process_group& operator=(const mpi_process_group&) = delete;

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  sum_handle start_sum(std::span<float> values) override { return start(values); }
  sum_handle start_sum(std::span<double> values) override { return start(values); }

  bool finished(sum_handle handle) override {
    advance();
    pending_sum& s = sums_.at(handle);
    if (s.at != stage::done) return false;
    s.at = stage::idle;
    return true;
  }

  void wait(sum_handle handle) override {
    pending_sum& s = sums_.at(handle);
    // Its exchange can move on only after every earlier sum's has.
    while (s.at == stage::exchanging) {
      pending_sum& next = next_to_gather();
      detail::check_mpi(MPI_Wait(&next.request, MPI_STATUS_IGNORE), "MPI_Wait");
      start_gather(next);
    }
    if (s.at == stage::gathering) detail::check_mpi(MPI_Wait(&s.request, MPI_STATUS_IGNORE), "MPI_Wait");
    s.at = stage::idle;
  }

  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    if (all.size() != mine.size() * static_cast<std::size_t>(size_)) {
      throw shape_error(fmt::format("mpi_process_group::all_gather: {} bytes for {} processes of {}, expected {}", all.size(), size_,
                                    mine.size(), mine.size() * static_cast<std::size_t>(size_)));
    }
    const int count = checked_count(mine.size());
    detail::check_mpi(MPI_Allgather(mine.data(), count, MPI_BYTE, all.data(), count, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgather");
  }

 private:
  // A sum's way: exchanging (MPI_Ialltoallv of the chunks) -> the local additions -> gathering
  // (MPI_Iallgatherv of the summed chunks) -> done, until finished() or wait() hands the slot back.
  enum class stage { idle, exchanging, gathering, done };
  struct pending_sum {
    stage at = stage::idle;
    MPI_Request request = MPI_REQUEST_NULL;
    std::uint64_t sequence = 0;  // the order it was started in
    void* values = nullptr;
    std::size_t count = 0;
    bool is_double = false;
    // MPI reads these until the operation completes, so each sum holds its own.
    std::vector<int> counts, offsets, receive_counts, receive_offsets;
    std::vector<float> float_scratch;
    std::vector<double> double_scratch;
  };

  static int checked_count(std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw shape_error(fmt::format("mpi_process_group: a message of {} elements, expected at most {} (MPI counts are int)", n,
                                    std::numeric_limits<int>::max()));
    }
    return static_cast<int>(n);
  }

  // A free slot; a new one only when more sums are in flight than ever before (so after the first
  // step of a training run nothing here touches the heap).
  sum_handle free_slot() {
    for (std::size_t i = 0; i < sums_.size(); ++i) {
      if (sums_[i].at == stage::idle) return i;
    }
    pending_sum& added = sums_.emplace_back();
    const auto processes = static_cast<std::size_t>(size_);
    for (std::vector<int>* v : {&added.counts, &added.offsets, &added.receive_counts, &added.receive_offsets}) v->resize(processes);
    return sums_.size() - 1;
  }

  template <class Scalar>
  sum_handle start(std::span<Scalar> values) {
    const sum_handle handle = free_slot();
    pending_sum& s = sums_[handle];
    s.values = values.data();
    s.count = values.size();
    s.is_double = std::is_same_v<Scalar, double>;
    s.sequence = started_++;
    if (size_ == 1 || values.empty()) {
      // Nothing to exchange, but the sum keeps its place in the order of the gathers.
      s.at = stage::exchanging;
      s.request = MPI_REQUEST_NULL;
      return handle;
    }
    const std::size_t n = values.size();
    const auto processes = static_cast<std::size_t>(size_);
    checked_count(n);
    for (std::size_t c = 0; c < processes; ++c) {
      s.offsets[c] = static_cast<int>(c * n / processes);
      s.counts[c] = static_cast<int>((c + 1) * n / processes) - s.offsets[c];
    }
    const int mine = s.counts[static_cast<std::size_t>(rank_)];
    for (std::size_t c = 0; c < processes; ++c) {
      s.receive_counts[c] = mine;
      s.receive_offsets[c] = static_cast<int>(c) * mine;
    }
    std::vector<Scalar>& scratch = scratch_of<Scalar>(s);
    if (scratch.size() < processes * static_cast<std::size_t>(mine)) scratch.resize(processes * static_cast<std::size_t>(mine));
    const MPI_Datatype type = detail::mpi_type<Scalar>();
    detail::check_mpi(MPI_Ialltoallv(values.data(), s.counts.data(), s.offsets.data(), type, scratch.data(), s.receive_counts.data(),
                                     s.receive_offsets.data(), type, exchange_, &s.request),
                      "MPI_Ialltoallv");
    s.at = stage::exchanging;
    return handle;
  }

  template <class Scalar>
  static std::vector<Scalar>& scratch_of(pending_sum& s) {
    if constexpr (std::is_same_v<Scalar, double>) {
      return s.double_scratch;
    } else {
      return s.float_scratch;
    }
  }

  // The sum whose gather starts next (the earliest started that is still exchanging).
  pending_sum& next_to_gather() {
    for (pending_sum& s : sums_) {
      if (s.at == stage::exchanging && s.sequence == gathered_) return s;
    }
    throw distributed_error("mpi_process_group: no sum is waiting for its gather (a handle used after it was spent)");
  }

  // The exchange of `s` is complete: add this process's chunk, in rank order, and start the gather.
  void start_gather(pending_sum& s) {
    ++gathered_;
    if (size_ == 1 || s.count == 0) {
      s.at = stage::done;
      return;
    }
    if (s.is_double) {
      add_chunk<double>(s);
    } else {
      add_chunk<float>(s);
    }
    const MPI_Datatype type = s.is_double ? MPI_DOUBLE : MPI_FLOAT;
    detail::check_mpi(MPI_Iallgatherv(MPI_IN_PLACE, 0, type, s.values, s.counts.data(), s.offsets.data(), type, gather_, &s.request),
                      "MPI_Iallgatherv");
    s.at = stage::gathering;
  }

  template <class Scalar>
  void add_chunk(pending_sum& s) {
    const auto me = static_cast<std::size_t>(rank_);
    const auto length = static_cast<std::size_t>(s.counts[me]);
    Scalar* chunk = static_cast<Scalar*>(s.values) + s.offsets[me];
    const std::vector<Scalar>& scratch = scratch_of<Scalar>(s);
    std::copy_n(scratch.data(), length, chunk);
    for (std::size_t from = 1; from < static_cast<std::size_t>(size_); ++from) {
      const Scalar* part = scratch.data() + from * length;
      for (std::size_t i = 0; i < length; ++i) chunk[i] += part[i];
    }
  }

  // Moves every sum as far as it can go without waiting: exchanges that completed, in the order the
  // sums were started, on to their gathers; gathers that completed to done.
  void advance() {
    for (bool moved = true; moved;) {
      moved = false;
      for (pending_sum& s : sums_) {
        if (s.at != stage::exchanging || s.sequence != gathered_) continue;
        int complete = 0;  // (a sum with nothing to exchange holds MPI_REQUEST_NULL, complete at once)
        detail::check_mpi(MPI_Test(&s.request, &complete, MPI_STATUS_IGNORE), "MPI_Test");
        if (complete) {
          start_gather(s);
          moved = true;
        }
        break;
      }
    }
    for (pending_sum& s : sums_) {
      if (s.at != stage::gathering) continue;
      int complete = 0;
      detail::check_mpi(MPI_Test(&s.request, &complete, MPI_STATUS_IGNORE), "MPI_Test");
      if (complete) s.at = stage::done;
    }
  }

  int rank_ = 0;
  int size_ = 1;
  MPI_Comm exchange_ = MPI_COMM_NULL;
  MPI_Comm gather_ = MPI_COMM_NULL;
  std::vector<pending_sum> sums_;  // slots, reused; a handle is an index
  std::uint64_t started_ = 0;      // sums started so far
  std::uint64_t gathered_ = 0;     // sums whose gather has started (or that needed none)
};

}  // namespace earlybert
