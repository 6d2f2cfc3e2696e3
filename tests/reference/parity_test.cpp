// SPDX-License-Identifier: Apache-2.0
// earlybert's BERT against a PyTorch reference (tests/reference/make_reference.py): the checkpoint it
// wrote loads under HuggingFace's names, and the logits, the loss and every parameter's gradient for
// one padded batch agree, for sequence classification and for masked LM.
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/io/checkpoint.hpp"
#include "earlybert/nn/bert.hpp"

using namespace earlybert;

namespace {
using reference_shape = bert_shape<2, 32, 4, 64>;
const std::string reference_dir = EARLYBERT_REFERENCE_DIR;

const safetensors_reader& golden() {
  static const safetensors_reader file = safetensors_reader::open(reference_dir + "/golden.safetensors");
  return file;
}

struct golden_batch {
  token_batch batch;
  std::vector<token_id> classification_labels, masked_lm_labels;
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
}  // namespace

TEST_CASE_TEMPLATE("parity: sequence classification matches PyTorch, logits, loss and every gradient", Scalar, double, float) {
  auto model = load_model<bert_for_sequence_classification<Scalar, reference_shape>>();
  golden_batch g = load_batch();
  g.batch.labels = g.classification_labels;
  tape<Scalar> t;
  const auto logits = model.logits(t, g.batch, false, 0);
  const auto loss = model.loss(t, logits, g.batch);
  t.backward(loss);
  // double: the same function to rounding; float: to float rounding through two layers.
  const double relative = std::is_same_v<Scalar, double> ? 1e-5 : 1e-3;
  const double absolute = std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
  check_against_golden("classification.logits", logits.value(), relative, absolute);
  check_against_golden("classification.loss", loss.value(), relative, absolute);
  int checked = 0;
  model.for_each_parameter([&](parameter<Scalar>& p) {
    check_against_golden("classification.grad." + p.name, p.gradient, relative, absolute);
    ++checked;
  });
  CHECK(checked == 41);  // 5 embedding, 2 x 16 per layer, 2 pooler, 2 classifier
}

TEST_CASE_TEMPLATE("parity: masked LM matches PyTorch, with the tied decoder and padding row", Scalar, double, float) {
  auto model = load_model<bert_for_masked_lm<Scalar, reference_shape>>();
  golden_batch g = load_batch();
  g.batch.labels = g.masked_lm_labels;
  tape<Scalar> t;
  const auto out = model.forward(t, g.batch, false, 0);
  t.backward(out.loss);
  const double relative = std::is_same_v<Scalar, double> ? 1e-5 : 1e-3;
  const double absolute = std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
  check_against_golden("masked_lm.logits", out.logits.value(), relative, absolute);
  check_against_golden("masked_lm.loss", out.loss.value(), relative, absolute);
  int checked = 0;
  model.for_each_parameter([&](parameter<Scalar>& p) {
    check_against_golden("masked_lm.grad." + p.name, p.gradient, relative, absolute);
    ++checked;
  });
  CHECK(checked == 42);  // 5 embedding, 2 x 16 per layer, 5 in cls.predictions
}
