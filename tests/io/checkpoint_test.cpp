// SPDX-License-Identifier: Apache-2.0
#include "earlybert/io/checkpoint.hpp"
#include "earlybert/nn/early_exit.hpp"

#include <bit>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;
using earlybert::testing::random_matrix;
namespace fs = std::filesystem;

namespace {
using test_shape = bert_shape<2, 8, 2, 12>;

// A fresh, empty directory under the system's temporary folder, removed at the end of the test.
struct scratch_directory {
  fs::path path;
  explicit scratch_directory(const std::string& name) : path(fs::temp_directory_path() / ("earlybert_test_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_directory() { fs::remove_all(path); }
};

vocabulary test_vocabulary() {
  std::vector<std::string> tokens{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; tokens.size() < 13; ++i) tokens.push_back("w" + std::to_string(i));
  return vocabulary(tokens);
}

bert_config test_config() {
  bert_config c = bert_config::for_shape<test_shape>(13);
  c.max_positions = 6;
  c.num_labels = 3;
  return c;
}

// A safetensors file from a header and data given as text.
void write_raw(const fs::path& path, const std::string& header, std::size_t data_bytes) {
  std::string bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  bytes += std::string(data_bytes, '\0');
  write_file_atomically(path, bytes);
}

// The reloaded model holds the saved model's parameters, the same ones, bit for bit.
template <class Model>
void check_same_parameters(Model& reloaded, Model& saved) {
  auto original = parameters_of(saved), reread = parameters_of(reloaded);
  REQUIRE(original.size() == reread.size());
  for (std::size_t i = 0; i < original.size(); ++i) check_near(reread[i]->value, original[i]->value, 0, original[i]->name.c_str());
}
}  // namespace

TEST_CASE("safetensors: tensors round-trip with their shapes, dtype F32 and metadata") {
  scratch_directory dir("safetensors_roundtrip");
  const matrix<double> a = random_matrix<double>(3, 4, 1);
  const matrix<double> b = random_matrix<double>(1, 5, 2);
  safetensors_writer w;
  w.set_metadata("format", "pt");
  w.add("a", a, {3, 4});
  w.add("b", b, {5});
  w.write(dir.path / "x.safetensors");
  CHECK_FALSE(fs::exists(dir.path / "x.safetensors.tmp"));

  const auto r = safetensors_reader::open(dir.path / "x.safetensors");
  CHECK(r.metadata().at("format") == "pt");
  REQUIRE(r.tensors().size() == 2);
  matrix<float> a_read(3, 4), b_read(1, 5);
  r.read("a", a_read);
  r.read("b", b_read);
  check_near(a_read, a.cast<float>(), 0);
  check_near(b_read, b.cast<float>(), 0);
  matrix<float> wrong(4, 3);
  CHECK_THROWS_WITH_AS(r.read("a", wrong),
                       fmt::format("safetensors '{}': tensor 'a' has shape [3, 4], expected [4, 3]", r.path()).c_str(),
                       io_error);
  CHECK_THROWS_WITH_AS(r.read("c", wrong), fmt::format("safetensors '{}': no tensor 'c'", r.path()).c_str(), io_error);
  // The header is padded so that the data starts 8-byte aligned.
  const std::string bytes = read_file(dir.path / "x.safetensors", "x");
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  CHECK(header % 8 == 0);
}

TEST_CASE("safetensors: F16, BF16 and F64 tensors convert exactly") {
  scratch_directory dir("safetensors_dtypes");
  const fs::path path = dir.path / "d.safetensors";
  // F16: 1.0 = 0x3C00, -2.5 = 0xC100; BF16: 1.0 = 0x3F80, 0.5 = 0x3F00; F64: 0.25.
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("g":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                             R"("d":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]}})";
  std::string bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  const std::uint16_t halves[4] = {0x3C00, 0xC100, 0x3F80, 0x3F00};
  bytes.append(reinterpret_cast<const char*>(halves), 8);
  const double quarter = 0.25;
  bytes.append(reinterpret_cast<const char*>(&quarter), 8);
  write_file_atomically(path, bytes);
  const auto r = safetensors_reader::open(path);
  matrix<float> h(1, 2), g(1, 2), d(1, 1);
  r.read("h", h);
  r.read("g", g);
  r.read("d", d);
  CHECK(h(0, 0) == 1.0f);
  CHECK(h(0, 1) == -2.5f);
  CHECK(g(0, 0) == 1.0f);
  CHECK(g(0, 1) == 0.5f);
  CHECK(d(0, 0) == 0.25f);
}

TEST_CASE("safetensors: malformed files are io_errors that say what is wrong") {
  scratch_directory dir("safetensors_bad");
  const fs::path path = dir.path / "bad.safetensors";
  const std::string p = path.string();
  const auto message = [&](const std::string& what) { return fmt::format("safetensors '{}': {}", p, what); };

  write_file_atomically(path, "abc");
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("the file has 3 bytes, expected at least 8 (the header length)").c_str(), io_error);

  std::string bytes(8, '\0');
  bytes[0] = 100;
  write_file_atomically(path, bytes + "{}");
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("the header length is 100 bytes, but only 2 bytes follow it").c_str(), io_error);

