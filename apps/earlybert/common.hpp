// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the subcommands of the `earlybert` program share: their options, the tokenizer set-up, the
// progress display and evaluation.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include <earlybert/earlybert.hpp>

#include "job.hpp"
#include "messages.hpp"

namespace earlybert::cli {

namespace fs = std::filesystem;

// ---- Options -----------------------------------------------------------------------------------

struct common_options {
  int threads = 0;  // 0: every core
  std::uint64_t seed = 42;
  std::string metrics;  // JSON-lines file, or "" for none
  std::string on_nonfinite = "stop";  // stop | skip: a step whose loss or gradient is not finite
  // Training states (checkpoints.hpp): pretrain and finetune only.
  long checkpoint_every = 1000;  // steps of a stage between training states (0: only on SIGINT/SIGTERM)
  bool resume = false;           // continue from the training state in --out
  bool overwrite = false;        // replace a checkpoint or training state already in --out
  bool checkpoints = true;       // false: no training state at all (the demo's runs)
  std::string settings;          // every option but --resume, --checkpoint-every, --threads, --overlap and --save-dtype, one per line
  std::string save_dtype = "f32";  // the final checkpoint's weights: f32 | f16 | bf16
  // Under mpirun: sum gradients while backward runs (on) or after it (off); the same bits either way.
  std::string overlap = "on";
};

// --overlap as a switch.
inline bool overlap_of(const std::string& value) {
  if (value == "on") return true;
  if (value == "off") return false;
  throw config_error(fmt::format("--overlap is '{}', expected on or off", value));
}

// --on-nonfinite as the trainer's policy.
inline nonfinite_policy nonfinite_policy_of(const std::string& name) {
  if (name == "stop") return nonfinite_policy::stop;
  if (name == "skip") return nonfinite_policy::skip;
  throw config_error(fmt::format("--on-nonfinite is '{}', expected stop or skip", name));
}

// The optimizer's settings of a pretrain or finetune command line, at `learning_rate` (each command
// chooses its own default), summing gradients over the job's processes.
template <class CommandOptions>
optimization_options optimization_of(const CommandOptions& o, double learning_rate) {
  optimization_options optimization;
  optimization.learning_rate = learning_rate;
  optimization.warmup_ratio = o.warmup_ratio;
  optimization.weight_decay = o.weight_decay;
  optimization.max_grad_norm = o.max_grad_norm;
  optimization.on_nonfinite = nonfinite_policy_of(o.common.on_nonfinite);
  optimization.accumulation_steps = o.accumulation;
  optimization.group = &job::group();
  optimization.overlap_communication = overlap_of(o.common.overlap);
  return optimization;
}

// EarlyBERT's settings (docs/earlybert.md); the defaults are the method's.
struct earlybert_cli_options {
  bool enabled = false;
  double prune_heads = 1.0 / 3.0;    // fraction of heads pruned, per layer
  double prune_ffn = 0.4;            // fraction of FFN neurons pruned, across layers
  std::string heads_scope = "layerwise", ffn_scope = "global", counting = "exact";
  index_t min_kept = 1;
  double l1_heads = 1e-4, l1_ffn = 1e-4;
  std::string importance = "slimming";  // the criterion: slimming | random | magnitude | gradient | taylor
  bool absolute = false;             // slimming: rank |c| instead of the signed c
  std::string detector = "mask-distance";  // mask-distance | fixed | fraction | never
  int window = 5;
  double epsilon = 0.1;
  bool joint = false;
  long interval = 0;                 // 0: a 50th of an epoch
  double draw_step = 0.2;            // fixed: a step (>= 1); fraction: of the first epoch (0, 1)
  std::string restart_from = "init";
  std::optional<double> efficient_epochs;  // default: two thirds of --epochs (the paper's 2 of 3)
  std::optional<long> efficient_steps;
  std::optional<double> efficient_lr;      // default: twice --lr (the paper's 4e-5 against 2e-5)
};

inline earlybert_cli_options continuing_from_draw() {
  earlybert_cli_options e;
  e.restart_from = "draw";
  return e;
}

struct pretrain_options {
  common_options common;
  std::vector<std::string> corpus;  // files and folders of .txt files, read in order
  std::string eval_corpus, vocab, shape, out;
  long steps = 2000;
  index_t batch = 32;
  index_t seq = 128;
  double lr = 1e-3;
  double warmup_ratio = 0.05;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  double dropout = 0.1;  // hidden and attention dropout while pre-training; the checkpoint keeps BERT's 0.1
  bool segment_pairs = false;  // training sequences as [CLS] A [SEP] B [SEP] (corpus_layout::segment_pairs)
  int accumulation = 1;
  long eval_every = 250;
  index_t eval_sequences = 256;
  earlybert_cli_options earlybert = continuing_from_draw();  // pre-training keeps what the search learnt
};

// The lottery-ticket family beside EarlyBERT (lottery.hpp, docs/lottery.md): the flags of
// `earlybert finetune` that choose and shape a method other than --earlybert.
struct lottery_cli_options {
  // Iterative magnitude pruning with rewinding.
  bool imp = false;
  int imp_levels = 8;                  // pruned levels after the dense one (0.8^8: 83% sparse)
  double imp_rate = 0.2;               // fraction of the remaining weights pruned per level
  std::string imp_ranking = "global";  // global | per-matrix
  long rewind_step = 0;                // 0: the initial (or --init's) weights
  std::string rewind_optimizer = "restored";  // restored | fresh
  bool imp_structures = false;         // prune heads and FFN neurons instead of single weights
  std::string imp_criterion = "magnitude";  // the structures' ranking: magnitude | gradient | taylor | random | greedy
  long greedy_examples = 32;           // greedy's fixed batch: the first N training examples
  // A ticket found before (an IMP level), and its controls.
  std::string mask_from;               // checkpoint directory whose unstructured masks the run trains under
  std::string control;                 // "" | random | reinit | shuffle
  // Sparse training from the start.
  std::optional<double> sparsity;      // random unstructured sparsity, static (or RigL's with --rigl)
  std::string allocation = "uniform";  // uniform | erk
  bool rigl = false;
  double rigl_drop = 0.3;
  long rigl_interval = 100;
  double rigl_end = 0.75;              // fraction of the run after which the masks stay
  // Instability analysis.
  std::optional<long> lmc_step;        // k: where the two copies part
  int lmc_points = 30;                 // n: intervals on the line between them
  // Which weights the unstructured methods work on.
  std::string weights = "encoder";     // encoder | every-linear

