// SPDX-License-Identifier: Apache-2.0
// After warm-up, a training step makes no heap allocation.
//
// This executable replaces malloc and its relatives for the whole process (the executable's
// definitions take precedence over libc's for every shared library too), so allocations by the
// library, Eigen, libstdc++, oneTBB and OpenBLAS are all counted. The step uses every op, on sizes
// large enough to take the multi-threaded paths (split GEMMs, parallel rows and columns).

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/earlybert.hpp"
#include "support/loopback_group.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<long> heap_allocations{0};
}

extern "C" {
void* malloc(std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  *out = __libc_memalign(alignment, n);
  return *out != nullptr ? 0 : ENOMEM;
}
void free(void* p) { __libc_free(p); }
}

using namespace earlybert;

namespace {

// One self-attention block with an MLM-style loss on a few gathered rows, plus an L1 term, updated by
// AdamW: every op and the optimizer.
struct attention_model {
  static constexpr index_t batch = 8, seq = 64, heads = 4, hidden = 128, vocab = 500;  // 512 tokens: multi-threaded paths
  parameter<float> embed{"embed", vocab, hidden}, wq{"wq", hidden, hidden}, wk{"wk", hidden, hidden},
      wv{"wv", hidden, hidden}, bq{"bq", 1, hidden, false}, gamma{"gamma", 1, hidden, false},
      beta{"beta", 1, hidden, false}, coefficients{"coefficients", 1, hidden, false};
  std::vector<token_id> ids, masked_rows, labels;
  matrix<float> padding_mask;

  attention_model() : padding_mask(matrix<float>::Zero(batch, seq)) {
    rng random(3);
    for (auto* p : {&embed, &wq, &wk, &wv}) {
      for (index_t i = 0; i < p->size(); ++i) p->value.data()[i] = static_cast<float>(0.05 * random.normal());
    }
    gamma.value.setOnes();
    coefficients.value.setOnes();
    for (index_t i = 0; i < batch * seq; ++i) ids.push_back(static_cast<token_id>(random.below(vocab)));
    for (index_t i = 0; i < batch * seq; i += 7) {
      masked_rows.push_back(static_cast<token_id>(i));
      labels.push_back(static_cast<token_id>(random.below(vocab)));
    }
    padding_mask.rightCols(4).setConstant(-10000.0f);
  }

  // Built once: a container made per step would itself allocate.
  std::array<parameter<float>*, 8> parameters{&embed, &wq, &wk, &wv, &bq, &gamma, &beta, &coefficients};
  adamw<float> optimizer;

  void step(tape<float>& t, std::uint64_t step_number) {
    t.rewind();
    for (auto* p : parameters) p->zero_gradient();
    const auto x = embedding(t, t.watch(embed), std::span<const token_id>(ids));
    const auto q = split_heads(t, add_bias(t, matmul(t, x, t.watch(wq), transpose::no, transpose::yes), t.watch(bq)), batch, seq, heads);
    const auto k = split_heads(t, matmul(t, x, t.watch(wk), transpose::no, transpose::yes), batch, seq, heads);
    const auto v = split_heads(t, matmul(t, x, t.watch(wv), transpose::no, transpose::yes), batch, seq, heads);
    const auto scores = scale(t, batched_matmul(t, q, k, batch * heads, transpose::no, transpose::yes), 0.125f);
    const auto probs = dropout(t, softmax(t, scores, t.input(padding_mask.data(), batch, seq), heads * seq), 0.1f,
                               derive_key(1, step_number));
    const auto context = merge_heads(t, batched_matmul(t, probs, v, batch * heads), batch, seq, heads);
    // Coefficients broadcast over rows (0 + 1 c) gate the context, as slimming coefficients do.
    const auto gate = add_bias(t, t.constant(matrix<float>::Zero(batch * seq, hidden)), t.watch(coefficients));
    const auto scaled = multiply(t, context, gate);
    const auto h = gelu(t, layer_norm(t, add(t, scaled, x), t.watch(gamma), t.watch(beta), 1e-12f));
    const auto picked = gather_rows(t, h, std::span<const token_id>(masked_rows));
    const auto logits = matmul(t, picked, t.watch(embed), transpose::no, transpose::yes);
    const auto task = cross_entropy(t, logits, std::span<const token_id>(labels));
    const auto penalty = scale(t, l1_norm(t, t.watch(coefficients)), 1e-4f);
    const auto auxiliary = scale(t, mean(t, earlybert::tanh(t, picked)), 1e-3f);
    t.backward(add(t, add(t, task, penalty), auxiliary));
    optimizer.step(parameters, 1e-3);
  }
};

}  // namespace

