// SPDX-License-Identifier: Apache-2.0
#include "earlybert/nn/structure.hpp"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "earlybert/nn/bert.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::random_matrix;

namespace {
using test_shape = bert_shape<2, 8, 2, 4>;  // head size 4, 4 FFN neurons per layer
using model_type = bert_model<double, test_shape>;

model_type random_model() {
  bert_config c = bert_config::for_shape<test_shape>(10);
  c.max_positions = 8;
  model_type m(c, false);
  std::uint64_t seed = 1;
  m.for_each_parameter([&](parameter<double>& p) {
    p.value = random_matrix<double>(p.rows(), p.cols(), seed++);
    p.gradient = random_matrix<double>(p.rows(), p.cols(), seed++);
    p.first_moment = random_matrix<double>(p.rows(), p.cols(), seed++);
    p.second_moment = random_matrix<double>(p.rows(), p.cols(), seed++).cwiseAbs();
  });
  return m;
}

// Every slice of a member, as "<parameter name> <role> <rows>x<cols>", and the sum of its values.
std::vector<std::string> slices_of(const structure_family<double>& family, index_t member, double& value_sum) {
  std::vector<std::string> slices;
  value_sum = 0;
  family.for_each_slice(member, [&](const member_slice<double>& slice) {
    slices.push_back(fmt::format("{} {} {}x{}", slice.source.name, slice.role == slice_role::incoming ? "in" : "out", slice.value.rows(),
                                 slice.value.cols()));
    value_sum += slice.value.sum();
  });
  return slices;
}
}  // namespace

TEST_CASE("structure_family: the families of a model, in order, and the slices of a member") {
  model_type m = random_model();
  std::vector<std::string> families;
  m.for_each_family([&](structure_family<double> family) {
    families.push_back(fmt::format("{}: {} of {}", family.name(), family.size(), family.original_size()));
  });
  CHECK(families == std::vector<std::string>{"layer 0 heads: 2 of 2", "layer 0 neurons: 4 of 4", "layer 1 heads: 2 of 2",
                                             "layer 1 neurons: 4 of 4"});

  // Head 1 of layer 1: rows 4..7 of Q, K, V and their biases, columns 4..7 of W_O.
  const auto& a = m.layers[1].self_attention;
  double sum = 0;
  CHECK(slices_of(a.structures(), 1, sum) ==
        std::vector<std::string>{"bert.encoder.layer.1.attention.self.query.weight in 4x8", "bert.encoder.layer.1.attention.self.query.bias in 1x4",
                                 "bert.encoder.layer.1.attention.self.key.weight in 4x8", "bert.encoder.layer.1.attention.self.key.bias in 1x4",
                                 "bert.encoder.layer.1.attention.self.value.weight in 4x8", "bert.encoder.layer.1.attention.self.value.bias in 1x4",
                                 "bert.encoder.layer.1.attention.output.dense.weight out 8x4"});
  double expected = a.output.weight.value.middleCols(4, 4).sum();
  for (const linear<double>* p : {&a.query, &a.key, &a.value}) expected += p->weight.value.middleRows(4, 4).sum() + p->bias.value.middleCols(4, 4).sum();
  CHECK(sum == doctest::Approx(expected));
  // Neuron 2 of layer 0: row 2 of W_1, entry 2 of b_1, column 2 of W_2.
  const auto& f = m.layers[0].ffn;
  CHECK(slices_of(f.structures(), 2, sum) ==
        std::vector<std::string>{"bert.encoder.layer.0.intermediate.dense.weight in 1x8", "bert.encoder.layer.0.intermediate.dense.bias in 1x1",
                                 "bert.encoder.layer.0.output.dense.weight out 8x1"});
  CHECK(sum == doctest::Approx(f.intermediate.weight.value.row(2).sum() + f.intermediate.bias.value(0, 2) + f.output.weight.value.col(2).sum()));
  // The two sums the built-in criteria read.
  const double norm = f.intermediate.weight.value.row(2).squaredNorm() + f.intermediate.bias.value(0, 2) * f.intermediate.bias.value(0, 2) +
                      f.output.weight.value.col(2).squaredNorm();
  CHECK(f.structures().squared_norm(2) == doctest::Approx(norm));
  const double dot = f.intermediate.weight.value.row(2).dot(f.intermediate.weight.gradient.row(2)) +
                     f.intermediate.bias.value(0, 2) * f.intermediate.bias.gradient(0, 2) +
                     f.output.weight.value.col(2).dot(f.output.weight.gradient.col(2));
  CHECK(f.structures().value_gradient_dot(2) == doctest::Approx(dot));
}

