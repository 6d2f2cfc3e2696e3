// SPDX-License-Identifier: Apache-2.0
// `earlybert finetune`: a task by name with --task/--data (GLUE's sentence tasks, SQuAD v1.1, UPOS and
// NER), or custom TSV files with --train/--dev (one text column, or two for sentence pairs), from
// random initialisation or from a checkpoint, evaluated on the dev set(s) with the task's metrics;
// with --earlybert, through the EarlyBERT pipeline (search, draw, efficient training).
#include <numeric>

#include <nlohmann/json.hpp>

#include "earlybert_setup.hpp"
#include "finetune.hpp"
#include "finetune_task.hpp"
#include "lottery.hpp"

namespace earlybert::cli {

namespace {

// The result's metric fields from the task's metrics on the dev set(s).
void set_dev_metrics(finetune_result& result, const metric_values& metrics) {
  result.dev_metrics = metrics;
  result.main_metric = metrics.items().front().first;
  result.dev_main = metrics.items().front().second;
  for (const auto& [name, value] : metrics.items()) {
    if (name == "accuracy") result.dev_accuracy = value;
  }
}

// The summary's description of the task and its result: the main metric named, every metric given.
template <class TaskData>
void add_task_summary(json& summary, const TaskData& data, const finetune_result& result) {
  for (const auto& [name, value] : result.dev_metrics.items()) {
    if (name == "accuracy") summary["dev_accuracy"] = value;
  }
  summary["task"] = data.name.empty() ? "custom" : data.name;
  summary["main_metric"] = result.main_metric;
  summary["dev_main"] = result.dev_main;
  summary["dev_metrics"] = metrics_json(result.dev_metrics);
}

// The dev set under the exit policy, beside the full model, each timed on this process alone: the
// "early_exit" event and summary field (metrics, the work done, the exit layers, the wall times).
json measure_early_exit(exit_tagger& model, const tagging_task_data& data, const exit_policy& policy, token_id pad) {
  const tagging_dataset& dev = data.dev.front().second;
  const auto timed = [&](const exit_policy& p, metric_values& metrics) {
    model.set_exit_policy(p);
    model.statistics.reset(model.layers());
    const stopwatch clock;
    const std::vector<std::vector<int>> tags = predict_tags(model, dev, 64, pad);
    const double seconds = clock.seconds();
    metrics = tagging_metrics(dev, tags, data.entities);
    return seconds;
  };
  metric_values full, early;
  const double full_s = timed(exit_policy{}, full);
  const double early_s = timed(policy, early);
  const exit_statistics& st = model.statistics;
  model.set_exit_policy(exit_policy{});
  json out{{"event", "early_exit"}, {"mode", policy.mode == exit_mode::sentence ? "sentence" : policy.mode == exit_mode::token ? "token" : "none"},
           {"measure", policy.measure == uncertainty_measure::entropy ? "entropy" : "max-probability"}, {"threshold", policy.threshold},
           {"window", policy.window}};
  out["dev_metrics"] = metrics_json(early);
  out["full_dev_metrics"] = metrics_json(full);
  out["full_wall_s"] = full_s;
  out["exit_wall_s"] = early_s;
  out["wall_speed_up"] = full_s / early_s;
  out["mean_layers"] = st.mean_layers();
  out["layers"] = model.layers();
  out["flops_ratio"] = st.flops_ratio();
  out["running_rows_ratio"] = st.running_rows / st.full_rows;
  out["word_exits"] = st.word_exits;
  return out;
}

// What the checkpoint's tokenizer keeps: the vocabulary's casing and the --max-seq it was trained at.
tokenizer_settings tokenizer_settings_of(const finetune_options& o, const vocabulary& vocab) { return {vocab.looks_uncased(), o.max_seq}; }

// eval_results.json (the dev metrics, HuggingFace's "eval_<metric>" keys beside the task and its main
// metric) and summary.json (the run's summary event: the method's figures) beside the checkpoint.
void write_run_results(const fs::path& out, const finetune_result& result, const json& summary) {
  const std::string task = summary.is_object() ? summary.value("task", std::string("custom")) : std::string("custom");
  json eval{{"task", task}, {"main_metric", result.main_metric}};
  for (const auto& [name, value] : result.dev_metrics.items()) eval["eval_" + name] = value;
  write_file_atomically(out / "eval_results.json", eval.dump(2) + "\n");
  if (!summary.is_null()) {
    json kept = summary;
    kept.erase("event");
    write_file_atomically(out / "summary.json", kept.dump(2) + "\n");
  }
}

template <class Model, class TaskData>
finetune_result finetune_model(const finetune_options& o, const vocabulary& vocab, const std::optional<checkpoint_config>& init,
                               const TaskData& data) {
  using model_type = Model;
  constexpr bool with_exits = std::is_same_v<Model, exit_tagger>;
  const special_tokens special = special_tokens::of(vocab);
  bert_config config = init ? init->model : named_shape_config(o.shape, vocab.size());
  if (o.layers) {
    if (*o.layers < 1 || *o.layers > config.layers) {
      throw config_error(fmt::format("--layers is {}, expected 1 to the model's {} layers", *o.layers, config.layers));
    }
    if (config.pruned()) throw config_error(fmt::format("--layers keeps the first layers of an unpruned model; '{}' is pruned", o.init));
    config.layers = *o.layers;  // the checkpoint's later layers are left unread
  }
  config.num_labels = data.num_labels;
  config.label_names = data.label_names;
  config.finetuning_task = data.name;
  if (config.vocab_size != vocab.size()) {
    throw config_error(fmt::format("--vocab has {} tokens, but the model's vocabulary has {}", vocab.size(), config.vocab_size));
  }
  if (o.max_seq > config.max_positions) {
    throw config_error(fmt::format("--max-seq is {}, but the model has only {} positions", o.max_seq, config.max_positions));
  }
  if (o.earlybert.enabled && config.pruned()) {
    throw config_error(fmt::format("--init '{}' is already pruned; EarlyBERT starts from an unpruned model", o.init));
  }
  model_type model(config);
  rng random(o.common.seed);
  model.initialise(random);
  if (init) {
    const load_report report = load_weights(o.init, model);
    if (!report.initialised.empty()) {
      messages::status("finetune", "initialised from '{}'; freshly initialised: {}", o.init, fmt::join(report.initialised, ", "));
    }
    tell_unread("finetune", o.init, report, o.layers);
  }

  const auto batch = static_cast<std::size_t>(o.batch);
  const long steps_per_epoch = static_cast<long>((data.train.examples.size() + batch - 1) / batch);
  const long dense_steps = o.steps.value_or(steps_per_epoch * o.epochs);
  check_lottery_steps(o, dense_steps);
  const optimization_options optimization = optimization_of(o, o.lr.value_or(init ? 3e-4 : 1e-3));

  const std::optional<training_state_reader> state = open_training_state("finetune", o.common, o.out);
  metrics_log metrics = open_metrics(o.common, state);
  finetune_task<model_type, TaskData> task(o, data, special.pad, metrics, steps_per_epoch);
  task.attach(model);
  if (state) task.restore(state->record("task"));
  const training_state_reader* resume = state ? &*state : nullptr;
  const run_checkpoints checkpoints(o.common, o.out, metrics);
  task.attach_checkpoints(checkpoints);
  finetune_result result;
  job::agree(o.common.settings);

  const long self_sampling_steps = with_exits ? o.early_exit.self_sampling_steps.value_or(steps_per_epoch * o.early_exit.self_sampling_epochs) : 0;
  if (o.lottery.chosen()) {
    result = run_lottery_method(model, o, data, vocab, task, optimization, dense_steps, steps_per_epoch, resume, metrics, checkpoints, special.pad);
  } else if (!o.earlybert.enabled) {
    const long steps = dense_steps + self_sampling_steps;
    const dense_report report = run_dense(model, optimization, steps, task, resume);
    result.total_steps = steps;
    result.train_flops = report.flops;
    result.train_wall_s = report.wall_s - task.eval_seconds();
    set_dev_metrics(result, task.evaluate(steps));
    json summary{{"event", "summary"}, {"mode", with_exits ? "early_exit" : "dense"}};
    add_task_summary(summary, data, result);
    summary["train_wall_s"] = result.train_wall_s;
    summary["train_flops"] = result.train_flops;
    summary["total_steps"] = result.total_steps;
    if constexpr (with_exits) {
      summary["joint_steps"] = dense_steps;
      summary["self_sampling_steps"] = self_sampling_steps;
      json exit = measure_early_exit(model, data, o.early_exit.exit.policy(), special.pad);
      metrics.write(exit);
      exit.erase("event");
      result.early_exit = exit;
      summary["early_exit"] = exit;
    }
    metrics.write(summary);
  } else {
    const earlybert_cli_options& e = o.earlybert;
    // The paper's fine-tuning recipe: the ticket trains for two of the dense run's three epochs, at
    // twice its learning rate.
    const earlybert_options eo = make_pipeline_options(e, optimization, steps_per_epoch, dense_steps,
                                                       std::max(1L, std::lround(2.0 * static_cast<double>(dense_steps) / 3.0)),
                                                       2 * optimization.learning_rate);
    const ticket_selector selector = make_selector(e);
    auto criterion = make_criterion<bert_model<float, shapes::any>>(e, o.common.seed);
    any_detector detector = make_detector(e, steps_per_epoch);
    const earlybert_report report = run_earlybert(model, criterion, selector, detector, eo, task, o.max_seq, resume);
    result.total_steps = report.ticket_step + report.efficient_steps;
    result.ticket_step = report.ticket_step;
    result.search_steps = report.ticket_step;
    result.train_flops = report.total_flops();
    result.train_wall_s = report.total_wall_s() - task.eval_seconds();
    set_dev_metrics(result, task.evaluate(report.efficient_steps));
    result.heads_kept = report.ticket.heads_kept();
    result.ffn_kept = report.ticket.neurons_kept();
    result.flops_ratio = report.encoder_flops_ratio;
    json summary = earlybert_summary(report, e.importance, steps_per_epoch, task.eval_seconds(), dense_steps);
    add_task_summary(summary, data, result);
    metrics.write(summary);
    result.ticket_record = ticket_record(report, steps_per_epoch);
  }
  if (!o.out.empty() && job::lead()) {
    save_checkpoint(o.out, model, vocab, tokenizer_settings_of(o, vocab), weight_dtype_of(o.common.save_dtype));
    if (!result.ticket_record.is_null()) write_file_atomically(fs::path(o.out) / "earlybert_ticket.json", result.ticket_record.dump() + "\n");
    write_run_results(o.out, result, metrics.last_summary());
    checkpoints.finished();
  }
  result.tokens = task.tokens();
  result.summary = metrics.last_summary();
  return result;
}

template <class TaskData>
finetune_result finetune_any(const finetune_options& o, const vocabulary& vocab, const TaskData& data) {
  std::optional<checkpoint_config> init;
  if (!o.init.empty()) init = read_config(fs::path(o.init) / "config.json");
  if (init) {
    if (!o.shape.empty() && shape_name_of(init->model) != o.shape) {
      const bert_config& c = init->model;
      throw config_error(fmt::format("--shape is '{}', but the checkpoint '{}' holds a {}/{}/{}/{} (layers/hidden/heads/ffn) model{}",
                                     o.shape, o.init, c.layers, c.hidden, c.heads, c.ffn,
                                     shape_name_of(c).empty() ? "" : fmt::format(" ('{}')", shape_name_of(c))));
    }
  }  // without --init, --shape is given (check_finetune_options)
  if constexpr (std::is_same_v<TaskData, tagging_task_data>) {
    if (o.early_exit.enabled) return finetune_model<exit_tagger>(o, vocab, init, data);
  }
  return finetune_model<typename model_for<TaskData>::type>(o, vocab, init, data);
}
}  // namespace

finetune_result finetune_with(const finetune_options& o, const vocabulary& vocab, const sentence_task_data& data) {
  return finetune_any(o, vocab, data);
}

void check_finetune_options(const finetune_options& o) {
  const auto require_positive = [](const char* name, long value) {
    if (value < 1) throw config_error(fmt::format("{} is {}, expected at least 1", name, value));
  };
  require_positive("--epochs", o.epochs);
  if (o.steps) require_positive("--steps", *o.steps);
  require_positive("--batch", o.batch);
  require_positive("--accumulation", o.accumulation);
  if (o.accumulation > o.batch) {
    throw config_error(fmt::format("--accumulation is {}, expected at most --batch ({}): each micro-batch holds an example", o.accumulation, o.batch));
  }
  job::check_batch(o.batch, o.accumulation);
  require_positive("--num-labels", o.num_labels);
  if (o.max_seq < 3) throw config_error(fmt::format("--max-seq is {}, expected at least 3", o.max_seq));
  if (o.task == "squad") {
    require_positive("--doc-stride", o.doc_stride);
    require_positive("--max-query", o.max_query);
    if (o.max_seq < o.max_query + 4) {
      throw config_error(fmt::format("--max-seq is {}, expected at least --max-query + 4 = {} (the question, [CLS], two [SEP] and a context piece)",
                                     o.max_seq, o.max_query + 4));
    }
  }
  if (o.lr && !(*o.lr > 0)) throw config_error(fmt::format("--lr is {}, expected a positive value", *o.lr));
  (void)nonfinite_policy_of(o.common.on_nonfinite);
  (void)overlap_of(o.common.overlap);
  check_checkpoint_options(o.common);
  if (o.earlybert.enabled) check_earlybert_options(o.earlybert);
  check_lottery_values(o);
  check_shape_name(o.shape);
  if (o.shape.empty() && o.init.empty()) throw config_error("--shape is required when not initialising from a checkpoint (--init)");
  if (!o.task.empty() && o.task != "squad" && !is_tagging_task(o.task) && find_glue_task(o.task) == nullptr) {
    std::vector<std::string> names;
    for (const sentence_task& t : glue_tasks()) names.push_back(t.name);
    throw config_error(fmt::format("--task is '{}', expected one of {}, squad, upos or ner", o.task, fmt::join(names, ", ")));
  }
  if (o.early_exit.enabled) {
    if (!is_tagging_task(o.task)) throw config_error(fmt::format("--early-exit is for --task upos or ner, not '{}'", o.task.empty() ? "custom files" : o.task));
    if (o.early_exit.self_sampling_epochs < 0) {
      throw config_error(fmt::format("--self-sampling-epochs is {}, expected at least 0", o.early_exit.self_sampling_epochs));
    }
    if (o.early_exit.self_sampling_steps && *o.early_exit.self_sampling_steps < 0) {
      throw config_error(fmt::format("--self-sampling-steps is {}, expected at least 0", *o.early_exit.self_sampling_steps));
    }
    (void)o.early_exit.exit.policy();
  }
}

namespace {
// The first of `names` that exists in `directory`, or an error naming the task and them all. A name
// may hold one '*' (UD's "*-ud-train.conllu").
fs::path task_file(const finetune_options& o, const fs::path& directory, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const auto star = name.find('*');
    if (star == std::string::npos) {
      if (fs::exists(directory / name)) return directory / name;
      continue;
    }
    std::vector<fs::path> matches;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
      const std::string file = entry.path().filename().string();
      if (file.size() >= name.size() - 1 && file.starts_with(name.substr(0, star)) && file.ends_with(name.substr(star + 1))) matches.push_back(entry.path());
    }
    std::sort(matches.begin(), matches.end());
    if (!matches.empty()) return matches.front();
  }
  throw io_error(fmt::format("--data '{}' holds no {} file for --task {} (looked for {})", directory.string(),
                             names.front().find("dev") != std::string::npos || names.front().find("valid") != std::string::npos ? "dev" : "training",
                             o.task, fmt::join(names, ", ")));
}
}  // namespace

