// SPDX-License-Identifier: Apache-2.0
// earlybert's BERT against a PyTorch reference (tests/reference/make_reference.py): the checkpoint it
// wrote loads under HuggingFace's names, and the logits, the loss and every parameter's gradient for
// one padded batch agree, for sequence classification, masked LM, regression and question answering.
#include <bit>
#include <filesystem>
#include <tuple>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/io/checkpoint.hpp"
#include "earlybert/nn/bert.hpp"

using namespace earlybert;
namespace fs = std::filesystem;

namespace {
using reference_shape = bert_shape<2, 32, 4, 64>;
const std::string reference_dir = EARLYBERT_REFERENCE_DIR;

const safetensors_reader& golden() {
  static const safetensors_reader file = safetensors_reader::open(reference_dir + "/golden.safetensors");
  return file;
}

struct golden_batch {
  token_batch batch;
  std::vector<token_id> classification_labels, masked_lm_labels, span_labels;
  std::vector<double> regression_targets;
};

golden_batch load_batch() {
  const auto j = nlohmann::json::parse(read_file(reference_dir + "/golden.json", "golden batch"));
  golden_batch g;
  g.batch.batch = j["batch"];
  g.batch.seq = j["seq"];
  g.batch.ids = j["ids"].get<std::vector<token_id>>();
  g.batch.type_ids = j["type_ids"].get<std::vector<token_id>>();
  for (int a : j["attention"]) g.batch.attention.push_back(static_cast<std::uint8_t>(a));
  g.classification_labels = j["classification_labels"].get<std::vector<token_id>>();
  g.masked_lm_labels = j["masked_lm_labels"].get<std::vector<token_id>>();
  g.span_labels = j["span_labels"].get<std::vector<token_id>>();
  g.regression_targets = j["regression_targets"].get<std::vector<double>>();
  return g;
}

// |actual - expected| <= relative |expected| + absolute, entry by entry; reports the worst entry.
template <class Actual>
void check_against_golden(const std::string& name, const Actual& actual, double relative, double absolute) {
  matrix<double> expected(actual.rows(), actual.cols());
  golden().read(name, expected);
  double worst = 0;
  index_t worst_at = 0;
  for (index_t i = 0; i < expected.size(); ++i) {
    const double e = expected.data()[i], a = static_cast<double>(actual.data()[i]);
    const double excess = std::abs(a - e) / (relative * std::abs(e) + absolute);
    if (!(excess <= worst)) {
      worst = excess;
      worst_at = i;
    }
  }
  INFO(fmt::format("{}: worst entry {} is {:.10g}, PyTorch {:.10g}", name, worst_at,
                   static_cast<double>(actual.data()[worst_at]), expected.data()[worst_at]));
  CHECK(worst <= 1.0);
}

template <class Model>
Model load_model() {
  const checkpoint_config config = read_config(reference_dir + "/config.json");
  Model model(config.model);
  load_weights(reference_dir, model);
  return model;
}

// The regression model: the checkpoint's encoder and pooler under a one-output classifier.
template <class Scalar>
bert_for_sequence_classification<Scalar, reference_shape> load_regression_model() {
  auto classes = load_model<bert_for_sequence_classification<Scalar, reference_shape>>();
  checkpoint_config config = read_config(reference_dir + "/config.json");
  config.model.num_labels = 1;
  bert_for_sequence_classification<Scalar, reference_shape> model(config.model);
  std::vector<parameter<Scalar>*> from, to;
  classes.bert.for_each_parameter([&](parameter<Scalar>& p) { from.push_back(&p); });
  model.bert.for_each_parameter([&](parameter<Scalar>& p) { to.push_back(&p); });
  for (std::size_t i = 0; i < to.size(); ++i) to[i]->value = from[i]->value;
  return model;
}

// A head's weights from the golden file (the checkpoint holds the three-class classifier only).
template <class Scalar>
void set_from_golden(linear<Scalar>& layer, const std::string& prefix) {
  matrix<double> w(layer.weight.rows(), layer.weight.cols()), b(layer.bias.rows(), layer.bias.cols());
  golden().read(prefix + ".weight", w);
  golden().read(prefix + ".bias", b);
  layer.weight.value = w.cast<Scalar>();
  layer.bias.value = b.cast<Scalar>();
}
// The logits, the loss and every parameter's gradient of one backward pass against golden "<run>.*":
// double to rounding, float to float rounding through two layers.
template <class Model, class Scalar>
void check_run(const std::string& run, Model& model, const var<Scalar>& logits, const var<Scalar>& loss, int parameters) {
  const double relative = std::is_same_v<Scalar, double> ? 1e-5 : 1e-3;
  const double absolute = std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
  check_against_golden(run + ".logits", logits.value(), relative, absolute);
  check_against_golden(run + ".loss", loss.value(), relative, absolute);
  int checked = 0;
  model.for_each_parameter([&](parameter<Scalar>& p) {
    check_against_golden(run + ".grad." + p.name, p.gradient, relative, absolute);
    ++checked;
  });
  CHECK(checked == parameters);
}
}  // namespace

