// SPDX-License-Identifier: Apache-2.0
// `earlybert demo`: the project's main job, EarlyBERT's fine-tuning setting at CPU scale. It
// pre-trains a small BERT with the masked-LM objective on the bundled WikiText-2 excerpt (or takes
// --init), then fine-tunes it on the bundled SST-2 subset three ways under the same budget rules:
//   dense          --epochs epochs at --lr
//   earlybert      search with slimming coefficients until the early-bird detector fires (within the
//                  first epoch), draw the ticket, rewind to the pre-trained weights, then
//                  --efficient-epochs of the compacted model at --efficient-lr
//   random_ticket  the same pipeline with random scores (the paper's main baseline)
// It prints a table, writes summary.json and each run's metrics and checkpoint into --out, and draws
// the pictures of the EarlyBERT run when Debian's python3-matplotlib is installed.
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "finetune.hpp"
#include "pretrain.hpp"

namespace earlybert::cli {

int run_demo(const demo_options& o) {
  apply_threads("demo", o.common.threads);
  const fs::path data(o.data), out(o.out);
  check_output_directory(out);
  if (o.pretrain_steps < 0) throw config_error(fmt::format("--pretrain-steps is {}, expected 0 or more", o.pretrain_steps));
  const fs::path vocab_file = data / "vocab" / "bert-base-uncased-vocab.txt";
  const vocabulary vocab = vocabulary::load(vocab_file);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  sentence_task_data sst2;
  sst2.title = "SST-2";
  sst2.name = "sst2";
  sst2.metrics = find_glue_task("sst2")->metrics;
  sst2.train = read_sentence_tsv(data / "sst2" / "train_subset.tsv", find_glue_task("sst2")->layout, tokenizer, o.max_seq);
  sst2.dev.emplace_back("", read_sentence_tsv(data / "sst2" / "dev.tsv", find_glue_task("sst2")->layout, tokenizer, o.max_seq));
  const classification_dataset& train = sst2.train;
  const classification_dataset& dev = sst2.dev.front().second;
  messages::status("demo", "SST-2, {} training sentences (every 8th of the train split) and the {} dev sentences", train.examples.size(),
             dev.examples.size());

  finetune_options base;
  base.common = o.common;
  base.common.checkpoints = false;  // the demo reruns whole; no training states
  base.vocab = vocab_file.string();
  base.shape = o.shape;
  base.init = o.init;
  base.epochs = o.epochs;
  base.max_seq = o.max_seq;
  base.lr = o.lr;
  base.earlybert.restart_from = o.restart_from;
  base.earlybert.efficient_epochs = o.efficient_epochs;
  base.earlybert.efficient_lr = o.efficient_lr;
  check_finetune_options(base);
  if (o.seeds < 1) throw config_error(fmt::format("--seeds is {}, expected at least 1", o.seeds));
  fs::create_directories(out);

  // 1. The pre-trained model all three runs start from.
  nlohmann::ordered_json pretraining = nullptr;
  if (o.init.empty() && o.pretrain_steps > 0) {
    pretrain_options p;
    p.common = o.common;
    p.common.checkpoints = false;
    p.common.metrics = (out / "pretrain.jsonl").string();
    p.corpus = (data / "wikitext2" / "train_head.txt").string();
    p.eval_corpus = (data / "wikitext2" / "valid_head.txt").string();
    p.vocab = vocab_file.string();
    p.shape = o.shape;
    p.out = (out / "pretrained").string();
    p.steps = o.pretrain_steps;
    p.eval_every = std::max(1L, o.pretrain_steps / 4);
    check_pretrain_options(p);
    messages::status("demo", "pre-training {} on the bundled WikiText-2 excerpt, {} steps (skip it next time with --init {})", o.shape,
               o.pretrain_steps, p.out);
    const pretrain_result r = pretrain_with(p, vocab);
    base.init = p.out;
    pretraining = {{"steps", r.total_steps}, {"train_wall_s", r.train_wall_s}, {"train_flops", r.train_flops},
                   {"mlm_loss", r.mlm_loss}, {"mlm_accuracy", r.mlm_accuracy}, {"checkpoint", p.out}};
  }
  if (!base.init.empty()) base.shape.clear();  // the checkpoint says

  // 2. Every arm fine-tuned with each seed. One dev set of 872 sentences measures accuracy to about
  // +-1.5 points (one standard error), as much as the arms differ by, so the table reports the mean
  // over several seeds next to each seed's run.
  const std::vector<std::string> arms{"dense", "earlybert", "random_ticket"};
  std::vector<std::vector<finetune_result>> results(arms.size());  // [arm][seed]
  for (int k = 0; k < o.seeds; ++k) {
    const std::uint64_t seed = o.common.seed + static_cast<std::uint64_t>(k);
    for (std::size_t a = 0; a < arms.size(); ++a) {
      finetune_options r = base;
      r.common.seed = seed;
      r.earlybert.enabled = arms[a] != "dense";
      if (arms[a] == "random_ticket") r.earlybert.importance = "random";
      const std::string run_name = fmt::format("{}_seed{}", arms[a], seed);
      r.out = k == 0 ? (out / arms[a]).string() : std::string();  // the first seed's checkpoints only
      r.common.metrics = (out / (run_name + ".jsonl")).string();
      messages::status("demo", "fine-tuning {} (seed {}, {} of {})", arms[a], seed, k + 1, o.seeds);
      results[a].push_back(finetune_with(r, vocab, sst2));
    }
  }

  const auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
  };
  const auto stdev = [&](const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double sum = 0;
    for (double x : v) sum += (x - m) * (x - m);
    return std::sqrt(sum / static_cast<double>(v.size() - 1));
  };
  const auto column = [&](std::size_t a, auto field) {
    std::vector<double> v;
    for (std::size_t k = 0; k < results[a].size(); ++k) v.push_back(field(results[a][k], results[0][k]));
    return v;
  };
  const auto accuracy = [](const finetune_result& x, const finetune_result&) { return x.dev_accuracy; };
  const auto wall = [](const finetune_result& x, const finetune_result&) { return x.train_wall_s; };
  const auto flops = [](const finetune_result& x, const finetune_result&) { return x.train_flops; };
  const auto time_ratio = [](const finetune_result& x, const finetune_result& dense) { return x.train_wall_s / dense.train_wall_s; };
  const auto flops_ratio = [](const finetune_result& x, const finetune_result& dense) { return x.train_flops / dense.train_flops; };
  const auto ticket = [](const finetune_result& x, const finetune_result&) { return static_cast<double>(x.ticket_step); };