squad_task_data read_squad_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer) {
  const bool files = !o.train.empty() || !o.dev.empty();
  if (o.data.empty() == !files || (files && (o.train.empty() || o.dev.empty()))) {
    throw config_error("--task squad reads either --data DIR (its train-v1.1.json and dev-v1.1.json) or both --train and --dev");
  }
  squad_task_data data;
  data.options.max_seq = o.max_seq;
  data.options.stride = o.doc_stride;
  data.options.max_query = o.max_query;
  const fs::path train = files ? fs::path(o.train) : task_file(o, o.data, {"train-v1.1.json"});
  const fs::path dev = files ? fs::path(o.dev) : task_file(o, o.data, {"dev-v1.1.json"});
  data.train = make_qa_features(read_squad(train), tokenizer, data.options);
  data.dev.emplace_back("", make_qa_features(read_squad(dev), tokenizer, data.options));
  return data;
}

tagging_task_data read_tagging_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer) {
  const bool files = !o.train.empty() || !o.dev.empty();
  const bool upos = o.task == "upos";
  const std::vector<std::string> train_names = upos ? std::vector<std::string>{"*-ud-train.conllu"}
                                                    : std::vector<std::string>{"wnut17train.conll", "train.txt", "eng.train"};
  const std::vector<std::string> dev_names = upos ? std::vector<std::string>{"*-ud-dev.conllu"}
                                                  : std::vector<std::string>{"emerging.dev.conll", "valid.txt", "eng.testa"};
  if (o.data.empty() == !files || (files && (o.train.empty() || o.dev.empty()))) {
    throw config_error(fmt::format("--task {} reads either --data DIR (its {} and {}) or both --train and --dev", o.task, train_names.front(),
                                   dev_names.front()));
  }
  const fs::path train_path = files ? fs::path(o.train) : task_file(o, o.data, train_names);
  const fs::path dev_path = files ? fs::path(o.dev) : task_file(o, o.data, dev_names);
  const auto read = [&](const fs::path& path) { return upos ? read_conllu(path) : read_conll_ner(path); };
  std::vector<tagged_sentence> train = read(train_path), dev = read(dev_path);
  tagging_task_data data;
  data.title = upos ? "UPOS" : "NER";
  data.name = o.task;
  data.entities = !upos;
  data.metrics = upos ? std::vector<std::string>{"accuracy"} : std::vector<std::string>{"f1", "precision", "recall", "accuracy"};
  const std::vector<tagged_sentence>* both[] = {&train, &dev};
  data.label_names = upos ? universal_pos_tags() : tag_set(both);
  data.num_labels = static_cast<int>(data.label_names.size());
  data.train = encode_tagging(std::move(train), tokenizer, o.max_seq, data.label_names, fmt::format("'{}'", train_path.string()));
  tagging_dataset encoded_dev = encode_tagging(std::move(dev), tokenizer, o.max_seq, data.label_names, fmt::format("'{}'", dev_path.string()));
  if (encoded_dev.cut_words > 0) {
    messages::note("finetune", "{} dev words do not fit in --max-seq {} and count as mispredicted", encoded_dev.cut_words, o.max_seq);
  }
  data.dev.emplace_back("", std::move(encoded_dev));
  return data;
}