TEST_CASE_TEMPLATE("parity: sequence classification matches PyTorch, logits, loss and every gradient", Scalar, double, float) {
  auto model = load_model<bert_for_sequence_classification<Scalar, reference_shape>>();
  golden_batch g = load_batch();
  g.batch.labels = g.classification_labels;
  tape<Scalar> t;
  const auto logits = model.logits(t, g.batch, false, 0);
  const auto loss = model.loss(t, logits, g.batch);
  t.backward(loss);
  check_run("classification", model, logits, loss, 41);  // 5 embedding, 2 x 16 per layer, 2 pooler, 2 classifier
}

TEST_CASE_TEMPLATE("parity: masked LM matches PyTorch, with the tied decoder and padding row", Scalar, double, float) {
  auto model = load_model<bert_for_masked_lm<Scalar, reference_shape>>();
  golden_batch g = load_batch();
  g.batch.labels = g.masked_lm_labels;
  tape<Scalar> t;
  const auto out = model.forward(t, g.batch, false, 0);
  t.backward(out.loss);
  check_run("masked_lm", model, out.logits, out.loss, 42);  // 5 embedding, 2 x 16 per layer, 5 in cls.predictions
}

TEST_CASE_TEMPLATE("parity: the regression head (one output, mean squared error) matches PyTorch", Scalar, double, float) {
  auto model = load_regression_model<Scalar>();
  set_from_golden(model.classifier, "regression.classifier");
  golden_batch g = load_batch();
  g.batch.labels.assign(static_cast<std::size_t>(g.batch.batch), ignore_label);
  g.batch.targets = g.regression_targets;
  tape<Scalar> t;
  const auto scores = model.logits(t, g.batch, false, 0);
  const auto loss = model.loss(t, scores, g.batch);
  t.backward(loss);
  check_run("regression", model, scores, loss, 41);
}

TEST_CASE_TEMPLATE("parity: the span head (qa_outputs, start and end cross-entropy) matches PyTorch", Scalar, double, float) {
  auto model = load_model<bert_for_question_answering<Scalar, reference_shape>>();
  set_from_golden(model.qa_outputs, "question_answering.qa_outputs");
  golden_batch g = load_batch();
  g.batch.labels = g.span_labels;
  tape<Scalar> t;
  const auto logits = model.logits(t, g.batch, false, 0);
  const auto loss = model.loss(t, logits, g.batch);
  t.backward(loss);
  check_run("question_answering", model, logits, loss, 39);  // 5 embedding, 2 x 16 per layer, 2 in qa_outputs
}

