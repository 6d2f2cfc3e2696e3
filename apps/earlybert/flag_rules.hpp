// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which flags belong to which method or mode, and which methods exclude each other: the one table the
// program checks right after the command line is parsed, before any file is read (docs/cli.md,
// "Flags that belong to a method"). A flag given without the choice it belongs to would do nothing,
// so it is an error naming both, as is a pair of methods that cannot run together; both are usage
// errors (exit status 2).

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <earlybert/core/error.hpp>

#include "common.hpp"

namespace earlybert::cli {

// An error in the command line itself (a flag without its method, two methods at once): exit status 2.
struct usage_error : config_error {
  using config_error::config_error;
};

// A choice (a method, a mode, a kind of task) and the flags that mean something only when it is made.
struct flag_owner {
  std::string choice;              // as the error names it: "--earlybert", "--task squad", ...
  std::function<bool()> chosen;
  std::vector<const char*> flags;  // each flag's first long name, as the command line spells it
};

// A training method; two chosen at once are an error unless the pair is listed as combinable.
struct exclusive_method {
  const char* name;
  std::function<bool()> chosen;
};

inline bool given(const CLI::App& command, const char* flag) { return command.get_option(flag)->count() > 0; }

// Throws usage_error for the first flag given without its owner's choice, then for the first pair of
// methods chosen together that `combinable` does not allow.
inline void check_flag_owners(const CLI::App& command, std::span<const flag_owner> owners, std::span<const exclusive_method> methods = {},
                              const std::function<bool(const char*, const char*)>& combinable = {}) {
  for (const flag_owner& owner : owners) {
    if (owner.chosen()) continue;
    for (const char* flag : owner.flags) {
      if (given(command, flag)) {
        throw usage_error(fmt::format("{} applies only with {}, which is not given: give {} too, or leave {} out", flag, owner.choice,
                                      owner.choice, flag));
      }
    }
  }
  for (std::size_t a = 0; a < methods.size(); ++a) {
    for (std::size_t b = a + 1; b < methods.size(); ++b) {
      if (methods[a].chosen() && methods[b].chosen() && !(combinable && combinable(methods[a].name, methods[b].name))) {
        throw usage_error(fmt::format("{} and {} are different training methods: give one", methods[a].name, methods[b].name));
      }
    }
  }
}

// The EarlyBERT flags (finetune and pretrain): the method's own, and those of one detector or criterion.
inline std::vector<flag_owner> earlybert_owners(const earlybert_cli_options& e) {
  return {{"--earlybert",
           [&e] { return e.enabled; },
           {"--prune-heads", "--prune-ffn", "--heads-scope", "--ffn-scope", "--counting", "--min-kept", "--l1-heads", "--l1-ffn", "--importance",
            "--absolute", "--detector", "--eb-window", "--eb-eps", "--eb-joint", "--eb-interval", "--draw-step", "--restart-from",
            "--efficient-epochs", "--efficient-steps", "--efficient-lr"}},
          {"--earlybert --detector fixed or fraction", [&e] { return e.detector == "fixed" || e.detector == "fraction"; }, {"--draw-step"}},
          {"--earlybert --detector mask-distance", [&e] { return e.detector == "mask-distance"; }, {"--eb-window", "--eb-eps", "--eb-joint"}},
          {"--earlybert --importance slimming", [&e] { return e.importance == "slimming"; }, {"--absolute"}}};
}

// Two flags that set the same thing (`what`): one at most.
inline void check_not_both(const CLI::App& command, const char* a, const char* b, const char* what) {
  if (given(command, a) && given(command, b)) throw usage_error(fmt::format("{} and {} both set {}: give one", a, b, what));
}

// What every training run checks: --overwrite starts the run afresh in a directory that holds one,
// --resume continues it; --overlap chooses how the processes of an mpirun job sum their gradients
// (alone, a process sums nothing); the efficient stage's length is given once.
inline void check_training_flags(const CLI::App& command) {
  if (given(command, "--overlap") && job::processes() < 2) {
    throw usage_error("--overlap applies only under mpirun with two or more processes, which this run is not: leave --overlap out");
  }
  if (given(command, "--overwrite") && given(command, "--resume")) {
    throw usage_error("--overwrite replaces what --out holds, --resume continues the run it holds: give one");
  }
  check_not_both(command, "--efficient-epochs", "--efficient-steps", "the efficient stage's length");
}

inline void check_pretrain_flags(const CLI::App& command, const pretrain_options& o) {
  check_flag_owners(command, earlybert_owners(o.earlybert));
  check_training_flags(command);
}

inline void check_finetune_flags(const CLI::App& command, const finetune_options& o) {
  const lottery_cli_options& l = o.lottery;
  std::vector<flag_owner> owners = earlybert_owners(o.earlybert);
  owners.insert(owners.end(), {
      {"--imp", [&] { return l.imp; }, {"--imp-levels", "--imp-rate", "--rewind-step", "--rewind-optimizer", "--imp-structures"}},
      {"unstructured --imp (without --imp-structures)", [&] { return l.imp && !l.imp_structures; }, {"--imp-ranking"}},
      {"--imp --imp-structures", [&] { return l.imp && l.imp_structures; }, {"--imp-criterion"}},
      {"--imp --imp-structures --imp-criterion greedy", [&] { return l.imp && l.imp_structures && l.imp_criterion == "greedy"; }, {"--greedy-examples"}},
      {"--mask-from", [&] { return !l.mask_from.empty(); }, {"--control"}},
      {"--sparsity", [&] { return l.sparsity.has_value(); }, {"--allocation", "--rigl"}},
      {"--sparsity --rigl", [&] { return l.sparsity.has_value() && l.rigl; }, {"--rigl-drop", "--rigl-interval", "--rigl-end"}},
      {"--lmc-step", [&] { return l.lmc_step.has_value(); }, {"--lmc-points"}},
      {"an unstructured method (--imp without --imp-structures, --sparsity or --mask-from)",
       [&] { return (l.imp && !l.imp_structures) || l.sparsity.has_value() || !l.mask_from.empty(); },
       {"--weights"}},
      {"--early-exit", [&] { return o.early_exit.enabled; },
       {"--self-sampling-epochs", "--self-sampling-steps", "--exit-mode", "--exit-measure", "--exit-threshold", "--exit-window"}},
      {"--task squad", [&] { return o.task == "squad"; }, {"--doc-stride", "--max-query"}},
      {"custom files (--train and --dev without --task)", [&] { return o.task.empty(); }, {"--num-labels"}},
      {"--task", [&] { return !o.task.empty(); }, {"--data"}},
  });
  const exclusive_method methods[] = {
      {"--earlybert", [&] { return o.earlybert.enabled; }},
      {"--imp", [&] { return l.imp; }},
      {"--sparsity", [&] { return l.sparsity.has_value(); }},
      {"--mask-from", [&] { return !l.mask_from.empty(); }},
      {"--lmc-step", [&] { return l.lmc_step.has_value(); }},
      {"--early-exit", [&] { return o.early_exit.enabled; }},
  };
  // The instability analysis of a ticket: --lmc-step with --mask-from.
  const auto combinable = [](const char* a, const char* b) {
    return std::string_view(a) == "--mask-from" && std::string_view(b) == "--lmc-step";
  };
  check_flag_owners(command, owners, methods, combinable);
  check_training_flags(command);
  check_not_both(command, "--self-sampling-epochs", "--self-sampling-steps", "self-sampling's length");
  check_not_both(command, "--epochs", "--steps", "the run's length");
  if (!o.data.empty() && (!o.train.empty() || !o.dev.empty())) {
    throw usage_error("--data names the task's directory, --train and --dev its files: give --data, or --train and --dev");
  }
}

// The demo starts from one model: the bundled one of --shape, or --init's, or one it pre-trains, or
// random weights; a checkpoint brings its own shape.
inline void check_demo_flags(const CLI::App& command, const demo_options& o) {
  if (given(command, "--pretrain-steps") && o.pretrain_steps < 1) {
    throw usage_error(fmt::format("--pretrain-steps is {}, expected at least 1 (--random-init starts from random weights)", o.pretrain_steps));
  }
  const char* starts[] = {"--init", "--pretrain-steps", "--random-init"};
  for (std::size_t a = 0; a < std::size(starts); ++a) {
    for (std::size_t b = a + 1; b < std::size(starts); ++b) check_not_both(command, starts[a], starts[b], "the model the demo starts from");
  }
  check_not_both(command, "--init", "--shape", "the model's shape (a checkpoint's is in its config.json)");
}

}  // namespace earlybert::cli