  write_raw(path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", 8);
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("tensor 'a' has data_offsets [0, 12], outside the 8 data bytes").c_str(), io_error);

  write_raw(path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("tensors 'a' and 'b' overlap").c_str(), io_error);

  write_raw(path, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("tensor 'a' spans 8 bytes, expected 12 for shape [3] of F32").c_str(), io_error);

  write_raw(path, R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8);
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path),
                       message("tensor 'a' has dtype \"Q4\", expected one of F32, F64, F16, BF16, I32, I64").c_str(), io_error);

  write_raw(path, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8);
  CHECK_THROWS_WITH_AS(safetensors_reader::open(path), message("tensor 'a' has shape [-2], expected non-negative extents").c_str(), io_error);

  write_raw(path, R"({"a": )", 0);
  CHECK_THROWS_AS(safetensors_reader::open(path), io_error);

  CHECK_THROWS_WITH_AS(safetensors_reader::open(dir.path / "missing.safetensors"),
                       fmt::format("safetensors '{}': cannot open the file for reading (No such file or directory)",
                                   (dir.path / "missing.safetensors").string()).c_str(), io_error);
}

TEST_CASE("checkpoint: save then load gives identical parameters and outputs") {
  scratch_directory dir("checkpoint_roundtrip");
  bert_for_sequence_classification<float, test_shape> model(test_config());
  rng random(3);
  model.initialise(random);
  save_checkpoint(dir.path, model, test_vocabulary());
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt"}) CHECK(fs::exists(dir.path / file));

  const checkpoint_config config = read_config(dir.path / "config.json");
  CHECK(config.architecture == "BertForSequenceClassification");
  CHECK(config.model.num_labels == 3);
  CHECK(config.model.max_positions == 6);
  bert_for_sequence_classification<float, test_shape> loaded(config.model);
  const load_report report = load_weights(dir.path, loaded);
  CHECK(report.initialised.empty());
  CHECK(report.unused.empty());
  check_same_parameters(loaded, model);
}

