// SPDX-License-Identifier: Apache-2.0
// The cost of summing a gradient over the processes of an MPI job: the library's ordered sum
// (distributed/mpi.hpp, through gradient_reducer's buckets) against MPI_Allreduce, whose order of
// additions is its own, on the same buffer; and, to tell the transfer from the rest, the ordered sum's
// two collectives alone (MPI_Alltoallv and MPI_Allgatherv, blocking, on the whole buffer, without the
// additions or the copies into buckets and back). Each timing starts after a barrier, so it holds the
// transfer and the work around it, not waiting for a slower process.
//
//   mpirun -np 2 build/release/bin/ordered_sum [values=11201594] [repeats=20] [bucket=1048576]
//
// The default size is the gradient of `mini` (11,201,594 parameters, 44.8 MB in float). Rank 0 prints
// the median of each, in seconds and GB/s of gradient summed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <earlybert/distributed/gradient_reducer.hpp>
#include <earlybert/distributed/mpi.hpp>

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  using namespace earlybert;
  mpi_environment mpi(argc, argv);
  mpi_process_group group;
  const long values = argc > 1 ? std::atol(argv[1]) : 11201594;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
  parameter<float> gradient("gradient", 1, values);
  std::vector<parameter<float>*> parameters{&gradient};
  const std::size_t bucket = argc > 3 ? static_cast<std::size_t>(std::atol(argv[3])) : std::size_t{1} << 20;  // the trainer's default
  gradient_reducer<float> reducer(bucket);
  std::vector<double> ordered, allreduce, transfer;
  // The ordered sum's chunks, as mpi_process_group cuts them.
  const int processes = group.size();
  std::vector<int> counts(static_cast<std::size_t>(processes)), offsets(counts.size()), receive_counts(counts.size()),
      receive_offsets(counts.size());
  for (std::size_t c = 0; c < counts.size(); ++c) {
    offsets[c] = static_cast<int>(static_cast<long>(c) * values / processes);
    counts[c] = static_cast<int>((static_cast<long>(c) + 1) * values / processes) - offsets[c];
  }
  for (std::size_t c = 0; c < counts.size(); ++c) {
    receive_counts[c] = counts[static_cast<std::size_t>(group.rank())];
    receive_offsets[c] = static_cast<int>(c) * receive_counts[c];
  }
  std::vector<float> received(counts.size() * static_cast<std::size_t>(receive_counts[0]));
  const auto seconds = [](auto start) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  for (int r = 0; r < repeats + 2; ++r) {
    gradient.gradient.setConstant(1.0f + static_cast<float>(group.rank()));  // the same input every time
    MPI_Barrier(MPI_COMM_WORLD);
    auto start = std::chrono::steady_clock::now();
    reducer.begin(group, parameters);
    reducer.finish();
    if (r >= 2) ordered.push_back(seconds(start));
    gradient.gradient.setConstant(1.0f + static_cast<float>(group.rank()));
    MPI_Barrier(MPI_COMM_WORLD);
    start = std::chrono::steady_clock::now();
    MPI_Allreduce(MPI_IN_PLACE, gradient.gradient.data(), static_cast<int>(values), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (r >= 2) allreduce.push_back(seconds(start));
    MPI_Barrier(MPI_COMM_WORLD);
    start = std::chrono::steady_clock::now();
    MPI_Alltoallv(gradient.gradient.data(), counts.data(), offsets.data(), MPI_FLOAT, received.data(), receive_counts.data(),
                  receive_offsets.data(), MPI_FLOAT, MPI_COMM_WORLD);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, gradient.gradient.data(), counts.data(), offsets.data(), MPI_FLOAT, MPI_COMM_WORLD);
    if (r >= 2) transfer.push_back(seconds(start));
  }
  if (group.rank() == 0) {
    const double bytes = 4.0 * static_cast<double>(values);
    std::printf("%d processes, %ld float values (%.1f MB), median of %d:\n", group.size(), values, bytes / 1e6, repeats);
    std::printf("  ordered sum (gradient_reducer, %zu buckets of %zu): %.4f s  %.2f GB/s\n", reducer.bucket_count(), bucket, median(ordered),
                bytes / median(ordered) / 1e9);
    std::printf("  MPI_Allreduce: %.4f s  %.2f GB/s\n", median(allreduce), bytes / median(allreduce) / 1e9);
    std::printf("  the transfer alone (MPI_Alltoallv + MPI_Allgatherv): %.4f s  %.2f GB/s\n", median(transfer), bytes / median(transfer) / 1e9);
  }
  return 0;
}
