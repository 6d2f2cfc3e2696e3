// SPDX-License-Identifier: Apache-2.0
// A tour of earlybert's foundation: build a small self-attention classifier from the ops, train it
// with the tape and AdamW, check one gradient by finite differences on the spot, and watch the
// arena stop growing after the first step.
//
// The task is synthetic, so that the program needs no data files: each sequence starts with a
// [CLS] token, holds 4 to 16 random content tokens and is padded to 16; its label says whether
// token A occurs more often than token B. The classifier reads the [CLS] position after one
// attention layer, as BERT's classification head does, so it must learn to attend from [CLS] to the
// tokens that decide the label.
//
// Usage: tape_tour [--steps N] [--threads T] [--seed S]

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <earlybert/earlybert.hpp>

namespace eb = earlybert;
using eb::index_t;
using eb::token_id;

namespace {

// ---- The data ---------------------------------------------------------------------------------

constexpr index_t seq = 16;          // positions per sequence, [CLS] included
constexpr index_t vocab = 12;        // 0 = [CLS], 1 = [PAD], 2.. = content tokens
constexpr token_id cls_token = 0, pad_token = 1, token_a = 2, token_b = 3;
constexpr float masked_out = -10000.0f;  // additive mask for padding, as BERT's

struct batch {
  std::vector<token_id> ids;       // [batch * seq]
  std::vector<token_id> labels;    // [batch]
  eb::matrix<float> padding_mask;  // [batch, seq]: 0 for real tokens, masked_out for padding
  std::vector<token_id> cls_rows;  // [batch]: the row of each sequence's [CLS] in [batch * seq]
};

batch make_batch(index_t size, eb::rng& random) {
  batch b;
  b.padding_mask = eb::matrix<float>::Zero(size, seq);
  for (index_t s = 0; s < size; ++s) {
    const auto length = static_cast<index_t>(4 + random.below(seq - 4));  // content tokens
    int count_a = 0, count_b = 0;
    b.ids.push_back(cls_token);
    for (index_t p = 1; p < seq; ++p) {
      if (p > length) {
        b.ids.push_back(pad_token);
        b.padding_mask(s, p) = masked_out;
        continue;
      }
      const auto token = static_cast<token_id>(2 + random.below(vocab - 2));
      count_a += token == token_a;
      count_b += token == token_b;
      b.ids.push_back(token);
    }
    b.labels.push_back(count_a > count_b ? 1 : 0);
    b.cls_rows.push_back(static_cast<token_id>(s * seq));
  }
  return b;
}

// ---- The model --------------------------------------------------------------------------------

// Embeddings -> one post-LN self-attention layer -> [CLS] row -> linear classifier.
template <class Scalar>
struct attention_classifier {
  static constexpr index_t hidden = 32, heads = 2;
  eb::parameter<Scalar> word{"word", vocab, hidden}, position{"position", seq, hidden};
  eb::parameter<Scalar> query{"query", hidden, hidden}, key{"key", hidden, hidden}, value{"value", hidden, hidden};
  eb::parameter<Scalar> output{"output", hidden, hidden}, output_bias{"output_bias", 1, hidden, false};
  eb::parameter<Scalar> norm_gamma{"norm_gamma", 1, hidden, false}, norm_beta{"norm_beta", 1, hidden, false};
  eb::parameter<Scalar> classifier{"classifier", 2, hidden}, classifier_bias{"classifier_bias", 1, 2, false};
  std::vector<eb::parameter<Scalar>*> parameters{&word,     &position,   &query,     &key,        &value,     &output,
                                                 &output_bias, &norm_gamma, &norm_beta, &classifier, &classifier_bias};

  explicit attention_classifier(std::uint64_t seed) {
    eb::rng random(seed);
    for (auto* p : parameters) {
      for (index_t i = 0; i < p->size(); ++i) p->value.data()[i] = static_cast<Scalar>(0.2 * random.normal());
    }
    norm_gamma.value.setOnes();
    norm_beta.value.setZero();
  }

