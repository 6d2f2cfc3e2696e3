// SPDX-License-Identifier: Apache-2.0
// The gradient reducer without a transport (support/loopback_group.hpp: two processes, the second an
// exact copy of the first, so that a correct sum doubles every gradient exactly): buckets start only
// once backward has completed their gradients, overlap changes no bit, and the trainer over the
// group takes exactly the single-process steps. The same over MPI: tests/distributed/mpi_test.cpp.
#include "earlybert/distributed/gradient_reducer.hpp"

#include <cstring>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "earlybert/train/trainer.hpp"
#include "support/loopback_group.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::loopback_group;

namespace {
using toy_shape = bert_shape<2, 8, 2, 12>;
using mlm_model = bert_for_masked_lm<double, toy_shape>;

mlm_model toy_model() {
  bert_config c = bert_config::for_shape<toy_shape>(13);
  c.max_positions = 6;
  mlm_model model(c);
  rng random(4);
  model.initialise(random);
  return model;
}

// Two sequences of 5 tokens, the second padded after 3; three tokens to predict.
token_batch toy_batch() {
  token_batch b;
  b.batch = 2;
  b.seq = 5;
  b.ids = {1, 5, 7, 2, 9, 1, 4, 2, 0, 0};
  b.type_ids = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
  b.attention = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  b.labels = {ignore_label, 6, ignore_label, ignore_label, 3, ignore_label, 11, ignore_label, ignore_label, ignore_label};
  return b;
}

std::vector<double> flat(const std::vector<parameter<double>*>& parameters, bool gradients) {
  std::vector<double> all;
  for (const auto* p : parameters) {
    const matrix<double>& m = gradients ? p->gradient : p->value;
    all.insert(all.end(), m.data(), m.data() + m.size());
  }
  return all;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
}  // namespace

TEST_CASE("gradient_reducer: with overlap, buckets start during backward, each only once its gradients are complete") {
  const token_batch b = toy_batch();
  for (const std::size_t bucket_elements : {std::size_t{1}, std::size_t{37}, std::size_t{500}, std::size_t{1} << 20}) {
    CAPTURE(bucket_elements);
    mlm_model model = toy_model();
    const std::vector<parameter<double>*> parameters = parameters_of(model);
    tape<double> t;
    // The gradients of one process alone.
    t.backward(model.forward(t, b, true, 7).loss);
    std::vector<double> alone = flat(parameters, true);
    for (auto* p : parameters) p->zero_gradient();

    // The same step, its gradients summed with the copy's as backward completes them.
    t.rewind();
    const var<double> loss = model.forward(t, b, true, 7).loss;
    loopback_group group;
    gradient_reducer<double> reducer(bucket_elements);
    double losses[1] = {loss.item()};
    reducer.begin(group, parameters, &t, losses);
    CHECK(losses[0] == 2 * loss.item());
    long started_during_backward = 0;
    t.backward(loss, [&](std::size_t remaining) {
      reducer.on_backward(remaining);
      if (remaining > 0) started_during_backward = group.sums_started;
    });
    reducer.finish();
    for (double& g : alone) g *= 2;
    // A bucket started before its last gradient was complete would hold a partial sum.
    CHECK(same_bits(flat(parameters, true), alone));
    CHECK(group.sums_started == static_cast<long>(reducer.bucket_count()));
    CHECK(group.values_summed == alone.size());
    // The tied word embeddings (read first, and again by the decoder) complete last, so with several
    // buckets some start before backward ends, and never all of them.
    if (reducer.bucket_count() > 1) {
      CHECK(started_during_backward > 0);
      CHECK(started_during_backward < group.sums_started);
    }
  }
}

TEST_CASE("gradient_reducer: without a tape every gradient counts as complete, and frozen parameters are left alone") {
  parameter<float> a("a", 3, 5), frozen("frozen", 2, 2), b("b", 1, 4);
  frozen.trainable = false;
  a.gradient.setConstant(1.5f);
  frozen.gradient.setConstant(5);
  b.gradient.setConstant(-3);
  std::vector<parameter<float>*> all{&a, &frozen, &b};
  loopback_group group(3);
  gradient_reducer<float> reducer(/*bucket_elements=*/4);  // a spans four buckets, one shared with b
  reducer.begin(group, all);
  reducer.on_backward(0);  // everything is ready: every bucket starts here
  CHECK(group.sums_started == 5);
  reducer.finish();
  CHECK(reducer.bucket_count() == 5);
  CHECK(a.gradient.isConstant(4.5f));
  CHECK(frozen.gradient.isConstant(5));
  CHECK(b.gradient.isConstant(-9));
  CHECK_THROWS_WITH_AS(gradient_reducer<float>(0), "gradient_reducer: bucket_elements is 0, expected at least 1", config_error);
}

TEST_CASE("trainer over two processes that are copies of one: exactly the single-process steps, with and without overlap, any buckets") {
  const token_batch b = toy_batch();
  const auto train = [&](process_group* group, bool overlap, std::size_t bucket_elements) {
    mlm_model model = toy_model();
    optimization_options o;
    o.learning_rate = 1e-2;
    o.warmup_ratio = 0;
    o.accumulation_steps = 2;  // a power of two, as the processes: 1 / (A N) scales every gradient exactly
    o.group = group;
    o.overlap_communication = overlap;
    o.bucket_elements = bucket_elements;
    trainer<double> steps(model, o, 4);
    for (std::uint64_t step = 0; step < 4; ++step) {
      const step_report r =
          steps.step([&](tape<double>& t, int k) { return model.forward(t, b, true, derive_key(step, static_cast<std::uint64_t>(k))).loss; });
      if (group != nullptr) CHECK(r.communication_s >= r.communication_wait_s);
    }
    return flat(parameters_of(model), false);
  };
  const std::vector<double> alone = train(nullptr, true, 1);
  loopback_group group;
  for (const bool overlap : {true, false}) {
    for (const std::size_t bucket_elements : {std::size_t{29}, std::size_t{1} << 20}) {
      CAPTURE(overlap);
      CAPTURE(bucket_elements);
      CHECK(same_bits(train(&group, overlap, bucket_elements), alone));
    }
  }
}
