// SPDX-License-Identifier: Apache-2.0
#pragma once
// A task that keeps checkpoints (checkpointing_task, train/earlybert.hpp) the way a run killed by
// SIGKILL leaves them: at the n-th time the pipeline asks (after every step but a stage's last, and
// stop_requested where a method asks it after its steps), it writes the training state to `file` and
// stops the run by throwing run_killed, so nothing after that question happens. Counting the
// questions, not the steps, reaches a step of any level of a method that repeats steps (IMP's levels).

#include <filesystem>
#include <string>

#include "earlybert/train/earlybert.hpp"

namespace earlybert::testing {

struct run_killed {};

template <class Task>
struct interrupted_task : Task {
  using Task::Task;
  long kill_at = 1;  // the question (from 1) that writes the state and stops the run
  std::filesystem::path file;
  mutable long asked = 0;

  bool checkpoint_due(pipeline_stage, long) const { return ++asked == kill_at; }
  bool stop_requested() const { return ++asked == kill_at; }  // the questions outside the steps count too
  void write_checkpoint(training_state_writer& state) const {
    state.write(file);
    throw run_killed{};
  }
};

inline std::filesystem::path state_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("earlybert_test_state_" + name + ".safetensors");
}

}  // namespace earlybert::testing