// A checkpoint pruned by HuggingFace's prune_heads(): its config.json records only "pruned_heads" (the
// first layer lost all three heads, the third two, the fourth one), its tensors are cut to the kept
// heads, and there is no earlybert metadata. It loads into a model of any shape and of its own fixed
// shape and computes PyTorch's logits.
TEST_CASE_TEMPLATE("parity: a checkpoint pruned by HuggingFace's prune_heads, a layer without heads among its layers, matches PyTorch",
                   Model, bert_for_sequence_classification<double, shapes::any>, bert_for_sequence_classification<float, shapes::any>,
                   bert_for_sequence_classification<double, bert_shape<4, 48, 3, 64>>) {
  using scalar = typename Model::scalar_type;
  const std::string directory = reference_dir + "/../hf_pruned_bert";
  const checkpoint_config config = read_config(directory + "/config.json");
  CHECK(config.model.kept_heads == std::vector<std::vector<index_t>>{{}, {0, 1, 2}, {1}, {0, 2}});
  Model model(config.model);
  const load_report report = load_weights(directory, model);
  CHECK(report.initialised.empty());
  CHECK(report.unused.empty());
  CHECK(model.bert.layers[0].self_attention.heads() == 0);
  CHECK(model.bert.layers[3].self_attention.heads() == 2);

  const auto expected = nlohmann::json::parse(read_file(directory + "/expected.json", "expected logits"));
  token_batch batch;
  batch.batch = expected["batch"];
  batch.seq = expected["seq"];
  batch.ids = expected["ids"].get<std::vector<token_id>>();
  batch.type_ids = expected["type_ids"].get<std::vector<token_id>>();
  for (int a : expected["attention"]) batch.attention.push_back(static_cast<std::uint8_t>(a));
  tape<scalar> t;
  const auto logits = model.logits(t, batch, false, 0);
  const auto rows = expected["logits"].get<std::vector<std::vector<double>>>();
  REQUIRE(logits.rows() == static_cast<index_t>(rows.size()));
  const double tolerance = std::is_same_v<scalar, double> ? 1e-10 : 1e-4;
  for (index_t i = 0; i < logits.rows(); ++i) {
    for (index_t c = 0; c < logits.cols(); ++c) {
      CAPTURE(i);
      CAPTURE(c);
      CHECK(std::abs(static_cast<double>(logits.value()(i, c)) - rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)]) <=
            tolerance * (1 + std::abs(rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)])));
    }
  }
}

namespace {
// The F32 bits of a row of floats, for comparisons that tell 0 from -0.
std::vector<std::uint32_t> bits_of(const matrix<float>& values) {
  std::vector<std::uint32_t> bits;
  for (index_t i = 0; i < values.size(); ++i) bits.push_back(std::bit_cast<std::uint32_t>(values.data()[i]));
  return bits;
}
}  // namespace

TEST_CASE("parity: F16 and BF16 round to nearest even as PyTorch's half() and bfloat16() do, and read back as PyTorch reads them") {
  const safetensors_reader reference = safetensors_reader::open(reference_dir + "/../half_precision/values.safetensors");
  const fs::path written = fs::temp_directory_path() / "earlybert_test_half_precision.safetensors";
  for (const auto& [values_name, stored, dtype] : {std::tuple{std::string("half_values"), tensor_dtype::f16, std::string("f16")},
                                                   std::tuple{std::string("values"), tensor_dtype::bf16, std::string("bf16")}}) {
    CAPTURE(dtype);
    const tensor_entry* entry = reference.find(values_name);
    REQUIRE(entry != nullptr);
    matrix<float> values(1, entry->shape[0]), torch_rounded(1, entry->shape[0]), read_from_torch(1, entry->shape[0]);
    reference.read(values_name, values);
    reference.read(fmt::format("{}.{}_float", values_name, dtype), torch_rounded);
    // Reading: PyTorch's F16/BF16 bytes widen to the floats PyTorch widens them to.
    reference.read(fmt::format("{}.{}", values_name, dtype), read_from_torch);
    CHECK(bits_of(read_from_torch) == bits_of(torch_rounded));
    // Writing: earlybert's rounding of the F32 values, read back, is PyTorch's, bit for bit.
    safetensors_writer writer;
    writer.add("rounded", values, {values.cols()}, stored);
    writer.write(written);
    const safetensors_reader ours = safetensors_reader::open(written);
    REQUIRE(ours.find("rounded")->dtype == stored);
    matrix<float> ours_rounded(1, values.cols());
    ours.read("rounded", ours_rounded);
    CHECK(bits_of(ours_rounded) == bits_of(torch_rounded));
  }
  fs::remove(written);
}
