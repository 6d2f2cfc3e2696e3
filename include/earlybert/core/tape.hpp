// SPDX-License-Identifier: Apache-2.0
#pragma once
// The tape: reverse-mode automatic differentiation over whole matrices.
//
// A var is one node of the computation: a [rows, cols] row-major value and, when a gradient is
// needed, an adjoint of the same shape. A var is a handle (two pointers and a shape); copying it is
// free and never copies data.
//
// A tape records, for every op whose output needs a gradient, one backward closure. backward(loss)
// seeds d loss / d loss = 1 and runs the closures in reverse order of recording; each closure reads
// its output's adjoint and ACCUMULATES (+=) into its inputs' adjoints. A linear list run backwards
// is a valid reverse topological order because an op can only consume vars recorded before it.
//
// Memory: values, adjoints, closures and op caches live in the tape's arena. rewind() clears the
// list and rewinds the arena; after the first step nothing is allocated on the heap.
//
// Which vars need a gradient:
//   - watch(p) of a trainable parameter: yes, and its adjoint IS p.gradient (accumulated in place);
//   - watch(p) of a frozen parameter, constant(...), input(...): no (adjoint is null);
//   - an op's output: yes iff the tape is recording and any input needs one.
// Ops skip the backward work of inputs that need no gradient, and record nothing at all when no
// input needs one, so constants and frozen parameters cost nothing in backward.
//
// Inference: inside a `no_recording` scope (or with set_recording(false)) ops compute values only.
//
// When each parameter's gradient is complete: closures recorded before a parameter's first watch
// cannot refer to it, so once backward has run every closure recorded after that watch, its gradient
// holds its final value. The tape keeps the recording position of every watch (watches()), and
// backward(loss, after_closure) reports its progress, so that a caller can act on a gradient as soon
// as it is complete (distributed/gradient_reducer.hpp starts summing it over the processes while
// backward goes on).
//
// A tape belongs to one thread of control; ops may use worker threads internally.

#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "earlybert/core/arena.hpp"
#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/types.hpp"

namespace earlybert {

template <class Scalar>
class var {
 public:
  using scalar_type = Scalar;

  var() = default;
  var(Scalar* value, Scalar* adjoint, index_t rows, index_t cols) noexcept
      : value_(value), adjoint_(adjoint), rows_(rows), cols_(cols) {}

  index_t rows() const noexcept { return rows_; }
  index_t cols() const noexcept { return cols_; }
  index_t size() const noexcept { return rows_ * cols_; }
  shape2 shape() const noexcept { return {rows_, cols_}; }

  bool needs_gradient() const noexcept { return adjoint_ != nullptr; }

  // Views of the value and the adjoint. Ops never write an input's value.
  matrix_map<Scalar> value() const noexcept { return {value_, rows_, cols_}; }
  matrix_map<Scalar> adjoint() const noexcept {
    EARLYBERT_ASSERT(needs_gradient());
    return {adjoint_, rows_, cols_};
  }
  Scalar* value_data() const noexcept { return value_; }
  Scalar* adjoint_data() const noexcept { return adjoint_; }

  // The single entry of a [1, 1] var (a loss).
  Scalar item() const {
    check_shape("var::item", "this", shape(), {1, 1});
    return *value_;
  }

 private:
  Scalar* value_ = nullptr;
  Scalar* adjoint_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
};

template <class Scalar>
class tape {
  static_assert(is_supported_scalar<Scalar>, "earlybert::tape: Scalar must be float or double");

 public:
  using scalar_type = Scalar;

  explicit tape(std::size_t first_block_bytes = std::size_t{1} << 20) : arena_(first_block_bytes) {
    steps_.reserve(1024);
    watches_.reserve(256);
  }
  tape(const tape&) = delete;
  tape& operator=(const tape&) = delete;

  // ---- Making vars ----

  // A fresh [rows, cols] node: uninitialised value; a zeroed adjoint iff `wants_gradient` and the
  // tape is recording. Ops call this for their outputs.
  var<Scalar> make(index_t rows, index_t cols, bool wants_gradient) {
    Scalar* value = arena_.allocate<Scalar>(rows * cols);
    Scalar* adjoint = nullptr;
    if (wants_gradient && recording_) {
      adjoint = arena_.allocate<Scalar>(rows * cols);
      std::memset(adjoint, 0, sizeof(Scalar) * static_cast<std::size_t>(rows * cols));
    }
    return var<Scalar>(value, adjoint, rows, cols);
  }

  // A parameter enters the step: its value is read in place; its gradient accumulates in place.
  // A gradient whose shape differs from the value's (a value assigned a new shape) is resized and
  // zeroed first, so backward can never write outside it.
  var<Scalar> watch(parameter<Scalar>& p) {
    Scalar* adjoint = nullptr;
    if (p.trainable && recording_) {
      if (p.gradient.rows() != p.value.rows() || p.gradient.cols() != p.value.cols()) {
        p.gradient.setZero(p.value.rows(), p.value.cols());
      }
      adjoint = p.gradient.data();
      watches_.push_back({&p, steps_.size()});
    }
    return var<Scalar>(p.value.data(), adjoint, p.value.rows(), p.value.cols());
  }

