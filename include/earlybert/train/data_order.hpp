// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which examples a training step reads, and the random streams it uses: the same on every run with the
// same seed, whatever ran before, so that a resumed run (train/training_state.hpp) reads the same
// batches and draws the same dropout as the run it continues.
//
//   example_order   a shuffle of the n examples for every (stage, pass), drawn from
//                   derive_key(seed, salt · stage + pass) alone; a pass is ceil(n / batch) steps with
//                   the last batch partial, or floor(n / batch) steps dropping the remainder; a step's
//                   batch is split into `accumulation` micro-batches of size / accumulation examples,
//                   the last one taking the rest
//   step_key        the key of micro-batch k of a step (dropout, masked-LM masking): derived from the
//                   seed, the stage and (step, k)
// The stage key is 1 for the search and 2 for the efficient stage (dense training is an efficient
// stage), so the search and the ticket's training see different orders.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/train/pipeline_records.hpp"

namespace earlybert {

inline std::uint64_t stage_key(pipeline_stage stage) noexcept { return stage == pipeline_stage::search ? 1 : 2; }

// The key of micro-batch k of `step` (counted from 0 within the stage).
inline std::uint64_t step_key(std::uint64_t seed, pipeline_stage stage, long step, int k) noexcept {
  return derive_key(derive_key(seed, stage_key(stage)), static_cast<std::uint64_t>(step) * 64 + static_cast<std::uint64_t>(k));
}

enum class last_batch { keep_partial, drop };

class example_order {
 public:
  // `salt` separates the orders of different tasks that share a seed.
  example_order(std::size_t examples, index_t batch, int accumulation, std::uint64_t seed, std::uint64_t salt, last_batch last)
      : order_(examples), batch_(static_cast<std::size_t>(batch)), accumulation_(accumulation), seed_(seed), salt_(salt), last_(last) {
    if (batch < 1 || accumulation < 1 || accumulation > batch) {
      throw config_error(fmt::format("example_order: batch {} and accumulation {}, expected 1 <= accumulation <= batch", batch, accumulation));
    }
    if (steps_per_pass() < 1) {
      throw config_error(fmt::format("example_order: {} examples make no batch of {}", examples, batch));
    }
  }

  long steps_per_pass() const noexcept {
    return static_cast<long>(last_ == last_batch::keep_partial ? (order_.size() + batch_ - 1) / batch_ : order_.size() / batch_);
  }

  // The examples of micro-batch k of `step` of `stage`, in order (a view valid until the next call).
  std::span<const std::size_t> micro_batch(pipeline_stage stage, long step, int k) {
    const long pass = step / steps_per_pass();
    if (pass != pass_ || stage != stage_) {
      std::iota(order_.begin(), order_.end(), std::size_t{0});
      rng shuffle(derive_key(seed_, salt_ * stage_key(stage) + static_cast<std::uint64_t>(pass)));
      shuffle.shuffle(order_);
      pass_ = pass;
      stage_ = stage;
    }
    const std::size_t begin = static_cast<std::size_t>(step % steps_per_pass()) * batch_;
    const std::size_t end = std::min(order_.size(), begin + batch_);
    // The batch's examples in `accumulation` micro-batches, the last taking the rest. A partial last
    // batch with fewer examples than micro-batches repeats its last example in the surplus ones.
    const std::size_t micro = std::max<std::size_t>((end - begin) / static_cast<std::size_t>(accumulation_), 1);
    const std::size_t b0 = std::min(end - 1, begin + static_cast<std::size_t>(k) * micro);
    const std::size_t b1 = k + 1 == accumulation_ ? end : std::min(end, b0 + micro);
    return std::span<const std::size_t>(order_).subspan(b0, std::max(b1, b0 + 1) - b0);
  }

 private:
  std::vector<std::size_t> order_;
  std::size_t batch_;
  int accumulation_;
  std::uint64_t seed_, salt_;
  last_batch last_;
  long pass_ = -1;
  pipeline_stage stage_ = pipeline_stage::search;
};

}  // namespace earlybert
