// SPDX-License-Identifier: Apache-2.0
// Data-parallel training over MPI (run by mpirun with 2 and with 3 processes): the ordered sum, alone
// and with several in flight; the bucketed gradient sum and its agreement check; weights identical on
// every process, from run to run and with or without overlap; the relation to one process with
// accumulation; and the EarlyBERT pipeline drawing one ticket everywhere.
#include "earlybert/distributed/mpi.hpp"
#include "earlybert/distributed/gradient_reducer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/prune/criteria.hpp"
#include "earlybert/prune/detectors.hpp"
#include "earlybert/prune/selection.hpp"
#include "earlybert/train/classification_task.hpp"
#include "earlybert/train/earlybert.hpp"
#include "earlybert/train/evaluation.hpp"
#include "earlybert/train/imp.hpp"
#include "earlybert/train/instability.hpp"
#include "earlybert/train/rigl.hpp"
#include "support/test_support.hpp"
#include "support/toy_classification.hpp"

using namespace earlybert;
using earlybert::testing::random_matrix;

namespace {
mpi_process_group& world() {
  static mpi_process_group group;
  return group;
}

// Whether every process holds the same bytes.
bool same_everywhere(std::span<const std::byte> mine) {
  std::vector<std::byte> all(mine.size() * static_cast<std::size_t>(world().size()));
  world().all_gather(mine, all);
  for (int r = 1; r < world().size(); ++r) {
    if (std::memcmp(all.data(), all.data() + static_cast<std::size_t>(r) * mine.size(), mine.size()) != 0) return false;
  }
  return true;
}

// Every parameter's value, flattened in the model's order.
template <class Model>
std::vector<double> weights(Model& model) {
  std::vector<double> all;
  model.for_each_parameter([&](parameter<double>& p) { all.insert(all.end(), p.value.data(), p.value.data() + p.value.size()); });
  return all;
}
std::span<const std::byte> bytes_of(const std::vector<double>& v) { return std::as_bytes(std::span<const double>(v)); }

using model_type = bert_for_sequence_classification<double, shapes::any>;

model_type toy_model() { return earlybert::testing::toy_sequence_classifier<4>(); }

// n values of magnitudes far apart (1e-16 to 1e16), so that another order of additions would round differently.
std::vector<double> spread_values(std::size_t n, std::uint64_t seed) {
  std::vector<double> v(n);
  rng random(seed);
  for (std::size_t i = 0; i < n; ++i) v[i] = (2 * random.uniform() - 1) * std::pow(10.0, static_cast<double>(random.below(33)) - 16);
  return v;
}

optimization_options toy_optimization(process_group* group, int accumulation) {
  optimization_options o;
  o.learning_rate = 1e-2;
  o.warmup_ratio = 0;
  o.accumulation_steps = accumulation;
  o.group = group;
  return o;
}
}  // namespace

TEST_CASE("mpi_process_group: sum adds the processes' values in rank order, the same bits on every process") {
  mpi_process_group& group = world();
  const auto values_of = [](int rank, std::size_t n) { return spread_values(n, static_cast<std::uint64_t>(100 + rank)); };
  for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1000}}) {
    std::vector<double> mine = values_of(group.rank(), n);
    group.sum(std::span<double>(mine));
    std::vector<double> expected = values_of(0, n);
    for (int r = 1; r < group.size(); ++r) {
      const std::vector<double> theirs = values_of(r, n);
      for (std::size_t i = 0; i < n; ++i) expected[i] += theirs[i];
    }
    CHECK(std::memcmp(mine.data(), expected.data(), n * sizeof(double)) == 0);
    CHECK(same_everywhere(bytes_of(mine)));
  }
}

TEST_CASE("mpi_process_group: sums in flight together, polled in another pattern on each process, each give the bits of a sum alone") {
  mpi_process_group& group = world();
  const int me = group.rank();
  const std::vector<std::size_t> sizes{1000, 3, 0, 70000, 1, 512};
  std::vector<std::vector<double>> in_flight, alone;
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    in_flight.push_back(spread_values(sizes[s], 10 * s + static_cast<std::uint64_t>(me)));
    alone.push_back(in_flight.back());
    group.sum(std::span<double>(alone.back()));
  }
  std::vector<float> single(5, static_cast<float>(me + 1));  // a float sum among the doubles
  std::vector<process_group::sum_handle> handles;
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    handles.push_back(group.start_sum(std::span<double>(in_flight[s])));
    if (s == 2) handles.push_back(group.start_sum(std::span<float>(single)));
  }
  // Process 0 polls the last sum first and then waits in reverse; the others wait in order. So the
  // exchanges complete, and the gathers could start, in different orders on different processes.
  if (me == 0) {
    while (!group.finished(handles.back())) {
    }
    for (std::size_t h = handles.size() - 1; h-- > 0;) group.wait(handles[h]);
  } else {
    for (const auto h : handles) group.wait(h);
  }
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    CAPTURE(s);
    CHECK(std::memcmp(in_flight[s].data(), alone[s].data(), sizes[s] * sizeof(double)) == 0);
  }
  const float n = static_cast<float>(group.size());
  for (const float v : single) CHECK(v == n * (n + 1) / 2);
}

