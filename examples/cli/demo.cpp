// SPDX-License-Identifier: Apache-2.0
// `earlybert demo`: the project's main job. On the bundled SST-2 subset it trains the same BERT three
// ways under the same budget rules and shows what EarlyBERT saves:
//   dense          --epochs epochs
//   earlybert      search with slimming coefficients until the early-bird detector fires (within the
//                  first epoch), draw the ticket, then --efficient-epochs of the compacted model
//   random_ticket  the same pipeline with random scores (the paper's main baseline)
// It prints a table, writes summary.json and each run's metrics and checkpoint into --out, and draws
// the pictures of the EarlyBERT run when Debian's python3-matplotlib is installed.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cli/finetune.hpp"

namespace earlybert::cli {

int run_demo(const demo_options& o) {
  apply_threads(o.common.threads);
  const fs::path data(o.data), out(o.out);
  check_output_directory(out);
  const vocabulary vocab = vocabulary::load(data / "vocab" / "bert-base-uncased-vocab.txt");
  const wordpiece_tokenizer tokenizer = make_tokenizer(vocab);
  const classification_dataset train = read_classification_tsv(data / "sst2" / "train_subset.tsv", tokenizer, o.max_seq, 2);
  const classification_dataset dev = read_classification_tsv(data / "sst2" / "dev.tsv", tokenizer, o.max_seq, 2);
  fmt::print(stderr, "demo: SST-2, {} training sentences (every 8th of the train split) and the {} dev sentences; shape {}\n",
             train.examples.size(), dev.examples.size(), o.shape);
  fs::create_directories(out);

  finetune_options base;
  base.common = o.common;
  base.vocab = (data / "vocab" / "bert-base-uncased-vocab.txt").string();
  base.shape = o.shape;
  base.epochs = o.epochs;
  base.max_seq = o.max_seq;
  base.earlybert.restart_from = o.restart_from;
  base.earlybert.efficient_epochs = o.efficient_epochs;
  base.earlybert.efficient_lr = o.efficient_lr;

  struct run {
    std::string name;
    finetune_options options;
    finetune_result result;
  };
  std::vector<run> runs{{"dense", base, {}}, {"earlybert", base, {}}, {"random_ticket", base, {}}};
  runs[1].options.earlybert.enabled = true;
  runs[2].options.earlybert.enabled = true;
  runs[2].options.earlybert.ticket = "random";
  for (auto& r : runs) {
    r.options.out = (out / r.name).string();
    r.options.common.metrics = (out / (r.name + ".jsonl")).string();
    check_finetune_options(r.options);
    fmt::print(stderr, "demo: training {}\n", r.name);
    r.result = finetune_with(r.options, vocab, train, dev);
  }

  nlohmann::ordered_json summary{{"task", "SST-2 (bundled subset)"}, {"shape", o.shape}, {"train_examples", train.examples.size()},
                                 {"dev_examples", dev.examples.size()}, {"seed", o.common.seed}, {"runs", nlohmann::ordered_json::array()}};
  const double dense_wall = runs[0].result.train_wall_s, dense_flops = runs[0].result.train_flops;
  fmt::print("\n{:<14} {:>12} {:>14} {:>12} {:>12} {:>12} {:>10}\n", "run", "dev accuracy", "train time (s)", "time ratio",
             "train FLOPs", "FLOPs ratio", "ticket at");
  for (const auto& r : runs) {
    const finetune_result& x = r.result;
    summary["runs"].push_back({{"name", r.name},
                               {"dev_accuracy", x.dev_accuracy},
                               {"train_wall_s", x.train_wall_s},
                               {"train_flops", x.train_flops},
                               {"ticket_step", x.ticket_step >= 0 ? nlohmann::ordered_json(x.ticket_step) : nlohmann::ordered_json(nullptr)},
                               {"total_steps", x.total_steps},
                               {"speedup", dense_wall / x.train_wall_s},
                               {"heads_kept", x.heads_kept},
                               {"ffn_kept", x.ffn_kept},
                               {"encoder_flops_ratio", x.flops_ratio}});
    fmt::print("{:<14} {:>12.4f} {:>14.1f} {:>12.3f} {:>12.3g} {:>12.3f} {:>10}\n", r.name, x.dev_accuracy, x.train_wall_s,
               x.train_wall_s / dense_wall, x.train_flops, x.train_flops / dense_flops,
               x.ticket_step >= 0 ? fmt::format("step {}", x.ticket_step) : std::string("-"));
  }
  write_file_atomically(out / "summary.json", summary.dump(2) + "\n");
  const finetune_result& eb = runs[1].result;
  fmt::print("\nEarlyBERT trained in {:.0f}% of the dense time ({:.2f}x faster) with {:+.1f} points of dev accuracy; "
             "the random ticket reached {:.4f}.\n", 100 * eb.train_wall_s / dense_wall, dense_wall / eb.train_wall_s,
             100 * (eb.dev_accuracy - runs[0].result.dev_accuracy), runs[2].result.dev_accuracy);

  // The pictures, when matplotlib is there; the program never depends on it.
  const std::string script = o.plot_script;
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0 && fs::exists(script)) {
    const std::string command = fmt::format("/usr/bin/python3 '{}' '{}' --metrics '{}' --out '{}' >&2", script, (out / "earlybert").string(),
                                            (out / "earlybert.jsonl").string(), out.string());
    if (std::system(command.c_str()) != 0) fmt::print(stderr, "demo: the plotting script failed; the results above stand\n");
  } else {
    fmt::print(stderr, "demo: pictures skipped (install python3-matplotlib, then run {} {}/earlybert)\n", script, out.string());
  }
  fmt::print("Results in '{}': summary.json, per-run metrics (*.jsonl) and checkpoints.\n", out.string());
  return 0;
}

}  // namespace earlybert::cli
