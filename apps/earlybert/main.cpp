// SPDX-License-Identifier: Apache-2.0
// `earlybert`: the command-line program. Every subcommand has --help.
//
//   earlybert pretrain  --corpus FILE... --vocab FILE --shape NAME --out DIR [...]   masked-LM pre-training
//   earlybert finetune  --task NAME --data DIR | --train FILE --dev FILE, --vocab FILE --shape NAME --out DIR [...]
//   earlybert predict   --checkpoint DIR --input FILE.tsv --out FILE.jsonl
//   earlybert inspect   DIR [--json]
//   earlybert demo      [--out DIR]                                           the main job
//   earlybert bench     --shape NAME [--batch B --seq L --steps N ...] [--json] training-step timing
//
// Errors are one line on stderr, "earlybert <subcommand>: <what>", and exit status 1 (2 for usage);
// a training run stopped by SIGINT or SIGTERM exits with 128 + the signal, its state saved. Status
// lines and notes come before it, and --quiet silences them (messages.hpp).
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "checkpoints.hpp"
#include "common.hpp"
#include "finetune.hpp"
#include "flag_rules.hpp"
#include "job.hpp"
#include "pretrain.hpp"

namespace {
using namespace earlybert::cli;

constexpr const char* run_group = "Running: threads, seeds, metrics, checkpoints";

// --threads, and --seed where the subcommand draws random numbers (predict and inspect draw none).
void add_common(CLI::App& command, common_options& o, bool metrics = true, bool seeded = true) {
  command.add_option("--threads", o.threads, "Threads to use (0: every core)")->capture_default_str()->group(run_group);
  if (seeded) command.add_option("--seed", o.seed, "Seed for initialisation, shuffling, masking and dropout")->capture_default_str()->group(run_group);
  if (metrics) {
    command.add_option("--metrics", o.metrics, "Write JSON-lines metrics to this file")->group(run_group);
    command.add_option("--on-nonfinite", o.on_nonfinite, "A non-finite loss or gradient: stop (an error naming the step and tensor) or skip the step")
        ->capture_default_str()->group(run_group);
  }
}
// --checkpoint-every, --resume and --overwrite (pretrain and finetune; checkpoints.hpp), and --overlap:
// the options of training runs that may change between a run and its continuation.
void add_checkpointing(CLI::App& command, common_options& o) {
  command.add_option("--checkpoint-every", o.checkpoint_every,
                     "Write the training state to --out every N steps of a stage (0: only on SIGINT/SIGTERM)")->capture_default_str()->group(run_group);
  command.add_flag("--resume", o.resume, "Continue from the training state in --out (same settings); start afresh if there is none")->group(run_group);
  command.add_flag("--overwrite", o.overwrite, "Replace the checkpoint or training state --out already holds (refused otherwise)")->group(run_group);
  command.add_option("--overlap", o.overlap, "Under mpirun: sum gradients during the backward pass (on) or after it (off); the same bits either way")
      ->capture_default_str()->group(run_group);
  command.add_option("--save-dtype", o.save_dtype, "The saved checkpoint's weights: f32, or f16 or bf16 at half the size (training states stay exact)")
      ->capture_default_str()->group(run_group);
}

// A subcommand's description: what it does, then examples to copy.
std::string described(const char* what, std::initializer_list<const char*> examples) {
  std::string text = std::string(what) + "\n\nExamples:";
  for (const char* e : examples) text += std::string("\n  ") + e;
  return text;
}

// The settings a training state must be resumed with: every option as CLI11 writes a config file,
// without those that may change between the interrupted run and its continuation.
std::string resumable_settings(const CLI::App& command) {
  std::string kept;
  std::istringstream lines(command.config_to_str(true, false));
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("resume=") || line.starts_with("overwrite=") || line.starts_with("quiet=") || line.starts_with("checkpoint-every=") || line.starts_with("threads=") ||
        line.starts_with("overlap=") || line.starts_with("save-dtype=")) {
      continue;
    }
    kept += line + "\n";
  }
  return kept;
}