TEST_CASE("checkpoint: weights saved as F16 or BF16 take half the bytes and reload as the rounded weights") {
  bert_for_sequence_classification<float, test_shape> model(test_config());
  rng random(3);
  model.initialise(random);
  scratch_directory full("checkpoint_f32");
  save_checkpoint(full.path, model, test_vocabulary());
  for (const auto& [stored, name] : {std::pair{tensor_dtype::f16, std::string("F16")}, std::pair{tensor_dtype::bf16, std::string("BF16")}}) {
    CAPTURE(name);
    scratch_directory dir("checkpoint_" + name);
    save_checkpoint(dir.path, model, test_vocabulary(), std::nullopt, stored);
    const auto reader = safetensors_reader::open(dir.path / "model.safetensors");
    const auto full_reader = safetensors_reader::open(full.path / "model.safetensors");
    // Every tensor in the type asked for, in half the bytes of its F32 twin.
    REQUIRE(reader.tensors().size() == full_reader.tensors().size());
    for (const tensor_entry& t : reader.tensors()) {
      CAPTURE(t.name);
      CHECK(t.dtype == stored);
      const tensor_entry* twin = full_reader.find(t.name);
      REQUIRE(twin != nullptr);
      CHECK(2 * (t.end - t.begin) == twin->end - twin->begin);
    }
    bert_for_sequence_classification<float, test_shape> loaded(read_config(dir.path / "config.json").model);
    const load_report report = load_weights(dir.path, loaded);
    CHECK(report.initialised.empty());
    auto original = parameters_of(model), reread = parameters_of(loaded);
    REQUIRE(original.size() == reread.size());
    for (std::size_t i = 0; i < original.size(); ++i) {
      matrix<float> rounded = original[i]->value;
      for (index_t k = 0; k < rounded.size(); ++k) {
        const float v = rounded.data()[k];
        rounded.data()[k] = stored == tensor_dtype::f16 ? detail::half_to_float(detail::float_to_half(v))
                                                        : std::bit_cast<float>(std::uint32_t{detail::float_to_bfloat16(v)} << 16);
      }
      check_near(reread[i]->value, rounded, 0, original[i]->name.c_str());
    }
  }
  // A weight beyond F16's range is refused, not written as infinity; BF16 holds it.
  model.classifier.weight.value(0, 0) = 70000.0f;
  scratch_directory dir("checkpoint_f16_overflow");
  CHECK_THROWS_WITH_AS(save_checkpoint(dir.path, model, test_vocabulary(), std::nullopt, tensor_dtype::f16),
                       "safetensors_writer: tensor 'classifier.weight' holds 70000 at index 0, beyond the range of F16", io_error);
  CHECK_NOTHROW(save_checkpoint(dir.path, model, test_vocabulary(), std::nullopt, tensor_dtype::bf16));
  // A double beyond even float's range is refused for BF16 too, before any conversion.
  safetensors_writer doubles;
  const matrix<double> huge = matrix<double>::Constant(1, 2, 1e300);
  CHECK_THROWS_WITH_AS(doubles.add("huge", huge, {2}, tensor_dtype::bf16),
                       "safetensors_writer: tensor 'huge' holds 1e+300 at index 0, beyond the range of BF16", io_error);
  CHECK(weight_dtype_of("f16") == tensor_dtype::f16);
  CHECK_THROWS_WITH_AS(weight_dtype_of("fp16"), "weight type 'fp16' is not one of f32, f16, bf16", config_error);
}

TEST_CASE("checkpoint: a token classifier with exits round-trips, and loads as a plain token classifier with the exits unused") {
  scratch_directory dir("checkpoint_exits");
  bert_for_token_classification_with_exits<float, test_shape> model(test_config());
  rng random(4);
  model.initialise(random);
  save_checkpoint(dir.path, model, test_vocabulary());
  const checkpoint_config config = read_config(dir.path / "config.json");
  CHECK(config.architecture == "BertForTokenClassification");
  bert_for_token_classification_with_exits<float, test_shape> loaded(config.model);
  const load_report report = load_weights(dir.path, loaded);
  CHECK(report.initialised.empty());
  CHECK(report.unused.empty());
  check_same_parameters(loaded, model);
  bert_for_token_classification<float, test_shape> plain(config.model);
  const load_report plain_report = load_weights(dir.path, plain);
  CHECK(plain_report.initialised.empty());
  CHECK(plain_report.unused == std::vector<std::string>{"exits.0.bias", "exits.0.weight"});
  // A plain token classifier's checkpoint gives the exit model its encoder and last exit; the other
  // exits keep their initialisation.
  scratch_directory plain_dir("checkpoint_exits_plain");
  save_checkpoint(plain_dir.path, plain, test_vocabulary());
  bert_for_token_classification_with_exits<float, test_shape> from_plain(config.model);
  CHECK(load_weights(plain_dir.path, from_plain).initialised == std::vector<std::string>{"exits.0.weight", "exits.0.bias"});
}

TEST_CASE("checkpoint: a model saved with its slimming coefficients on reloads with them, computing the same logits") {
  scratch_directory dir("checkpoint_slimming");
  bert_for_sequence_classification<float, test_shape> model(test_config());
  rng random(5);
  model.initialise(random);
  model.bert.set_slimming(true);
  model.bert.layers[0].self_attention.coefficients.values.value << 0.25f, -1.5f;
  model.bert.layers[1].ffn.coefficients.values.value.setConstant(0.5f);
  save_checkpoint(dir.path, model, test_vocabulary());

  bert_for_sequence_classification<float, test_shape> loaded(read_config(dir.path / "config.json").model);
  const load_report report = load_weights(dir.path, loaded);
  CHECK(loaded.bert.slimming());
  CHECK(report.unused.empty());
  check_same_parameters(loaded, model);
  token_batch b;
  b.batch = 1;
  b.seq = 4;
  b.ids = {2, 5, 6, 3};
  b.type_ids.assign(4, 0);
  b.attention.assign(4, 1);
  tape<float> t1, t2;
  check_near(loaded.logits(t2, b, false, 0).value(), model.logits(t1, b, false, 0).value(), 0);
}