TEST_CASE("structure_family: masking zeroes a member in every part and all four tensors, compaction keeps the rest") {
  model_type m = random_model();
  auto& a = m.layers[0].self_attention;
  const model_type before = m;
  structure_family<double> heads = a.structures();
  heads.set_active(std::vector<std::uint8_t>{1, 0});
  CHECK(heads.active_count() == 1);
  for (const linear<double>* p : {&a.query, &a.key, &a.value}) {
    for (const matrix<double>* t : {&p->weight.value, &p->weight.gradient, &p->weight.first_moment, &p->weight.second_moment}) {
      CHECK(t->middleRows(4, 4).isZero(0));
    }
    CHECK(p->bias.value.middleCols(4, 4).isZero(0));
    CHECK(p->bias.first_moment.middleCols(4, 4).isZero(0));
  }
  // The active head is untouched.
  const auto& b = before.layers[0].self_attention;
  CHECK(a.key.weight.second_moment.middleRows(0, 4) == b.key.weight.second_moment.middleRows(0, 4));
  CHECK(a.value.bias.gradient.middleCols(0, 4) == b.value.bias.gradient.middleCols(0, 4));
  CHECK(a.output.weight.value.middleCols(0, 4) == b.output.weight.value.middleCols(0, 4));
  for (const matrix<double>* t : {&a.output.weight.value, &a.output.weight.gradient, &a.output.weight.first_moment, &a.output.weight.second_moment}) {
    CHECK(t->middleCols(4, 4).isZero(0));
  }
  CHECK(a.output.bias.value == before.layers[0].self_attention.output.bias.value);  // W_O's bias belongs to no head
  CHECK(heads.original_mask() == std::vector<std::uint8_t>{1, 0});

  heads.compact();
  CHECK(heads.size() == 1);
  CHECK(std::vector<index_t>(heads.kept().begin(), heads.kept().end()) == std::vector<index_t>{0});
  CHECK(heads.original_mask() == std::vector<std::uint8_t>{1, 0});
  CHECK(a.query.weight.first_moment == before.layers[0].self_attention.query.weight.first_moment.middleRows(0, 4));
  CHECK(a.output.weight.second_moment == before.layers[0].self_attention.output.weight.second_moment.middleCols(0, 4));

  // keep(): the neurons {1, 3} of a fresh layer, as a pruned checkpoint is rebuilt.
  auto& f = m.layers[1].ffn;
  f.structures().keep(std::vector<index_t>{1, 3});
  CHECK(f.neurons() == 2);
  CHECK(f.intermediate.weight.value.row(1) == before.layers[1].ffn.intermediate.weight.value.row(3));
  CHECK(f.output.weight.gradient.col(0) == before.layers[1].ffn.output.weight.gradient.col(1));
  CHECK(f.structures().original_mask() == std::vector<std::uint8_t>{0, 1, 0, 1});
}

TEST_CASE("structure_family: slimming coefficients follow masking and compaction, and fold into the outgoing part") {
  model_type m = random_model();
  m.set_slimming(true);
  auto& f = m.layers[0].ffn;
  structure_family<double> neurons = f.structures();
  CHECK(neurons.slimming());
  CHECK(neurons.coefficients().value == matrix<double>::Ones(1, 4));
  neurons.set_active(std::vector<std::uint8_t>{1, 1, 0, 1});
  CHECK(neurons.coefficients().value(0, 2) == 0.0);
  f.coefficients.values.value << 2, 3, 0, 5;
  neurons.compact();
  CHECK(neurons.coefficients().value == (matrix<double>(1, 3) << 2, 3, 5).finished());
  const matrix<double> w2 = f.output.weight.value;
  neurons.fold_slimming();
  CHECK_FALSE(neurons.slimming());
  CHECK(f.output.weight.value.col(0) == w2.col(0) * 2);
  CHECK(f.output.weight.value.col(2) == w2.col(2) * 5);
}

