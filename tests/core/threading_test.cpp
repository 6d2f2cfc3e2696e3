// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/threading.hpp"

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

#include "earlybert/ops/blas.hpp"
#include "earlybert/ops/matmul.hpp"

using namespace earlybert;

TEST_CASE("threading: the thread count is settable at run time") {
  set_num_threads(1);
  CHECK(num_threads() == 1);
  set_num_threads(2);
  CHECK(num_threads() == 2);
}

TEST_CASE("threading: OpenBLAS runs single-threaded once the library has called it") {
  set_num_threads(2);
  tape<float> t;
  const auto a = t.constant(matrix<float>::Ones(256, 256));
  matmul(t, a, a);
  CHECK(openblas_get_num_threads() == 1);
  CHECK_FALSE(std::string(blas_core_name()).empty());
}

TEST_CASE("threading: a thread count below 1 is a config_error") {
  CHECK_THROWS_WITH_AS(set_num_threads(0), "set_num_threads: argument 'threads' is 0, expected at least 1", config_error);
}

TEST_CASE("threading: the OpenBLAS kernel warning, for every CPU and kernel set") {
  // Kernels without AVX-512 on an AVX-512 CPU: a warning, naming OPENBLAS_CORETYPE when it chose them.
  CHECK(blas_core_warning(true, "Haswell", "Haswell") ==
        "OpenBLAS runs its 'Haswell' kernels, which do not use this CPU's AVX-512 (OPENBLAS_CORETYPE=Haswell selects them): "
        "GEMMs run at half the speed this CPU allows or less");
  // Not forced: OpenBLAS fell back to them (a CPU it does not recognise gets SSE3's Prescott).
  CHECK(blas_core_warning(true, "Prescott", nullptr) ==
        "OpenBLAS runs its 'Prescott' kernels, which do not use this CPU's AVX-512 (OpenBLAS chose them; OPENBLAS_CORETYPE "
        "selects others): GEMMs run at half the speed this CPU allows or less");
  // Kernels that fit: AVX-512 kernels on an AVX-512 CPU, anything on a CPU without AVX-512.
  for (const char* avx512 : {"SkylakeX", "Cooperlake", "SapphireRapids"}) {
    CHECK(blas_core_uses_avx512(avx512));
    CHECK(blas_core_warning(true, avx512, nullptr).empty());
    CHECK(blas_core_warning(true, avx512, avx512).empty());
  }
  CHECK_FALSE(blas_core_uses_avx512("Haswell"));
  CHECK(blas_core_warning(false, "Haswell", "Haswell").empty());
  CHECK(blas_core_warning(false, "Prescott", nullptr).empty());
  // This machine's answer is one of those cases.
  CHECK(blas_core_warning() == blas_core_warning(cpu_has_avx512(), blas_core_name(), std::getenv("OPENBLAS_CORETYPE")));
}
