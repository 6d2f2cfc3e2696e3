// SPDX-License-Identifier: Apache-2.0
#pragma once
// Importance criteria: a score for every head and FFN neuron a BERT holds; higher = keep.
//
// The importance_criterion concept: score(model) -> structure_scores, for a bert_model. A criterion
// that learns from gradients also models gradient_observer: observe(model) is called after every
// backward pass of the search (before the optimizer step clears the gradients). A user's own type
// plugs in by modelling the concepts; examples/custom_criterion.cpp shows one written outside the
// library.
//
//   slimming_criterion   the slimming coefficient c (EarlyBERT, Chen et al. 2021); the official code
//                        ranks the signed value (a negative coefficient is least important), |c| is
//                        the alternative
//   magnitude_criterion  head h: |W_Q[h]|^2 + |W_K[h]|^2 + |W_V[h]|^2 + |W_O[:, h]|^2;
//                        neuron j: |W_1[j, :]|^2 + b_1[j]^2 + |W_2[:, j]|^2
//   gradient_criterion   Michel, Levy and Neubig 2019 ("Are Sixteen Heads Really Better than One?"):
//                        sum over batches of |dL/dc| for a gate c = 1 on each head (the slimming
//                        coefficient at 1 is that gate), normalised per layer by its L2 norm; neurons
//                        the same, without the normalisation (they are ranked globally)
//   taylor_criterion     first-order Taylor (Molchanov et al. 2017): sum over batches of
//                        |sum over the structure's weights of w dL/dw|
//   random_criterion     U(0, 1) from a seed: the random ticket, the paper's main baseline
// Gradient-based criteria read the gradient of the whole search loss, L1 penalty included (at the
// default lambda of 1e-4 it is a negligible share).
//
// A criterion that accumulates what it observes also models resumable_criterion: state() returns it
// as JSON and restore() takes it back, so that an interrupted search resumes exactly
// (train/training_state.hpp). A criterion without state needs neither.

#include <cmath>
#include <concepts>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/nn/bert.hpp"
#include "earlybert/prune/structures.hpp"

namespace earlybert {

template <class C, class Model>
concept importance_criterion = requires(C& c, Model& model) {
  { c.score(model) } -> std::same_as<structure_scores>;
};

template <class C, class Model>
concept gradient_observer = requires(C& c, Model& model) { c.observe(model); };

template <class C>
concept resumable_criterion = requires(C& c, const C& cc, const nlohmann::json& state) {
  { cc.state() } -> std::convertible_to<nlohmann::ordered_json>;
  c.restore(state);
};

namespace detail {
// Squared norms and dot products over a block of rows or columns, accumulated in double.
template <class Scalar>
double squared_rows(const matrix<Scalar>& m, index_t begin, index_t count) {
  return m.middleRows(begin, count).template cast<double>().squaredNorm();
}
template <class Scalar>
double squared_cols(const matrix<Scalar>& m, index_t begin, index_t count) {
  return m.middleCols(begin, count).template cast<double>().squaredNorm();
}
template <class Scalar>
double dot_rows(const matrix<Scalar>& a, const matrix<Scalar>& b, index_t begin, index_t count) {
  return (a.middleRows(begin, count).template cast<double>().array() * b.middleRows(begin, count).template cast<double>().array()).sum();
}
template <class Scalar>
double dot_cols(const matrix<Scalar>& a, const matrix<Scalar>& b, index_t begin, index_t count) {
  return (a.middleCols(begin, count).template cast<double>().array() * b.middleCols(begin, count).template cast<double>().array()).sum();
}

// Accumulated scores as JSON ({"heads": [[...] per layer], "neurons": [...]}) and back; doubles
// round-trip exactly through nlohmann::json's shortest representation.
inline nlohmann::ordered_json scores_json(const structure_scores& s) { return {{"heads", s.heads}, {"neurons", s.neurons}}; }
inline structure_scores scores_from_json(const nlohmann::json& j) {
  structure_scores s;
  if (j.is_null()) return s;
  try {
    s.heads = j.at("heads").get<per_layer_scores>();
    s.neurons = j.at("neurons").get<per_layer_scores>();
  } catch (const nlohmann::json::exception& e) {
    throw io_error(fmt::format("criterion state: expected {{\"heads\": [[...]], \"neurons\": [[...]]}} ({})", e.what()));
  }
  return s;
}

// Scores of zero for every structure the model holds.
template <class Scalar, class Shape>
structure_scores zero_scores(const bert_model<Scalar, Shape>& model) {
  structure_scores s;
  for (const auto& layer : model.layers) {
    s.heads.emplace_back(static_cast<std::size_t>(layer.self_attention.heads()), 0.0);
    s.neurons.emplace_back(static_cast<std::size_t>(layer.ffn.neurons()), 0.0);
  }
  return s;
}

template <class Scalar, class Shape>
void require_slimming(const bert_model<Scalar, Shape>& model, const char* criterion) {
  if (!model.slimming()) {
    throw config_error(fmt::format("{}: the model has no slimming coefficients (set_slimming(true) before the search)", criterion));
  }
}
}  // namespace detail

struct slimming_criterion {
  bool absolute = false;  // false: the signed coefficient (the official code); true: |c|

  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& model) const {
    detail::require_slimming(model, "slimming_criterion");
    structure_scores s;
    for (const auto& layer : model.layers) {
      const auto read = [&](const parameter<Scalar>& c) {
        std::vector<double> v;
        for (index_t i = 0; i < c.cols(); ++i) v.push_back(absolute ? std::abs(double(c.value(0, i))) : double(c.value(0, i)));
        return v;
      };
      s.heads.push_back(read(layer.self_attention.coefficients.values));
      s.neurons.push_back(read(layer.ffn.coefficients.values));
    }
    return s;
  }
};

