// SPDX-License-Identifier: Apache-2.0
// `earlybert bench`: whole training steps (forward, loss, backward, gradient norm and clipping, AdamW)
// or forward passes on random data, timed after warm-up; one JSON object (--json) or a line of text.
//
// The model is BERT with random weights; the masked-LM task masks 15% of the positions (BERT's 80/10/10
// rule) and scores only those through the tied decoder, the classification task puts the pooled [CLS]
// through a two-class classifier. With --prune-heads / --prune-ffn the model is first compacted to keep,
// in every layer, round((1 - r) n) heads and neurons (chosen at random): the structured pruning
// EarlyBERT's ticket performs, with the work it removes really gone.
//
// Each step is also split into its phases (forward with the loss, backward, gradient norm, optimizer):
// the medians of each are in the JSON, so a profile needs no extra tool.
#include <sys/resource.h>

#include <algorithm>
#include <numeric>

#include <nlohmann/json.hpp>

#include "common.hpp"

namespace earlybert::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double milliseconds_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// BERT's uncased vocabulary's special tokens: the bench needs no vocabulary file.
constexpr special_tokens bert_special{0, 100, 101, 102, 103};
constexpr index_t bert_vocab_size = 30522;

// Full-length sequences of random word pieces between [CLS] and [SEP].
void fill_random_batch(token_batch& b, index_t batch, index_t seq, rng& random) {
  b.batch = batch;
  b.seq = seq;
  const auto n = static_cast<std::size_t>(batch * seq);
  b.ids.resize(n);
  b.type_ids.assign(n, 0);
  b.attention.assign(n, 1);
  constexpr index_t first_word = 1000;  // past the special and unused entries
  for (index_t s = 0; s < batch; ++s) {
    for (index_t i = 0; i < seq; ++i) {
      b.ids[static_cast<std::size_t>(s * seq + i)] =
          i == 0 ? bert_special.cls
                 : i == seq - 1 ? bert_special.sep : static_cast<token_id>(first_word + random.below(static_cast<std::uint64_t>(bert_vocab_size - first_word)));
    }
  }
}

// Every layer keeps round((1 - ratio) n) heads and neurons (at least one), picked at random.
void compact_at_random(bert_model<float, shapes::any>& bert, double prune_heads, double prune_ffn, std::uint64_t seed) {
  const ticket_selector uniform{{prune_heads, selection_scope::layerwise, counting_rule::exact, 1},
                                {prune_ffn, selection_scope::layerwise, counting_rule::exact, 1}};
  draw_ticket(bert, uniform.select(random_criterion{seed}.score(bert)));
}

struct phase_times {
  std::vector<double> step, forward, backward, norm, optimizer;
};

// The loss of one batch, for each task's model.
var<float> batch_loss(bert_for_masked_lm<float, shapes::any>& model, tape<float>& t, const token_batch& b, bool training, std::uint64_t key) {
  return model.forward(t, b, training, key).loss;
}
var<float> batch_loss(bert_for_sequence_classification<float, shapes::any>& model, tape<float>& t, const token_batch& b, bool training,
                      std::uint64_t key) {
  return model.loss(t, model.logits(t, b, training, key), b);
}

// Builds the task's model (only that one: its memory is part of what is measured) and times it on b.
template <class Model>
nlohmann::ordered_json bench_model(const bench_options& o, const bert_config& config, rng& random, const token_batch& b) {
  Model model(config);
  model.initialise(random);
  auto& bert = model.bert;
  if (o.prune_heads > 0 || o.prune_ffn > 0) compact_at_random(bert, o.prune_heads, o.prune_ffn, o.common.seed);
  const auto parameters = parameters_of(model);

  tape<float> t;
  const auto loss_of = [&](std::uint64_t dropout_key) { return batch_loss(model, t, b, !o.inference, dropout_key); };
  const double forward_flops = model.forward_flops(b);
  const double flops_per_step = o.inference ? forward_flops : 3 * forward_flops;

  adamw<float> optimizer(adamw_options{.weight_decay = 0.01});
  for (auto* p : parameters) p->zero_gradient();
  phase_times times;
  for (long s = 0; s < o.warmup + o.steps; ++s) {
    const auto start = clock_type::now();
    t.rewind();
    double backward_ms = 0, norm_ms = 0, optimizer_ms = 0;
    if (o.inference) {
      no_recording<float> inference(t);
      (void)loss_of(0).item();
    } else {
      const var<float> loss = loss_of(static_cast<std::uint64_t>(s));
      const double forward_ms = milliseconds_since(start);
      auto phase = clock_type::now();
      t.backward(loss);
      backward_ms = milliseconds_since(phase);
      phase = clock_type::now();
      const double norm = gradient_norm<float>(parameters);
      norm_ms = milliseconds_since(phase);
      phase = clock_type::now();
      optimizer.step(parameters, 1e-4, clip_factor(norm, 1.0));
      optimizer_ms = milliseconds_since(phase);
      if (s >= o.warmup) times.forward.push_back(forward_ms);
    }
    const double step_ms = milliseconds_since(start);
    if (s < o.warmup) continue;
    times.step.push_back(step_ms);
    if (o.inference) continue;
    times.backward.push_back(backward_ms);
    times.norm.push_back(norm_ms);
    times.optimizer.push_back(optimizer_ms);
  }

  const double step_median = median(times.step);
  nlohmann::ordered_json r;
  r["shape"] = o.shape;
  r["task"] = o.task;
  r["mode"] = o.inference ? "inference" : "train";
  r["batch"] = o.batch;
  r["seq"] = o.seq;
  std::as_const(bert).for_each_family([&](const structure_family<float>& family) {  // every layer keeps as many
    if (family.layer() == 0) r[family.kind() == structure_kind::heads ? "heads_kept" : "ffn_kept"] = family.size();
  });
  r["steps"] = o.steps;
  r["step_ms_median"] = step_median;
  r["step_ms_min"] = *std::min_element(times.step.begin(), times.step.end());
  r["step_ms_max"] = *std::max_element(times.step.begin(), times.step.end());
  r["tokens_per_s"] = static_cast<double>(b.tokens()) / (step_median / 1e3);
  r[o.inference ? "forward_flops_per_step" : "train_flops_per_step"] = flops_per_step;
  r["gflops"] = flops_per_step / (step_median / 1e3) / 1e9;
  if (!o.inference) {
    r["phases_ms_median"] = {{"forward", median(times.forward)}, {"backward", median(times.backward)},
                             {"gradient_norm", median(times.norm)}, {"adamw", median(times.optimizer)}};
  }
  r["arena_mb"] = static_cast<double>(t.arena_bytes()) / (1 << 20);
  r["peak_rss_mb"] = peak_rss_mb();
  r["threads"] = num_threads();
  r["openblas_core"] = blas_core_name();
  return r;
}

