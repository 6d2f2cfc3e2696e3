// SPDX-License-Identifier: Apache-2.0
// Writing your own op: a forward, its backward, and the gradient check that proves them.
//
// The op is a gate, as in a gated linear unit (Dauphin et al. 2017):
//
//   y = x ⊙ σ(g)                  x, g, y: [rows, cols];  σ(g) = 1 / (1 + exp(−g))
//   dx += dy ⊙ σ(g)               dg += dy ⊙ x ⊙ σ(g) (1 − σ(g))
//
// The contract every op keeps (docs/tape.md, "Writing an op"):
//   1. Forward writes only its output, made with t.make(rows, cols, any_needs_gradient(t, inputs...)).
//      What backward will need and cannot cheaply recompute (here σ(g)) goes in the tape's arena
//      (t.scratch<Scalar>(n)), never on the heap: it lives until the tape rewinds.
//   2. If the output needs a gradient, forward records one closure with t.on_backward. The closure
//      captures vars, pointers and sizes by value (the arena runs no destructors, so capturing a
//      std::vector does not compile) and runs after every later op's backward, when dy is complete.
//   3. Backward ACCUMULATES (+=) into each input's adjoint: another op may have written there first.
//   4. An input that needs no gradient (a constant, a frozen parameter) has no adjoint; skip its share.
//
// The program checks the op with earlybert/testing/gradient_check.hpp, the checker every op of the
// library passes, and shows what it catches: the same op with its backward assigning (=) instead of
// adding fails the check. Exit status 0 when the op passes and the mistake is caught.

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include <earlybert/earlybert.hpp>
#include <earlybert/testing/gradient_check.hpp>

namespace eb = earlybert;

// The user's op. `assign_by_mistake` breaks rule 3, to show the checker catching it.
template <class Scalar>
eb::var<Scalar> gate(eb::tape<Scalar>& t, const eb::var<Scalar>& x, const eb::var<Scalar>& g, bool assign_by_mistake = false) {
  eb::check_shape("gate", "g", g.shape(), x.shape());
  eb::var<Scalar> y = t.make(x.rows(), x.cols(), eb::any_needs_gradient(t, x, g));
  // σ(g) in the arena: forward needs it, and backward reuses it instead of recomputing exp.
  Scalar* sigma = t.template scratch<Scalar>(x.size());
  const eb::index_t n = x.size();
  for (eb::index_t i = 0; i < n; ++i) {
    sigma[i] = Scalar(1) / (Scalar(1) + std::exp(-g.value_data()[i]));
    y.value_data()[i] = x.value_data()[i] * sigma[i];
  }
  if (y.needs_gradient()) {  // false when nothing upstream is trainable, or in a no_recording scope
    t.on_backward([=] {      // x, g, y: handles; sigma: a pointer into the arena; n: a size
      const Scalar* dy = y.adjoint_data();
      if (x.needs_gradient()) {
        for (eb::index_t i = 0; i < n; ++i) {
          if (assign_by_mistake) x.adjoint_data()[i] = dy[i] * sigma[i];
          else x.adjoint_data()[i] += dy[i] * sigma[i];
        }
      }
      if (g.needs_gradient()) {
        for (eb::index_t i = 0; i < n; ++i) g.adjoint_data()[i] += dy[i] * x.value_data()[i] * sigma[i] * (Scalar(1) - sigma[i]);
      }
    });
  }
  return y;
}

int main() {
  // The check runs in double, on small random inputs: every entry is perturbed, so keep them small.
  eb::parameter<double> x("x", 3, 4), g("g", 3, 4);
  x.value = eb::testing::random_matrix<double>(3, 4, 1);
  g.value = eb::testing::random_matrix<double>(3, 4, 2, -3.0, 3.0);

  const auto right = eb::testing::gradient_check([](eb::tape<double>& t, auto& v) { return gate(t, v[0], v[1]); }, {&x, &g});
  fmt::print("gate:                      {}\n", right.summary());

  // Only x checked, g a frozen parameter (no adjoint): g's share of backward is skipped.
  g.trainable = false;
  const auto frozen = eb::testing::gradient_check([&](eb::tape<double>& t, auto& v) { return gate(t, v[0], t.watch(g)); }, {&x});
  fmt::print("gate, g frozen:            {}\n", frozen.summary());
  g.trainable = true;

  const auto broken = eb::testing::gradient_check([](eb::tape<double>& t, auto& v) { return gate(t, v[0], v[1], true); }, {&x, &g});
  fmt::print("gate assigning dx (wrong): {}\n", broken.summary());

  // In a model, the op is used like any other: here in float, in one training step's forward.
  eb::tape<float> t;
  eb::parameter<float> w("w", 2, 3);
  w.value.setConstant(0.5f);
  const eb::var<float> input = t.constant(eb::matrix<float>::Ones(2, 3));
  const eb::var<float> loss = eb::sum(t, gate(t, input, t.watch(w)));
  t.backward(loss);
  fmt::print("a float step: loss {:.6f}, d loss / d w[0, 0] = {:.6f} (σ(0.5)(1 − σ(0.5)) = {:.6f})\n", loss.item(), w.gradient(0, 0),
             1 / (1 + std::exp(-0.5)) * (1 - 1 / (1 + std::exp(-0.5))));

  const bool ok = right.passed() && frozen.passed() && !broken.passed();
  fmt::print("{}\n", ok ? "the op passes, and the mistake is caught" : "UNEXPECTED: see above");
  return ok ? 0 : 1;
}