  bool chosen() const { return imp || !mask_from.empty() || sparsity.has_value() || lmc_step.has_value(); }
};

// Early exit for token classification (nn/early_exit.hpp, docs/early_exit.md): how words leave at
// inference, as --exit-mode, --exit-measure, --exit-threshold and --exit-window say.
struct exit_cli_options {
  std::string mode = "token";  // none | sentence | token
  std::string measure = "entropy";  // entropy | max-probability
  double threshold = 0.15;
  int window = 2;

  exit_policy policy() const {
    exit_policy p;
    if (mode == "none") p.mode = exit_mode::none;
    else if (mode == "sentence") p.mode = exit_mode::sentence;
    else if (mode == "token") p.mode = exit_mode::token;
    else throw config_error(fmt::format("--exit-mode is '{}', expected none, sentence or token", mode));
    if (measure == "entropy") p.measure = uncertainty_measure::entropy;
    else if (measure == "max-probability") p.measure = uncertainty_measure::max_probability;
    else throw config_error(fmt::format("--exit-measure is '{}', expected entropy or max-probability", measure));
    if (!(threshold >= 0 && threshold <= 1)) throw config_error(fmt::format("--exit-threshold is {}, expected a value in [0, 1]", threshold));
    if (window < 0) throw config_error(fmt::format("--exit-window is {}, expected at least 0", window));
    p.threshold = threshold;
    p.window = window;
    return p;
  }
};

// `earlybert finetune --early-exit` (UPOS and NER): an exit after every layer, trained jointly for
// --epochs, then by self-sampling for --self-sampling-epochs; the dev set measured by the full model
// and under the exit policy.
struct early_exit_cli_options {
  bool enabled = false;
  int self_sampling_epochs = 1;
  std::optional<long> self_sampling_steps;  // instead of --self-sampling-epochs passes
  exit_cli_options exit;
};

struct finetune_options {
  common_options common;
  std::string task;  // a task of the registry (tasks/glue.hpp), or "" for custom --train/--dev files
  std::string data;  // the task's directory (its own file names)
  std::string train, dev, vocab, shape, out, init;
  earlybert_cli_options earlybert;
  lottery_cli_options lottery;
  early_exit_cli_options early_exit;
  std::optional<int> layers;  // keep only the first N encoder layers (of --init, or of --shape)
  int epochs = 2;
  std::optional<long> steps;  // optimizer steps of the dense run, instead of --epochs passes
  index_t batch = 32;
  index_t max_seq = 128;
  std::optional<double> lr;  // default: 1e-3 from random initialisation, 3e-4 from a checkpoint
  double warmup_ratio = 0.1;
  double weight_decay = 0.01;
  double max_grad_norm = 1.0;
  int accumulation = 1;
  int num_labels = 2;
  long eval_every = 0;  // 0: at the end of every epoch
  index_t doc_stride = 128;  // SQuAD: pieces between the starts of a context's windows
  index_t max_query = 64;    // SQuAD: the question's pieces kept
};

// Where the bundled data and the plotting script are: installed beside the program
// (PREFIX/bin/earlybert -> PREFIX/share/earlybert/...), or else in the source tree the program was built from.
inline fs::path bundled(const std::string& installed_relative, const char* source_tree_path) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = self.parent_path() / EARLYBERT_INSTALLED_SHARE / installed_relative;
    if (fs::exists(installed, ec)) return installed.lexically_normal();
  }
  return source_tree_path;
}