sentence_task_data read_sentence_task(const finetune_options& o, const wordpiece_tokenizer& tokenizer) {
  sentence_task_data data;
  if (o.task.empty()) {
    if (o.train.empty() || o.dev.empty()) throw config_error("--train and --dev are required without --task (or give --task and --data)");
    data.title = "custom";
    data.num_labels = o.num_labels;
    data.train = read_classification_tsv(o.train, tokenizer, o.max_seq, o.num_labels);
    data.dev.emplace_back("", read_classification_tsv(o.dev, tokenizer, o.max_seq, o.num_labels));
    data.metrics = {o.num_labels == 1 ? "pearson" : "accuracy"};
    if (o.num_labels == 1) data.metrics.push_back("spearman");
    if (data.train.sentence_pairs != data.dev.front().second.sentence_pairs) {
      throw config_error(fmt::format("--train has {} text column(s) but --dev has {}", data.train.text_columns.size(),
                                     data.dev.front().second.text_columns.size()));
    }
    return data;
  }
  const sentence_task* task = find_glue_task(o.task);
  if (task == nullptr) {
    std::vector<std::string> names;
    for (const sentence_task& t : glue_tasks()) names.push_back(t.name);
    throw config_error(fmt::format("--task is '{}', expected one of {}, squad, upos or ner", o.task, fmt::join(names, ", ")));
  }
  const bool files = !o.train.empty() || !o.dev.empty();
  if (o.data.empty() == !files || (files && (o.train.empty() || o.dev.empty()))) {
    throw config_error(fmt::format("--task {} reads either --data DIR (its {} and {}) or both --train and --dev", o.task, task->train_file,
                                   task->dev.front().file));
  }
  data.title = task->title;
  data.name = task->name;
  data.metrics = task->metrics;
  data.label_names = task->class_names();
  data.num_labels = task->layout.num_labels;
  const fs::path directory(o.data);
  data.train = read_sentence_tsv(files ? fs::path(o.train) : directory / task->train_file, task->layout, tokenizer, o.max_seq);
  if (files) {
    data.dev.emplace_back("", read_sentence_tsv(o.dev, task->layout, tokenizer, o.max_seq));
  } else {
    for (const dev_split& split : task->dev) data.dev.emplace_back(split.name, read_sentence_tsv(directory / split.file, task->layout, tokenizer, o.max_seq));
  }
  return data;
}

