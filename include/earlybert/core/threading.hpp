// SPDX-License-Identifier: Apache-2.0
#pragma once
// The threading policy: one thread pool, oneTBB's. OpenBLAS never runs threads of its own.
//
// Why: two pools on the same cores thrash. OpenBLAS's pthreads and TBB's workers both spin while
// they wait for work, so when one pool runs the other steals its cores; on a 2-core machine that
// costs 1.2-2x per training step (docs/threading.md has the measurements and the alternatives).
//
// The policy:
//   1. OpenBLAS is set to one thread the first time the library calls it, and every BLAS call runs
//      on the thread that makes it.
//   2. All parallelism is TBB tasks: rows of element-wise and row-wise ops, (sequence, head) pairs of
//      the attention products, and panels of large GEMMs (a GEMM is split into as many row or column
//      panels as there are threads, each a one-thread BLAS call inside a TBB task).
//   3. set_num_threads(n) bounds TBB's parallelism for the whole process; it may be changed between
//      steps. Work is split by the thread count, never by timing, so results are bit-identical for a
//      given thread count.

#include <memory>
#include <mutex>
#include <string>

#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>

#include "earlybert/core/error.hpp"

namespace earlybert {

namespace detail {
struct thread_settings {
  std::mutex mutex;
  std::unique_ptr<oneapi::tbb::global_control> limit;
};
inline thread_settings& threads_state() {
  static thread_settings state;
  return state;
}
}  // namespace detail

// Sets the number of threads the library uses from now on (>= 1).
inline void set_num_threads(int threads) {
  if (threads < 1) {
    throw config_error(fmt::format("set_num_threads: argument 'threads' is {}, expected at least 1",
                                   threads));
  }
  auto& state = detail::threads_state();
  std::scoped_lock lock(state.mutex);
  state.limit.reset();  // only one global_control of a kind should be alive at a time
  state.limit = std::make_unique<oneapi::tbb::global_control>(
      oneapi::tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
}

// The number of threads parallel work is split over.
inline int num_threads() {
  return static_cast<int>(oneapi::tbb::global_control::active_value(
      oneapi::tbb::global_control::max_allowed_parallelism));
}

}  // namespace earlybert
