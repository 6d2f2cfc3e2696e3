// SPDX-License-Identifier: Apache-2.0
#pragma once
// Interrupted runs of `pretrain` and `finetune`: periodic training states, a training state on
// SIGINT/SIGTERM, and --resume.
//
//   <out>/training_state.safetensors   the model, its AdamW moments, the pipeline's position and the
//                                      task's bookkeeping (train/training_state.hpp), replaced
//                                      atomically every --checkpoint-every steps of a stage and when
//                                      SIGINT or SIGTERM arrives (the run then stops after writing it,
//                                      with exit status 128 + the signal); removed once the final
//                                      checkpoint is written
//   --resume                           continues from it: the settings must be the ones the state was
//                                      written with (all options but --resume, --checkpoint-every and
//                                      --threads), the metrics file is cut back to what had been
//                                      written at that step, and the run ends bit-identical to an
//                                      uninterrupted one (same seed and threads). Without a state, the
//                                      run starts from the beginning and says so.
// The signal handlers are installed only while training runs: before it nothing is lost by dying.
//
// In a job of several processes (job.hpp) the lead alone writes the training state and the metrics;
// every process reads the state to resume (--out on a file system they share), and a signal that
// reaches any of them stops all of them after the same step: whether one is pending is summed over
// the processes at every step.

#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "job.hpp"

namespace earlybert::cli {

// A run stopped by SIGINT or SIGTERM after writing its training state.
class run_interrupted : public std::runtime_error {
 public:
  run_interrupted(int signal, const std::string& what) : std::runtime_error(what), signal_(signal) {}
  int signal() const noexcept { return signal_; }

