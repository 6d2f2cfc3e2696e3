// SPDX-License-Identifier: Apache-2.0
#include "earlybert/core/tape.hpp"

#include <doctest/doctest.h>

#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/matmul.hpp"
#include "earlybert/ops/reduce.hpp"
#include "support/test_support.hpp"

using namespace earlybert;
using earlybert::testing::check_near;
using earlybert::testing::matrix_of;

namespace {
// loss = sum(w * x) for w [1, 2] and x [2, 1]: d loss / d w = x^T.
template <class Scalar>
var<Scalar> small_loss(tape<Scalar>& t, parameter<Scalar>& w, const matrix<Scalar>& x) {
  return sum(t, matmul(t, t.watch(w), t.constant(x)));
}
}  // namespace

TEST_CASE_TEMPLATE("tape: backward accumulates into parameter gradients until they are cleared", Scalar, float, double) {
  parameter<Scalar> w("w", 1, 2);
  w.value = matrix_of<Scalar>({{1, 2}});
  const matrix<Scalar> x = matrix_of<Scalar>({{3}, {4}});
  tape<Scalar> t;
  for (int pass = 1; pass <= 2; ++pass) {
    t.rewind();
    const auto loss = small_loss(t, w, x);
    CHECK(loss.item() == Scalar(11));
    t.backward(loss);
    check_near(w.gradient, matrix_of<double>({{3.0 * pass, 4.0 * pass}}), 0);
  }
  w.zero_gradient();
  CHECK(w.gradient.isZero(0));
}

TEST_CASE("tape: frozen parameters and constants get no gradient and cost no backward step") {
  parameter<float> frozen("frozen", 1, 2);
  frozen.trainable = false;
  parameter<float> trained("trained", 2, 1);
  trained.value.setOnes();
  tape<float> t;
  const auto only_frozen = sum(t, matmul(t, t.watch(frozen), t.constant(matrix<float>::Ones(2, 1))));
  CHECK_FALSE(only_frozen.needs_gradient());
  CHECK(t.recorded_steps() == 0);
  const auto mixed = sum(t, matmul(t, t.watch(frozen), t.watch(trained)));
  CHECK(t.recorded_steps() == 2);
  t.backward(mixed);
  CHECK(frozen.gradient.isZero(0));
}

TEST_CASE("tape: a no_recording scope computes the same values and records nothing") {
  parameter<double> w("w", 1, 2);
  w.value = matrix_of<double>({{1, 2}});
  const matrix<double> x = matrix_of<double>({{3}, {4}});
  tape<double> t;
  const double recorded = small_loss(t, w, x).item();
  const auto steps = t.recorded_steps();
  {
    no_recording<double> inference(t);
    const auto loss = small_loss(t, w, x);
    CHECK(loss.item() == recorded);
    CHECK_FALSE(loss.needs_gradient());
    CHECK(t.recorded_steps() == steps);
  }
  CHECK(t.recording());
}

TEST_CASE("tape: constant copies its values, input views them") {
  matrix<float> source = matrix_of<float>({{1, 2}});
  tape<float> t;
  const auto copied = t.constant(source);
  const auto viewed = t.input(source.data(), 1, 2);
  source(0, 0) = 5;
  CHECK(copied.value()(0, 0) == 1.0f);
  CHECK(viewed.value()(0, 0) == 5.0f);
  CHECK_FALSE(copied.needs_gradient());
  CHECK_FALSE(viewed.needs_gradient());
}

TEST_CASE("tape: backward and item reject what is not a scalar loss, with the reason") {
  tape<float> t;
  parameter<float> w("w", 2, 1);
  const auto column = scale(t, t.watch(w), 2.0f);
  CHECK_THROWS_WITH_AS(t.backward(column), "tape::backward: argument 'loss' has shape [2, 1], expected [1, 1]", shape_error);
  CHECK_THROWS_WITH_AS(column.item(), "var::item: argument 'this' has shape [2, 1], expected [1, 1]", shape_error);
  const auto constant_loss = sum(t, t.constant(matrix<float>::Ones(2, 2)));
  CHECK_THROWS_WITH_AS(t.backward(constant_loss),
                       "tape::backward: argument 'loss' needs no gradient (nothing it depends on is trainable, or the "
                       "tape was not recording)",
                       error);
}

TEST_CASE("tape: rewind makes a repeated step reuse the arena without growing it") {
  parameter<float> w("w", 64, 64);
  tape<float> t(4096);
  for (int step = 0; step < 4; ++step) {
    t.rewind();
    w.zero_gradient();
    t.backward(sum(t, matmul(t, t.watch(w), t.watch(w))));
  }
  const auto warmed = t.arena_bytes();
  t.rewind();
  t.backward(sum(t, matmul(t, t.watch(w), t.watch(w))));
  CHECK(t.arena_bytes() == warmed);
}

TEST_CASE("tape: watch sizes a stale gradient to the parameter's value") {
  parameter<float> p;
  p.value = matrix_of<float>({{1, 2, 3}});
  tape<float> t;
  t.backward(sum(t, t.watch(p)));
  check_near(p.gradient, matrix_of<double>({{1, 1, 1}}), 0);
}

TEST_CASE("tape: watches() records where each trainable watch came, backward reports the closures left, and a gradient is final from its first watch on") {
  parameter<double> first("first", 1, 2), second("second", 2, 1), frozen("frozen", 1, 1), late("late", 1, 1);
  first.value = matrix_of<double>({{1, 2}});
  second.value = matrix_of<double>({{3}, {4}});
  frozen.value.setOnes();
  frozen.trainable = false;
  late.value.setConstant(0.5);
  tape<double> t;
  const var<double> a = t.watch(first);                   // position 0
  const var<double> b = t.watch(second);                  // position 0
  const var<double> h = matmul(t, a, b);                  // closure 0
  const var<double> y = multiply(t, h, t.watch(frozen));  // frozen: no record; closure 1
  const var<double> again = t.watch(first);               // position 2
  const var<double> z = add(t, y, matmul(t, again, b));   // closures 2, 3
  const var<double> l = t.watch(late);                    // position 4
  const var<double> loss = multiply(t, z, l);             // closure 4
  REQUIRE(t.watches().size() == 4);
  CHECK(t.watches()[0].watched == &first);
  CHECK(t.watches()[0].position == 0);
  CHECK(t.watches()[2].watched == &first);
  CHECK(t.watches()[2].position == 2);
  CHECK(t.watches()[3].watched == &late);
  CHECK(t.watches()[3].position == 4);
  std::vector<std::size_t> reported;
  matrix<double> late_from_its_watch, first_from_its_second_watch;
  t.backward(loss, [&](std::size_t remaining) {
    reported.push_back(remaining);
    if (remaining == 4) late_from_its_watch = late.gradient;
    if (remaining == 2) first_from_its_second_watch = first.gradient;
  });
  const std::size_t closures = t.recorded_steps();
  REQUIRE(closures == 5);
  REQUIRE(reported.size() == closures + 1);
  for (std::size_t i = 0; i <= closures; ++i) CHECK(reported[i] == closures - i);
  check_near(late.gradient, matrix_of<double>({{2 * 11}}), 0);  // z = 2 (first second) = 22
  check_near(late_from_its_watch, late.gradient, 0);
  // A later watch of a parameter does not make its gradient final: only the first does.
  check_near(first_from_its_second_watch, matrix_of<double>({{0.5 * 3, 0.5 * 4}}), 0);
  check_near(first.gradient, matrix_of<double>({{3, 4}}), 0);
  t.rewind();
  CHECK(t.watches().empty());
}
