// SPDX-License-Identifier: Apache-2.0
#pragma once
// The processes one run of the program spans (docs/distributed.md): this one alone, or every process
// of an MPI job when the program was built with MPI and an MPI launcher (mpirun) started it.
//
//   job::start(argc, argv)  first thing in main: joins the MPI job the launcher made, if any (a program
//                           built without MPI refuses to run as one of several processes)
//   job::group()            what the trainer sums gradients over (distributed/process_group.hpp)
//   job::lead()             process 0, the one that prints status lines and notes and writes metrics,
//                           checkpoints and pictures; the others train and keep quiet
//   job::agree(settings)    where training starts: every process says it got there with the same
//                           settings; a process that failed before says why instead (fail()), and
//                           then every process stops with that one error, printed once by the lead
//   job::fail(...)          what main does with an error: before agree(), the collective stop above;
//                           after it (an error on one process mid-training: the others would wait
//                           for it forever), the process prints its error and ends the whole job
//
// An interrupted run (SIGINT/SIGTERM) stops every process at the same step, so it ends as a
// successful one does; see checkpoints.hpp.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <earlybert/core/error.hpp>
#include <earlybert/distributed/process_group.hpp>
#if defined(EARLYBERT_WITH_MPI)
#include <earlybert/distributed/mpi.hpp>
#endif

#include "messages.hpp"

namespace earlybert::cli {

// Every process of the job stops here, for the reason given (job::agree).
class job_stopped : public config_error {
 public:
  using config_error::config_error;
};

class job {
 public:
  // The number of processes an MPI launcher started, read from its environment (Open MPI, and the
  // PMI variables of MPICH and others); nullopt when no launcher started this process.
  static std::optional<int> launched_processes() {
    for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"}) {
      if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') return std::atoi(value);
    }
    return std::nullopt;
  }

  static void start(int& argc, char**& argv) {
    [[maybe_unused]] const std::optional<int> processes = launched_processes();
#if defined(EARLYBERT_WITH_MPI)
    if (processes) {
      state().mpi = std::make_unique<mpi_environment>(argc, argv);
      state().group = std::make_unique<mpi_process_group>();
      // Another MPI's launcher makes N jobs of one process each: every process would train alone.
      if (*processes > 1 && state().group->size() == 1) {
        state().startup_error = fmt::format("an MPI launcher started this earlybert as one of {} processes, but its MPI library sees only "
                                            "this one: the launcher belongs to another MPI (start it with the mpirun of the MPI it "
                                            "was built with; docs/distributed.md)", *processes);
      }
    }
#else
    (void)argc;
    (void)argv;
    if (processes && *processes > 1) {
      state().startup_error = fmt::format("this earlybert was built without MPI, but an MPI launcher started it as one of {} processes "
                                          "(install libopenmpi-dev and build again; docs/distributed.md)", *processes);
    }
#endif
    if (!state().startup_error.empty()) silence_all_but_the_first();
  }
  // An error found by start() (a program without MPI under mpirun, or under another MPI's); every
  // subcommand reports it.
  static const std::string& startup_error() { return state().startup_error; }

  static process_group& group() { return *state().group; }
  static int processes() { return group().size(); }
  static bool lead() { return group().rank() == 0 && !state().silent; }

  // For the subcommands that run in one process only (demo, predict, bench, inspect).
  static void require_single(std::string_view command) {
    if (processes() > 1) {
      throw config_error(fmt::format("'earlybert {}' runs in one process, but it was started as one of {} (only pretrain and finetune "
                                     "train across processes): start it without mpirun", command, processes()));
    }
  }

  // A step's --batch examples fall into --accumulation micro-batches on each process, all of one size.
  static void check_batch(long batch, int accumulation) {
    const long micro_batches = static_cast<long>(accumulation) * processes();
    if (processes() > 1 && batch % micro_batches != 0) {
      throw config_error(fmt::format("--batch is {}, expected a multiple of the {} processes x --accumulation {} = {} (each process takes "
                                     "the same share of every step)", batch, processes(), accumulation, micro_batches));
    }
  }

  // Every process reaches the start of training with `settings` (the options as written in a training
  // state): throws job_stopped on every process when another one failed before (with its message) or
  // holds other settings.
  static void agree(const std::string& settings) {
    if (std::optional<std::string> failure = exchange(settings_hash(settings), "")) throw job_stopped(*failure);
  }

  // An error `what` of `command` on this process: prints and returns the exit status to return from
  // main (before agree()), or prints and ends the job (after it, with more than one process).
  static int fail(std::string_view command, const std::string& what, int status) {
    if (processes() == 1) {
      if (!state().silent) messages::error(command, what);
      return status;
    }
    if (!state().agreed) return stopped_together(command, exchange(0, what).value_or(what), status);
    messages::error(command, fmt::format("process {} of {}: {}", group().rank(), processes(), what));
#if defined(EARLYBERT_WITH_MPI)
    mpi_environment::abort_job(status);
#endif
    return status;
  }
  // Every process stops at the same point for the same reason (job_stopped, a signal): the lead says why.
  static int stopped_together(std::string_view command, const std::string& what, int status) {
    if (lead()) messages::error(command, what);
    return status;
  }

 private:
  struct job_state {
    std::unique_ptr<process_group> group = std::make_unique<single_process>();
#if defined(EARLYBERT_WITH_MPI)
    std::unique_ptr<mpi_environment> mpi;  // finalises MPI at exit
#endif
    std::string startup_error;
    bool silent = false;  // a process other than the first under a launcher, in a program without MPI
    bool agreed = false;
  };
  static job_state& state() {
    static job_state s;
    return s;
  }

  // An error found by start() leaves each process on its own: the one the launcher numbered 0 speaks for all.
  static void silence_all_but_the_first() {
    for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"}) {
      if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') state().silent = std::atoi(value) != 0;
    }
  }

  static std::uint64_t settings_hash(const std::string& settings) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (const unsigned char c : settings) h = (h ^ c) * 0x100000001b3ULL;
    return h | 1;  // 0 means "failed"
  }

  // What each process tells the others at the start: its settings' hash, or 0 and its error.
  struct report {
    std::uint64_t settings = 0;
    char error[1016] = {};
  };
  // The first process's error, or a settings mismatch; nullopt when every process may start.
  static std::optional<std::string> exchange(std::uint64_t settings, const std::string& error) {
    state().agreed = true;
    if (processes() == 1) return std::nullopt;
    report mine;
    mine.settings = settings;
    std::strncpy(mine.error, error.c_str(), sizeof(mine.error) - 1);
    std::vector<report> all(static_cast<std::size_t>(processes()));
    group().all_gather(std::as_bytes(std::span(&mine, 1)), std::as_writable_bytes(std::span(all)));
    for (std::size_t r = 0; r < all.size(); ++r) {
      if (all[r].settings == 0) {
        return static_cast<int>(r) == group().rank() ? std::string(all[r].error) : fmt::format("process {} of {}: {}", r, all.size(), all[r].error);
      }
    }
    for (std::size_t r = 1; r < all.size(); ++r) {
      if (all[r].settings != all[0].settings) {
        return fmt::format("process {} of {} was started with other settings than process 0 (every process of a job must get the same "
                           "options)", r, all.size());
      }
    }
    return std::nullopt;
  }
};

}  // namespace earlybert::cli