 private:
  int signal_;
};

namespace detail {
inline volatile std::sig_atomic_t pending_signal = 0;
extern "C" inline void note_signal(int signal) { pending_signal = signal; }
}  // namespace detail

inline void check_checkpoint_options(const common_options& o) {
  if (o.checkpoint_every < 0) {
    throw config_error(fmt::format("--checkpoint-every is {}, expected at least 1 (or 0 for only on SIGINT/SIGTERM)", o.checkpoint_every));
  }
  if (o.save_dtype != "f32" && o.save_dtype != "f16" && o.save_dtype != "bf16") {
    throw config_error(fmt::format("--save-dtype is '{}', expected f32, f16 or bf16", o.save_dtype));
  }
}

inline fs::path training_state_path(const std::string& out) { return fs::path(out) / "training_state.safetensors"; }

// Where a run stands, in words, from the "pipeline" record of its training state
// (train/pipeline_records.hpp): "step N" of a dense or RigL run, "search step N" or "efficient step N"
// of EarlyBERT's, "step N of level L" of IMP's, "step N of the first copy" (the shared trunk included)
// or "of the second copy" of an instability run. Read leniently: the note is written before the
// pipeline checks the record, and a malformed part reads "?".
inline std::string run_position(const nlohmann::json& position) {
  const auto text = [](const nlohmann::json& value) { return value.is_string() ? value.get<std::string>() : std::string("?"); };
  const auto steps = whole_number<long>(member_or_null(position, "steps_done"));
  const std::string step = fmt::format("step {}", steps ? std::to_string(*steps) : "?");
  const std::string mode = text(member_or_null(position, "mode"));
  const nlohmann::json& method = member_or_null(position, "method");
  if (mode == "earlybert") return text(member_or_null(position, "stage")) + " " + step;
  if (mode == "imp") {
    const auto level = whole_number<int>(member_or_null(method, "level"));
    return fmt::format("{} of level {}", step, level ? std::to_string(*level) : "?");
  }
  if (mode == "instability") return fmt::format("{} of the {} copy", step, text(member_or_null(method, "phase")));
  return step;
}

// With --resume, the training state in `out` (checked against this run's settings), or none.
inline std::optional<training_state_reader> open_training_state(const char* command, const common_options& o, const std::string& out) {
  if (!o.resume) return std::nullopt;
  const fs::path path = training_state_path(out);
  if (!fs::exists(path)) {
    messages::note(command, "--resume, but '{}' holds no training state: starting from the beginning", out);
    return std::nullopt;
  }
  training_state_reader state = training_state_reader::open(path);
  const std::string recorded = state.record("settings").get<std::string>();
  if (recorded != o.settings) {
    // Name the first setting that differs.
    const auto lines = [](const std::string& text) {
      std::vector<std::string> split;
      std::size_t begin = 0;
      for (std::size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) split.push_back(text.substr(begin, end - begin));
      if (begin < text.size()) split.push_back(text.substr(begin));
      return split;
    };
    const auto then = lines(recorded), now = lines(o.settings);
    std::size_t i = 0;
    while (i < then.size() && i < now.size() && then[i] == now[i]) ++i;
    // A setting as the command line gives it: "key=value" as "--key value", an option not given (no
    // default of its own, as CLI11 writes it: key="") as "--key not given".
    // The job's size is a setting too, the last line of an mpirun job's ("processes=2"), and the only
    // one that may be absent (one process).
    const auto shown = [](const std::vector<std::string>& settings, std::size_t at) -> std::string {
      if (at >= settings.size()) return "one process";
      const std::string& line = settings[at];
      const auto equals = line.find('=');
      if (equals == std::string::npos) return "'" + line + "'";
      const std::string key = line.substr(0, equals), value = line.substr(equals + 1);
      if (key == "processes") return fmt::format("{} processes (mpirun -np {})", value, value);
      if (value.empty() || value == "\"\"") return fmt::format("--{} not given", key);
      return fmt::format("--{} {}", key, value);
    };
    throw config_error(fmt::format("--resume: the training state '{}' was written with other settings: {} then, {} now (resume with the "
                                   "settings it was written with)", path.string(), shown(then, i), shown(now, i)));
  }
  messages::status(command, "resuming from '{}' at {}", path.string(), run_position(state.record("pipeline")));
  return state;
}

// The metrics file of a run: none, new, or with a training state the interrupted run's, cut back.
inline metrics_log open_metrics(const common_options& o, const std::optional<training_state_reader>& state) {
  if (o.metrics.empty() || !job::lead()) return metrics_log();
  if (!state) return metrics_log(o.metrics);
  const nlohmann::json& record = state->record("metrics");
  if (record.at("path").get<std::string>() != o.metrics) {
    throw config_error(fmt::format("--metrics is '{}', but the training state's run wrote '{}'", o.metrics, record.at("path").get<std::string>()));
  }
  return metrics_log(o.metrics, read_whole_number<std::int64_t>(record.at("bytes"), "the metrics record's bytes"));
}

// When to write the training state, and writing it. Lives for the training loop: installs the
// SIGINT/SIGTERM handlers (a second signal of the same kind ends the process at once) and restores
// the previous ones when it goes.
class run_checkpoints {
 public:
  run_checkpoints(const common_options& o, const std::string& out, const metrics_log& metrics)
      : o_(o), path_(training_state_path(out)), metrics_(metrics), enabled_(o.checkpoints && !out.empty()) {
    if (!enabled_) return;
    detail::pending_signal = 0;
    struct sigaction action {};
    action.sa_handler = detail::note_signal;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  run_checkpoints(const run_checkpoints&) = delete;
  run_checkpoints& operator=(const run_checkpoints&) = delete;
  ~run_checkpoints() {
    if (!enabled_) return;
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }

  // Called by every process after every step.
  bool due(long step) const {
    if (!enabled_) return false;
    return stop_requested() || (o_.checkpoint_every > 0 && step % o_.checkpoint_every == 0);
  }

  // Whether a signal asked the run to stop, in any process; called by every process together (after a
  // step, or between the pieces of work a method does after its last step).
  bool stop_requested() const {
    if (!enabled_) return false;
    if (job::processes() > 1) {
      double signal = detail::pending_signal;
      job::group().sum(std::span<double>(&signal, 1));
      if (signal != 0 && detail::pending_signal == 0) detail::pending_signal = SIGTERM;  // another process's
    }
    return detail::pending_signal != 0;
  }

  // Completes `state` with the settings, the metrics position and the task's record, writes it, and
  // ends the run (run_interrupted) if a signal asked for it.
  void write(training_state_writer& state, const nlohmann::ordered_json& task_record) const {
    state.progress()["settings"] = o_.settings;
    state.progress()["metrics"] = {{"path", metrics_.path()}, {"bytes", metrics_.position()}};
    state.progress()["task"] = task_record;
    if (job::lead()) {
      std::error_code ec;
      fs::create_directories(path_.parent_path(), ec);  // --out was checked to be creatable
      if (ec) throw io_error(fmt::format("--out '{}': cannot create the directory ({})", path_.parent_path().string(), ec.message()));
      state.write(path_);
    }
    if (const int signal = detail::pending_signal; signal != 0) {
      throw run_interrupted(signal, fmt::format("{} after {}: the training state is in '{}'; run the same command with --resume to continue",
                                                signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)",
                                                run_position(nlohmann::json(state.progress()["pipeline"])), path_.string()));
    }
  }

  // The run is complete and its checkpoint written: the training state has served.
  void finished() const {
    std::error_code ec;
    if (enabled_ && job::lead()) fs::remove(path_, ec);
  }

 private:
  const common_options& o_;
  fs::path path_;
  const metrics_log& metrics_;
  bool enabled_;
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

}  // namespace earlybert::cli