struct magnitude_criterion {
  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& model) const {
    structure_scores s;
    constexpr index_t d = Shape::head_dim;
    for (const auto& layer : model.layers) {
      const auto& a = layer.self_attention;
      std::vector<double> heads;
      for (index_t h = 0; h < a.heads(); ++h) {
        heads.push_back(detail::squared_rows(a.query.weight.value, h * d, d) + detail::squared_rows(a.key.weight.value, h * d, d) +
                        detail::squared_rows(a.value.weight.value, h * d, d) + detail::squared_cols(a.output.weight.value, h * d, d));
      }
      const auto& f = layer.ffn;
      std::vector<double> neurons;
      for (index_t j = 0; j < f.neurons(); ++j) {
        const double bias = f.intermediate.bias.value(0, j);
        neurons.push_back(detail::squared_rows(f.intermediate.weight.value, j, 1) + bias * bias +
                          detail::squared_cols(f.output.weight.value, j, 1));
      }
      s.heads.push_back(std::move(heads));
      s.neurons.push_back(std::move(neurons));
    }
    return s;
  }
};

struct gradient_criterion {
  structure_scores accumulated;

  nlohmann::ordered_json state() const { return detail::scores_json(accumulated); }
  void restore(const nlohmann::json& state) { accumulated = detail::scores_from_json(state); }

  template <class Scalar, class Shape>
  void observe(bert_model<Scalar, Shape>& model) {
    detail::require_slimming(model, "gradient_criterion");
    if (accumulated.heads.size() != model.layers.size()) accumulated = detail::zero_scores(model);
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const auto& a = model.layers[l].self_attention.coefficients.values.gradient;
      const auto& f = model.layers[l].ffn.coefficients.values.gradient;
      for (index_t h = 0; h < a.cols(); ++h) accumulated.heads[l][static_cast<std::size_t>(h)] += std::abs(double(a(0, h)));
      for (index_t j = 0; j < f.cols(); ++j) accumulated.neurons[l][static_cast<std::size_t>(j)] += std::abs(double(f(0, j)));
    }
  }

  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& model) {
    if (accumulated.heads.size() != model.layers.size()) accumulated = detail::zero_scores(model);
    structure_scores s = accumulated;
    for (auto& layer : s.heads) {
      double norm = 0;
      for (double v : layer) norm += v * v;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (double& v : layer) v /= norm;
      }
    }
    return s;
  }
};

struct taylor_criterion {
  structure_scores accumulated;

  nlohmann::ordered_json state() const { return detail::scores_json(accumulated); }
  void restore(const nlohmann::json& state) { accumulated = detail::scores_from_json(state); }

  template <class Scalar, class Shape>
  void observe(bert_model<Scalar, Shape>& model) {
    constexpr index_t d = Shape::head_dim;
    if (accumulated.heads.size() != model.layers.size()) accumulated = detail::zero_scores(model);
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const auto& a = model.layers[l].self_attention;
      for (index_t h = 0; h < a.heads(); ++h) {
        double total = detail::dot_cols(a.output.weight.value, a.output.weight.gradient, h * d, d);
        for (const linear<Scalar>* p : {&a.query, &a.key, &a.value}) {
          total += detail::dot_rows(p->weight.value, p->weight.gradient, h * d, d) +
                   detail::dot_cols(p->bias.value, p->bias.gradient, h * d, d);
        }
        accumulated.heads[l][static_cast<std::size_t>(h)] += std::abs(total);
      }
      const auto& f = model.layers[l].ffn;
      for (index_t j = 0; j < f.neurons(); ++j) {
        const double total = detail::dot_rows(f.intermediate.weight.value, f.intermediate.weight.gradient, j, 1) +
                             double(f.intermediate.bias.value(0, j)) * double(f.intermediate.bias.gradient(0, j)) +
                             detail::dot_cols(f.output.weight.value, f.output.weight.gradient, j, 1);
        accumulated.neurons[l][static_cast<std::size_t>(j)] += std::abs(total);
      }
    }
  }

  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& model) {
    if (accumulated.heads.size() != model.layers.size()) accumulated = detail::zero_scores(model);
    return accumulated;
  }
};

struct random_criterion {
  std::uint64_t seed = 0;

  template <class Scalar, class Shape>
  structure_scores score(bert_model<Scalar, Shape>& model) const {
    const counter_rng random(derive_key(seed, 0x7a11e7));
    structure_scores s;
    std::uint64_t counter = 0;
    for (const auto& layer : model.layers) {
      std::vector<double> heads, neurons;
      for (index_t h = 0; h < layer.self_attention.heads(); ++h) heads.push_back(random.uniform(counter++));
      for (index_t j = 0; j < layer.ffn.neurons(); ++j) neurons.push_back(random.uniform(counter++));
      s.heads.push_back(std::move(heads));
      s.neurons.push_back(std::move(neurons));
    }
    return s;
  }
};

static_assert(importance_criterion<slimming_criterion, bert_model<float, shapes::tiny>>);
static_assert(importance_criterion<magnitude_criterion, bert_model<float, shapes::tiny>>);
static_assert(importance_criterion<gradient_criterion, bert_model<float, shapes::tiny>>);
static_assert(gradient_observer<gradient_criterion, bert_model<float, shapes::tiny>>);
static_assert(importance_criterion<taylor_criterion, bert_model<float, shapes::tiny>>);
static_assert(gradient_observer<taylor_criterion, bert_model<float, shapes::tiny>>);
static_assert(resumable_criterion<gradient_criterion> && resumable_criterion<taylor_criterion>);
static_assert(importance_criterion<random_criterion, bert_model<float, shapes::tiny>>);
static_assert(!gradient_observer<random_criterion, bert_model<float, shapes::tiny>>);

}  // namespace earlybert
