// SPDX-License-Identifier: Apache-2.0
#include "earlybert/prune/detectors.hpp"

#include <vector>

#include <doctest/doctest.h>

using namespace earlybert;

namespace {
// Two layers of 2 heads and 10 neurons; `neuron_flips` neurons differ from the base mask.
structure_masks crafted(int head_flip, int neuron_flips) {
  structure_masks m;
  m.heads = {{1, 0}, {1, 1}};
  if (head_flip != 0) m.heads[0] = {0, 1};
  m.neurons = {std::vector<std::uint8_t>(10, 1), std::vector<std::uint8_t>(10, 0)};
  for (int i = 0; i < neuron_flips; ++i) m.neurons[0][static_cast<std::size_t>(i)] = 0;
  return m;
}
}  // namespace

TEST_CASE("mask_distance: normalised Hamming distance over all layers") {
  CHECK(mask_distance(crafted(0, 0).neurons, crafted(0, 4).neurons) == doctest::Approx(0.2));
  CHECK(mask_distance(crafted(0, 0).heads, crafted(1, 0).heads) == doctest::Approx(0.5));
  CHECK(mask_distance(crafted(0, 0).heads, crafted(0, 0).heads) == 0.0);
  CHECK_THROWS_AS(mask_distance({{1}}, {{1}, {0}}), shape_error);
}

TEST_CASE("mask_distance_detector: fires on a crafted sequence exactly when the window settles, not before") {
  mask_distance_detector detector(3, 0.1);
  const std::vector<std::pair<structure_masks, bool>> sequence{
      {crafted(0, 0), false},  // one mask
      {crafted(0, 6), false},  // two masks: window not full
      {crafted(0, 6), false},  // full, but the newest is 0.3 from the oldest
      {crafted(0, 9), false},  // window 6, 6, 9: 0.15 from the newest
      {crafted(0, 9), false},  // window 6, 9, 9: still 0.15 from the oldest
      {crafted(0, 9), true},   // window 9, 9, 9: settled

  };
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    CAPTURE(i);
    CHECK(detector.observe(sequence[i].first, static_cast<long>(i)) == sequence[i].second);
  }
  // The bound is inclusive: exactly epsilon fires.
  mask_distance_detector boundary(2, 0.1);
  boundary.observe(crafted(0, 6), 0);
  CHECK(boundary.observe(crafted(0, 8), 1));  // 2 of 20 neuron entries: 0.1
  // A head change resets readiness even when neurons are stable; joint mode sees the combined distance.
  mask_distance_detector heads(2, 0.1);
  heads.observe(crafted(0, 0), 0);
  CHECK_FALSE(heads.observe(crafted(1, 0), 1));
  CHECK(*heads.head_distance() == doctest::Approx(0.5));
  mask_distance_detector joint(2, 0.1, true);
  joint.observe(crafted(0, 0), 0);
  CHECK(joint.observe(crafted(1, 0), 1));  // 2 of 24 entries differ: 0.083 <= 0.1
  CHECK(*joint.joint_distance() == doctest::Approx(2.0 / 24.0));
}

TEST_CASE("fixed_step_detector and never_detector") {
  fixed_step_detector at(30);
  CHECK_FALSE(at.observe(crafted(0, 0), 29));
  CHECK(at.observe(crafted(0, 0), 30));
  CHECK(fixed_step_detector::at_fraction(0.2, 2105).step() == 421);
  CHECK(fixed_step_detector::at_fraction(0.0001, 10).step() == 1);
  CHECK_FALSE(never_detector{}.observe(crafted(0, 0), 1000000));
  CHECK_THROWS_WITH_AS(fixed_step_detector::at_fraction(1.5, 10), "fixed_step_detector: fraction is 1.5, expected a value in (0, 1]", config_error);
  CHECK_THROWS_WITH_AS(mask_distance_detector(1), "mask_distance_detector: window is 1, expected at least 2", config_error);
  CHECK_THROWS_WITH_AS(mask_distance_detector(5, -0.1), "mask_distance_detector: epsilon is -0.1, expected a value in [0, 1]", config_error);
}
