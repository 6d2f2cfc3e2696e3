// SPDX-License-Identifier: Apache-2.0
#pragma once
// A run's state at one step, to come back to: every parameter's value and AdamW's moments and count.
// Iterative magnitude pruning rewinds to one (train/imp.hpp); instability analysis starts its two
// copies from one (train/instability.hpp). take() copies it from a model, restore() writes it back (the
// optimizer restored or fresh), add_to()/read() keep it in a training state under a prefix.

#include <string>
#include <vector>

#include <fmt/format.h>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/nn/linear.hpp"
#include "earlybert/train/training_state.hpp"

namespace earlybert {

// What AdamW starts from when a run comes back to a point: its moments and count there (restored),
// or none (fresh: zero moments, the bias correction from step 1).
enum class optimizer_rewind { restored, fresh };

// Every parameter's value, and AdamW's state, at one step of a run.
template <class Scalar>
struct rewind_point {
  long step = 0;
  long optimizer_steps = 0;
  std::vector<std::string> names;  // the parameters, in the model's order
  std::vector<matrix<Scalar>> values, first_moments, second_moments;

  template <class Model>
  static rewind_point take(Model& model, long step, long optimizer_steps) {
    rewind_point r{step, optimizer_steps, {}, {}, {}, {}};
    model.for_each_parameter([&](parameter<Scalar>& p) {
      r.names.push_back(p.name);
      r.values.push_back(p.value);
      r.first_moments.push_back(p.first_moment);
      r.second_moments.push_back(p.second_moment);
    });
    return r;
  }

  // The point as tensors of a training state, "<prefix><parameter name>" and its moments (where it had
  // them) "<prefix><name>.adam_m" and ".adam_v", in the model's scalar type: read() gets the same bits.
  void add_to(training_state_writer& state, const std::string& prefix) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      state.add_tensor(prefix + names[i], values[i]);
      if (first_moments[i].size() == 0) continue;
      state.add_tensor(prefix + names[i] + ".adam_m", first_moments[i]);
      state.add_tensor(prefix + names[i] + ".adam_v", second_moments[i]);
    }
  }
  template <class Model>
  static rewind_point read(const training_state_reader& state, Model& model, const std::string& prefix, long step, long optimizer_steps) {
    rewind_point r{step, optimizer_steps, {}, {}, {}, {}};
    model.for_each_parameter([&](parameter<Scalar>& p) {
      const std::string name = prefix + p.name;
      r.names.push_back(p.name);
      r.values.emplace_back(p.rows(), p.cols());
      state.read_tensor(name, r.values.back());
      r.first_moments.emplace_back();
      r.second_moments.emplace_back();
      if (state.has_tensor(name + ".adam_m")) {
        r.first_moments.back().resize(p.rows(), p.cols());
        r.second_moments.back().resize(p.rows(), p.cols());
        state.read_tensor(name + ".adam_m", r.first_moments.back());
        state.read_tensor(name + ".adam_v", r.second_moments.back());
      }
    });
    return r;
  }

  // Writes the values back (and the moments, or clears them for a fresh optimizer), clears the
  // gradients, and lets every linear layer zero what its masks remove.
  template <class Model>
  void restore(Model& model, optimizer_rewind optimizer) const {
    std::size_t i = 0;
    model.for_each_parameter([&](parameter<Scalar>& p) {
      if (i >= values.size() || values[i].rows() != p.rows() || values[i].cols() != p.cols()) {
        throw shape_error(fmt::format("rewind_point: parameter {} '{}' is [{}, {}], not the shape the rewind point holds", i, p.name,
                                      p.rows(), p.cols()));
      }
      p.value = values[i];
      p.zero_gradient();
      if (optimizer == optimizer_rewind::restored) {
        p.first_moment = first_moments[i];
        p.second_moment = second_moments[i];
      } else {
        p.first_moment.resize(0, 0);
        p.second_moment.resize(0, 0);
      }
      ++i;
    });
    if (i != values.size()) throw shape_error(fmt::format("rewind_point: the model has {} parameters, the rewind point {}", i, values.size()));
    model.for_each_linear([](linear<Scalar>& l) { l.reapply_masks(); });
  }
};

}  // namespace earlybert