  // A watch that records a gradient: the parameter, and how many closures were recorded before it.
  // Once backward has run every closure from `position` on, nothing writes the gradient any more.
  struct watch_record {
    const parameter<Scalar>* watched;
    std::size_t position;
  };
  // Every watch of a trainable parameter since the last rewind(), in the order they were made (a
  // parameter watched again appears again; its first record is the one that tells).
  std::span<const watch_record> watches() const noexcept { return watches_; }

  // A constant copied into the arena (safe for temporaries).
  template <class Derived>
  var<Scalar> constant(const Eigen::DenseBase<Derived>& values) {
    var<Scalar> v = make(values.rows(), values.cols(), false);
    v.value() = values.template cast<Scalar>();
    return v;
  }

  // A constant that views caller memory without copying. The caller keeps it alive and unchanged
  // until the step's backward pass has run.
  var<Scalar> input(const Scalar* values, index_t rows, index_t cols) {
    return var<Scalar>(const_cast<Scalar*>(values), nullptr, rows, cols);
  }

  // Per-step scratch memory for op caches (masks, statistics, copied indices).
  template <class T>
  T* scratch(index_t count) {
    return arena_.allocate<T>(count);
  }

  // ---- Recording and running backward ----

  bool recording() const noexcept { return recording_; }
  void set_recording(bool on) noexcept { recording_ = on; }

  // Records `closure` to run during backward. It must capture only trivially destructible values
  // (vars, pointers, extents, scalars): the arena never runs destructors.
  template <class Closure>
  void on_backward(Closure&& closure) {
    using stored = std::decay_t<Closure>;
    static_assert(std::is_trivially_destructible_v<stored>,
                  "earlybert::tape: a backward closure must capture only trivially destructible "
                  "values (vars, pointers, sizes, scalars), because the arena never runs destructors");
    EARLYBERT_ASSERT(recording_);
    void* where = arena_.allocate<std::byte>(static_cast<index_t>(sizeof(stored)));
    auto* saved = ::new (where) stored(std::forward<Closure>(closure));
    steps_.push_back(step{[](void* c) { (*static_cast<stored*>(c))(); }, saved});
  }

  // Seeds d loss / d loss = 1 (accumulated) and runs every recorded closure in reverse.
  // `loss` must be [1, 1] and need a gradient.
  void backward(const var<Scalar>& loss) {
    backward(loss, [](std::size_t) {});
  }
  // The same, calling after_closure(remaining) before the first closure and after each one, with
  // `remaining` the number of closures still to run (the recorded ones at positions [0, remaining)).
  // A parameter whose first watch_record has position >= remaining has its complete gradient.
  template <class AfterClosure>
  void backward(const var<Scalar>& loss, AfterClosure&& after_closure) {
    check_shape("tape::backward", "loss", loss.shape(), {1, 1});
    if (!loss.needs_gradient()) {
      throw error("tape::backward: argument 'loss' needs no gradient (nothing it depends on is "
                  "trainable, or the tape was not recording)");
    }
    *loss.adjoint_data() += Scalar(1);
    after_closure(steps_.size());
    for (std::size_t i = steps_.size(); i-- > 0;) {
      steps_[i].run(steps_[i].closure);
      after_closure(i);
    }
  }

  // Inference only (not recording, so no closure can refer to the memory): where the arena stands,
  // and a return there that frees everything made since for reuse. Vars made since become invalid.
  arena::mark mark() const noexcept { return arena_.position(); }
  void release_to(arena::mark m) {
    if (recording_) throw error("tape::release_to: the tape is recording; memory of a recorded step lives until rewind()");
    arena_.rewind_to(m);
  }

  // Forgets every recorded closure and rewinds the arena: every var of the step becomes invalid.
  void rewind() noexcept {
    steps_.clear();
    watches_.clear();
    arena_.rewind();
  }

  std::size_t recorded_steps() const noexcept { return steps_.size(); }
  std::size_t arena_bytes() const noexcept { return arena_.capacity_bytes(); }

 private:
  struct step {
    void (*run)(void*);
    void* closure;
  };

  arena arena_;
  std::vector<step> steps_;  // capacity is kept across rewinds
  std::vector<watch_record> watches_;  // likewise
  bool recording_ = true;
};

// RAII inference scope: ops inside record nothing and allocate no adjoints.
template <class Scalar>
class no_recording {
 public:
  explicit no_recording(tape<Scalar>& t) : tape_(t), previous_(t.recording()) {
    t.set_recording(false);
  }
  ~no_recording() { tape_.set_recording(previous_); }
  no_recording(const no_recording&) = delete;
  no_recording& operator=(const no_recording&) = delete;

 private:
  tape<Scalar>& tape_;
  bool previous_;
};

// True when an op with these inputs must record a backward closure.
template <class Scalar, class... Vars>
bool any_needs_gradient(const tape<Scalar>& t, const Vars&... inputs) {
  return t.recording() && (inputs.needs_gradient() || ...);
}

}  // namespace earlybert
