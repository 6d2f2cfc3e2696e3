// SPDX-License-Identifier: Apache-2.0
#pragma once
// The GEMM backend as a user sees it: which OpenBLAS kernel set runs, whether this CPU has AVX-512,
// and a warning when the kernels are weaker than the CPU (docs/threading.md, "OpenBLAS's kernel
// choice"). The GEMMs themselves are ops/matmul.hpp; the BLAS calls are detail/blas.hpp.

#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "earlybert/detail/blas.hpp"

namespace earlybert {

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