TEST_CASE("allocation: after warm-up, a training step using every op and AdamW makes no heap allocation") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    set_num_threads(threads);
    attention_model model;
    tape<float> t;
    for (std::uint64_t step = 0; step < 3; ++step) model.step(t, step);  // warm-up
    const long before = heap_allocations.load();
    for (std::uint64_t step = 3; step < 8; ++step) model.step(t, step);
    CHECK(heap_allocations.load() - before == 0);
  }
}

TEST_CASE("allocation: after warm-up, a BERT training step (masked LM, masked and compacted heads, trainer, alone and data-parallel) makes no heap allocation") {
  using shape = bert_shape<2, 64, 4, 128>;
  earlybert::testing::loopback_group two_processes;  // the gradient reducer's path, without a transport
  for (const auto& [threads, group] : {std::pair<int, process_group*>{1, nullptr}, {2, nullptr}, {1, &two_processes}, {2, &two_processes}}) {
    CAPTURE(threads);
    CAPTURE(group != nullptr);
    set_num_threads(threads);
    bert_config config = bert_config::for_shape<shape>(300);
    bert_for_masked_lm<float, shape> model(config);
    rng random(5);
    model.initialise(random);
    model.bert.layers[1].self_attention.structures().set_active(std::vector<std::uint8_t>{1, 0, 1, 1});
    model.bert.layers[0].self_attention.structures().set_active(std::vector<std::uint8_t>{0, 1, 1, 1});
    model.bert.layers[0].self_attention.structures().compact();  // one layer masked, one compacted
    token_batch b;
    b.batch = 8;
    b.seq = 64;
    for (index_t i = 0; i < b.tokens(); ++i) {
      b.ids.push_back(static_cast<token_id>(1 + random.below(299)));
      b.type_ids.push_back(0);
      b.attention.push_back(i % b.seq < 60 ? 1 : 0);
      b.labels.push_back(i % 7 == 0 ? b.ids.back() : ignore_label);
    }
    optimization_options options;
    options.accumulation_steps = 2;
    options.group = group;
    options.bucket_elements = 10000;  // several buckets, started during backward
    trainer<float> train(model, options, 100);  // reads the model's parameters at every step
    const auto step = [&](std::uint64_t n) {
      train.step([&](tape<float>& t, int k) { return model.forward(t, b, true, derive_key(n, static_cast<std::uint64_t>(k))).loss; });
    };
    for (std::uint64_t n = 0; n < 3; ++n) step(n);  // warm-up
    const long before = heap_allocations.load();
    for (std::uint64_t n = 3; n < 8; ++n) step(n);
    CHECK(heap_allocations.load() - before == 0);
  }
}

TEST_CASE("allocation: after warm-up, a self-sampling step of a token classifier with exits (a halting plan drawn, the joint loss under it) makes no heap allocation") {
  using shape = bert_shape<3, 64, 4, 128>;
  set_num_threads(2);
  bert_config config = bert_config::for_shape<shape>(300);
  config.num_labels = 5;
  bert_for_token_classification_with_exits<float, shape> model(config);
  rng random(6);
  model.initialise(random);
  token_batch b;
  b.batch = 8;
  b.seq = 32;
  for (index_t i = 0; i < b.tokens(); ++i) {
    const index_t position = i % b.seq;
    const bool real = position < 28, word = real && position > 0 && position < 27;
    b.ids.push_back(static_cast<token_id>(1 + random.below(299)));
    b.type_ids.push_back(0);
    b.attention.push_back(real ? 1 : 0);
    b.word_of.push_back(word ? (position - 1) / 2 : -1);  // words of two pieces
    b.labels.push_back(word && position % 2 == 1 ? static_cast<token_id>(random.below(5)) : ignore_label);
  }
  const self_sampling_options sampling{{0.5, 0.8, 0.95}, {0, 1}, uncertainty_measure::max_probability};
  trainer<float> train(model, optimization_options{}, 100);
  const auto step = [&](std::uint64_t n) {
    train.step([&](tape<float>& t, int) {
      const std::span<int> plan(t.template scratch<int>(b.tokens()), static_cast<std::size_t>(b.tokens()));
      sample_halting_plan(model, t, b, derive_key(n, 1), sampling, plan);
      return model.joint_loss(t, model.joint_logits(t, b, true, derive_key(n, 2), plan), b, plan);
    });
  };
  for (std::uint64_t n = 0; n < 3; ++n) step(n);  // warm-up
  const long before = heap_allocations.load();
  for (std::uint64_t n = 3; n < 8; ++n) step(n);
  CHECK(heap_allocations.load() - before == 0);
}

TEST_CASE("allocation: the counter sees allocations (the check above can fail)") {
  const long before = heap_allocations.load();
  std::vector<int> grows;
  grows.resize(1000);
  matrix<float> eigen_owned(64, 64);
  eigen_owned.setZero();
  CHECK(heap_allocations.load() - before >= 2);
}
