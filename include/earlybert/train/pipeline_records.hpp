// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the EarlyBERT pipeline (train/earlybert.hpp) reports and records, and its JSON form.
//
//   earlybert_report   a run of the pipeline: the ticket, when and how it was found, every recorded mask,
//                      the wall time and FLOPs of each stage, the coefficients at the draw
//   dense_report       a dense run (run_dense): its steps, wall time and FLOPs
//   masks_json         a mask as {"heads": ["101", ...], "ffn": ["0110...", ...]}, one 0/1 string per
//                      layer (the ticket file, the metrics' events)
//   detail::pipeline_position
//                      where a run stands, the "pipeline" record of a training state: mode, stage, steps
//                      done, AdamW's count, the report so far, the criterion's state and the training
//                      method's own record; written with position_json and read back, checked, with
//                      read_position
// A training state's records must survive a restart byte for byte, so every number is read back as the
// type it was written from (io/json.hpp), and a malformed record is an io_error naming the file.

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/io/json.hpp"
#include "earlybert/prune/structures.hpp"
#include "earlybert/train/training_state.hpp"

namespace earlybert {

enum class pipeline_stage { search, efficient };

inline std::string_view to_string(pipeline_stage s) { return s == pipeline_stage::search ? "search" : "efficient"; }

struct earlybert_report {
  structure_masks ticket;
  long ticket_step = 0;       // search steps taken when the ticket was drawn
  bool detected = false;      // the detector fired (false: the search budget ran out)
  std::vector<long> check_steps;
  std::vector<structure_masks> recorded_masks;  // the mask at every check, for the distance matrix
  long efficient_steps = 0;
  double search_wall_s = 0, draw_wall_s = 0, efficient_wall_s = 0;
  double search_flops = 0, efficient_flops = 0;  // training FLOPs (3 x forward)
  double encoder_flops_ratio = 0;                // pruned / dense encoder forward FLOPs per token
  per_layer_scores head_coefficients;            // the slimming coefficients when the ticket was drawn
  per_layer_scores neuron_coefficients;