  nlohmann::ordered_json summary{{"task", "SST-2 (bundled subset)"}, {"shape", o.shape}, {"train_examples", train.examples.size()},
                                 {"dev_examples", dev.examples.size()}, {"seeds", o.seeds}, {"first_seed", o.common.seed},
                                 {"initialised_from", base.init.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(base.init)},
                                 {"pretraining", pretraining}, {"runs", nlohmann::ordered_json::array()}};
  fmt::print("\n{:<14} {:>6} {:>17} {:>14} {:>12} {:>12} {:>12} {:>10}\n", "run", "seed", "dev accuracy", "train time (s)", "time ratio",
             "train FLOPs", "FLOPs ratio", "ticket at");
  for (std::size_t a = 0; a < arms.size(); ++a) {
    nlohmann::ordered_json per_seed = nlohmann::ordered_json::array();
    for (std::size_t k = 0; k < results[a].size(); ++k) {
      const finetune_result& x = results[a][k];
      const finetune_result& dense = results[0][k];
      const std::uint64_t seed = o.common.seed + k;
      per_seed.push_back({{"seed", seed},
                          {"dev_accuracy", x.dev_accuracy},
                          {"train_wall_s", x.train_wall_s},
                          {"train_flops", x.train_flops},
                          {"ticket_step", x.ticket_step >= 0 ? nlohmann::ordered_json(x.ticket_step) : nlohmann::ordered_json(nullptr)},
                          {"total_steps", x.total_steps},
                          {"time_ratio", x.train_wall_s / dense.train_wall_s},
                          {"heads_kept", x.heads_kept},
                          {"ffn_kept", x.ffn_kept},
                          {"encoder_flops_ratio", x.flops_ratio}});
      fmt::print("{:<14} {:>6} {:>17.4f} {:>14.1f} {:>12.3f} {:>12.3g} {:>12.3f} {:>10}\n", arms[a], seed, x.dev_accuracy, x.train_wall_s,
                 x.train_wall_s / dense.train_wall_s, x.train_flops, x.train_flops / dense.train_flops,
                 x.ticket_step >= 0 ? fmt::format("step {}", x.ticket_step) : std::string("-"));
    }
    const bool pruned = arms[a] != "dense";
    summary["runs"].push_back({{"name", arms[a]},
                               {"dev_accuracy", mean(column(a, accuracy))},
                               {"dev_accuracy_std", stdev(column(a, accuracy))},
                               {"train_wall_s", mean(column(a, wall))},
                               {"train_flops", mean(column(a, flops))},
                               {"ticket_step", pruned ? nlohmann::ordered_json(mean(column(a, ticket))) : nlohmann::ordered_json(nullptr)},
                               {"total_steps", mean(column(a, [](const finetune_result& x, const finetune_result&) {
                                  return static_cast<double>(x.total_steps);
                                }))},
                               {"time_ratio", mean(column(a, time_ratio))},
                               {"flops_ratio", mean(column(a, flops_ratio))},
                               {"per_seed", per_seed}});
  }
  fmt::print("\nMean over {} seed(s):\n", o.seeds);
  for (std::size_t a = 0; a < arms.size(); ++a) {
    fmt::print("{:<14} {:>6} {:>8.4f} ± {:<6.4f} {:>14.1f} {:>12.3f} {:>12.3g} {:>12.3f} {:>10}\n", arms[a], "mean", mean(column(a, accuracy)),
               stdev(column(a, accuracy)), mean(column(a, wall)), mean(column(a, time_ratio)), mean(column(a, flops)),
               mean(column(a, flops_ratio)), a == 0 ? std::string("-") : fmt::format("step {:.0f}", mean(column(a, ticket))));
  }
  write_file_atomically(out / "summary.json", summary.dump(2) + "\n");
  const double eb_ratio = mean(column(1, time_ratio));
  fmt::print("\nEarlyBERT trained in {:.0f}% of the dense time ({:.2f}x faster) with {:+.1f} points of dev accuracy; "
             "the random ticket {:+.1f} points (means over {} seed(s)).\n",
             100 * eb_ratio, 1 / eb_ratio, 100 * (mean(column(1, accuracy)) - mean(column(0, accuracy))),
             100 * (mean(column(2, accuracy)) - mean(column(0, accuracy))), o.seeds);

  // The pictures, when matplotlib is there; the program never depends on it.
  const std::string script = o.plot_script;
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0 && fs::exists(script)) {
    const std::string command = fmt::format("/usr/bin/python3 '{}' '{}' --metrics '{}' --out '{}' {}", script, (out / "earlybert").string(),
                                            (out / fmt::format("earlybert_seed{}.jsonl", o.common.seed)).string(), out.string(),
                                            messages::quiet() ? ">/dev/null 2>&1" : ">&2");
    if (std::system(command.c_str()) != 0) messages::note("demo", "the plotting script failed; the results above stand");
  } else {
    messages::note("demo", "pictures skipped (install python3-matplotlib, then run {} {}/earlybert)", script, out.string());
  }
  fmt::print("Results in '{}': summary.json, per-run metrics (*.jsonl) and checkpoints.\n", out.string());
  return 0;
}

}  // namespace earlybert::cli
