// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/threading.hpp"

#include <string>

#include <doctest/doctest.h>

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