TEST_CASE("checkpoint: unstructured masks are saved beside their weights as '<layer>.weight_mask' and reload") {
  scratch_directory dir("checkpoint_weight_masks");
  bert_for_sequence_classification<float, test_shape> model(test_config());
  rng random(9);
  model.initialise(random);
  linear<float>& w1 = model.bert.layers[1].ffn.intermediate;
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(w1.weight.size()), 1);
  for (std::size_t i = 0; i < mask.size(); i += 3) mask[i] = 0;
  w1.set_weight_mask(mask);
  model.classifier.set_weight_mask(std::vector<std::uint8_t>(static_cast<std::size_t>(model.classifier.weight.size()), 0));
  save_checkpoint(dir.path, model, test_vocabulary());
  const auto file = safetensors_reader::open(dir.path / "model.safetensors");
  CHECK(file.find("bert.encoder.layer.1.intermediate.dense.weight_mask") != nullptr);
  CHECK(file.find("classifier.weight_mask") != nullptr);
  CHECK(file.find("bert.encoder.layer.0.intermediate.dense.weight_mask") == nullptr);  // no mask, no tensor

  bert_for_sequence_classification<float, test_shape> loaded(read_config(dir.path / "config.json").model);
  const load_report report = load_weights(dir.path, loaded);
  CHECK(report.unused.empty());
  check_same_parameters(loaded, model);
  const auto reread = loaded.bert.layers[1].ffn.intermediate.weight_mask();
  CHECK(std::vector<std::uint8_t>(reread.begin(), reread.end()) == mask);
  CHECK(loaded.classifier.masked_weights() == loaded.classifier.weight.size());
  CHECK_FALSE(loaded.bert.layers[0].ffn.intermediate.has_weight_mask());

  // A mask that is not 0/1 is refused, naming the tensor and the entry.
  safetensors_writer bad;
  model.for_each_parameter([&](parameter<float>& p) { bad.add(p.name, p.value, {p.rows(), p.cols()}); });
  matrix<float> half = matrix<float>::Constant(model.classifier.outputs(), model.classifier.inputs(), 0.5f);
  bad.add("classifier.weight_mask", half, {half.rows(), half.cols()});
  bad.write(dir.path / "model.safetensors");
  bert_for_sequence_classification<float, test_shape> refused(read_config(dir.path / "config.json").model);
  CHECK_THROWS_WITH_AS(load_weights(dir.path, refused), doctest::Contains("tensor 'classifier.weight_mask' holds 0.5 at (0, 0), expected a mask of 0 and 1"),
                       io_error);
}

TEST_CASE("checkpoint: load_weight_masks puts a checkpoint's masks on other weights, and refuses a checkpoint without masks") {
  scratch_directory dir("checkpoint_masks_only");
  bert_for_sequence_classification<float, test_shape> ticket(test_config());
  rng random(9);
  ticket.initialise(random);
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(ticket.bert.layers[0].ffn.output.weight.size()), 1);
  for (std::size_t i = 1; i < mask.size(); i += 2) mask[i] = 0;
  ticket.bert.layers[0].ffn.output.set_weight_mask(mask);
  save_checkpoint(dir.path, ticket, test_vocabulary());

  bert_for_sequence_classification<float, test_shape> other(test_config());
  rng another(10);
  other.initialise(another);
  const matrix<float> before = other.bert.layers[0].ffn.output.weight.value;
  load_weight_masks(dir.path, other);
  const auto& after = other.bert.layers[0].ffn.output.weight.value;
  for (index_t i = 0; i < after.size(); ++i) {
    CHECK(after.data()[i] == (mask[static_cast<std::size_t>(i)] != 0 ? before.data()[i] : 0.0f));  // its own weights, the ticket's mask
  }
  CHECK_FALSE(other.bert.layers[1].ffn.output.has_weight_mask());

  bert_for_sequence_classification<float, test_shape> dense(test_config());
  save_checkpoint(dir.path, dense, test_vocabulary());
  CHECK_THROWS_WITH_AS(load_weight_masks(dir.path, other), doctest::Contains("no weight masks"), io_error);
}

