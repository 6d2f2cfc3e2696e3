// SPDX-License-Identifier: Apache-2.0
// `earlybert finetune`: sequence classification on a GLUE-style TSV file (one text column, or two for
// sentence pairs), from random initialisation or from a checkpoint, evaluated on a dev file.
#include <numeric>

#include "cli/common.hpp"

namespace earlybert::cli {

namespace {
template <class Shape>
int finetune(const finetune_options& o, const vocabulary& vocab, const std::optional<checkpoint_config>& init) {
  const wordpiece_tokenizer tokenizer = make_tokenizer(vocab);
  const special_tokens special = special_tokens::of(vocab);

  bert_config config = init ? init->model : bert_config::for_shape<Shape>(vocab.size());
  config.num_labels = o.num_labels;
  if (config.vocab_size != vocab.size()) {
    throw config_error(fmt::format("--vocab has {} tokens, but the model's vocabulary has {}", vocab.size(), config.vocab_size));
  }
  if (o.max_seq > config.max_positions) {
    throw config_error(fmt::format("--max-seq is {}, but the model has only {} positions", o.max_seq, config.max_positions));
  }
  const stopwatch reading;
  const classification_dataset train = read_classification_tsv(o.train, tokenizer, o.max_seq, o.num_labels);
  const classification_dataset dev = read_classification_tsv(o.dev, tokenizer, o.max_seq, o.num_labels);
  if (train.sentence_pairs != dev.sentence_pairs) {
    throw config_error(fmt::format("--train has {} text column(s) but --dev has {}", train.text_columns.size(), dev.text_columns.size()));
  }
  fmt::print(stderr, "finetune: {} training and {} dev examples ({}), tokenised in {:.1f} s\n", train.examples.size(),
             dev.examples.size(), train.sentence_pairs ? "sentence pairs" : "single sentences", reading.seconds());

  bert_for_sequence_classification<float, Shape> model(config);
  rng random(o.common.seed);
  model.initialise(random);
  if (init) {
    const load_report report = load_weights(o.init, model);
    if (!report.initialised.empty()) {
      fmt::print(stderr, "finetune: initialised from '{}'; freshly initialised: {}\n", o.init, fmt::join(report.initialised, ", "));
    }
  }

  const auto batch = static_cast<std::size_t>(o.batch);
  const long steps_per_epoch = static_cast<long>((train.examples.size() + batch - 1) / batch);
  const long total_steps = steps_per_epoch * o.epochs;
  optimization_options optimization;
  optimization.learning_rate = o.lr.value_or(init ? 3e-4 : 1e-3);
  optimization.warmup_ratio = o.warmup_ratio;
  optimization.weight_decay = o.weight_decay;
  optimization.max_grad_norm = o.max_grad_norm;
  optimization.accumulation_steps = o.accumulation;
  trainer<float> train_loop(parameters_of(model), optimization, total_steps);

  metrics_log metrics = o.common.metrics.empty() ? metrics_log() : metrics_log(o.common.metrics);
  progress_display progress("finetune", total_steps);
  const stopwatch clock;
  double tokens = 0, last_accuracy = 0;
  token_batch b;
  std::vector<std::size_t> order(train.examples.size());
  const auto evaluate = [&](long step) {
    progress.interrupt();
    last_accuracy = classification_accuracy(model, dev, 64, special.pad);
    fmt::print(stderr, "finetune: step {} dev accuracy {:.4f}\n", step, last_accuracy);
    metrics.write({{"event", "eval"}, {"step", step}, {"accuracy", last_accuracy}});
  };
  // Micro-batches of batch / accumulation examples each.
  const std::size_t micro = std::max<std::size_t>(batch / static_cast<std::size_t>(o.accumulation), 1);
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    rng shuffle(derive_key(o.common.seed, 1000 + static_cast<std::uint64_t>(epoch)));
    shuffle.shuffle(order);
    for (long s = 0; s < steps_per_epoch; ++s) {
      const std::size_t begin = static_cast<std::size_t>(s) * batch;
      const std::size_t end = std::min(order.size(), begin + batch);
      const long step = train_loop.steps_taken();
      const step_report report = train_loop.step([&](tape<float>& t, int k) {
        const std::size_t b0 = std::min(end, begin + static_cast<std::size_t>(k) * micro);
        const std::size_t b1 = k + 1 == o.accumulation ? end : std::min(end, b0 + micro);
        make_classification_batch(train, std::span(order).subspan(b0, std::max(b1, b0 + 1) - b0), special.pad, b);
        tokens += static_cast<double>(b.real_tokens());
        return model.loss(t, model.logits(t, b, true, derive_key(o.common.seed, static_cast<std::uint64_t>(step) * 64 + static_cast<std::uint64_t>(k))), b);
      });
      const double elapsed = clock.seconds();
      progress.update(step + 1, report.loss, tokens / elapsed, elapsed);
      metrics.write({{"event", "step"}, {"step", step + 1}, {"loss", report.loss}, {"lr", report.learning_rate},
                     {"tokens_per_s", tokens / elapsed}, {"elapsed_s", elapsed}});
      if (o.eval_every > 0 && (step + 1) % o.eval_every == 0) evaluate(step + 1);
    }
    if (o.eval_every <= 0) evaluate(train_loop.steps_taken());
  }
  if (o.eval_every > 0 && train_loop.steps_taken() % o.eval_every != 0) evaluate(train_loop.steps_taken());
  const double train_seconds = clock.seconds();
  save_checkpoint(o.out, model, vocab);
  fmt::print("finetune: {} steps in {:.1f} s ({:.0f} tokens/s); dev accuracy {:.4f}; checkpoint in '{}'\n", total_steps,
             train_seconds, tokens / train_seconds, last_accuracy, o.out);
  return 0;
}
}  // namespace

int run_finetune(const finetune_options& o) {
  apply_threads(o.common.threads);
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--epochs", o.epochs);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  require_positive("--num-labels", o.num_labels);
  if (o.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", o.max_seq));
  if (o.lr && !(*o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", *o.lr));
  check_output_directory(o.out);
  const vocabulary vocab = vocabulary::load(o.vocab);
  std::optional<checkpoint_config> init;
  if (!o.init.empty()) init = read_config(fs::path(o.init) / "config.json");
  const auto run = [&]<class Shape>() { return finetune<Shape>(o, vocab, init); };
  if (init) {
    if (!o.shape.empty() && shape_name_of(init->model) != o.shape) {
      throw config_error(fmt::format("--shape is '{}', but the checkpoint '{}' holds a '{}' model", o.shape, o.init,
                                     shape_name_of(init->model)));
    }
    return with_shape_of(init->model, run);
  }
  if (o.shape.empty()) throw config_error("--shape is required when not initialising from a checkpoint (--init)");
  return with_named_shape(o.shape, run);
}

}  // namespace earlybert::cli