TEST_CASE("structure_family: a layer may lose every head or every neuron, as in HuggingFace: masked and removed agree") {
  // With every head of layer 0 and every neuron of layer 1 gone, those blocks add only their output
  // bias before the LayerNorm; masking them (zero weights) and removing them (empty matrices) must
  // compute the same logits.
  bert_config c = bert_config::for_shape<test_shape>(10);
  c.max_positions = 8;
  c.num_labels = 2;
  bert_for_sequence_classification<double, test_shape> masked(c);
  rng random(9);
  masked.initialise(random);
  masked.bert.layers[0].self_attention.structures().set_active(std::vector<std::uint8_t>{0, 0});
  masked.bert.layers[1].ffn.structures().set_active(std::vector<std::uint8_t>{0, 0, 0, 0});
  auto removed = masked;
  removed.bert.for_each_family([](structure_family<double> family) { family.compact(); });
  CHECK(removed.bert.layers[0].self_attention.heads() == 0);
  CHECK(removed.bert.layers[1].ffn.neurons() == 0);
  CHECK(removed.bert.layers[0].self_attention.query.weight.rows() == 0);

  token_batch b;
  b.batch = 2;
  b.seq = 3;
  b.ids = {2, 5, 3, 2, 6, 0};
  b.type_ids.assign(6, 0);
  b.attention = {1, 1, 1, 1, 1, 0};
  b.labels = {1, 0};
  tape<double> t1, t2;
  const auto expected = masked.logits(t1, b, false, 0);
  const auto got = removed.logits(t2, b, false, 0);
  earlybert::testing::check_near(got.value(), expected.value(), 1e-12);
  // The gradients of the parameters that remain agree too.
  tape<double> t3, t4;
  t3.backward(masked.loss(t3, masked.logits(t3, b, true, 5), b));
  t4.backward(removed.loss(t4, removed.logits(t4, b, true, 5), b));
  earlybert::testing::check_near(removed.bert.layers[0].self_attention.output.bias.gradient,
                                 masked.bert.layers[0].self_attention.output.bias.gradient, 1e-12);
  earlybert::testing::check_near(removed.bert.layers[1].ffn.output.bias.gradient, masked.bert.layers[1].ffn.output.bias.gradient, 1e-12);
}

TEST_CASE("weight_family: the single weights of the encoder's linear layers, masked in place, with their sparsity") {
  model_type m = random_model();
  std::vector<std::string> names;
  m.for_each_weight_family([&](const weight_family<double>& family) { names.push_back(family.name()); });
  REQUIRE(names.size() == 12);  // 2 layers x (Q, K, V, O, W_1, W_2)
  CHECK(names[0] == "bert.encoder.layer.0.attention.self.query.weight");
  CHECK(names[3] == "bert.encoder.layer.0.attention.output.dense.weight");
  CHECK(names[5] == "bert.encoder.layer.0.output.dense.weight");
  CHECK(names[11] == "bert.encoder.layer.1.output.dense.weight");
  CHECK(unstructured_sparsity(m).overall() == 0.0);

  // Mask the smaller half of W_Q of layer 0 by magnitude.
  linear<double>& query = m.layers[0].self_attention.query;
  weight_family<double> family(query);
  std::vector<double> magnitudes(query.weight.value.data(), query.weight.value.data() + query.weight.size());
  for (double& v : magnitudes) v = std::abs(v);
  std::vector<double> sorted = magnitudes;
  std::nth_element(sorted.begin(), sorted.begin() + 32, sorted.end());
  std::vector<std::uint8_t> mask;
  for (double v : magnitudes) mask.push_back(v >= sorted[32]);
  family.set_active(mask);
  CHECK(family.active_count() == 32);
  CHECK(family.sparsity() == 0.5);
  CHECK(family.active() == mask);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] == 0) CHECK((query.weight.value.data()[i] == 0 && query.weight.gradient.data()[i] == 0 && query.weight.first_moment.data()[i] == 0));
  }
  const sparsity_report report = unstructured_sparsity(m);
  CHECK(report.families[0].active == 32);
  CHECK(report.overall() == doctest::Approx(32.0 / (2 * (4 * 64 + 2 * 32))));
  family.clear();
  CHECK(unstructured_sparsity(m).overall() == 0.0);
}

TEST_CASE("unstructured_sparsity: takes a task model as weight_families does (either scope) or its bert_model (the encoder's)") {
  bert_config c = bert_config::for_shape<bert_shape<2, 8, 2, 4>>(10);
  c.max_positions = 8;
  bert_for_sequence_classification<double, shapes::any> task(c);
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(task.classifier.weight.size()), 1);
  mask[0] = 0;
  task.classifier.set_weight_mask(mask);  // outside the encoder
  CHECK(unstructured_sparsity(task).overall() == 0.0);
  CHECK(unstructured_sparsity(task, weight_scope::encoder).families.size() == 12);
  const sparsity_report every = unstructured_sparsity(task, weight_scope::every_linear);
  CHECK(every.families.size() == 14);  // the pooler and the classifier too
  CHECK(every.families.back().active == every.families.back().size - 1);
  CHECK(unstructured_sparsity(task.bert).families.size() == 12);
  CHECK_THROWS_AS(unstructured_sparsity(task.bert, weight_scope::every_linear), config_error);
}