TEST_CASE("checkpoint: a pruned model records its structure in config.json and the metadata, and reloads") {
  scratch_directory dir("checkpoint_pruned");
  bert_for_masked_lm<float, test_shape> model(test_config());
  rng random(4);
  model.initialise(random);
  model.bert.layers[0].self_attention.structures().set_active(std::vector<std::uint8_t>{0, 1});
  std::vector<std::uint8_t> neurons(12, 1);
  neurons[3] = neurons[7] = 0;
  model.bert.layers[1].ffn.structures().set_active(neurons);
  for (auto& layer : model.bert.layers) {
    layer.self_attention.structures().compact();
    layer.ffn.structures().compact();
  }
  save_checkpoint(dir.path, model, test_vocabulary());

  const auto json = nlohmann::json::parse(read_file(dir.path / "config.json", "config"));
  CHECK(json["pruned_heads"] == nlohmann::json::parse(R"({"0": [0]})"));
  CHECK(json["earlybert_kept_heads"] == nlohmann::json::parse("[[1], [0, 1]]"));
  CHECK(json["earlybert_kept_ffn"][1] == nlohmann::json::parse("[0, 1, 2, 4, 5, 6, 8, 9, 10, 11]"));
  CHECK(safetensors_reader::open(dir.path / "model.safetensors").metadata().at("earlybert.kept_heads") == "[[1],[0,1]]");

  const checkpoint_config config = read_config(dir.path / "config.json");
  bert_for_masked_lm<float, test_shape> loaded(config.model);
  load_weights(dir.path, loaded);
  CHECK(loaded.bert.layers[0].self_attention.heads() == 1);
  CHECK(loaded.bert.layers[1].ffn.neurons() == 10);
  check_near(loaded.bert.layers[1].ffn.output.weight.value, model.bert.layers[1].ffn.output.weight.value, 0);

  // A masked-LM checkpoint initialises a classifier: the pooler and classifier are reported, cls.* unused.
  bert_config classifier_config = config.model;
  bert_for_sequence_classification<float, test_shape> classifier(classifier_config);
  const load_report report = load_weights(dir.path, classifier);
  CHECK(report.initialised == std::vector<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                         "classifier.weight", "classifier.bias"});
  CHECK(report.unused.size() == 5);
}

TEST_CASE("checkpoint: a layer with every head, or every FFN neuron, pruned saves and reloads, in the first layer as in the last") {
  // An empty tensor's offsets point where the next tensor starts: the overlap check must not see the
  // two as sharing bytes (it did for layer 0, whose order in the header put the empty tensor second).
  for (int layer : {0, 1}) {
    for (const bool heads : {true, false}) {
      CAPTURE(layer);
      CAPTURE(heads);
      scratch_directory dir("checkpoint_empty_layer");
      bert_for_sequence_classification<float, test_shape> model(test_config());
      rng random(6);
      model.initialise(random);
      auto& emptied = model.bert.layers[static_cast<std::size_t>(layer)];
      if (heads) {
        emptied.self_attention.structures().set_active(std::vector<std::uint8_t>(2, 0));
        emptied.self_attention.structures().compact();
      } else {
        emptied.ffn.structures().set_active(std::vector<std::uint8_t>(12, 0));
        emptied.ffn.structures().compact();
      }
      save_checkpoint(dir.path, model, test_vocabulary());
      if (heads) {
        CHECK(nlohmann::json::parse(read_file(dir.path / "config.json", "config"))["pruned_heads"] ==
              nlohmann::json{{std::to_string(layer), {0, 1}}});
      }
      bert_for_sequence_classification<float, test_shape> loaded(read_config(dir.path / "config.json").model);
      load_weights(dir.path, loaded);
      const auto& reloaded = loaded.bert.layers[static_cast<std::size_t>(layer)];
      CHECK((heads ? reloaded.self_attention.heads() : reloaded.ffn.neurons()) == 0);
      check_same_parameters(loaded, model);
    }
  }
}