// The EarlyBERT flags, shared by finetune and pretrain (their efficient-stage defaults differ).
void add_earlybert(CLI::App& command, earlybert_cli_options& eb, const char* epochs_help, const char* steps_help, const char* lr_help) {
  const auto earlybert_group = "EarlyBERT (with --earlybert)";
  command.add_flag("--earlybert", eb.enabled, "Train through the EarlyBERT pipeline: search, draw the ticket, efficient training")
      ->group(earlybert_group);
  command.add_option("--prune-heads", eb.prune_heads, "Fraction of heads pruned")->capture_default_str()->group(earlybert_group);
  command.add_option("--prune-ffn", eb.prune_ffn, "Fraction of FFN neurons pruned")->capture_default_str()->group(earlybert_group);
  command.add_option("--heads-scope", eb.heads_scope, "layerwise or global")->capture_default_str()->group(earlybert_group);
  command.add_option("--ffn-scope", eb.ffn_scope, "layerwise or global")->capture_default_str()->group(earlybert_group);
  command.add_option("--counting", eb.counting, "exact (round(n r) lowest) or quantile (numpy, as the official scripts)")
      ->capture_default_str()->group(earlybert_group);
  command.add_option("--min-kept", eb.min_kept, "Heads and neurons every layer keeps at least")->capture_default_str()->group(earlybert_group);
  command.add_option("--l1-heads", eb.l1_heads, "L1 penalty on the head coefficients")->capture_default_str()->group(earlybert_group);
  command.add_option("--l1-ffn", eb.l1_ffn, "L1 penalty on the FFN coefficients")->capture_default_str()->group(earlybert_group);
  command.add_option("--importance,--ticket", eb.importance, "The importance criterion: slimming, random, magnitude, gradient or taylor (--ticket: the old name)")->capture_default_str()->group(earlybert_group);
  command.add_flag("--absolute", eb.absolute, "Rank slimming coefficients by |c| instead of the signed value")->group(earlybert_group);
  command.add_option("--detector", eb.detector, "When to draw: mask-distance, fixed, fraction or never")->capture_default_str()->group(earlybert_group);
  command.add_option("--eb-window", eb.window, "Masks compared by the mask-distance detector")->capture_default_str()->group(earlybert_group);
  command.add_option("--eb-eps", eb.epsilon, "Largest mask distance that counts as settled")->capture_default_str()->group(earlybert_group);
  command.add_flag("--eb-joint", eb.joint, "Track heads and FFN as one mask instead of separately")->group(earlybert_group);
  command.add_option("--eb-interval", eb.interval, "Steps between mask checks (0: a 50th of an epoch)")->capture_default_str()->group(earlybert_group);
  command.add_option("--draw-step", eb.draw_step, "fixed: the step to draw at; fraction: the fraction of the first epoch")
      ->capture_default_str()->group(earlybert_group);
  command.add_option("--restart-from", eb.restart_from, "init (step-0 weights) or draw (weights and moments at the draw)")
      ->capture_default_str()->group(earlybert_group);
  command.add_option("--efficient-epochs", eb.efficient_epochs, epochs_help)->group(earlybert_group);
  command.add_option("--efficient-steps", eb.efficient_steps, steps_help)->group(earlybert_group);
  command.add_option("--efficient-lr", eb.efficient_lr, lr_help)->group(earlybert_group);
}
}  // namespace

