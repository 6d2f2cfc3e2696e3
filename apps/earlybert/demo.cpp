// SPDX-License-Identifier: Apache-2.0
// `earlybert demo`: the project's main job, EarlyBERT's fine-tuning setting at CPU scale. It starts
// from the bundled pre-trained BERT of --shape (data/pretrained/SHAPE, with its model card; or --init's
// checkpoint, or one it pre-trains for --pretrain-steps on the bundled WikiText-2 excerpt, or random
// weights with --random-init), then fine-tunes it on the bundled SST-2 subset three ways under the same
// budget rules:
//   dense          --epochs epochs at --lr
//   earlybert      search with slimming coefficients until the early-bird detector fires (within the
//                  first epoch), draw the ticket, rewind to the pre-trained weights, then
//                  --efficient-epochs of the compacted model at --efficient-lr
//   random_ticket  the same pipeline with random scores (the paper's main baseline)
// first with the paper's pruning (heads 1/3, FFN 40%), then pruned deeper (heads 1/2, FFN 80%; its
// dense runs are the first table's), where the ticket saves far more time and the margin of EarlyBERT's
// ticket over the random one is the question (docs/results.md §4a measured it at this scale). It prints
// one table per setting, writes summary.json and each run's metrics and checkpoint into --out, and draws
// the pictures of the first EarlyBERT run when Debian's python3-matplotlib is installed.
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "finetune.hpp"
#include "pretrain.hpp"

