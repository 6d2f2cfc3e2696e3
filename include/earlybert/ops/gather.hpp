// SPDX-License-Identifier: Apache-2.0
#pragma once
// Row gathers with scatter-add backward.
//
//   embedding(table, ids)   table [vocab, hidden], ids [tokens]    y [tokens, hidden], y_i = table[ids_i]
//   gather_rows(x, rows)    x [n, cols], rows [m]                  y [m, cols],        y_i = x[rows_i]
// The two are the same op; the names say what the caller means (a lookup into a parameter table, or
// picking the masked positions of an activation). Indices are copied into the arena, so the caller's
// buffer need not outlive the call. Backward (accumulating):
//   d table[ids_i] += dy_i   for every i, in order of i.
// Repeated indices accumulate. Columns are split across threads and each thread walks all i in order,
// so the sums are identical for every thread count.
//
// column_as_sequences(x, column, batch, seq): x [batch * seq, k] -> y [batch, seq], y(b, i) =
// x(b * seq + i, column): one output of a per-token head as a row per sequence (a span head's start
// or end logits). Backward (accumulating): dx(b * seq + i, column) += dy(b, i).
//
// stack_rows(parts): parts[i] [rows_i, cols] -> y [sum rows_i, cols], part i's rows after part i-1's
// (an early-exit model's logits of every exit as one output). Backward (accumulating): each part's
// adjoint += its block of dy.
//
// embedding(table, ids, padding_id): as torch.nn.Embedding(padding_idx): rows looked up through
// padding_id contribute nothing to d table (the padding row is never trained by lookups; other ops
// that use the same table, such as a tied decoder, still accumulate into it).

#include <algorithm>
#include <memory>
#include <span>

#include "earlybert/core/error.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/detail/kernels.hpp"

namespace earlybert {

namespace detail {
template <class Scalar>
var<Scalar> gather(tape<Scalar>& t, const char* op, const char* index_name, const var<Scalar>& x,
                   std::span<const token_id> indices, token_id no_gradient_index = -1) {
  const index_t cols = x.cols(), count = static_cast<index_t>(indices.size());
  for (index_t i = 0; i < count; ++i) {
    if (indices[i] < 0 || indices[i] >= x.rows()) {
      throw shape_error(fmt::format("{}: argument '{}' holds {} at position {}, expected a value in [0, {})",
                                    op, index_name, indices[i], i, x.rows()));
    }
  }
  var<Scalar> y = t.make(count, cols, any_needs_gradient(t, x));
  token_id* saved = y.needs_gradient() ? t.template scratch<token_id>(count) : nullptr;
  if (saved != nullptr) std::copy(indices.begin(), indices.end(), saved);
  for_each_chunk(count, row_grain(cols), [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const index_t src = indices[static_cast<std::size_t>(i)];
      flat(y.value_data(), i * cols, (i + 1) * cols) = flat(x.value_data(), src * cols, (src + 1) * cols);
    }
  });
  if (y.needs_gradient()) {
    t.on_backward([=] {
      for_each_column_part(cols, [&](index_t c0, index_t c1) {
        for (index_t i = 0; i < count; ++i) {
          const index_t dst = saved[i];
          if (dst == no_gradient_index) continue;
          flat(x.adjoint_data(), dst * cols + c0, dst * cols + c1) +=
              flat(y.adjoint_data(), i * cols + c0, i * cols + c1);
        }
      });
    });
  }
  return y;
}
}  // namespace detail

// No padding row: pass padding_id = -1 (the default).
template <class Scalar>
var<Scalar> embedding(tape<Scalar>& t, const var<Scalar>& table, std::span<const token_id> ids,
                      token_id padding_id = -1) {
  return detail::gather(t, "embedding", "ids", table, ids, padding_id);
}

template <class Scalar>
var<Scalar> gather_rows(tape<Scalar>& t, const var<Scalar>& x, std::span<const token_id> rows) {
  return detail::gather(t, "gather_rows", "rows", x, rows);
}

template <class Scalar>
var<Scalar> column_as_sequences(tape<Scalar>& t, const var<Scalar>& x, index_t column, index_t batch, index_t seq) {
  if (batch < 1 || seq < 1 || x.rows() != batch * seq || column < 0 || column >= x.cols()) {
    throw shape_error(fmt::format("column_as_sequences: x is [{}, {}], expected [batch * seq = {} * {}, k] and a column in [0, k), got column {}",
                                  x.rows(), x.cols(), batch, seq, column));
  }
  const index_t k = x.cols();
  var<Scalar> y = t.make(batch, seq, any_needs_gradient(t, x));
  for (index_t r = 0; r < batch * seq; ++r) y.value_data()[r] = x.value_data()[r * k + column];
  if (y.needs_gradient()) {
    t.on_backward([=] {
      for (index_t r = 0; r < batch * seq; ++r) x.adjoint_data()[r * k + column] += y.adjoint_data()[r];
    });
  }
  return y;
}

template <class Scalar>
var<Scalar> stack_rows(tape<Scalar>& t, std::span<const var<Scalar>> parts) {
  if (parts.empty()) throw shape_error("stack_rows: argument 'parts' is empty, expected at least one");
  const index_t cols = parts.front().cols();
  index_t rows = 0;
  bool gradient = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].cols() != cols) {
      throw shape_error(fmt::format("stack_rows: part {} has {} columns, expected {} as part 0", i, parts[i].cols(), cols));
    }
    rows += parts[i].rows();
    gradient = gradient || any_needs_gradient(t, parts[i]);
  }
  var<Scalar> y = t.make(rows, cols, gradient);
  var<Scalar>* saved = nullptr;
  if (y.needs_gradient()) {
    saved = t.template scratch<var<Scalar>>(static_cast<index_t>(parts.size()));
    std::uninitialized_copy(parts.begin(), parts.end(), saved);
  }
  index_t offset = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const index_t size = parts[i].size();
    detail::flat(y.value_data(), offset, offset + size) = detail::flat(parts[i].value_data(), 0, size);
    offset += size;
  }
  if (y.needs_gradient()) {
    const std::size_t count = parts.size();
    t.on_backward([=] {
      index_t begin = 0;
      for (std::size_t i = 0; i < count; ++i) {
        const index_t size = saved[i].size();
        if (saved[i].needs_gradient()) detail::flat(saved[i].adjoint_data(), 0, size) += detail::flat(y.adjoint_data(), begin, begin + size);
        begin += size;
      }
    });
  }
  return y;
}

}  // namespace earlybert