struct demo_options {
  common_options common;
  std::string out = "runs/demo";
  std::string data = bundled("data", EARLYBERT_DATA_DIR).string();
  std::string plot_script = bundled("plot_earlybert.py", EARLYBERT_PLOT_SCRIPT).string();
  // The model every run starts from: the bundled pre-trained model of `shape` (DATA/pretrained/SHAPE),
  // unless one of init, pretrain_steps and random_init says otherwise (at most one of them).
  std::string shape = "tiny";
  std::string init;            // a pre-trained checkpoint to fine-tune (its config.json gives the shape)
  long pretrain_steps = 0;     // > 0: pre-train `shape` for this many masked-LM steps on the bundled WikiText-2 excerpt
  bool random_init = false;    // fine-tune `shape` from random weights
  int seeds = 3;               // fine-tuning seeds: --seed, --seed + 1, ...
  int epochs = 3;
  double efficient_epochs = 2;
  std::optional<double> lr;            // default: finetune's (3e-4 from a pre-trained model, 1e-3 from random weights)
  std::optional<double> efficient_lr;  // default: twice --lr
  std::string restart_from = "init";
  index_t max_seq = 64;
  bool deeper = true;  // also run the second setting: SST-2 pruned deeper, where the kept structure matters more
};

struct predict_options {
  common_options common;
  std::string checkpoint, input, out;
  index_t batch = 64;
  index_t max_seq = 0;       // 0: the checkpoint's (tokenizer_config.json), else 384 for question answering and 128 otherwise
  index_t doc_stride = 128;  // question answering: as finetune's
  index_t max_query = 64;
  exit_cli_options exit;  // a token classifier with exits: how its words leave
  std::string exit_report;  // where to write what early exit did ("" : nowhere)
  std::set<std::string, std::less<>> given;  // the flags the command line gave (each belongs to a kind of checkpoint)
};

struct bench_options {
  common_options common;
  std::string shape = "mini";
  std::string task = "mlm";  // mlm | cls
  index_t batch = 32;
  index_t seq = 128;
  long steps = 10;
  long warmup = 3;
  double prune_heads = 0, prune_ffn = 0;
  bool inference = false;
  bool json = false;
};

struct inspect_options {
  std::string directory;
  bool json = false;
  index_t seq = 0;  // 0: the length the model was trained at (tokenizer_config.json), else 128
};

int run_pretrain(const pretrain_options& o);
int run_finetune(const finetune_options& o);
int run_predict(const predict_options& o);
int run_inspect(const inspect_options& o);
int run_demo(const demo_options& o);
int run_bench(const bench_options& o);