namespace earlybert::cli {

namespace {

// One table of the demo: a task's data, the options its arms share, and what the table teaches.
struct demo_setting {
  std::string key;     // its files' sub-directory of --out ("": --out itself)
  std::string title;   // the table's heading
  std::string lesson;  // printed under the table
  sentence_task_data data;
  finetune_options base;
  bool reuses_dense = false;  // its dense runs are the first setting's (same data and options but pruning)
};

const std::vector<std::string> demo_arms{"dense", "earlybert", "random_ticket"};

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

double stdev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double sum = 0;
  for (double x : v) sum += (x - m) * (x - m);
  return std::sqrt(sum / static_cast<double>(v.size() - 1));
}

// Fine-tunes every arm with every seed: [arm][seed]. `first` is the first setting's results, whose
// dense runs a setting that reuses them takes instead of training them again.
std::vector<std::vector<finetune_result>> run_setting(const demo_setting& setting, const demo_options& o, const vocabulary& vocab,
                                                      const fs::path& out, const std::vector<std::vector<finetune_result>>* first) {
  const fs::path dir = setting.key.empty() ? out : out / setting.key;
  fs::create_directories(dir);
  std::vector<std::vector<finetune_result>> results(demo_arms.size());
  if (setting.reuses_dense) results[0] = first->at(0);
  for (int k = 0; k < o.seeds; ++k) {
    const std::uint64_t seed = o.common.seed + static_cast<std::uint64_t>(k);
    for (std::size_t a = setting.reuses_dense ? 1 : 0; a < demo_arms.size(); ++a) {
      finetune_options r = setting.base;
      r.common.seed = seed;
      r.earlybert.enabled = demo_arms[a] != "dense";
      if (demo_arms[a] == "random_ticket") r.earlybert.importance = "random";
      r.out = k == 0 ? (dir / demo_arms[a]).string() : std::string();  // the first seed's checkpoints only
      r.common.metrics = (dir / fmt::format("{}_seed{}.jsonl", demo_arms[a], seed)).string();
      messages::status("demo", "{}: fine-tuning {} (seed {}, {} of {})", setting.title, demo_arms[a], seed, k + 1, o.seeds);
      results[a].push_back(finetune_with(r, vocab, setting.data));
    }
  }
  return results;
}

// Prints the setting's table (each run, then the means) and returns its part of summary.json.
nlohmann::ordered_json report_setting(const demo_setting& setting, const std::vector<std::vector<finetune_result>>& results,
                                      const demo_options& o) {
  const std::string metric = results[0][0].main_metric;
  const auto column = [&](std::size_t a, auto field) {
    std::vector<double> v;
    for (std::size_t k = 0; k < results[a].size(); ++k) v.push_back(field(results[a][k], results[0][k]));
    return v;
  };
  const auto main_value = [](const finetune_result& x, const finetune_result&) { return x.dev_main; };
  const auto wall = [](const finetune_result& x, const finetune_result&) { return x.train_wall_s; };
  const auto flops = [](const finetune_result& x, const finetune_result&) { return x.train_flops; };
  const auto steps = [](const finetune_result& x, const finetune_result&) { return static_cast<double>(x.total_steps); };
  const auto time_ratio = [](const finetune_result& x, const finetune_result& dense) { return x.train_wall_s / dense.train_wall_s; };
  const auto flops_ratio = [](const finetune_result& x, const finetune_result& dense) { return x.train_flops / dense.train_flops; };
  const auto ticket = [](const finetune_result& x, const finetune_result&) { return static_cast<double>(x.ticket_step); };

  const classification_dataset& train = setting.data.train;
  const classification_dataset& dev = setting.data.dev.front().second;
  nlohmann::ordered_json summary{{"name", setting.key.empty() ? setting.data.name : setting.key},
                                 {"title", setting.title},
                                 {"task", setting.data.name},
                                 {"main_metric", metric},
                                 {"train_examples", train.examples.size()},
                                 {"dev_examples", dev.examples.size()},
                                 {"prune_heads", setting.base.earlybert.prune_heads},
                                 {"prune_ffn", setting.base.earlybert.prune_ffn},
                                 {"runs", nlohmann::ordered_json::array()}};
  const std::string metric_header = "dev " + metric;
  fmt::print("\n{}: {} training and {} dev examples\n", setting.title, train.examples.size(), dev.examples.size());
  fmt::print("{:<14} {:>6} {:>17} {:>14} {:>12} {:>12} {:>12} {:>10}\n", "run", "seed", metric_header, "train time (s)", "time ratio",
             "train FLOPs", "FLOPs ratio", "ticket at");
  for (std::size_t a = 0; a < demo_arms.size(); ++a) {
    nlohmann::ordered_json per_seed = nlohmann::ordered_json::array();
    for (std::size_t k = 0; k < results[a].size(); ++k) {
      const finetune_result& x = results[a][k];
      const finetune_result& dense = results[0][k];
      const std::uint64_t seed = o.common.seed + k;
      per_seed.push_back({{"seed", seed},
                          {"dev_main", x.dev_main},
                          {"dev_metrics", metrics_json(x.dev_metrics)},
                          {"train_wall_s", x.train_wall_s},
                          {"train_flops", x.train_flops},
                          {"ticket_step", x.ticket_step >= 0 ? nlohmann::ordered_json(x.ticket_step) : nlohmann::ordered_json(nullptr)},
                          {"total_steps", x.total_steps},
                          {"time_ratio", x.train_wall_s / dense.train_wall_s},
                          {"heads_kept", x.heads_kept},
                          {"ffn_kept", x.ffn_kept},
                          {"encoder_flops_ratio", x.flops_ratio}});
      fmt::print("{:<14} {:>6} {:>17.4f} {:>14.1f} {:>12.3f} {:>12.3g} {:>12.3f} {:>10}\n", demo_arms[a], seed, x.dev_main, x.train_wall_s,
                 x.train_wall_s / dense.train_wall_s, x.train_flops, x.train_flops / dense.train_flops,
                 x.ticket_step >= 0 ? fmt::format("step {}", x.ticket_step) : std::string("-"));
    }
    const bool pruned = demo_arms[a] != "dense";
    summary["runs"].push_back({{"name", demo_arms[a]},
                               {"dev_main", mean(column(a, main_value))},
                               {"dev_main_std", stdev(column(a, main_value))},
                               {"train_wall_s", mean(column(a, wall))},
                               {"train_flops", mean(column(a, flops))},
                               {"ticket_step", pruned ? nlohmann::ordered_json(mean(column(a, ticket))) : nlohmann::ordered_json(nullptr)},
                               {"total_steps", mean(column(a, steps))},
                               {"time_ratio", mean(column(a, time_ratio))},
                               {"flops_ratio", mean(column(a, flops_ratio))},
                               {"per_seed", per_seed}});
  }
  fmt::print("Mean over {} seed(s):\n", o.seeds);
  for (std::size_t a = 0; a < demo_arms.size(); ++a) {
    fmt::print("{:<14} {:>6} {:>8.4f} ± {:<6.4f} {:>14.1f} {:>12.3f} {:>12.3g} {:>12.3f} {:>10}\n", demo_arms[a], "mean",
               mean(column(a, main_value)), stdev(column(a, main_value)), mean(column(a, wall)), mean(column(a, time_ratio)),
               mean(column(a, flops)), mean(column(a, flops_ratio)), a == 0 ? std::string("-") : fmt::format("step {:.0f}", mean(column(a, ticket))));
  }
  const double eb_ratio = mean(column(1, time_ratio));
  const double dense_value = mean(column(0, main_value));
  fmt::print("EarlyBERT trained in {:.0f}% of the dense time ({:.2f}x faster) with {:+.1f} points of dev {}; the random ticket {:+.1f} "
             "points (means over {} seed(s)).\n",
             100 * eb_ratio, 1 / eb_ratio, 100 * (mean(column(1, main_value)) - dense_value), metric,
             100 * (mean(column(2, main_value)) - dense_value), o.seeds);
  // The comparison the issue of tickets turns on, seed by seed.
  int ahead = 0;
  for (std::size_t k = 0; k < results[1].size(); ++k) ahead += results[1][k].dev_main > results[2][k].dev_main ? 1 : 0;
  const double margin = mean(column(1, main_value)) - mean(column(2, main_value));
  fmt::print("EarlyBERT's ticket against the random one: {:+.1f} points on the mean, ahead in {} of {} seed(s).\n", 100 * margin, ahead,
             results[1].size());
  summary["earlybert_minus_random"] = margin;
  summary["earlybert_ahead_seeds"] = ahead;
  if (!setting.lesson.empty()) fmt::print("{}\n", setting.lesson);
  return summary;
}

}  // namespace