TEST_CASE("gradient_reducer: trainable gradients summed through buckets smaller than a parameter, frozen ones untouched") {
  mpi_process_group& group = world();
  parameter<float> a("a", 3, 5), frozen("frozen", 2, 2), b("b", 1, 4);
  frozen.trainable = false;
  const float r = static_cast<float>(group.rank());
  a.gradient.setConstant(1 + r);
  frozen.gradient.setConstant(5 + r);
  b.gradient.setConstant(10 * (1 + r));
  std::vector<parameter<float>*> all{&a, &frozen, &b};
  gradient_reducer<float> reducer(/*bucket_elements=*/4);
  double losses[2] = {1.0 + r, 0.5};
  reducer.begin(group, all, nullptr, losses);
  reducer.finish();
  const float n = static_cast<float>(group.size());
  CHECK(a.gradient.isConstant(n + n * (n - 1) / 2));
  CHECK(frozen.gradient.isConstant(5 + r));
  CHECK(b.gradient.isConstant(10 * (n + n * (n - 1) / 2)));
  CHECK(losses[0] == n + n * (n - 1) / 2);
  CHECK(losses[1] == 0.5 * n);
}

TEST_CASE("gradient_reducer: processes that would cut different buckets all stop with one error, and the group stays usable") {
  mpi_process_group& group = world();
  parameter<double> a("a", 2, 3), b("b", 1, 4);
  b.trainable = group.rank() != group.size() - 1;  // the last process trains one parameter fewer
  std::vector<parameter<double>*> all{&a, &b};
  gradient_reducer<double> reducer(5);
  CHECK_THROWS_AS(reducer.begin(group, all), distributed_error);
  std::vector<double> one{1.0};
  group.sum(std::span<double>(one));
  CHECK(one[0] == group.size());
}

TEST_CASE("data parallel: every process holds the same weights, a repeated run the same bits, and one process with accumulation N the same step") {
  mpi_process_group& group = world();
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const int n = group.size();
  const auto train = [&](process_group* over, int accumulation, int micro_batches, bool overlap = true, std::size_t bucket = 1 << 20) {
    model_type model = toy_model();
    classification_task<model_type> task(data, /*batch=*/6, micro_batches, /*seed=*/3, /*pad=*/0);
    optimization_options o = toy_optimization(over, accumulation);
    o.overlap_communication = overlap;
    o.bucket_elements = bucket;
    run_dense(model, o, 8, task);
    return weights(model);
  };
  const std::vector<double> first = train(&group, 1, n);
  CHECK(same_everywhere(bytes_of(first)));
  CHECK(train(&group, 1, n) == first);
  // Overlapping backward or not, in one bucket or many: the same sums, the same bits.
  CHECK(train(&group, 1, n, /*overlap=*/false) == first);
  CHECK(train(&group, 1, n, /*overlap=*/true, /*bucket=*/97) == first);
  // The same examples, dropout and update as one process taking N micro-batches per step; only the
  // order of the gradient additions differs.
  const std::vector<double> alone = train(nullptr, n, n);
  REQUIRE(alone.size() == first.size());
  double largest = 0;
  for (std::size_t i = 0; i < first.size(); ++i) largest = std::max(largest, std::abs(first[i] - alone[i]));
  CHECK(largest < 1e-12);
  CHECK(largest > 0);  // rounding differs somewhere: the test does compare two different computations
}

TEST_CASE("data parallel: EarlyBERT draws the same ticket on every process, the one a single process draws") {
  mpi_process_group& group = world();
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const int n = group.size();
  const auto run = [&](process_group* over, int accumulation) {
    model_type model = toy_model();
    classification_task<model_type> task(data, /*batch=*/6, n, /*seed=*/4, /*pad=*/0);
    earlybert_options o;
    o.check_interval = 2;
    o.search_budget = 30;
    o.search_schedule_steps = 40;
    o.search = toy_optimization(over, accumulation);
    o.efficient = toy_optimization(over, accumulation);
    o.efficient_steps = 6;
    slimming_criterion criterion;
    mask_distance_detector detector(3, 0.2);
    const earlybert_report report = run_earlybert(model, criterion, ticket_selector{}, detector, o, task, 8);
    return std::pair{report, weights(model)};
  };
  const auto [report, w] = run(&group, 1);
  CHECK(same_everywhere(bytes_of(w)));
  const std::vector<double> ticket_step{static_cast<double>(report.ticket_step)};
  CHECK(same_everywhere(bytes_of(ticket_step)));
  const auto [alone, w_alone] = run(nullptr, n);
  CHECK(report.ticket_step == alone.ticket_step);
  CHECK(report.ticket.heads == alone.ticket.heads);
  CHECK(report.ticket.neurons == alone.ticket.neurons);
  REQUIRE(w.size() == w_alone.size());
  double largest = 0;
  for (std::size_t i = 0; i < w.size(); ++i) largest = std::max(largest, std::abs(w[i] - w_alone[i]));
  CHECK(largest < 1e-11);
}

