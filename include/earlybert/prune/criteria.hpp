// SPDX-License-Identifier: Apache-2.0
#pragma once
// Importance criteria: a score for every head and FFN neuron a BERT holds; higher = keep.
//
// The importance_criterion concept: score(model) -> structure_scores, for a bert_model. A criterion
// that learns from gradients also models gradient_observer: observe(model) is called after every
// backward pass of the search (before the optimizer step clears the gradients). A user's own type
// plugs in by modelling the concepts; examples/custom_criterion.cpp shows one written outside the
// library. Criteria read structures through their families (nn/structure.hpp): score_each_member()
// calls a function of (family, member) for every member the model holds, and a family gives the
// member's slices, its squared norm, its w . dL/dw and its slimming coefficient.
//
//   slimming_criterion   the slimming coefficient c (EarlyBERT, Chen et al. 2021); the official code
//                        ranks the signed value (a negative coefficient is least important), |c| is
//                        the alternative
//   magnitude_criterion  the squared norm of all the structure's parameters: head h:
//                        |W_Q[h]|^2 + |b_Q[h]|^2 + ... + |W_O[:, h]|^2; neuron j:
//                        |W_1[j, :]|^2 + b_1[j]^2 + |W_2[:, j]|^2
//   gradient_criterion   Michel, Levy and Neubig 2019 ("Are Sixteen Heads Really Better than One?"):
//                        sum over batches of |dL/dc| for a gate c = 1 on each head (the slimming
//                        coefficient at 1 is that gate), normalised per layer by its L2 norm; neurons
//                        the same, without the normalisation (they are ranked globally)
//   taylor_criterion     first-order Taylor (Molchanov et al. 2017): sum over batches of
//                        |sum over the structure's parameters of w dL/dw|
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
#include <type_traits>
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

namespace detail {
// Whether C has a member named `observe` of any kind: a plain function, an overload set or a member
// template. The probe inherits C and a class with an `observe` of its own, so that `&probe::observe`
// is ambiguous, and so ill-formed, exactly when C declares one too (a final class cannot be inherited:
// there only a plain member function is seen).
struct observe_fallback {
  int observe;
};
template <class C>
struct observe_probe : C, observe_fallback {};
template <class C>
concept declares_observe = std::is_class_v<C> && (std::is_final_v<C> ? requires { &C::observe; } : !requires { &observe_probe<C>::observe; });
}  // namespace detail

// A criterion declares observe() that the pipeline could not call with the bert_model: one written for
// the task model, say, as a plain function or as a template (observe(bert_for_sequence_classification<S,
// Sh>&)). Caught at compile time by check_criterion, because an observer never called scores every
// structure 0 and the ticket falls back to index order.
template <class C, class Model>
concept misdeclared_observer = detail::declares_observe<C> && !gradient_observer<C, Model>;

// The compile-time checks a pipeline applies to a criterion for a bert_model type `Model`.
template <class C, class Model>
consteval void check_criterion() {
  static_assert(importance_criterion<C, Model>,
                "earlybert: the criterion must model importance_criterion: score(const bert_model&) -> structure_scores");
  static_assert(!misdeclared_observer<C, Model>,
                "earlybert: the criterion's observe() cannot take the bert_model, so it would never be called: declare "
                "observe(const bert_model<Scalar, Shape>&) (the pipeline passes model.bert, not the task model)");
}

template <class C>
concept resumable_criterion = requires(C& c, const C& cc, const nlohmann::json& state) {
  { cc.state() } -> std::convertible_to<nlohmann::ordered_json>;
  c.restore(state);
};

