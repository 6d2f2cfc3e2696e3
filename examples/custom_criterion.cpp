// SPDX-License-Identifier: Apache-2.0
// A criterion of your own, plugged into the EarlyBERT pipeline without touching a library header.
//
// The library's criteria (slimming, magnitude, gradient, Taylor, random) are types that model the
// concept importance_criterion: score(model) returns a score per head and per FFN neuron, higher is
// kept. Any type with that member works. This one scores a structure by how much it writes into the
// residual stream: the L2 norm of its outgoing slices (the weights that read what it computed). It
// never names a weight matrix: score_each_member() visits every member of every prunable family
// (heads, FFN neurons), and the family hands over the member's slices. It also models
// gradient_observer to count how often the pipeline shows it gradients.
//
// The task is synthetic so that the program needs no data: sequences of random tokens, labelled by
// whether token 3 occurs. The pipeline searches with slimming coefficients, the detector fires when
// the masks stop changing, the ticket is drawn with this criterion's scores and trained.
//
// Usage: custom_criterion [--seed S]

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <earlybert/earlybert.hpp>

namespace eb = earlybert;

namespace {

// ---- The criterion: written here, outside the library ------------------------------------------

struct output_norm_criterion {
  long gradients_seen = 0;

  template <class Scalar, class Shape>
  eb::structure_scores score(const eb::bert_model<Scalar, Shape>& model) const {
    return eb::score_each_member(model, [](const eb::structure_family<Scalar>& family, eb::index_t member) {
      double written = 0;
      family.for_each_slice(member, [&](const eb::member_slice<Scalar>& slice) {
        if (slice.role == eb::slice_role::outgoing) written += slice.value.template cast<double>().squaredNorm();
      });
      return std::sqrt(written);
    });
  }

  // Optional: called after every backward pass of the search.
  template <class Scalar, class Shape>
  void observe(const eb::bert_model<Scalar, Shape>&) {
    ++gradients_seen;
  }
};

using shape = eb::bert_shape<2, 64, 4, 256>;
using model_type = eb::bert_for_sequence_classification<float, shape>;
static_assert(eb::importance_criterion<output_norm_criterion, eb::bert_model<float, shape>>);
static_assert(eb::gradient_observer<output_norm_criterion, eb::bert_model<float, shape>>);

// ---- The task: the pipeline's view of the data (models earlybert_task) -------------------------

struct token_three_task {
  eb::token_batch batch;
  eb::token_batch held_out;

  // A batch of 32 sequences of 12 tokens ([CLS] then 2..19), a function of the stage and step.
  static eb::token_batch make(std::uint64_t key) {
    eb::rng random(key);
    eb::token_batch b;
    b.batch = 32;
    b.seq = 12;
    for (eb::index_t s = 0; s < b.batch; ++s) {
      bool has_three = false;
      for (eb::index_t i = 0; i < b.seq; ++i) {
        const auto id = static_cast<eb::token_id>(i == 0 ? 1 : 2 + random.below(18));
        has_three = has_three || id == 3;
        b.ids.push_back(id);
        b.type_ids.push_back(0);
        b.attention.push_back(1);
      }
      b.labels.push_back(has_three ? 1 : 0);
    }
    return b;
  }

  eb::var<float> loss(eb::tape<float>& t, model_type& model, eb::pipeline_stage stage, long step, int) {
    batch = make(eb::derive_key(static_cast<std::uint64_t>(stage) + 1, static_cast<std::uint64_t>(step)));
    return model.loss(t, model.logits(t, batch, true, eb::derive_key(7, static_cast<std::uint64_t>(step))), batch);
  }
  double last_forward_flops(const model_type& model) const { return model.forward_flops(batch); }
  void on_step(eb::pipeline_stage, long, long, const eb::step_report&) {}
  void on_event(const nlohmann::ordered_json& event) {
    if (event["event"] == "eb_check") fmt::print("  check at step {:>3}: {}\n", event["step"].get<long>(), event.dump());
  }
};

double accuracy(model_type& model, const eb::token_batch& b) {
  eb::tape<float> t;
  eb::no_recording<float> inference(t);
  const auto logits = model.logits(t, b, false, 0);
  int correct = 0;
  for (eb::index_t r = 0; r < logits.rows(); ++r) {
    correct += (logits.value()(r, 1) > logits.value()(r, 0) ? 1 : 0) == b.labels[static_cast<std::size_t>(r)];
  }
  return static_cast<double>(correct) / static_cast<double>(logits.rows());
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  eb::bert_config config = eb::bert_config::for_shape<shape>(20);
  config.max_positions = 16;
  model_type model(config);
  eb::rng random(seed);
  model.initialise(random);

  eb::earlybert_options options;
  options.check_interval = 10;
  options.search_budget = 200;
  options.search_schedule_steps = 400;
  options.search.learning_rate = 1e-3;
  options.restart_from = eb::restart_point::draw;
  options.efficient_steps = 200;
  options.efficient.learning_rate = 1e-3;

  output_norm_criterion criterion;
  eb::mask_distance_detector detector(5, 0.1);
  eb::ticket_selector selector;  // heads layerwise 1/3, FFN global 40%
  token_three_task task;
  fmt::print("EarlyBERT with a criterion defined in this file (W_O / W_2 column norms):\n");
  const eb::earlybert_report report = eb::run_earlybert(model, criterion, selector, detector, options, task, 12);

  fmt::print("ticket drawn at step {} ({}), after {} gradients seen by the criterion\n", report.ticket_step,
             report.detected ? "the masks settled" : "search budget reached", criterion.gradients_seen);
  fmt::print("heads kept per layer {}, FFN neurons kept per layer {}, encoder FLOPs ratio {:.3f}\n",
             report.ticket.heads_kept(), report.ticket.neurons_kept(), report.encoder_flops_ratio);
  const double held_out = accuracy(model, token_three_task::make(12345));
  fmt::print("held-out accuracy of the trained ticket: {:.3f}\n", held_out);
  return held_out > 0.5 ? EXIT_SUCCESS : EXIT_FAILURE;
}
