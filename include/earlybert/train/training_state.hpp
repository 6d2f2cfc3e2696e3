// SPDX-License-Identifier: Apache-2.0
#pragma once
// A training run's resumable state: one safetensors file, written atomically (io/files.hpp), so that
// a crash at any moment leaves the previous complete state or the new one, never a mixture.
//
//   "<name>"                          every parameter the model holds now, under its own name
//   "<name>.adam_m", "<name>.adam_v"  its AdamW moments, once it has them
//   other tensors                     what the run adds (the EarlyBERT pipeline's step-0 weights)
//   metadata "earlybert.training_state"
//                                     JSON: {"format": {"name", "version"}, ...}: where the run stands
//                                     (the pipeline's and the task's own records)
// Tensors are stored in the model's scalar type (F32 or F64), so a resumed run continues bit for bit.
// Reading checks the format, and that every parameter the model holds is there with its shape; the
// model must already have the structure it had when the state was written (a drawn ticket compacted).

#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/io/checkpoint.hpp"
#include "earlybert/io/json.hpp"
#include "earlybert/io/safetensors.hpp"

namespace earlybert {

inline constexpr std::string_view training_state_format_name = "earlybert-training-state";
inline constexpr int training_state_format_version = 1;
inline constexpr const char* training_state_metadata_key = "earlybert.training_state";

namespace detail {
template <class Scalar>
std::vector<std::int64_t> shape_of(const matrix<Scalar>& m) {
  return {m.rows(), m.cols()};
}
}  // namespace detail

class training_state_writer {
 public:
  training_state_writer() {
    progress_["format"] = {{"name", training_state_format_name}, {"version", training_state_format_version}};
  }

  // Every parameter's value, and its AdamW moments where it has them.
  template <class Model>
  void add_model(Model& model) {
    using scalar = typename Model::scalar_type;
    model.for_each_parameter([&](parameter<scalar>& p) {
      add_tensor(p.name, p.value);
      if (p.first_moment.size() == p.size()) {
        add_tensor(p.name + ".adam_m", p.first_moment);
        add_tensor(p.name + ".adam_v", p.second_moment);
      }
    });
    model.for_each_linear([&](const linear<scalar>& l) {
      if (l.has_weight_mask()) add_tensor(weight_mask_name(l), detail::mask_matrix<scalar>(l));
    });
  }

  template <class Scalar>
  void add_tensor(const std::string& name, const matrix<Scalar>& values) {
    tensors_.add_exact(name, values, detail::shape_of(values));
  }

  // The run's records; "format" is set.
  nlohmann::ordered_json& progress() noexcept { return progress_; }

  void write(const std::filesystem::path& path) {
    tensors_.set_metadata(training_state_metadata_key, progress_.dump());
    tensors_.write(path);
  }

 private:
  safetensors_writer tensors_;
  nlohmann::ordered_json progress_;
};

class training_state_reader {
 public:
  static training_state_reader open(const std::filesystem::path& path) { return training_state_reader(path); }

  const std::string& path() const noexcept { return file_.path(); }
  const nlohmann::json& progress() const noexcept { return progress_; }

  bool has_tensor(const std::string& name) const { return file_.find(name) != nullptr; }

  // Fills `out` (already of the tensor's shape) from tensor `name`; an io_error names what is missing.
  template <class Scalar>
  void read_tensor(const std::string& name, matrix<Scalar>& out) const {
    if (!has_tensor(name)) throw io_error(fmt::format("training state '{}': no tensor '{}'", path(), name));
    file_.read(name, out);
  }

  // Every parameter's value, and its moments if the state has them (else none: a fresh optimizer).
  template <class Model>
  void read_model(Model& model) const {
    using scalar = typename Model::scalar_type;
    model.for_each_parameter([&](parameter<scalar>& p) {
      read_tensor(p.name, p.value);
      p.zero_gradient();
      if (has_tensor(p.name + ".adam_m")) {
        p.first_moment.resize(p.rows(), p.cols());
        p.second_moment.resize(p.rows(), p.cols());
        read_tensor(p.name + ".adam_m", p.first_moment);
        read_tensor(p.name + ".adam_v", p.second_moment);
      } else {
        p.first_moment.resize(0, 0);
        p.second_moment.resize(0, 0);
      }
    });
    model.for_each_linear([&](linear<scalar>& l) {
      if (!has_tensor(weight_mask_name(l))) return l.clear_weight_mask();
      matrix<scalar> m(l.outputs(), l.inputs());
      read_tensor(weight_mask_name(l), m);
      detail::set_weight_mask_from(m, path(), weight_mask_name(l), l);
    });
  }

  // A record of the progress, with an io_error naming the file and the key when it is absent.
  const nlohmann::json& record(const char* key) const {
    if (!progress_.contains(key)) throw io_error(fmt::format("training state '{}': no '{}' record", path(), key));
    return progress_.at(key);
  }

 private:
  explicit training_state_reader(const std::filesystem::path& path) : file_(safetensors_reader::open(path)) {
    const auto it = file_.metadata().find(training_state_metadata_key);
    if (it == file_.metadata().end()) {
      throw io_error(fmt::format("training state '{}': no '{}' metadata; not a training state", path.string(), training_state_metadata_key));
    }
    try {
      progress_ = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      throw io_error(fmt::format("training state '{}': the progress record is not valid JSON ({})", path.string(), e.what()));
    }
    const auto& format = member_or_null(progress_, "format");
    if (member_or_null(format, "name") != std::string(training_state_format_name) ||
        whole_number<int>(member_or_null(format, "version")) != training_state_format_version) {
      throw io_error(fmt::format("training state '{}': format {}, expected {{\"name\":\"{}\",\"version\":{}}}", path.string(),
                                 format.dump(), training_state_format_name, training_state_format_version));
    }
  }

  safetensors_reader file_;
  nlohmann::json progress_;
};

}  // namespace earlybert