// Scores every member of every family the model holds: score_of(family, member) -> double, called
// family by family in the model's order (layer by layer, heads before neurons) and member by member.
// The building block of a criterion (examples/custom_criterion.cpp).
template <class Scalar, class Shape, class ScoreOf>
structure_scores score_each_member(const bert_model<Scalar, Shape>& model, ScoreOf&& score_of) {
  structure_scores s;
  model.for_each_family([&](const structure_family<Scalar>& family) {
    std::vector<double> scores;
    scores.reserve(static_cast<std::size_t>(family.size()));
    for (index_t member = 0; member < family.size(); ++member) scores.push_back(static_cast<double>(score_of(family, member)));
    s.of(family.kind()).push_back(std::move(scores));
  });
  return s;
}

namespace detail {
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
  return score_each_member(model, [](const structure_family<Scalar>&, index_t) { return 0.0; });
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
  structure_scores score(const bert_model<Scalar, Shape>& model) const {
    detail::require_slimming(model, "slimming_criterion");
    return score_each_member(model, [&](const structure_family<Scalar>& family, index_t member) {
      const double c = family.coefficients().value(0, member);
      return absolute ? std::abs(c) : c;
    });
  }
};

struct magnitude_criterion {
  template <class Scalar, class Shape>
  structure_scores score(const bert_model<Scalar, Shape>& model) const {
    return score_each_member(model, [](const structure_family<Scalar>& family, index_t member) { return family.squared_norm(member); });
  }
};

namespace detail {
// What the gradient and Taylor criteria share: per-member sums over the search's backward passes,
// which are their resumable state.
struct accumulating_criterion {
  structure_scores accumulated;

  nlohmann::ordered_json state() const { return scores_json(accumulated); }
  void restore(const nlohmann::json& state) { accumulated = scores_from_json(state); }

 protected:
  // Adds score_of(family, member) to every member's sum (the sums start at zero for the structure
  // the model holds).
  template <class Scalar, class Shape, class ScoreOf>
  void add(const bert_model<Scalar, Shape>& model, ScoreOf&& score_of) {
    sums(model);
    model.for_each_family([&](const structure_family<Scalar>& family) {
      std::vector<double>& layer_sums = accumulated.of(family.kind())[static_cast<std::size_t>(family.layer())];
      for (index_t member = 0; member < family.size(); ++member) layer_sums[static_cast<std::size_t>(member)] += score_of(family, member);
    });
  }
  // The sums so far (zero before the first backward pass).
  template <class Scalar, class Shape>
  const structure_scores& sums(const bert_model<Scalar, Shape>& model) {
    if (accumulated.heads.size() != model.layers.size()) accumulated = zero_scores(model);
    return accumulated;
  }
};
}  // namespace detail

struct gradient_criterion : detail::accumulating_criterion {
  template <class Scalar, class Shape>
  void observe(const bert_model<Scalar, Shape>& model) {
    detail::require_slimming(model, "gradient_criterion");
    add(model, [](const structure_family<Scalar>& family, index_t member) { return std::abs(double(family.coefficients().gradient(0, member))); });
  }

  // Heads normalised per layer by the L2 norm of the layer's sums (Michel et al.); neurons as summed.
  template <class Scalar, class Shape>
  structure_scores score(const bert_model<Scalar, Shape>& model) {
    structure_scores s = sums(model);
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

struct taylor_criterion : detail::accumulating_criterion {
  template <class Scalar, class Shape>
  void observe(const bert_model<Scalar, Shape>& model) {
    add(model, [](const structure_family<Scalar>& family, index_t member) { return std::abs(family.value_gradient_dot(member)); });
  }

  template <class Scalar, class Shape>
  structure_scores score(const bert_model<Scalar, Shape>& model) {
    return sums(model);
  }
};

struct random_criterion {
  std::uint64_t seed = 0;

  template <class Scalar, class Shape>
  structure_scores score(const bert_model<Scalar, Shape>& model) const {
    const counter_rng random(derive_key(seed, 0x7a11e7));
    std::uint64_t counter = 0;
    return score_each_member(model, [&](const structure_family<Scalar>&, index_t) { return random.uniform(counter++); });
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