// ---- Set-up ------------------------------------------------------------------------------------

// Says which kernel set OpenBLAS runs when it is weaker than the CPU (EARLYBERT_BLAS_NOTE unset or
// "auto"), every time ("always": the note then also says when the kernels fit the CPU), or never
// ("never"). "always" and "never" make a script's handling of notes testable on any CPU.
inline void note_blas_kernels(const char* command) {
  const char* variable = std::getenv("EARLYBERT_BLAS_NOTE");
  const std::string_view setting = variable != nullptr && *variable != '\0' ? variable : "auto";
  if (setting != "auto" && setting != "always" && setting != "never") {
    throw config_error(fmt::format("the environment variable EARLYBERT_BLAS_NOTE is '{}', expected auto, always or never", setting));
  }
  if (setting == "never") return;
  if (const std::string warning = blas_core_warning(); !warning.empty()) {
    messages::note(command, "{}", warning);
  } else if (setting == "always") {
    messages::note(command, "OpenBLAS runs its '{}' kernels, which fit this CPU{}", blas_core_name(),
                   cpu_has_avx512() ? " (AVX-512)" : "");
  }
}

// --shape, when given, is one of the named shapes (checked before any work).
inline void check_shape_name(const std::string& shape) {
  if (shape.empty()) return;
  for (const named_shape& s : named_shapes) {
    if (s.name == shape) return;
  }
  throw config_error(fmt::format("--shape is '{}', expected one of {}", shape, named_shape_list()));
}

// Says on stderr what loading the checkpoint in `directory` left unread, as HuggingFace warns: encoder
// layers beyond the model's (a note, unless `kept_layers` says the model keeps the first layers on
// purpose: --layers), and any other tensor the model does not use (a status line naming them by their
// first two name parts: "cls.predictions (5 tensors)").
inline void tell_unread(const char* command, const std::string& directory, const load_report& report, std::optional<int> kept_layers = std::nullopt) {
  if (!report.unread_layers.empty()) {
    const int first = report.unread_layers.front(), last = report.unread_layers.back();
    if (kept_layers) {
      messages::status(command, "kept the first {} encoder layers of '{}' (--layers); layers {} to {} are not used", *kept_layers, directory, first, last);
    } else {
      messages::note(command, "'{}' holds encoder layers {} to {} beyond the {} its config.json describes: they are not used", directory, first, last, first);
    }
  }
  std::vector<std::pair<std::string, int>> groups;
  for (const std::string& name : report.unused) {
    if (detail::encoder_layer_of(name) >= 0) continue;
    const auto dot = name.find('.', name.find('.') + 1);
    const std::string group = name.substr(0, std::min(dot, name.rfind('.')));
    if (groups.empty() || groups.back().first != group) groups.emplace_back(group, 0);
    ++groups.back().second;
  }
  if (groups.empty()) return;
  std::string list;
  for (const auto& [group, count] : groups) list += fmt::format("{}{} ({} tensor{})", list.empty() ? "" : ", ", group, count, count == 1 ? "" : "s");
  messages::status(command, "not used from '{}': {}", directory, list);
}

// Sets the thread count, and notes (once per process) when OpenBLAS's kernels are weaker than the CPU.
inline void apply_threads(const char* command, int threads) {
  if (threads < 0) throw config_error(fmt::format("--threads is {}, expected at least 1 (or 0 for every core)", threads));
  set_num_threads(threads == 0 ? static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))) : threads);
  note_blas_kernels(command);
}