int main(int argc, char** argv) {
  job::start(argc, argv);  // joins the MPI job, when mpirun started the program (job.hpp)
  CLI::App app{"earlybert: BERT training made cheaper with early-bird lottery tickets"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "earlybert 0.1.0");

  // Each subcommand's flags in groups, by what they belong to; its help opens with examples.
  const auto data_group = "Data and model";
  const auto training_group = "Training";

  pretrain_options pretrain;
  auto* p = app.add_subcommand(
      "pretrain", described("Pre-train a BERT with the masked-LM objective on a raw-text corpus (docs/cli.md)",
                            {"earlybert pretrain --corpus data/wikitext2/train_head.txt --vocab data/vocab/bert-base-uncased-vocab.txt --shape tiny --out runs/tiny",
                             "earlybert pretrain --corpus train.txt --eval-corpus valid.txt --vocab vocab.txt --shape mini --steps 2000 --out runs/mini",
                             "earlybert pretrain ... --earlybert --prune-heads 0.5 --prune-ffn 0.4 --out runs/mini_eb   (EarlyBERT in pre-training)"}));
  p->add_option("--corpus", pretrain.corpus,
                "Training text, one paragraph per line (WikiText layout): one or more files, or folders of .txt files, read in order")
      ->required()
      ->group(data_group);
  p->add_option("--eval-corpus", pretrain.eval_corpus, "Held-out text for evaluation, never among --corpus (default: the last sequences of --corpus)")
      ->group(data_group);
  p->add_option("--vocab", pretrain.vocab, "WordPiece vocabulary (vocab.txt)")->required()->group(data_group);
  p->add_option("--shape", pretrain.shape, "Model shape: tiny, mini, small, medium or base")->required()->group(data_group);
  p->add_option("--out", pretrain.out, "Checkpoint directory to write (another run's: --overwrite)")->required()->group(data_group);
  p->add_option("--steps", pretrain.steps, "Optimizer steps")->capture_default_str()->group(training_group);
  p->add_option("--batch", pretrain.batch, "Sequences per step")->capture_default_str()->group(training_group);
  p->add_option("--seq", pretrain.seq, "Tokens per sequence, [CLS] and [SEP] included")->capture_default_str()->group(training_group);
  p->add_option("--lr", pretrain.lr, "Peak learning rate")->capture_default_str()->group(training_group);
  p->add_option("--warmup-ratio", pretrain.warmup_ratio, "Warm-up as a fraction of the steps")->capture_default_str()->group(training_group);
  p->add_option("--weight-decay", pretrain.weight_decay, "AdamW's decoupled weight decay")->capture_default_str()->group(training_group);
  p->add_option("--max-grad-norm", pretrain.max_grad_norm, "Gradient-norm clipping (0: none)")->capture_default_str()->group(training_group);
  p->add_option("--dropout", pretrain.dropout, "Hidden and attention dropout while pre-training (the checkpoint's config.json keeps BERT's 0.1 for fine-tuning)")
      ->capture_default_str()->group(training_group);
  p->add_flag("--segment-pairs", pretrain.segment_pairs,
              "Train on sequences laid out as BERT's pairs, [CLS] A [SEP] B [SEP] (B continuing A, type id 1), so that the type-1 embedding and an inner [SEP] are learnt; held-out evaluation stays single-segment")
      ->group(training_group);
  p->add_option("--accumulation", pretrain.accumulation, "Micro-batches per step")->capture_default_str()->group(training_group);
  p->add_option("--eval-every", pretrain.eval_every, "Evaluate every N steps (0: only at the end)")->capture_default_str()->group(training_group);
  p->add_option("--eval-sequences", pretrain.eval_sequences, "Held-out sequences to evaluate on")->capture_default_str()->group(training_group);
  add_common(*p, pretrain.common);
  add_checkpointing(*p, pretrain.common);
  add_earlybert(*p, pretrain.earlybert, "Efficient-stage passes over the corpus (instead of --efficient-steps)",
                "Efficient-stage steps (default two thirds of --steps)", "Efficient-stage peak learning rate (default --lr)");

  finetune_options finetune;
  auto* f = app.add_subcommand(
      "finetune",
      described("Fine-tune on a task (GLUE, SQuAD v1.1, UPOS or NER by name, or custom TSV files), densely, with EarlyBERT or a "
                "lottery-ticket method (docs/cli.md)",
                {"earlybert finetune --task rte --data data/tasks/rte --vocab data/vocab/bert-base-uncased-vocab.txt --shape tiny --out runs/rte",
                 "earlybert finetune --task sst2 --data DIR --vocab vocab.txt --init runs/pretrained --earlybert --out runs/sst2_eb",
                 "earlybert finetune --train train.tsv --dev dev.tsv --vocab vocab.txt --init runs/pretrained --imp --imp-levels 4 --out runs/imp"}));
  f->add_option("--task", finetune.task,
                "A task by name (its files, labels, head and metrics): cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, squad, upos or ner")->group(data_group);
  f->add_option("--data", finetune.data, "The --task's directory, holding its files under their GLUE names")->group(data_group);
  f->add_option("--train", finetune.train, "Training TSV: the --task's layout, or (without --task) a header naming text column(s) and 'label'")->group(data_group);
  f->add_option("--dev", finetune.dev, "Dev TSV, same layout")->group(data_group);
  f->add_option("--vocab", finetune.vocab, "WordPiece vocabulary (vocab.txt)")->required()->group(data_group);
  f->add_option("--shape", finetune.shape, "Model shape: tiny, mini, small, medium or base (from --init if given)")->group(data_group);
  f->add_option("--out", finetune.out, "Checkpoint directory to write, with eval_results.json and summary.json (another run's: --overwrite)")->required()->group(data_group);
  f->add_option("--init", finetune.init, "Start from this checkpoint directory instead of random weights")->group(data_group);
  f->add_option("--epochs", finetune.epochs, "Passes over the training set")->capture_default_str()->group(training_group);
  f->add_option("--steps", finetune.steps, "Optimizer steps instead of --epochs passes (a reduced-budget baseline)")->group(training_group);
  f->add_option("--batch", finetune.batch, "Examples per step")->capture_default_str()->group(training_group);
  f->add_option("--max-seq", finetune.max_seq, "Longest encoded example; longer ones are truncated (kept in the checkpoint for predict)")->capture_default_str()->group(data_group);
  f->add_option("--lr", finetune.lr, "Peak learning rate (default 1e-3 from scratch, 3e-4 with --init)")->group(training_group);
  f->add_option("--warmup-ratio", finetune.warmup_ratio, "Warm-up as a fraction of the steps")->capture_default_str()->group(training_group);
  f->add_option("--weight-decay", finetune.weight_decay, "AdamW's decoupled weight decay")->capture_default_str()->group(training_group);
  f->add_option("--max-grad-norm", finetune.max_grad_norm, "Gradient-norm clipping (0: none)")->capture_default_str()->group(training_group);
  f->add_option("--accumulation", finetune.accumulation, "Micro-batches per step")->capture_default_str()->group(training_group);
  f->add_option("--num-labels", finetune.num_labels, "Classes of custom files (1: a regression on real-valued scores); a --task knows its own")
      ->capture_default_str()->group(data_group);
  f->add_option("--eval-every", finetune.eval_every, "Evaluate every N steps (0: after every epoch)")->capture_default_str()->group(training_group);
  f->add_option("--doc-stride", finetune.doc_stride, "SQuAD: pieces between the starts of a context's windows")->capture_default_str()->group("SQuAD (--task squad)");
  f->add_option("--max-query", finetune.max_query, "SQuAD: the question's pieces kept")->capture_default_str()->group("SQuAD (--task squad)");
  add_common(*f, finetune.common);
  add_checkpointing(*f, finetune.common);
  add_earlybert(*f, finetune.earlybert, "Efficient-stage epochs (default two thirds of --epochs)",
                "Efficient-stage steps (instead of --efficient-epochs)", "Efficient-stage peak learning rate (default twice --lr)");

  const auto lottery_group = "Lottery tickets (instead of --earlybert; docs/lottery.md)";
  lottery_cli_options& l = finetune.lottery;
  f->add_flag("--imp", l.imp, "Iterative magnitude pruning with rewinding: levels of train, prune, rewind; each level's checkpoint in --out/level_NN")
      ->group(lottery_group);
  f->add_option("--imp-levels", l.imp_levels, "Pruned levels after the dense one")->capture_default_str()->group(lottery_group);
  f->add_option("--imp-rate", l.imp_rate, "Fraction of the remaining weights each level prunes")->capture_default_str()->group(lottery_group);
  f->add_option("--imp-ranking", l.imp_ranking, "global (one ranking over every matrix) or per-matrix")->capture_default_str()->group(lottery_group);
  f->add_option("--rewind-step", l.rewind_step, "The step IMP rewinds to (0: the initial or --init weights)")->capture_default_str()->group(lottery_group);
  f->add_option("--rewind-optimizer", l.rewind_optimizer, "AdamW at the rewind: restored (its state at the rewind step) or fresh")
      ->capture_default_str()->group(lottery_group);
  f->add_flag("--imp-structures", l.imp_structures, "IMP of heads (per layer) and FFN neurons (over the layers) instead of single weights")
      ->group(lottery_group);
  f->add_option("--imp-criterion", l.imp_criterion, "The structures' ranking: magnitude, gradient, taylor, random or greedy")
      ->capture_default_str()->group(lottery_group);
  f->add_option("--greedy-examples", l.greedy_examples, "Greedy forward selection's fixed batch: the first N training examples")
      ->capture_default_str()->group(lottery_group);
  f->add_option("--mask-from", l.mask_from, "Train under the unstructured masks of this checkpoint (an IMP level), from --init's weights")
      ->group(lottery_group);
  f->add_option("--control", l.control, "A control of the --mask-from ticket: random (masks), reinit (weights) or shuffle (kept weights)")
      ->group(lottery_group);
  f->add_option("--sparsity", l.sparsity, "Random unstructured sparsity from the start, static (or RigL's with --rigl)")->group(lottery_group);
  f->add_option("--allocation", l.allocation, "The sparsity of each matrix: uniform or erk")->capture_default_str()->group(lottery_group);
  f->add_flag("--rigl", l.rigl, "RigL: drop the smallest weights and grow those of largest dense gradient, every --rigl-interval steps")
      ->group(lottery_group);
  f->add_option("--rigl-drop", l.rigl_drop, "RigL's drop fraction at the start (cosine decay)")->capture_default_str()->group(lottery_group);
  f->add_option("--rigl-interval", l.rigl_interval, "Steps between RigL's updates")->capture_default_str()->group(lottery_group);
  f->add_option("--rigl-end", l.rigl_end, "Fraction of the run after which RigL's masks stay")->capture_default_str()->group(lottery_group);
  f->add_option("--lmc-step", l.lmc_step, "Instability analysis: two copies part at this step (the second with --seed + 1); the error along the line between them")
      ->group(lottery_group);
  f->add_option("--lmc-points", l.lmc_points, "Intervals on the line between the two copies")->capture_default_str()->group(lottery_group);
  f->add_option("--weights", l.weights, "The weights unstructured methods prune: encoder (its linear layers) or every-linear (pooler and head too)")
      ->capture_default_str()->group(lottery_group);

  const auto exit_group = "Early exit (UPOS and NER; docs/early_exit.md)";
  const auto add_exit_policy = [&](CLI::App& command, exit_cli_options& e) {
    command.add_option("--exit-mode", e.mode, "How words leave a model with exits: none (the full model), sentence or token")
        ->capture_default_str()->group(exit_group);
    command.add_option("--exit-measure", e.measure, "A word's uncertainty: entropy (normalised) or max-probability (1 - max p)")
        ->capture_default_str()->group(exit_group);
    command.add_option("--exit-threshold", e.threshold, "A word is confident below this uncertainty (0: none ever is)")->capture_default_str()->group(exit_group);
    command.add_option("--exit-window", e.window, "Token mode: a word leaves when the words this far on each side are confident too")
        ->capture_default_str()->group(exit_group);
  };
  f->add_option("--layers", finetune.layers,
                "Keep only the first N encoder layers of --init (or of --shape): a shallower model trained the same way, early exit's static baseline")
      ->group(exit_group);
  f->add_flag("--early-exit", finetune.early_exit.enabled,
              "UPOS and NER: an exit classifier after every layer, trained jointly for --epochs, then by self-sampling")
      ->group(exit_group);
  f->add_option("--self-sampling-epochs", finetune.early_exit.self_sampling_epochs,
                "Epochs of self-sampling fine-tuning after the joint ones (halting plans from the model's own exits)")
      ->capture_default_str()->group(exit_group);
  f->add_option("--self-sampling-steps", finetune.early_exit.self_sampling_steps, "Steps of self-sampling (instead of --self-sampling-epochs)")
      ->group(exit_group);
  add_exit_policy(*f, finetune.early_exit.exit);

  predict_options predict;
  auto* r = app.add_subcommand(
      "predict",
      described("Run a fine-tuned checkpoint on an input in its task's format (a TSV, CoNLL-U, CoNLL NER or SQuAD JSON file): predictions in "
                "--out, the task's formats beside it, and the official metrics when the input holds the answers; a pre-trained (masked-LM) "
                "checkpoint on raw text: its held-out masked-LM loss and accuracy",
                {"earlybert predict --checkpoint runs/rte --input data/tasks/rte/dev.tsv --out runs/rte_dev.jsonl",
                 "earlybert predict --checkpoint runs/squad --input dev-v1.1.json --out predictions.json   (also predictions.nbest.json)",
                 "earlybert predict --checkpoint runs/upos_ee --input test.conllu --out tags.jsonl --exit-mode token --exit-threshold 0.2",
                 "earlybert predict --checkpoint runs/mini --input valid.txt --out mlm.json   (a pre-trained checkpoint: masked-LM loss and accuracy)"}));
  r->add_option("--checkpoint", predict.checkpoint, "Checkpoint directory (config.json, model.safetensors, vocab.txt, tokenizer_config.json)")
      ->required()->group(data_group);
  r->add_option("--input", predict.input,
                "The input in the layout of the checkpoint's task: a GLUE task's TSV (or a custom TSV whose header names its text "
                "column(s)), CoNLL-U (upos), a CoNLL NER file (ner) or a SQuAD v1.1 JSON file; answers optional (given: scored); raw text for a "
                "masked-LM checkpoint")
      ->required()->group(data_group);
  r->add_option("--out", predict.out,
                "Predictions: JSON lines per row or sentence, or SQuAD's {\"id\": \"answer\"} file; beside it <stem>.submission.tsv, "
                "<stem>.conll or <stem>.nbest.json, and <stem>.metrics.json when the input is scored; a masked-LM checkpoint's metrics (JSON)")
      ->required()->group(data_group);
  r->add_option("--batch", predict.batch, "Rows, sentences or windows per forward pass")->capture_default_str()->group(data_group);
  r->add_option("--max-seq", predict.max_seq, "Longest encoded input (default: the checkpoint's, from its tokenizer_config.json)")->group(data_group);
  r->add_option("--doc-stride", predict.doc_stride, "Question answering: pieces between the starts of a context's windows")
      ->capture_default_str()->group("SQuAD (a question-answering checkpoint)");
  r->add_option("--max-query", predict.max_query, "Question answering: the question's pieces kept")
      ->capture_default_str()->group("SQuAD (a question-answering checkpoint)");
  predict.exit.mode = "none";
  add_exit_policy(*r, predict.exit);
  r->add_option("--exit-report", predict.exit_report, "A model with exits: write the work done and the tagging metrics (with gold tags) as JSON here")
      ->group(exit_group);
  add_common(*r, predict.common, false, false);

  demo_options demo;
  auto* d = app.add_subcommand(
      "demo", described("The main job: dense BERT, EarlyBERT and a random ticket on bundled SST-2, side by side, at two pruning depths",
                        {"earlybert demo", "earlybert demo --out runs/demo2 --seeds 5 --no-deeper", "earlybert demo --init runs/pretrained", "earlybert demo --random-init"}));
  d->add_option("--out", demo.out, "Directory for summary.json, metrics, checkpoints and pictures")->capture_default_str();
  d->add_option("--data", demo.data, "The bundled data directory")->capture_default_str();
  d->add_option("--shape", demo.shape, "Model shape: of the bundled pre-trained model the runs start from, or of the model --pretrain-steps or --random-init makes")
      ->capture_default_str();
  d->add_option("--init", demo.init, "Start from this pre-trained checkpoint instead of the bundled one (its config.json gives the shape)");
  d->add_option("--pretrain-steps", demo.pretrain_steps, "Start from a model pre-trained here: this many masked-LM steps on the bundled WikiText-2 excerpt");
  d->add_flag("--random-init", demo.random_init, "Start from random weights (no pre-training)");
  d->add_option("--seeds", demo.seeds, "Fine-tuning seeds (--seed, --seed + 1, ...): the table shows each run and the means")
      ->capture_default_str();
  d->add_option("--epochs", demo.epochs, "Dense training epochs")->capture_default_str();
  d->add_option("--efficient-epochs", demo.efficient_epochs, "EarlyBERT's efficient-stage epochs")->capture_default_str();
  d->add_option("--lr", demo.lr, "Fine-tuning peak learning rate (default 3e-4 from a pre-trained model, 1e-3 from random weights)");
  d->add_option("--efficient-lr", demo.efficient_lr, "EarlyBERT's efficient-stage peak learning rate (default twice --lr)");
  d->add_option("--restart-from", demo.restart_from, "init or draw")->capture_default_str();
  d->add_option("--max-seq", demo.max_seq, "Longest encoded sentence")->capture_default_str();
  d->add_flag("!--no-deeper", demo.deeper, "Run only the paper's pruning, not the second table (SST-2 pruned deeper)");
  add_common(*d, demo.common, false);

  bench_options bench;
  auto* b = app.add_subcommand(
      "bench", described("Time training steps (or forward passes) of a BERT on random data",
                         {"earlybert bench --shape mini", "earlybert bench --shape base --batch 8 --seq 128 --inference --json",
                          "earlybert bench --shape mini --prune-heads 0.5 --prune-ffn 0.4   (a compacted model)"}));
  b->add_option("--shape", bench.shape, "Model shape: tiny, mini, small, medium or base")->capture_default_str();
  b->add_option("--task", bench.task, "mlm (15% masked, tied decoder) or cls (two-class sequence classifier)")->capture_default_str();
  b->add_option("--batch", bench.batch, "Sequences per step")->capture_default_str();
  b->add_option("--seq", bench.seq, "Tokens per sequence")->capture_default_str();
  b->add_option("--steps", bench.steps, "Timed steps")->capture_default_str();
  b->add_option("--warmup", bench.warmup, "Untimed steps first")->capture_default_str();
  b->add_option("--prune-heads", bench.prune_heads, "Compact every layer to keep this fraction fewer heads")->capture_default_str();
  b->add_option("--prune-ffn", bench.prune_ffn, "Compact every layer to keep this fraction fewer FFN neurons")->capture_default_str();
  b->add_flag("--inference", bench.inference, "Time forward passes without recording instead of training steps");
  b->add_flag("--json", bench.json, "Print one JSON object");
  add_common(*b, bench.common, false);

  inspect_options inspect;
  auto* i = app.add_subcommand(
      "inspect", described("Describe a checkpoint: its shape, task, parameters, FLOPs, kept structure, ticket, weight masks and exits",
                           {"earlybert inspect runs/rte", "earlybert inspect runs/imp/level_04 --json", "earlybert inspect runs/sst2_eb --seq 64"}));
  i->add_option("directory", inspect.directory, "Checkpoint directory")->required();
  i->add_flag("--json", inspect.json, "Print one JSON object instead of text");
  i->add_option("--seq", inspect.seq, "Sequence length for the FLOPs count (default: the length it was trained at, else 128)");

  // --quiet on every subcommand (messages.hpp): no status lines or notes, only an error.
  bool quiet = false;
  for (CLI::App* command : {p, f, r, d, b, i}) {
    command->add_flag("-q,--quiet", quiet, "Print no status lines or notes on stderr, only an error (also EARLYBERT_QUIET=1)")->group(run_group);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return job::lead() ? app.exit(e) : 0;  // help and the version: on stdout, status 0
  } catch (const CLI::CallForAllHelp& e) {
    return job::lead() ? app.exit(e) : 0;
  } catch (const CLI::CallForVersion& e) {
    return job::lead() ? app.exit(e) : 0;
  } catch (const CLI::ParseError& e) {
    // A command line that cannot be read: one error line, "earlybert <subcommand>: ...", status 2.
    std::string command;  // the subcommand named first on the command line, if it names one
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (argc > 1 && sub->get_name() == argv[1]) command = argv[1];
    }
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    if (command.empty() && argc > 1 && argv[1][0] != '-') {
      std::string names;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names += (names.empty() ? "" : ", ") + sub->get_name();
      what = fmt::format("'{}' is not a subcommand, expected one of {}", argv[1], names);
    }
    const std::string help = command.empty() ? "earlybert --help" : fmt::format("earlybert {} --help", command);
    if (job::lead()) messages::error(command.empty() ? std::string_view("") : std::string_view(command), fmt::format("{} (see {})", what, help));
    return 2;
  }
  const std::string name = app.get_subcommands().front()->get_name();
  // Flags without the method they belong to, and methods that exclude each other (flag_rules.hpp).
  try {
    if (name == "finetune") check_finetune_flags(*f, finetune);
    if (name == "pretrain") check_pretrain_flags(*p, pretrain);
    if (name == "demo") check_demo_flags(*d, demo);
  } catch (const usage_error& e) {
    return job::fail(name, fmt::format("{} (see earlybert {} --help)", e.what(), name), 2);
  }
  // SQuAD's standard window is 384 pieces (finetune's --max-seq default is for sentences).
  if (finetune.task == "squad" && f->get_option("--max-seq")->count() == 0) finetune.max_seq = 384;
  for (const CLI::Option* option : r->get_options()) {
    if (option->count() > 0) predict.given.insert(option->get_name());  // flags that belong to a kind of checkpoint (predict.cpp)
  }
  // A run continues only with as many processes as it began with.
  const std::string processes = job::processes() > 1 ? fmt::format("processes={}\n", job::processes()) : "";
  pretrain.common.settings = resumable_settings(*p) + processes;
  finetune.common.settings = resumable_settings(*f) + processes;
  try {
    if (!job::startup_error().empty()) throw earlybert::config_error(job::startup_error());
    messages::configure(quiet || !job::lead());  // the other processes of a job keep quiet
    // EARLYBERT_CHECK_ONLY=1: every check that runs before any file is read, and nothing else (the
    // tests run each command of the documentation this way, so that none of them can rot).
    if (const char* check = std::getenv("EARLYBERT_CHECK_ONLY"); check != nullptr && std::string_view(check) == "1") {
      if (name == "finetune") check_finetune_options(finetune);
      if (name == "pretrain") check_pretrain_options(pretrain);
      messages::status(name, "the command line is valid (EARLYBERT_CHECK_ONLY=1: nothing was read or run)");
      return 0;
    }
    if (name == "pretrain") return run_pretrain(pretrain);
    if (name == "finetune") return run_finetune(finetune);
    job::require_single(name);
    if (name == "predict") return run_predict(predict);
    if (name == "demo") return run_demo(demo);
    if (name == "bench") return run_bench(bench);
    return run_inspect(inspect);
  } catch (const run_interrupted& e) {
    return job::stopped_together(name, e.what(), 128 + e.signal());
  } catch (const job_stopped& e) {
    return job::stopped_together(name, e.what(), 1);
  } catch (const usage_error& e) {
    return job::fail(name, e.what(), 2);
  } catch (const std::exception& e) {
    return job::fail(name, e.what(), 1);
  }
}