  double total_wall_s() const { return search_wall_s + draw_wall_s + efficient_wall_s; }
  double total_flops() const { return search_flops + efficient_flops; }
};

// A dense run (run_dense), the baseline EarlyBERT is measured against.
struct dense_report {
  long steps = 0;
  double wall_s = 0;
  double flops = 0;  // training FLOPs (3 x forward)
};

// A mask as JSON: {"heads": ["101", ...], "ffn": ["0110...", ...]}, one string of 0/1 per layer.
inline nlohmann::ordered_json masks_json(const structure_masks& m) {
  const auto layers = [](const per_layer_mask& mask) {
    std::vector<std::string> out;
    for (const auto& layer : mask) {
      std::string bits;
      for (auto b : layer) bits += b != 0 ? '1' : '0';
      out.push_back(std::move(bits));
    }
    return out;
  };
  return {{"heads", layers(m.heads)}, {"ffn", layers(m.neurons)}};
}

inline structure_masks masks_from_json(const nlohmann::json& j) {
  const auto layers = [&](const char* key) {
    per_layer_mask out;
    for (const auto& bits : j.at(key).get<std::vector<std::string>>()) {
      std::vector<std::uint8_t> layer;
      for (char c : bits) {
        if (c != '0' && c != '1') throw io_error(fmt::format("mask '{}': expected a string of 0 and 1", bits));
        layer.push_back(c == '1');
      }
      out.push_back(std::move(layer));
    }
    return out;
  };
  return {layers("heads"), layers("ffn")};
}

namespace detail {

inline nlohmann::ordered_json report_json(const earlybert_report& r) {
  nlohmann::ordered_json recorded = nlohmann::ordered_json::array();
  for (const auto& m : r.recorded_masks) recorded.push_back(masks_json(m));
  return {{"ticket", masks_json(r.ticket)},
          {"ticket_step", r.ticket_step},
          {"detected", r.detected},
          {"check_steps", r.check_steps},
          {"recorded_masks", recorded},
          {"efficient_steps", r.efficient_steps},
          {"search_wall_s", r.search_wall_s},
          {"draw_wall_s", r.draw_wall_s},
          {"efficient_wall_s", r.efficient_wall_s},
          {"search_flops", r.search_flops},
          {"efficient_flops", r.efficient_flops},
          {"encoder_flops_ratio", r.encoder_flops_ratio},
          {"head_coefficients", r.head_coefficients},
          {"ffn_coefficients", r.neuron_coefficients}};
}

inline earlybert_report report_from_json(const nlohmann::json& j) {
  earlybert_report r;
  r.ticket = masks_from_json(j.at("ticket"));
  r.ticket_step = read_whole_number<long>(j.at("ticket_step"), "ticket_step");
  r.detected = j.at("detected").get<bool>();
  r.check_steps = read_whole_numbers<long>(j.at("check_steps"), "check_steps");
  for (const auto& m : j.at("recorded_masks")) r.recorded_masks.push_back(masks_from_json(m));
  r.efficient_steps = read_whole_number<long>(j.at("efficient_steps"), "efficient_steps");
  r.search_wall_s = j.at("search_wall_s").get<double>();
  r.draw_wall_s = j.at("draw_wall_s").get<double>();
  r.efficient_wall_s = j.at("efficient_wall_s").get<double>();
  r.search_flops = j.at("search_flops").get<double>();
  r.efficient_flops = j.at("efficient_flops").get<double>();
  r.encoder_flops_ratio = j.at("encoder_flops_ratio").get<double>();
  r.head_coefficients = j.at("head_coefficients").get<per_layer_scores>();
  r.neuron_coefficients = j.at("ffn_coefficients").get<per_layer_scores>();
  if (r.recorded_masks.size() != r.check_steps.size()) throw io_error("the recorded masks and the check steps differ in number");
  return r;
}

// Where a run stands, the "pipeline" record of a training state: the mode ("dense" or "earlybert"),
// the stage, the steps done in it, AdamW's step count, the report so far, the criterion's state and the
// method's record (IMP's level, RigL's updates, an instability run's phase: train/imp.hpp, train/rigl.hpp).
// A dense run is the efficient stage alone: its figures are the report's efficient_* ones.
struct pipeline_position {
  std::string mode;
  pipeline_stage stage = pipeline_stage::search;
  long steps_done = 0;
  long optimizer_steps = 0;
  earlybert_report report;
  nlohmann::json criterion;  // a resumable criterion's state during the search (null otherwise)
  nlohmann::json method;     // what a method beyond EarlyBERT records of itself (null otherwise)
};

inline nlohmann::ordered_json position_json(const pipeline_position& p) {
  return {{"mode", p.mode},
          {"stage", to_string(p.stage)},
          {"steps_done", p.steps_done},
          {"optimizer_steps", p.optimizer_steps},
          {"report", report_json(p.report)},
          {"criterion", p.criterion},
          {"method", p.method}};
}

// The "pipeline" record of `state`, which a run of `mode` must have written.
inline pipeline_position read_position(const training_state_reader& state, std::string_view mode) {
  const nlohmann::json& j = state.record("pipeline");
  pipeline_position p;
  try {
    p.mode = j.at("mode").get<std::string>();
    const auto stage = j.at("stage").get<std::string>();
    if (stage != "search" && stage != "efficient") throw io_error(fmt::format("stage '{}', expected search or efficient", stage));
    p.stage = stage == "search" ? pipeline_stage::search : pipeline_stage::efficient;
    p.steps_done = read_whole_number<long>(j.at("steps_done"), "steps_done");
    p.optimizer_steps = read_whole_number<long>(j.at("optimizer_steps"), "optimizer_steps");
    p.report = report_from_json(j.at("report"));
    p.criterion = j.value("criterion", nlohmann::json());
    p.method = j.value("method", nlohmann::json());
  } catch (const nlohmann::json::exception& e) {
    throw io_error(fmt::format("training state '{}': the pipeline record is malformed ({})", state.path(), e.what()));
  } catch (const io_error& e) {
    throw io_error(fmt::format("training state '{}': the pipeline record is malformed ({})", state.path(), e.what()));
  }
  if (p.mode != mode) throw io_error(fmt::format("training state '{}': written by a {} run, not a {} one", state.path(), p.mode, mode));
  return p;
}

}  // namespace detail

}  // namespace earlybert