// Checks, before any work, that the checkpoint directory can be written: it must be a writable
// directory, or not exist yet under a writable parent. Nothing is created until the end of the run.
// A directory that already holds a checkpoint or a training state is another run's: refused unless
// `replaceable` (--overwrite, or --resume, which continues that run).
inline void check_output_directory(const fs::path& out, bool replaceable = true) {
  if (fs::exists(out)) {
    if (!fs::is_directory(out)) throw io_error(fmt::format("--out '{}' exists and is not a directory", out.string()));
    if (::access(out.c_str(), W_OK) != 0) throw io_error(fmt::format("--out '{}' is not writable", out.string()));
    if (!replaceable) {
      for (const char* file : {"model.safetensors", "config.json", "training_state.safetensors"}) {
        if (fs::exists(out / file)) {
          throw config_error(fmt::format("--out '{}' already holds a run's {} ('{}'); give --overwrite to replace it, --resume to "
                                         "continue that run, or another --out", out.string(),
                                         std::string_view(file) == "training_state.safetensors" ? "training state" : "checkpoint", file));
        }
      }
    }
    return;
  }
  fs::path parent = fs::absolute(out).parent_path();
  while (!fs::exists(parent) && parent.has_parent_path() && parent != parent.parent_path()) parent = parent.parent_path();
  if (!fs::is_directory(parent) || ::access(parent.c_str(), W_OK) != 0) {
    throw io_error(fmt::format("--out '{}' cannot be created: '{}' is not a writable directory", out.string(), parent.string()));
  }
}

// ---- Progress ----------------------------------------------------------------------------------

// A progress bar on a terminal (step, loss, tokens/s, ETA), redrawn in place; plain lines every
// tenth of the run (or 30 s) when stderr is not a terminal.
class progress_display {
 public:
  // `first` steps were done before this display started (a resumed run): the ETA counts from there.
  progress_display(std::string label, long total, long first = 0)
      : label_(std::move(label)), total_(total), first_(first), terminal_(::isatty(2) != 0) {}

  void update(long step, double loss, double tokens_per_s, double elapsed_s) {
    const double eta = step > first_ ? elapsed_s / static_cast<double>(step - first_) * static_cast<double>(total_ - step) : 0;
    if (terminal_) {
      constexpr int width = 24;
      const int filled = static_cast<int>(width * step / std::max(total_, 1L));
      messages::progress(fmt::format("{} [{}{}] {}/{}  loss {:.4f}  {:.0f} tok/s  ETA {}   ", label_,
                                     std::string(static_cast<std::size_t>(filled), '='),
                                     std::string(static_cast<std::size_t>(width - filled), ' '), step, total_, loss, tokens_per_s,
                                     clock(eta)),
                         true);
      return;
    }
    const long every = std::max(total_ / 10, 1L);
    if (step == total_ || step % every == 0 || elapsed_s - last_line_s_ >= 30) {
      messages::progress(fmt::format("{} step {}/{}  loss {:.4f}  {:.0f} tok/s  elapsed {}  ETA {}", label_, step, total_, loss,
                                     tokens_per_s, clock(elapsed_s), clock(eta)),
                         false);
      last_line_s_ = elapsed_s;
    }
  }

  // Ends the in-place line before other output.
  void interrupt() const { messages::end_line(); }

 private:
  static std::string clock(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
  }

  std::string label_;
  long total_;
  long first_;
  bool terminal_;
  double last_line_s_ = 0;
};

// Progress through a long pass over data (an evaluation, a prediction), "<subcommand>: <what> 300/872
// rows": on a terminal redrawn in place; otherwise a line at each tenth once the pass has taken 5 s, so
// that short passes stay silent in logs. Call it as progress(done, total) after every batch.
class pass_progress {
 public:
  pass_progress(std::string label, std::string unit) : label_(std::move(label)), unit_(std::move(unit)), terminal_(::isatty(2) != 0) {}

  void operator()(std::size_t done, std::size_t total) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (terminal_) {
      if (done < total && elapsed - last_s_ < 0.1) return;
      last_s_ = elapsed;
      messages::progress(fmt::format("{} {}/{} {}  elapsed {:.1f} s   ", label_, done, total, unit_, elapsed), true);
      if (done == total) messages::end_line();
      return;
    }
    const std::size_t tenth = total == 0 ? 10 : done * 10 / total;
    if (elapsed < 5 || tenth == last_tenth_) return;
    last_tenth_ = tenth;
    messages::progress(fmt::format("{} {}/{} {}  elapsed {:.1f} s", label_, done, total, unit_, elapsed), false);
  }

 private:
  std::string label_, unit_;
  bool terminal_;
  std::size_t last_tenth_ = 0;
  double last_s_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

class stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace earlybert::cli
