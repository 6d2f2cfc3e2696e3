// SPDX-License-Identifier: Apache-2.0
#pragma once
// Tensor aliases shared by the whole library.
//
// Every matrix is row-major: a [tokens, hidden] activation stores one token's hidden vector
// contiguously, which is what row-wise ops (layer norm, softmax, per-token gathers) want and what
// CBLAS's row-major GEMM consumes without copies.
//
// The shape vocabulary used in every comment: batch, seq, tokens = batch*seq, hidden, heads,
// head_dim = hidden/heads, ffn, vocab.

#include <concepts>
#include <cstdint>

#include <Eigen/Core>

namespace earlybert {

using index_t = Eigen::Index;

// The library computes in float (training) or double (gradient checks); nothing else.
template <class Scalar>
concept real_scalar = std::same_as<Scalar, float> || std::same_as<Scalar, double>;

template <class Scalar>
inline constexpr bool is_supported_scalar = real_scalar<Scalar>;

template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class Scalar>
using row_vector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic, Eigen::RowMajor>;

// A non-owning row-major view of contiguous memory.
template <class Scalar>
using matrix_map = Eigen::Map<matrix<Scalar>>;

template <class Scalar>
using const_matrix_map = Eigen::Map<const matrix<Scalar>>;

// Token ids, labels and row indices.
using token_id = std::int32_t;

// The label of a row (or token) that has nothing to predict: HuggingFace's and PyTorch's default
// ignore index. Datasets write it, losses skip it.
inline constexpr token_id ignore_label = -100;

}  // namespace earlybert
