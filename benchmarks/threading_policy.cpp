// SPDX-License-Identifier: Apache-2.0
// Measures the threading policy of core/threading.hpp against the alternative it rules out.
//
//   gemm      one BERT-shaped GEMM, [tokens, hidden] x [hidden, ffn]^T:
//               - OpenBLAS on one thread (the per-core ceiling),
//               - the library: TBB splits the GEMM into panels, one-thread OpenBLAS in each,
//               - OpenBLAS's own thread pool.
//   mixed     a GEMM followed by a TBB-parallel GELU over its output, as in an FFN:
//               - the library (one pool: TBB for both),
//               - OpenBLAS's pool for the GEMM and TBB's for the GELU (two pools).
// Each variant runs interleaved with the others, several rounds; the table gives medians.
//
// Usage: threading_policy [--threads T] [--rounds R]

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <earlybert/earlybert.hpp>

#include "timing.hpp"

namespace eb = earlybert;
using eb::index_t;

using earlybert::bench::median;
using earlybert::bench::seconds;

int main(int argc, char** argv) {
  int threads = 2, rounds = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  if (threads < 1 || rounds < 1) {
    fmt::print(stderr, "error: threading_policy: --threads and --rounds must be at least 1\n");
    return 1;
  }
  eb::set_num_threads(threads);

  // The mini shape's first FFN GEMM: batch 32 x seq 128 tokens, hidden 256 -> ffn 1024.
  const index_t m = 4096, k = 256, n = 1024;
  const eb::matrix<float> a = eb::matrix<float>::Random(m, k), b = eb::matrix<float>::Random(n, k);
  eb::matrix<float> c(m, n);
  const double flops = 2.0 * static_cast<double>(m * n * k);
  eb::tape<float> t;

  auto blas_own_pool = [&](int pool) {
    openblas_set_num_threads(pool);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                1.0f, a.data(), static_cast<int>(k), b.data(), static_cast<int>(k), 0.0f, c.data(), static_cast<int>(n));
    openblas_set_num_threads(1);
  };
  auto library_gemm = [&] {
    eb::detail::gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
  };
  auto tbb_gelu = [&] {
    t.rewind();
    eb::no_recording<float> inference(t);
    eb::gelu(t, t.input(c.data(), m, n));
  };

  struct variant {
    const char* name;
    std::function<void()> run;
    double flop;
    std::vector<double> times;
  };
  std::vector<variant> variants{
      {"gemm: OpenBLAS, 1 thread", [&] { blas_own_pool(1); }, flops, {}},
      {"gemm: library policy (TBB panels x 1-thread BLAS)", library_gemm, flops, {}},
      {"gemm: OpenBLAS's own pool", [&] { blas_own_pool(threads); }, flops, {}},
      {"gemm + gelu: library policy (one pool)", [&] { library_gemm(); tbb_gelu(); }, flops, {}},
      {"gemm + gelu: OpenBLAS pool, then TBB pool", [&] { blas_own_pool(threads); tbb_gelu(); }, flops, {}},
  };
  for (auto& v : variants) v.run();  // warm-up: pools started, pages touched
  for (int r = 0; r < rounds; ++r) {
    for (auto& v : variants) v.times.push_back(seconds(v.run));
  }

  fmt::print("threads {}, OpenBLAS core {}, GEMM [{} x {}] x [{} x {}]^T, median of {} rounds\n\n", threads,
             eb::blas_core_name(), m, k, n, k, rounds);
  fmt::print("| {:<50} | {:>8} | {:>14} |\n|{:-<52}|{:->10}|{:->16}|\n", "variant", "ms", "GEMM GFLOP/s", "", "", "");
  for (auto& v : variants) {
    const double s = median(v.times);
    fmt::print("| {:<50} | {:>8.2f} | {:>14.1f} |\n", v.name, 1e3 * s, v.flop / s * 1e-9);
  }
  return 0;
}