TEST_CASE("safetensors: an empty tensor overlaps nothing, wherever its offsets point") {
  scratch_directory dir("safetensors_empty");
  const fs::path path = dir.path / "empty.safetensors";
  // The empty tensor before, at and after the start of a full one, in either order in the header.
  for (const char* header : {R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})",
                             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[4,0],"data_offsets":[4,4]}})",
                             R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})"}) {
    CAPTURE(header);
    write_raw(path, header, 8);
    const safetensors_reader file = safetensors_reader::open(path);
    CHECK(file.tensors().size() == 2);
    matrix<float> empty(0, 4);
    if (file.find("e")->shape == std::vector<std::int64_t>{0, 4}) CHECK_NOTHROW(file.read("e", empty));
  }
}

TEST_CASE("checkpoint: config.json errors name the file and the key") {
  scratch_directory dir("checkpoint_config");
  const fs::path path = dir.path / "config.json";
  const std::string p = path.string();
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2})");
  CHECK_THROWS_WITH_AS(read_config(path), fmt::format("config '{}': key 'intermediate_size' is missing", p).c_str(), io_error);
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 12, "vocab_size": 5})");
  CHECK_THROWS_WITH_AS(read_config(path),
                       fmt::format("config '{}': hidden_size 8, num_hidden_layers 2, num_attention_heads 3 and intermediate_size "
                                   "12 do not describe a BERT (all positive, heads dividing hidden)", p).c_str(), io_error);
  write_file_atomically(path, R"({"hidden_size": "8"})");
  CHECK_THROWS_WITH_AS(read_config(path),
                       fmt::format("config '{}': key 'hidden_size' is \"8\", expected a whole number from -2147483648 to 2147483647", p).c_str(),
                       io_error);
  // Numbers a plain cast would truncate or turn into undefined behaviour.
  write_file_atomically(path, R"({"hidden_size": 5.55556e+76})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("key 'hidden_size' is 5.55556e+76, expected a whole number"), io_error);
  write_file_atomically(path, R"({"hidden_size": 8.5})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("key 'hidden_size' is 8.5, expected a whole number"), io_error);
  write_file_atomically(path, R"({"hidden_size": 8.0, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5})");
  CHECK(read_config(path).model.hidden == 8);
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5,
                                  "earlybert_format": {"version": 1e300}})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("earlybert checkpoint format version 1e+300, expected 1"), io_error);
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5,
                                  "pruned_heads": {"1": "0"}})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("pruned_heads['1'] is \"0\", expected a list of whole numbers"), io_error);
  // pruned_heads naming a layer or a head the model does not have (HuggingFace's own key, read alone).
  const std::string shape = R"("hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5)";
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": {"2": [0]}})");
  CHECK_THROWS_WITH_AS(read_config(path), fmt::format("config '{}': pruned_heads names layer '2', expected a layer index in [0, 2)", p).c_str(), io_error);
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": {"01": [0]}})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("pruned_heads names layer '01'"), io_error);
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": {"1": [2]}})");
  CHECK_THROWS_WITH_AS(read_config(path), fmt::format("config '{}': pruned_heads['1'] removes head 2, expected a head in [0, 2)", p).c_str(), io_error);
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": [[0]]})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("key 'pruned_heads' is [[0]], expected an object {\"layer\": [removed heads]}"), io_error);
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": {"1": [0, 1]}})");
  CHECK(read_config(path).model.kept_heads == std::vector<std::vector<index_t>>{{0, 1}, {}});
  write_file_atomically(path, "{" + shape + R"(, "pruned_heads": {}})");
  CHECK(read_config(path).model.kept_heads.empty());
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5,
                                  "earlybert_kept_ffn": [[0, 1], [0, 1.5]]})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("key 'earlybert_kept_ffn'[1][1] is 1.5, expected a whole number"), io_error);
  // Sizes whose kept structure could not be allocated are refused before it is built.
  write_file_atomically(path, R"({"hidden_size": 2000000000, "num_hidden_layers": 2000000000, "num_attention_heads": 2000000000,
                                  "intermediate_size": 2000000000, "vocab_size": 5, "pruned_heads": {"0": [1]}})");
  CHECK_THROWS_WITH_AS(read_config(path), doctest::Contains("expected at most 16777216 heads and neurons in all"), io_error);
  // Any shape is built as the config says, so sizes whose weights could not be held are refused too.
  write_file_atomically(path, R"({"hidden_size": 1048576, "num_hidden_layers": 1, "num_attention_heads": 1,
                                  "intermediate_size": 1, "vocab_size": 5})");
  CHECK_THROWS_WITH_AS(read_config(path), fmt::format("config '{}': the sizes describe 4.4e+12 weights, expected at most 4e+09", p).c_str(),
                       io_error);
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5, "hidden_act": "relu"})");
  CHECK_THROWS_WITH_AS(read_config(path),
                       fmt::format("config '{}': hidden_act is 'relu', expected 'gelu' (the exact erf form, the only one implemented)", p).c_str(),
                       io_error);
  write_file_atomically(path, R"({"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 5, "hidden_dropout_prob": 1.5})");
  CHECK_THROWS_WITH_AS(read_config(path),
                       fmt::format("config '{}': bert_config: 'hidden_dropout_prob' is 1.5, expected a value in [0, 1)", p).c_str(), io_error);
  write_file_atomically(path, "{not json");
  CHECK_THROWS_AS(read_config(path), io_error);
}