int run_demo(const demo_options& o) {
  apply_threads("demo", o.common.threads);
  const fs::path data(o.data), out(o.out);
  check_output_directory(out);
  if (o.seeds < 1) throw config_error(fmt::format("--seeds is {}, expected at least 1", o.seeds));
  const fs::path vocab_file = data / "vocab" / "bert-base-uncased-vocab.txt";
  const vocabulary vocab = vocabulary::load(vocab_file);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);

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
  base.task = "sst2";
  base.train = (data / "sst2" / "train_subset.tsv").string();
  base.dev = (data / "sst2" / "dev.tsv").string();
  check_finetune_options(base);  // --shape among them
  // The bundled model of --shape, checked before anything is read or written.
  const fs::path bundled_model = data / "pretrained" / o.shape;
  if (o.init.empty() && o.pretrain_steps == 0 && !o.random_init && !fs::exists(bundled_model / "config.json")) {
    throw config_error(fmt::format("the demo starts from the bundled pre-trained {0}, but '{1}' holds none (no config.json), expected "
                                   "the bundled model there: give --init DIR, --pretrain-steps N or --random-init to start from another",
                                   o.shape, bundled_model.string()));
  }

  // The settings, all read before any training so that a missing file stops the demo at once.
  std::vector<demo_setting> settings;
  settings.push_back({"", "SST-2 (bundled subset), the paper's pruning: heads 1/3, FFN neurons 40%",
                      "The random ticket is the paper's baseline: read EarlyBERT's margin over it against the seeds' spread (the "
                      "± above); docs/results.md measures it over more seeds and tasks.",
                      read_sentence_task(base, tokenizer), base});
  if (o.deeper) {
    demo_setting deeper{"deeper", "SST-2 (bundled subset), pruned deeper: heads 1/2, FFN neurons 80% (dense runs as above)",
                        "Pruned deeper, the ticket costs far less time; the margin of EarlyBERT's ticket over the random one is again "
                        "to be read against the seeds' spread (docs/results.md §4a sweeps the depth).",
                        settings.front().data, base, true};
    deeper.base.earlybert.prune_heads = 0.5;
    deeper.base.earlybert.prune_ffn = 0.8;
    check_finetune_options(deeper.base);
    settings.push_back(std::move(deeper));
  }
  messages::status("demo", "SST-2, {} training sentences (every 8th of the train split) and the {} dev sentences",
                   settings.front().data.train.examples.size(), settings.front().data.dev.front().second.examples.size());
  fs::create_directories(out);

  // 1. The model all the runs start from (flag_rules.hpp has let through one choice at most).
  nlohmann::ordered_json pretraining = nullptr;
  std::string start = "random";
  if (!o.init.empty()) {
    start = "checkpoint";
  } else if (o.pretrain_steps > 0) {
    start = "pretrained";
    pretrain_options p;
    p.common = o.common;
    p.common.checkpoints = false;
    p.common.metrics = (out / "pretrain.jsonl").string();
    p.corpus = {(data / "wikitext2" / "train_head.txt").string()};
    p.eval_corpus = (data / "wikitext2" / "valid_head.txt").string();
    p.vocab = vocab_file.string();
    p.shape = o.shape;
    p.out = (out / "pretrained").string();
    p.steps = o.pretrain_steps;
    p.eval_every = std::max(1L, o.pretrain_steps / 4);
    check_pretrain_options(p);
    messages::status("demo", "pre-training {} on the bundled WikiText-2 excerpt, {} steps (start from it next time with --init {})", o.shape,
                     o.pretrain_steps, p.out);
    const pretrain_result r = pretrain_with(p, vocab);
    for (demo_setting& setting : settings) setting.base.init = p.out;
    pretraining = {{"steps", r.total_steps}, {"train_wall_s", r.train_wall_s}, {"train_flops", r.train_flops},
                   {"mlm_loss", r.mlm_loss}, {"mlm_accuracy", r.mlm_accuracy}, {"checkpoint", p.out}};
  } else if (!o.random_init) {
    start = "bundled";
    for (demo_setting& setting : settings) setting.base.init = bundled_model.string();
    messages::status("demo", "starting from the bundled pre-trained {} ('{}'; its README.md says how it was made)", o.shape, bundled_model.string());
  }
  for (demo_setting& setting : settings) {
    if (!setting.base.init.empty()) setting.base.shape.clear();  // the checkpoint says
  }

  // 2. Every arm of every setting fine-tuned with each seed. One dev set of 872 sentences measures
  // accuracy to about +-1.5 points (one standard error), as much as the arms differ by, so the table
  // reports the mean over several seeds next to each seed's run.
  nlohmann::ordered_json summary{{"shape", o.shape},
                                 {"seeds", o.seeds},
                                 {"first_seed", o.common.seed},
                                 {"initialised_from", settings.front().base.init.empty() ? nlohmann::ordered_json(nullptr)
                                                                                           : nlohmann::ordered_json(settings.front().base.init)},
                                 {"start", start},
                                 {"pretraining", pretraining},
                                 {"settings", nlohmann::ordered_json::array()}};
  std::vector<std::vector<std::vector<finetune_result>>> results;  // [setting][arm][seed]
  for (const demo_setting& setting : settings) results.push_back(run_setting(setting, o, vocab, out, results.empty() ? nullptr : &results.front()));
  for (std::size_t s = 0; s < settings.size(); ++s) summary["settings"].push_back(report_setting(settings[s], results[s], o));
  write_file_atomically(out / "summary.json", summary.dump(2) + "\n");

  // The pictures of the first setting's EarlyBERT run, when matplotlib is there; the program never depends on it.
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
