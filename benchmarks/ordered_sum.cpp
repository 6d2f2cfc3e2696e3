// SPDX-License-Identifier: Apache-2.0
// The cost of summing a gradient over the processes of an MPI job: the library's ordered sum
// (distributed/mpi.hpp, through gradient_reducer's buckets) against MPI_Allreduce, whose order of
// additions is its own, on the same buffer. Each timing starts after a barrier, so it holds the
// transfer and the additions, not waiting for a slower process.
//
//   mpirun -np 2 build/release/bin/ordered_sum [values=11201594] [repeats=20]
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
  gradient.gradient.setConstant(1.0f + static_cast<float>(group.rank()));
  std::vector<parameter<float>*> parameters{&gradient};
  gradient_reducer<float> reducer;  // buckets of 1 Mi values, as the trainer's
  std::vector<double> ordered, allreduce;
  const auto seconds = [](auto start) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  for (int r = 0; r < repeats + 2; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto start = std::chrono::steady_clock::now();
    reducer.begin(group, parameters);
    reducer.finish();
    if (r >= 2) ordered.push_back(seconds(start));
    MPI_Barrier(MPI_COMM_WORLD);
    start = std::chrono::steady_clock::now();
    MPI_Allreduce(MPI_IN_PLACE, gradient.gradient.data(), static_cast<int>(values), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (r >= 2) allreduce.push_back(seconds(start));
  }
  if (group.rank() == 0) {
    const double bytes = 4.0 * static_cast<double>(values);
    std::printf("%d processes, %ld float values (%.1f MB), median of %d:\n", group.size(), values, bytes / 1e6, repeats);
    std::printf("  ordered sum (gradient_reducer, 1 Mi buckets): %.4f s  %.2f GB/s\n", median(ordered), bytes / median(ordered) / 1e9);
    std::printf("  MPI_Allreduce:                                 %.4f s  %.2f GB/s\n", median(allreduce), bytes / median(allreduce) / 1e9);
  }
  return 0;
}
