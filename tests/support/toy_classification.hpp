// SPDX-License-Identifier: Apache-2.0
#pragma once
// A toy sentence task for training tests: is token 7 in the sequence? 24 examples of 3 to 6 tokens
// ([CLS] = 2, [SEP] = 3, words 4..9), from a fixed seed; and a classifier small enough to train on it in
// double: 2 layers, hidden 8, Heads heads, ffn 12, a vocabulary of 10.

#include <algorithm>

#include "earlybert/core/rng.hpp"
#include "earlybert/io/datasets.hpp"
#include "earlybert/nn/bert.hpp"

namespace earlybert::testing {

inline classification_dataset toy_classification_data() {
  classification_dataset data;
  rng random(5);
  for (int i = 0; i < 24; ++i) {
    encoded_example e;
    e.ids = {2};
    const int length = 1 + static_cast<int>(random.below(4));
    for (int j = 0; j < length; ++j) e.ids.push_back(static_cast<token_id>(4 + random.below(6)));
    e.ids.push_back(3);
    e.type_ids.assign(e.ids.size(), 0);
    e.label = std::find(e.ids.begin(), e.ids.end(), token_id{7}) != e.ids.end() ? 1 : 0;
    data.examples.push_back(e);
  }
  return data;
}

template <int Heads = 2>
bert_for_sequence_classification<double, shapes::any> toy_sequence_classifier() {
  bert_config c = bert_config::for_shape<bert_shape<2, 8, Heads, 12>>(10);
  c.max_positions = 8;
  bert_for_sequence_classification<double, shapes::any> model(c);
  rng random(9);
  model.initialise(random);
  return model;
}

}  // namespace earlybert::testing
