// SPDX-License-Identifier: Apache-2.0
// `earlybert pretrain`: masked-LM pre-training from random initialisation on a raw-text corpus.
#include <numeric>

#include "cli/common.hpp"

namespace earlybert::cli {

namespace {
struct mlm_evaluation {
  double loss;      // mean cross-entropy over the masked positions
  double accuracy;  // fraction of masked positions predicted exactly
};

// The same held-out sequences with the same masking every time, so evaluations are comparable.
template <class Model>
mlm_evaluation evaluate_mlm(Model& model, const text_corpus& corpus, std::span<const std::size_t> sequences, index_t seq,
                            index_t batch, const special_tokens& special, index_t vocab_size, std::uint64_t seed) {
  tape<float> t;
  no_recording<float> inference(t);
  rng masking(derive_key(seed, 0xE7A1));
  token_batch b;
  double loss_sum = 0;
  index_t correct = 0, labelled = 0;
  for (std::size_t start = 0; start < sequences.size(); start += static_cast<std::size_t>(batch)) {
    const auto part = sequences.subspan(start, std::min(sequences.size() - start, static_cast<std::size_t>(batch)));
    make_corpus_batch(corpus, part, seq, special, b);
    mask_tokens(b, masking, special, vocab_size);
    t.rewind();
    const auto out = model.forward(t, b, false, 0);
    loss_sum += static_cast<double>(out.loss.item()) * static_cast<double>(out.labelled);
    for (index_t r = 0; r < out.labelled; ++r) {
      index_t best = 0;
      out.logits.value().row(r).maxCoeff(&best);
      correct += best == out.labels[r];
    }
    labelled += out.labelled;
  }
  if (labelled == 0) return {0, 0};
  return {loss_sum / static_cast<double>(labelled), static_cast<double>(correct) / static_cast<double>(labelled)};
}

template <class Shape>
int pretrain(const pretrain_options& o, const vocabulary& vocab) {
  const wordpiece_tokenizer tokenizer = make_tokenizer(vocab);
  const special_tokens special = special_tokens::of(vocab);
  bert_config config = bert_config::for_shape<Shape>(vocab.size());
  if (o.seq > config.max_positions) {
    throw config_error(fmt::format("--seq is {}, but the model has only {} positions", o.seq, config.max_positions));
  }

  const stopwatch reading;
  const text_corpus corpus = read_corpus(o.corpus, tokenizer);
  const index_t available = corpus.sequences(o.seq);
  // Held-out sequences: another corpus, or the last ones of this one (never trained on).
  const std::optional<text_corpus> eval_corpus = o.eval_corpus.empty() ? std::nullopt : std::optional(read_corpus(o.eval_corpus, tokenizer));
  const text_corpus& held_out = eval_corpus ? *eval_corpus : corpus;
  const index_t held = std::min(o.eval_sequences, eval_corpus ? eval_corpus->sequences(o.seq) : available / 10);
  const index_t train_sequences = eval_corpus ? available : available - held;
  if (train_sequences < o.batch) {
    throw config_error(fmt::format("--corpus '{}' holds {} training sequences of {} tokens, fewer than --batch {}", o.corpus,
                                   train_sequences, o.seq, o.batch));
  }
  std::vector<std::size_t> eval_indices(static_cast<std::size_t>(held));
  std::iota(eval_indices.begin(), eval_indices.end(), static_cast<std::size_t>(eval_corpus ? 0 : train_sequences));
  fmt::print(stderr, "pretrain: {} tokens from {} lines; {} training and {} held-out sequences of {}; tokenised in {:.1f} s\n",
             corpus.tokens.size(), corpus.lines, train_sequences, held, o.seq, reading.seconds());

  bert_for_masked_lm<float, Shape> model(config);
  rng random(o.common.seed);
  model.initialise(random);
  optimization_options optimization;
  optimization.learning_rate = o.lr;
  optimization.warmup_ratio = o.warmup_ratio;
  optimization.weight_decay = o.weight_decay;
  optimization.max_grad_norm = o.max_grad_norm;
  optimization.accumulation_steps = o.accumulation;
  trainer<float> train_loop(parameters_of(model), optimization, o.steps);

  metrics_log metrics = o.common.metrics.empty() ? metrics_log() : metrics_log(o.common.metrics);
  progress_display progress("pretrain", o.steps);
  const auto evaluate = [&](long step) {
    progress.interrupt();
    const mlm_evaluation e = evaluate_mlm(model, held_out, eval_indices, o.seq, o.batch, special, vocab.size(), o.common.seed);
    fmt::print(stderr, "pretrain: step {} held-out masked-LM loss {:.4f}, accuracy {:.4f}\n", step, e.loss, e.accuracy);
    metrics.write({{"event", "eval"}, {"step", step}, {"mlm_accuracy", e.accuracy}, {"loss", e.loss}});
    return e;
  };
  evaluate(0);

  std::vector<std::size_t> order(static_cast<std::size_t>(train_sequences));
  std::size_t cursor = order.size();  // position in the current pass; starts a new pass at once
  int pass = 0;
  token_batch b;
  const auto micro = static_cast<std::size_t>(std::max<index_t>(o.batch / o.accumulation, 1));
  const stopwatch clock;
  double tokens = 0;
  mlm_evaluation last{0, 0};
  for (long step = 0; step < o.steps; ++step) {
    const step_report report = train_loop.step([&](tape<float>& t, int k) {
      if (cursor + micro > order.size()) {
        std::iota(order.begin(), order.end(), std::size_t{0});
        rng shuffle(derive_key(o.common.seed, 2000 + static_cast<std::uint64_t>(pass++)));
        shuffle.shuffle(order);
        cursor = 0;
      }
      make_corpus_batch(corpus, std::span(order).subspan(cursor, micro), o.seq, special, b);
      cursor += micro;
      rng masking(derive_key(o.common.seed, 3000000 + static_cast<std::uint64_t>(step) * 64 + static_cast<std::uint64_t>(k)));
      mask_tokens(b, masking, special, vocab.size());
      tokens += static_cast<double>(b.tokens());
      return model.forward(t, b, true, derive_key(o.common.seed, static_cast<std::uint64_t>(step) * 64 + static_cast<std::uint64_t>(k))).loss;
    });
    const double elapsed = clock.seconds();
    progress.update(step + 1, report.loss, tokens / elapsed, elapsed);
    metrics.write({{"event", "step"}, {"step", step + 1}, {"loss", report.loss}, {"lr", report.learning_rate},
                   {"tokens_per_s", tokens / elapsed}, {"elapsed_s", elapsed}});
    if (o.eval_every > 0 && (step + 1) % o.eval_every == 0) last = evaluate(step + 1);
  }
  if (o.eval_every <= 0 || o.steps % o.eval_every != 0) last = evaluate(o.steps);
  const double seconds = clock.seconds();
  save_checkpoint(o.out, model, vocab);
  fmt::print("pretrain: {} steps in {:.1f} s ({:.0f} tokens/s); held-out masked-LM loss {:.4f}, accuracy {:.4f}; checkpoint in '{}'\n",
             o.steps, seconds, tokens / seconds, last.loss, last.accuracy, o.out);
  return 0;
}
}  // namespace

int run_pretrain(const pretrain_options& o) {
  apply_threads(o.common.threads);
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--steps", o.steps);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  if (o.seq < 3) throw config_error(fmt::format("--seq is {}, expected at least 3", o.seq));
  if (!(o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", o.lr));
  check_output_directory(o.out);
  const vocabulary vocab = vocabulary::load(o.vocab);
  return with_named_shape(o.shape, [&]<class Shape>() { return pretrain<Shape>(o, vocab); });
}

}  // namespace earlybert::cli