int run_finetune(const finetune_options& o) {
  apply_threads("finetune", o.common.threads);
  check_finetune_options(o);
  if (!o.out.empty()) check_output_directory(o.out, o.common.overwrite || o.common.resume);
  const vocabulary vocab = vocabulary::load(o.vocab);
  const wordpiece_tokenizer tokenizer = bert_tokenizer(vocab);
  const stopwatch reading;
  finetune_result r;
  if (o.task == "squad") {
    const squad_task_data data = read_squad_task(o, tokenizer);
    messages::status("finetune", "{}: {} training questions in {} windows, {} dev questions in {} windows, tokenised in {:.1f} s", data.title,
                     data.train.source.questions.size(), data.train.examples.size(), data.dev.front().second.source.questions.size(),
                     data.dev.front().second.examples.size(), reading.seconds());
    r = finetune_any(o, vocab, data);
  } else if (is_tagging_task(o.task)) {
    const tagging_task_data data = read_tagging_task(o, tokenizer);
    messages::status("finetune", "{}: {} training and {} dev sentences, {} tags, tokenised in {:.1f} s", data.title, data.train.examples.size(),
                     data.dev.front().second.examples.size(), data.num_labels, reading.seconds());
    r = finetune_any(o, vocab, data);
  } else {
    const sentence_task_data data = read_sentence_task(o, tokenizer);
    std::string dev_sizes;
    for (const auto& [suffix, set] : data.dev) dev_sizes += fmt::format("{}{}{}", dev_sizes.empty() ? "" : " + ", set.examples.size(), suffix.empty() ? "" : " " + suffix);
    messages::status("finetune", "{}: {} training and {} dev examples ({}), tokenised in {:.1f} s", data.title, data.train.examples.size(), dev_sizes,
                     data.train.sentence_pairs ? "sentence pairs" : "single sentences", reading.seconds());
    r = finetune_with(o, vocab, data);
  }
  if (!job::lead()) return 0;
  std::string others;
  for (const auto& [name, value] : r.dev_metrics.items()) {
    if (name != r.main_metric) others += fmt::format(", {} {:.4f}", name, value);
  }
  if (!r.early_exit.is_null()) {
    const auto& e = r.early_exit;
    const auto& metrics = e["dev_metrics"];
    fmt::print("finetune: early exit ({}, {} below {}{}): dev {} {:.4f} (full model {:.4f}); a word ran {:.2f} of {} layers; {:.3f} of the FLOPs; "
               "{:.2f}x faster on the dev set ({:.2f} s against {:.2f} s)\n",
               e["mode"].get<std::string>(), e["measure"].get<std::string>(), e["threshold"].get<double>(),
               e["mode"] == "token" ? fmt::format(", window {}", e["window"].get<int>()) : "", metrics.begin().key(), metrics.begin()->get<double>(),
               e["full_dev_metrics"].begin()->get<double>(), e["mean_layers"].get<double>(), e["layers"].get<int>(), e["flops_ratio"].get<double>(),
               e["wall_speed_up"].get<double>(), e["exit_wall_s"].get<double>(), e["full_wall_s"].get<double>());
  }
  // One line: the run's length and cost, what its method did, the dev result and where it went.
  const json& s = r.summary;
  const std::string mode = s.is_object() ? s.value("mode", std::string("dense")) : std::string("dense");
  std::string method;
  if (mode == "earlybert") {
    method = fmt::format(" (EarlyBERT, {} ticket at step {}; encoder FLOPs ratio {:.3f} at --max-seq {})", o.earlybert.importance, r.ticket_step,
                         r.flops_ratio, o.max_seq);
  } else if (mode == "imp" || mode == "structured_imp") {
    method = fmt::format(" ({}IMP, {} levels, the dense one first; the last {:.1f}% pruned)", mode == "imp" ? "" : "structured ", s.value("levels", 0L),
                         100 * s.value("sparsity", 0.0));
  } else if (mode == "rigl" || mode == "static_sparse" || mode == "ticket" || mode.starts_with("control_")) {
    method = fmt::format(" ({}, {:.1f}% of the weights pruned; unstructured masks save no FLOPs with dense GEMMs)",
                         mode == "rigl" ? fmt::format("RigL, {} mask updates", s.value("updates", 0L)) : mode == "static_sparse" ? std::string("static sparsity")
                         : mode == "ticket" ? std::string("the ticket of --mask-from") : "--control " + mode.substr(8),
                         100 * s.value("sparsity", 0.0));
  } else if (mode == "lmc") {
    method = fmt::format(" (instability from step {}: error barrier {:.4f}, loss barrier {:.4f})", o.lottery.lmc_step.value_or(0), s.value("error_barrier", 0.0),
                         s.value("loss_barrier", 0.0));
  }
  std::string against_dense;
  if (s.is_object() && s.contains("last_level_flops_vs_dense")) {
    against_dense = fmt::format("; the last level against the dense one (level 0): {:.3f} of its FLOPs, {:.2f} of its time",
                                s["last_level_flops_vs_dense"].get<double>(), s["last_level_wall_vs_dense"].get<double>());
  }
  if (s.is_object() && s.contains("flops_vs_dense")) {
    against_dense = fmt::format("; against the {}-step dense run it replaces: {:.3f} of its FLOPs, about {:.2f} of its time (estimated from the search stage)",
                                s["dense_steps"].get<long>(), s["flops_vs_dense"].get<double>(), s["wall_vs_dense_estimate"].get<double>());
  }
  fmt::print("finetune{}: {} steps in all in {:.1f} s ({:.0f} tokens/s), {:.3g} FLOPs{}; dev {} {:.4f}{}; checkpoint in '{}'\n", method, r.total_steps,
             r.train_wall_s, r.tokens / r.train_wall_s, r.train_flops, against_dense, r.main_metric, r.dev_main, others, o.out);
  return 0;
}

}  // namespace earlybert::cli