nlohmann::ordered_json bench(const bench_options& o) {
  const bert_config config = named_shape_config(o.shape, bert_vocab_size);
  if (o.seq > config.max_positions) {
    throw config_error(fmt::format("--seq is {}, but the model has only {} positions", o.seq, config.max_positions));
  }
  rng random(o.common.seed);
  token_batch b;
  fill_random_batch(b, o.batch, o.seq, random);
  if (o.task == "mlm") {
    mask_tokens(b, random, bert_special, bert_vocab_size);
    return bench_model<bert_for_masked_lm<float, shapes::any>>(o, config, random, b);
  }
  b.labels.resize(static_cast<std::size_t>(o.batch));
  for (auto& label : b.labels) label = static_cast<token_id>(random.below(2));
  return bench_model<bert_for_sequence_classification<float, shapes::any>>(o, config, random, b);
}

void check_bench_options(const bench_options& o) {
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--batch", o.batch);
  require_positive("--steps", o.steps);
  if (o.warmup < 0) throw config_error(fmt::format("--warmup is {}, expected at least 0", o.warmup));
  if (o.seq < 3) throw config_error(fmt::format("--seq is {}, expected at least 3", o.seq));
  if (o.task != "mlm" && o.task != "cls") throw config_error(fmt::format("--task is '{}', expected mlm or cls", o.task));
  for (const auto& [name, ratio] : {std::pair{"--prune-heads", o.prune_heads}, std::pair{"--prune-ffn", o.prune_ffn}}) {
    if (!(ratio >= 0 && ratio < 1)) throw config_error(fmt::format("{} is {}, expected a value in [0, 1)", name, ratio));
  }
}

}  // namespace

int run_bench(const bench_options& o) {
  apply_threads("bench", o.common.threads);
  check_bench_options(o);
  const auto r = bench(o);
  if (o.json) {
    fmt::print("{}\n", r.dump());
    return 0;
  }
  fmt::print("bench: {} {} {} batch {} x seq {} (heads {}, ffn {} per layer), {} threads, OpenBLAS {}: "
             "median {:.2f} ms (min {:.2f}, max {:.2f}), {:.0f} tokens/s, {:.1f} GFLOP/s, peak RSS {:.0f} MB\n",
             o.shape, o.task, r["mode"].get<std::string>(), o.batch, o.seq, r["heads_kept"].get<index_t>(), r["ffn_kept"].get<index_t>(),
             r["threads"].get<int>(), r["openblas_core"].get<std::string>(), r["step_ms_median"].get<double>(),
             r["step_ms_min"].get<double>(), r["step_ms_max"].get<double>(), r["tokens_per_s"].get<double>(), r["gflops"].get<double>(),
             r["peak_rss_mb"].get<double>());
  if (r.contains("phases_ms_median")) {
    const auto& p = r["phases_ms_median"];
    fmt::print("bench: phases (median ms): forward {:.2f}, backward {:.2f}, gradient norm {:.2f}, AdamW {:.2f}\n",
               p["forward"].get<double>(), p["backward"].get<double>(), p["gradient_norm"].get<double>(), p["adamw"].get<double>());
  }
  return 0;
}

}  // namespace earlybert::cli
