// SPDX-License-Identifier: Apache-2.0
#pragma once
// BLAS glue (internal): typed GEMM over row-major storage, and the one-thread OpenBLAS setting.
//
// gemm computes C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T, where op(A) is
// [m, k], op(B) is [k, n] and C is [m, n], all row-major with leading dimensions lda/ldb/ldc.

#include <cblas.h>

#include "earlybert/core/types.hpp"

namespace earlybert::detail {

// OpenBLAS keeps a pool of pthreads; the library's policy (core/threading.hpp) is to never wake it.
inline void ensure_single_threaded_blas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

inline const char* blas_core_name() { return openblas_get_corename(); }

inline void gemm_call(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha,
                      const float* a, index_t lda, const float* b, index_t ldb, float beta, float* c,
                      index_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

inline void gemm_call(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
                      const double* a, index_t lda, const double* b, index_t ldb, double beta, double* c,
                      index_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

// One GEMM on the calling thread. k == 0 is legal (C = beta * C).
template <class Scalar>
void gemm_serial(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, Scalar alpha,
                 const Scalar* a, index_t lda, const Scalar* b, index_t ldb, Scalar beta, Scalar* c,
                 index_t ldc) {
  if (m == 0 || n == 0) return;
  ensure_single_threaded_blas();
  gemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace earlybert::detail