TEST_CASE("for_each_logits: shared over the processes, every process sees every batch's logits, as one process computes them") {
  mpi_process_group& group = world();
  model_type model = toy_model();
  const classification_dataset data = earlybert::testing::toy_classification_data();
  // Batches of 5: 24 examples make 5 batches, the last partial, so the last round leaves processes idle.
  const auto collect = [&](process_group* over) {
    std::vector<double> logits;
    std::vector<std::size_t> firsts;
    for_each_logits(model, data, 5, 0, [&](std::size_t first, const auto& l, const token_batch& b) {
      CHECK(static_cast<std::size_t>(b.batch) == std::min<std::size_t>(5, data.examples.size() - first));
      firsts.push_back(first);
      logits.insert(logits.end(), l.data(), l.data() + l.size());
    }, over);
    return std::pair{firsts, logits};
  };
  const auto [firsts, shared] = collect(&group);
  const auto [firsts_alone, alone] = collect(nullptr);
  CHECK(firsts == std::vector<std::size_t>{0, 5, 10, 15, 20});
  CHECK(firsts == firsts_alone);
  CHECK(shared == alone);
  const sentence_predictions predicted = predict_sentences(model, data, 5, 0, &group);
  CHECK(predicted.classes == predict_sentences(model, data, 5, 0).classes);
}

TEST_CASE("data parallel: IMP, structured IMP, RigL and instability analysis prune, grow and measure alike on every process") {
  mpi_process_group& group = world();
  const classification_dataset data = earlybert::testing::toy_classification_data();
  const int n = group.size();
  SUBCASE("IMP") {
    model_type model = toy_model();
    classification_task<model_type> task(data, /*batch=*/6, n, /*seed=*/3, /*pad=*/0);
    imp_options o;
    o.levels = 2;
    o.steps = 4;
    o.rewind_step = 1;
    o.optimization = toy_optimization(&group, 1);
    std::vector<index_t> kept;
    run_imp(model, o, task, [&](const imp_level_report& r, model_type&) { kept.push_back(r.kept); });
    CHECK(kept.size() == 3);
    CHECK(same_everywhere(bytes_of(weights(model))));
  }
  SUBCASE("RigL") {
    model_type model = toy_model();
    classification_task<model_type> task(data, /*batch=*/6, n, /*seed=*/3, /*pad=*/0);
    rng random(4);
    const rigl_options rigl{.sparsity = 0.6, .update_interval = 2, .end_step = 6};
    const rigl_report report = run_rigl(model, rigl, toy_optimization(&group, 1), 8, task, random);
    CHECK(report.updates.size() == 2);
    CHECK(same_everywhere(bytes_of(weights(model))));
    std::vector<double> masks;
    for (const auto& f : weight_families(model, weight_scope::encoder)) {
      for (const std::uint8_t a : f.active()) masks.push_back(a);
    }
    CHECK(same_everywhere(bytes_of(masks)));
  }
  SUBCASE("structured IMP with a criterion that watches gradients") {
    model_type model = toy_model();
    classification_task<model_type> task(data, /*batch=*/6, n, /*seed=*/3, /*pad=*/0);
    imp_options o;
    o.levels = 2;
    o.steps = 3;
    o.pruning.fraction = 0.5;
    o.optimization = toy_optimization(&group, 1);
    taylor_criterion criterion;
    std::vector<double> kept;
    run_structured_imp(model, criterion, o, task, [&](const imp_level_report& r, model_type&) {
      for (const index_t k : r.neurons_kept) kept.push_back(static_cast<double>(k));
    });
    CHECK(kept.size() == 3 * 2);
    CHECK(same_everywhere(bytes_of(kept)));
    CHECK(same_everywhere(bytes_of(weights(model))));
  }
  SUBCASE("instability analysis") {
    model_type model = toy_model();
    classification_task<model_type> first(data, 6, n, 3, 0), second(data, 6, n, 4, 0);
    instability_options o;
    o.steps = 4;
    o.split_step = 2;
    o.points = 2;
    o.optimization = toy_optimization(&group, 1);
    const instability_report report = run_instability(model, o, first, second, [&](model_type& m) {
      return path_point{0, mean_loss(m, data, 8, 0, &group), 1 - classification_accuracy(m, data, 8, 0)};
    });
    std::vector<double> path;
    for (const path_point& p : report.path.points) path.insert(path.end(), {p.loss, p.error});
    CHECK(same_everywhere(bytes_of(path)));
    CHECK(same_everywhere(bytes_of(weights(model))));
  }
}
