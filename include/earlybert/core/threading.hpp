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

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>

#include "earlybert/core/error.hpp"
#include "earlybert/detail/blas.hpp"

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
  detail::ensure_single_threaded_blas();
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

// The name of the kernel set OpenBLAS chose ("Haswell", "Cooperlake", ...); OPENBLAS_CORETYPE in the
// environment can force a weaker one than the CPU supports.
inline const char* blas_core_name() { return detail::blas_core_name(); }

// Whether this CPU has AVX-512 (the foundation instructions, AVX-512F).
inline bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx512f") != 0;
#else
  return false;
#endif
}

// Whether an OpenBLAS kernel set ("Haswell", "SkylakeX", ...) uses AVX-512.
inline bool blas_core_uses_avx512(std::string_view core) {
  for (const std::string_view avx512 : {"SkylakeX", "Cooperlake", "SapphireRapids"}) {
    if (core.find(avx512) != std::string_view::npos) return true;
  }
  return false;
}

// The warning for a CPU and the kernel set OpenBLAS runs on it, or "" when the kernels fit the CPU.
// Kernels without AVX-512 on a CPU with it run GEMMs at half speed or less: AVX2's "Haswell", forced
// by OPENBLAS_CORETYPE=Haswell, at half (docs/performance.md); SSE3's "Prescott", OpenBLAS's
// fallback for a CPU it does not recognise, slower still (docs/threading.md). `forced` is
// OPENBLAS_CORETYPE's value, or null. A pure function of its arguments, so that every case can be
// tested on any machine.
inline std::string blas_core_warning(bool cpu_avx512, std::string_view core, const char* forced) {
  if (!cpu_avx512 || blas_core_uses_avx512(core)) return {};
  return fmt::format("OpenBLAS runs its '{}' kernels, which do not use this CPU's AVX-512 ({}): GEMMs run at half the speed this CPU "
                     "allows or less",
                     core, forced != nullptr ? fmt::format("OPENBLAS_CORETYPE={} selects them", forced)
                                             : std::string("OpenBLAS chose them; OPENBLAS_CORETYPE selects others"));
}

// The warning for this CPU and this process's OpenBLAS, or "". Programs print it once at start;
// timings taken under it are comparable only to others taken under it.
inline std::string blas_core_warning() {
  return blas_core_warning(cpu_has_avx512(), blas_core_name(), std::getenv("OPENBLAS_CORETYPE"));
}

}  // namespace earlybert
