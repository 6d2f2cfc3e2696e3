// SPDX-License-Identifier: Apache-2.0
// What a compile-time shape buys in speed: a training step (forward, backward, AdamW) of the same
// classifier built as bert_for_sequence_classification<float, shapes::X> and as <float, shapes::any>
// from the same configuration, the two interleaved step by step so that they share the machine's state;
// the table gives each one's median and their ratio.
//
// Usage: fixed_vs_dynamic_shape [--shape tiny|mini] [--batch B] [--seq S] [--steps N] [--threads T]

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <earlybert/earlybert.hpp>

#include "timing.hpp"

namespace eb = earlybert;
using eb::index_t;
using eb::bench::median;

namespace {

// One model, its optimizer and tape: step() times one training step.
template <class Shape>
class stepper {
 public:
  stepper(const eb::bert_config& config, std::uint64_t seed)
      : model_(config) {
    eb::rng random(seed);
    model_.initialise(random);
    parameters_ = eb::parameters_of(model_);
  }
  double step(const eb::token_batch& b) {
    return eb::bench::seconds([&] {
      tape_.rewind();
      const eb::var<float> loss = model_.loss(tape_, model_.logits(tape_, b, true, 1), b);
      tape_.backward(loss);
      optimizer_.step(parameters_, 1e-4);
    });
  }
  float first_logit(const eb::token_batch& b) {
    tape_.rewind();
    eb::no_recording<float> inference(tape_);
    return model_.logits(tape_, b, false, 0).value()(0, 0);
  }

 private:
  eb::bert_for_sequence_classification<float, Shape> model_;
  std::vector<eb::parameter<float>*> parameters_;
  eb::adamw<float> optimizer_;
  eb::tape<float> tape_;
};

template <class Fixed>
int compare(const std::string& name, index_t batch, index_t seq, int steps) {
  const eb::bert_config config = eb::bert_config::for_shape<Fixed>(30522);
  eb::token_batch b;
  b.batch = batch;
  b.seq = seq;
  eb::rng random(3);
  for (index_t i = 0; i < batch * seq; ++i) {
    b.ids.push_back(static_cast<eb::token_id>(1000 + random.below(20000)));
    b.type_ids.push_back(0);
    b.attention.push_back(1);
  }
  for (index_t i = 0; i < batch; ++i) b.labels.push_back(static_cast<eb::token_id>(random.below(2)));

  stepper<Fixed> fixed(config, 11);
  stepper<eb::shapes::any> dynamic(config, 11);
  std::vector<double> fixed_s, dynamic_s;
  for (int s = 0; s < steps + 2; ++s) {  // the first two steps warm the arenas and caches
    const double f = fixed.step(b), d = dynamic.step(b);
    if (s >= 2) {
      fixed_s.push_back(f);
      dynamic_s.push_back(d);
    }
  }
  fmt::print("shape {} ({}/{}/{}/{}), batch {} x seq {}, {} steps each, interleaved\n", name, config.layers, config.hidden,
             config.heads, config.ffn, batch, seq, steps);
  fmt::print("  bert_shape (fixed)  median step {:8.2f} ms\n", 1e3 * median(fixed_s));
  fmt::print("  shapes::any         median step {:8.2f} ms\n", 1e3 * median(dynamic_s));
  fmt::print("  any / fixed         {:.3f}\n", median(dynamic_s) / median(fixed_s));
  fmt::print("  the same weights after {} steps: {}\n", steps + 2, fixed.first_logit(b) == dynamic.first_logit(b) ? "yes" : "NO");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "mini";
  long batch = 8, seq = 128, steps = 20, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--shape") shape = argv[i + 1];
    else if (flag == "--batch") batch = std::atol(argv[i + 1]);
    else if (flag == "--seq") seq = std::atol(argv[i + 1]);
    else if (flag == "--steps") steps = std::atol(argv[i + 1]);
    else if (flag == "--threads") threads = std::atol(argv[i + 1]);
  }
  if (batch < 1 || seq < 3 || seq > 512 || steps < 1 || threads < 1) {
    fmt::print(stderr, "error: fixed_vs_dynamic_shape: --batch, --steps and --threads must be at least 1, --seq in [3, 512]\n");
    return 1;
  }
  eb::set_num_threads(static_cast<int>(threads));
  if (shape == "tiny") return compare<eb::shapes::tiny>(shape, batch, seq, static_cast<int>(steps));
  if (shape == "mini") return compare<eb::shapes::mini>(shape, batch, seq, static_cast<int>(steps));
  fmt::print(stderr, "error: fixed_vs_dynamic_shape: --shape is '{}', expected tiny or mini\n", shape);
  return 1;
}