  // Logits [batch, 2]. Dropout runs when `dropout_key` is non-zero (training).
  eb::var<Scalar> logits(eb::tape<Scalar>& t, const batch& b, const eb::matrix<Scalar>& mask, std::uint64_t dropout_key) {
    const auto count = static_cast<index_t>(b.labels.size());
    // Word embeddings [count*seq, hidden] plus the position table repeated for every sequence.
    const auto words = eb::embedding(t, t.watch(word), std::span<const token_id>(b.ids));
    std::vector<token_id> positions(b.ids.size());
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<token_id>(i % seq);
    const auto x = eb::add(t, words, eb::embedding(t, t.watch(position), std::span<const token_id>(positions)));

    // Self-attention: per (sequence, head), softmax(Q K^T / sqrt(head_dim) + mask) V.
    using eb::transpose;
    const auto project = [&](eb::parameter<Scalar>& w) {
      return eb::split_heads(t, eb::matmul(t, x, t.watch(w), transpose::no, transpose::yes), count, seq, heads);
    };
    const auto q = project(query), k = project(key), v = project(value);
    const Scalar scale = Scalar(1) / std::sqrt(Scalar(hidden / heads));
    const auto scores = eb::scale(t, eb::batched_matmul(t, q, k, count * heads, transpose::no, transpose::yes), scale);
    auto probabilities = eb::softmax(t, scores, t.input(mask.data(), count, seq), heads * seq);
    if (dropout_key != 0) probabilities = eb::dropout(t, probabilities, Scalar(0.1), dropout_key);
    const auto context = eb::merge_heads(t, eb::batched_matmul(t, probabilities, v, count * heads), count, seq, heads);
    const auto attended = eb::add_bias(t, eb::matmul(t, context, t.watch(output), transpose::no, transpose::yes),
                                       t.watch(output_bias));
    const auto h = eb::layer_norm(t, eb::add(t, attended, x), t.watch(norm_gamma), t.watch(norm_beta), Scalar(1e-12));

    // Classify from the [CLS] rows.
    const auto cls = eb::gelu(t, eb::gather_rows(t, h, std::span<const token_id>(b.cls_rows)));
    return eb::add_bias(t, eb::matmul(t, cls, t.watch(classifier), transpose::no, transpose::yes),
                        t.watch(classifier_bias));
  }
};

double accuracy(const eb::var<float>& logits, const std::vector<token_id>& labels) {
  index_t correct = 0;
  for (index_t r = 0; r < logits.rows(); ++r) {
    const token_id predicted = logits.value()(r, 1) > logits.value()(r, 0) ? 1 : 0;
    correct += predicted == labels[static_cast<std::size_t>(r)];
  }
  return static_cast<double>(correct) / static_cast<double>(logits.rows());
}

// ---- Checking one gradient by hand ------------------------------------------------------------

// The tape's gradient of the loss with respect to one weight, against a central difference, in
// double precision. Dropout is off so that the loss is a smooth function of the weights.
void check_one_gradient(std::uint64_t seed) {
  eb::rng random(seed);
  const batch b = make_batch(4, random);
  const eb::matrix<double> mask = b.padding_mask.cast<double>();
  attention_classifier<double> model(seed);
  eb::tape<double> t;
  auto loss = [&] {
    t.rewind();
    return eb::cross_entropy(t, model.logits(t, b, mask, 0), std::span<const token_id>(b.labels));
  };
  for (auto* p : model.parameters) p->zero_gradient();
  t.backward(loss());
  const double from_tape = model.query.gradient(3, 5);
  const double h = 1e-6, original = model.query.value(3, 5);
  model.query.value(3, 5) = original + h;
  double plus, minus;
  {
    eb::no_recording<double> inference(t);
    plus = loss().item();
    model.query.value(3, 5) = original - h;
    minus = loss().item();
  }
  model.query.value(3, 5) = original;
  const double numeric = (plus - minus) / (2 * h);
  fmt::print("gradient check, d loss / d query[3, 5]: tape {:.9f}, finite difference {:.9f}, |difference| {:.1e}\n",
             from_tape, numeric, std::abs(from_tape - numeric));
}

// ---- Command line -----------------------------------------------------------------------------

struct options {
  long steps = 400;
  int threads = 2;
  std::uint64_t seed = 1;
};

long parse_count(std::string_view flag, const char* text, long minimum) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < minimum) {
    throw eb::config_error(fmt::format("tape_tour: {} is '{}', expected an integer of at least {}", flag, text, minimum));
  }
  return value;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      fmt::print("usage: tape_tour [--steps N] [--threads T] [--seed S]\n"
                 "Trains a one-layer self-attention classifier on a synthetic counting task with the tape.\n");
      std::exit(0);
    }
    if (i + 1 >= argc) throw eb::config_error(fmt::format("tape_tour: {} needs a value", flag));
    const char* value = argv[++i];
    if (flag == "--steps") o.steps = parse_count(flag, value, 1);
    else if (flag == "--threads") o.threads = static_cast<int>(parse_count(flag, value, 1));
    else if (flag == "--seed") o.seed = static_cast<std::uint64_t>(parse_count(flag, value, 0));
    else throw eb::config_error(fmt::format("tape_tour: unknown option '{}' (see --help)", flag));
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const options o = parse(argc, argv);
  eb::set_num_threads(o.threads);
  fmt::print("earlybert tape tour: {} threads, OpenBLAS core {}\n", eb::num_threads(), eb::blas_core_name());

  check_one_gradient(o.seed);

  eb::rng random(o.seed);
  const batch dev = make_batch(512, random);
  attention_classifier<float> model(o.seed + 1);
  eb::adamw<float> optimizer({.weight_decay = 0.01});
  eb::tape<float> t;
  std::size_t arena_after_first_evaluation = 0;
  const auto start = std::chrono::steady_clock::now();

  for (long step = 1; step <= o.steps; ++step) {
    const batch b = make_batch(64, random);
    t.rewind();
    for (auto* p : model.parameters) p->zero_gradient();
    const auto logits = model.logits(t, b, b.padding_mask, eb::derive_key(o.seed, static_cast<std::uint64_t>(step)));
    const auto loss = eb::cross_entropy(t, logits, std::span<const token_id>(b.labels));
    t.backward(loss);
    const double train_loss = loss.item();  // read now: the next rewind() invalidates every var
    const double warmup = std::min(1.0, static_cast<double>(step) / 50.0);  // linear warm-up
    optimizer.step(model.parameters, 3e-3 * warmup);

    if (step % 50 == 0 || step == o.steps) {
      t.rewind();
      eb::no_recording<float> inference(t);
      const auto dev_logits = model.logits(t, dev, dev.padding_mask, 0);
      fmt::print("step {:4d}  train loss {:.4f}  dev accuracy {:.3f}\n", step, train_loss,
                 accuracy(dev_logits, dev.labels));
      // A training step and an evaluation have now both run: the arena is at its peak.
      if (arena_after_first_evaluation == 0) arena_after_first_evaluation = t.arena_bytes();
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} steps in {:.2f} s ({:.2f} ms per step, evaluations included)\n", o.steps, seconds,
             1e3 * seconds / static_cast<double>(o.steps));
  fmt::print("arena: {} KiB after the first evaluation, {} KiB at the end (steps reuse it, never growing it)\n",
             arena_after_first_evaluation / 1024, t.arena_bytes() / 1024);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}
