// SPDX-License-Identifier: Apache-2.0
#pragma once
// The process group of an MPI job (link earlybert::mpi, which brings MPI::MPI_CXX; the rest of the
// library does not need MPI).
//
//   mpi_environment   initialises MPI for the program's lifetime (MPI_Init_thread, funneled: only the
//                     thread that made it calls MPI) and finalises it; errors in MPI calls throw
//                     distributed_error instead of aborting inside the library
//   mpi_process_group MPI_COMM_WORLD as a process_group
//
// The sum is deterministic by construction: MPI only moves data, the additions are ours. For N
// processes and n values, chunk c is [c n / N, (c+1) n / N). An all-to-all sends chunk c of every
// process to process c, which adds the N copies in rank order, v_0 + v_1 + ... + v_{N-1}; an
// all-gather then gives every process every summed chunk. Each chunk is summed once, in one order, so
// every process holds the same bits, and a run repeats bit for bit — which MPI_Allreduce does not
// promise (its algorithm, and with it the order of the additions, may change with the message size,
// the process count or the library's version). Traffic per process: 2 (N - 1) / N of the values, as
// for a ring all-reduce.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
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

// An MPI call that failed, naming the call and MPI's own message.
class distributed_error : public error {
 public:
  using error::error;
};

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
    counts_.resize(static_cast<std::size_t>(size_));
    offsets_.resize(static_cast<std::size_t>(size_));
    receive_counts_.resize(static_cast<std::size_t>(size_));
    receive_offsets_.resize(static_cast<std::size_t>(size_));
  }

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  void sum(std::span<float> values) override { ordered_sum(values, float_scratch_); }
  void sum(std::span<double> values) override { ordered_sum(values, double_scratch_); }

  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    if (all.size() != mine.size() * static_cast<std::size_t>(size_)) {
      throw shape_error(fmt::format("mpi_process_group::all_gather: {} bytes for {} processes of {}, expected {}", all.size(), size_,
                                    mine.size(), mine.size() * static_cast<std::size_t>(size_)));
    }
    const int count = checked_count(mine.size());
    detail::check_mpi(MPI_Allgather(mine.data(), count, MPI_BYTE, all.data(), count, MPI_BYTE, MPI_COMM_WORLD), "MPI_Allgather");
  }

 private:
  static int checked_count(std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw shape_error(fmt::format("mpi_process_group: a message of {} elements, expected at most {} (MPI counts are int)", n,
                                    std::numeric_limits<int>::max()));
    }
    return static_cast<int>(n);
  }

  template <class Scalar>
  void ordered_sum(std::span<Scalar> values, std::vector<Scalar>& scratch) {
    if (size_ == 1 || values.empty()) return;
    const std::size_t n = values.size();
    const auto processes = static_cast<std::size_t>(size_);
    checked_count(n);
    for (std::size_t c = 0; c < processes; ++c) {
      offsets_[c] = static_cast<int>(c * n / processes);
      counts_[c] = static_cast<int>((c + 1) * n / processes) - offsets_[c];
    }
    const auto me = static_cast<std::size_t>(rank_);
    const int mine = counts_[me];
    for (std::size_t c = 0; c < processes; ++c) {
      receive_counts_[c] = mine;
      receive_offsets_[c] = static_cast<int>(c) * mine;
    }
    if (scratch.size() < processes * static_cast<std::size_t>(mine)) scratch.resize(processes * static_cast<std::size_t>(mine));
    const MPI_Datatype type = detail::mpi_type<Scalar>();
    detail::check_mpi(MPI_Alltoallv(values.data(), counts_.data(), offsets_.data(), type, scratch.data(), receive_counts_.data(),
                                    receive_offsets_.data(), type, MPI_COMM_WORLD),
                      "MPI_Alltoallv");
    // This process's chunk: the N copies added in rank order.
    Scalar* chunk = values.data() + offsets_[me];
    const std::size_t length = static_cast<std::size_t>(mine);
    std::copy_n(scratch.data(), length, chunk);
    for (std::size_t from = 1; from < processes; ++from) {
      const Scalar* part = scratch.data() + from * length;
      for (std::size_t i = 0; i < length; ++i) chunk[i] += part[i];
    }
    detail::check_mpi(MPI_Allgatherv(MPI_IN_PLACE, 0, type, values.data(), counts_.data(), offsets_.data(), type, MPI_COMM_WORLD),
                      "MPI_Allgatherv");
  }

  int rank_ = 0;
  int size_ = 1;
  std::vector<int> counts_, offsets_, receive_counts_, receive_offsets_;
  std::vector<float> float_scratch_;
  std::vector<double> double_scratch_;
};

}  // namespace earlybert