TEST_CASE("checkpoint: a config.json describing fewer layers than the weights loads the first layers and reports the rest as unread") {
  scratch_directory dir("checkpoint_fewer_layers");
  bert_for_sequence_classification<float, test_shape> model(test_config());
  rng random(8);
  model.initialise(random);
  save_checkpoint(dir.path, model, test_vocabulary());
  bert_config shallower = read_config(dir.path / "config.json").model;
  shallower.layers = 1;
  bert_for_sequence_classification<float, shapes::any> loaded(shallower);
  const load_report report = load_weights(dir.path, loaded);
  CHECK(report.unread_layers == std::vector<int>{1});
  CHECK(report.unused.size() == 16);  // every tensor of layer 1
  for (const auto& name : report.unused) CHECK(name.starts_with("bert.encoder.layer.1."));
  CHECK(report.initialised.empty());
  check_near(loaded.bert.layers[0].ffn.output.weight.value, model.bert.layers[0].ffn.output.weight.value, 0);
  CHECK(detail::encoder_layer_of("encoder.layer.12.output.dense.weight") == 12);
  CHECK(detail::encoder_layer_of("bert.encoder.layer.x.output") == -1);
  CHECK(detail::encoder_layer_of("bert.pooler.dense.weight") == -1);
}

TEST_CASE("checkpoint: tokenizer_config.json keeps lower-casing and the longest input, as BertTokenizer reads them") {
  scratch_directory dir("checkpoint_tokenizer");
  bert_for_sequence_classification<float, test_shape> model(test_config());
  save_checkpoint(dir.path, model, test_vocabulary());  // defaults: the vocabulary's casing, max_positions
  const auto j = nlohmann::json::parse(read_file(dir.path / "tokenizer_config.json", "tokenizer config"));
  CHECK(j["tokenizer_class"] == "BertTokenizer");
  CHECK(j["do_lower_case"] == test_vocabulary().looks_uncased());
  CHECK(j["model_max_length"] == 6);
  save_checkpoint(dir.path, model, test_vocabulary(), tokenizer_settings{false, 5});
  const std::optional<tokenizer_settings> read = read_tokenizer_config(dir.path, {true, 128});
  REQUIRE(read.has_value());
  CHECK_FALSE(read->lower_case);
  CHECK(read->max_length == 5);
  // Absent: nothing; HuggingFace's "no limit" (1e30 as an integer it cannot be; a huge one) keeps the fallback length.
  CHECK_FALSE(read_tokenizer_config(dir.path / "elsewhere", {true, 128}).has_value());
  write_file_atomically(dir.path / "tokenizer_config.json", R"({"do_lower_case": true, "model_max_length": 1000000000000000019})");
  CHECK(read_tokenizer_config(dir.path, {false, 128})->max_length == 128);
  write_file_atomically(dir.path / "tokenizer_config.json", R"({"do_lower_case": "yes"})");
  CHECK_THROWS_WITH_AS(read_tokenizer_config(dir.path, {true, 128}),
                       fmt::format("tokenizer config '{}': key 'do_lower_case' is \"yes\", expected true or false",
                                   (dir.path / "tokenizer_config.json").string()).c_str(),
                       io_error);
}
