#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The multi-seed studies behind docs/results.md: for every seed, fine-tune one pre-trained checkpoint
several ways with the `earlybert` program on one task (`--task NAME --data DIR`, or custom `--train`
and `--dev` files) and aggregate the runs' summary metrics, the task's main metric first.

  dense               --epochs passes (the reference)
  earlybert           the EarlyBERT pipeline with its defaults (heads layerwise 1/3, FFN global 0.4)
  random_ticket       the same pipeline with random scores
  reduced_dense       dense with EarlyBERT's budget: as many steps as fit in the EarlyBERT run's
                      wall time at the dense run's measured step time
  earlybert_layerwise EarlyBERT with FFN neurons pruned layerwise instead of globally

Writes <out>/study.json (every run's summary and mask-distance checks), <out>/table.md (mean and
standard deviation over the seeds) and, when matplotlib is installed, <out>/mask_distance_by_seed.png
(head and FFN mask distance against the fraction of the first epoch). Only the standard library is
needed otherwise; the program does the work. study.json is rewritten after every run, and a study started
again with the same --out keeps the runs it holds and does only the missing ones.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys

ARMS = ["dense", "earlybert", "random_ticket", "reduced_dense", "earlybert_layerwise"]


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run(binary, args, out_dir, name, log):
    metrics = os.path.join(out_dir, name + ".jsonl")
    command = [binary, "finetune", *args, "--out", os.path.join(out_dir, name), "--metrics", metrics]
    print("study:", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=log, stderr=log)
    events = read_metrics(metrics)
    summary = next(e for e in events if e["event"] == "summary")
    summary["checks"] = [e for e in events if e["event"] == "eb_check"]
    return summary


def write_json(path, value):
    """Written whole or not at all (a study stopped mid-write keeps its last record)."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def reduced_steps(dense, earlybert):
    """Dense's steps that fit in the EarlyBERT run's wall time at the dense run's measured step time
    (the reduced-budget baseline), from the two runs' summaries."""
    return max(1, round(dense["total_steps"] * earlybert["train_wall_s"] / dense["train_wall_s"]))


def main_metric(summary):
    """The task's main metric and its value (studies from before the task registry: dev accuracy)."""
    return summary.get("main_metric", "accuracy"), summary.get("dev_main", summary.get("dev_accuracy"))


def spread(values):
    """The mean and the standard deviation of values (0 for a single one), for error bars."""
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earlybert", help="the earlybert program")
    p.add_argument("--init", help="pre-trained checkpoint directory")
    p.add_argument("--task", help="a task of the program (cola, mrpc, stsb, rte, squad, ...); without it, --train/--dev are custom files")
    p.add_argument("--data", help="the task's directory")
    p.add_argument("--train")
    p.add_argument("--dev")
    p.add_argument("--vocab")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=3, help="dense epochs (EarlyBERT's efficient stage: two thirds)")
    p.add_argument("--max-seq", type=int, default=64)
    p.add_argument("--extra", default="", help="more finetune options for every arm, one string (e.g. '--prune-heads 0.5 --batch 16')")
    p.add_argument("--arms", nargs="+", default=ARMS, choices=ARMS)
    p.add_argument("--aggregate-only", action="store_true", help="only tabulate <out>/study.json (e.g. after merging reruns)")
    a = p.parse_args()
    if a.aggregate_only:
        with open(os.path.join(a.out, "study.json")) as f:
            results = json.load(f)
        a.seeds = sorted({r["seed"] for r in results["runs"]})
        a.arms = [arm for arm in ARMS if any(r["arm"] == arm for r in results["runs"])]
        report(results, a)
        return
    needed = ("earlybert", "init", "vocab") + (("data",) if a.task and not a.train else ("train", "dev"))
    missing = [name for name in needed if getattr(a, name) is None]
    if missing:
        p.error("the following arguments are required: " + ", ".join("--" + m for m in missing))

    os.makedirs(a.out, exist_ok=True)
    files = ["--data", a.data] if a.task and not a.train else ["--train", a.train, "--dev", a.dev]
    common = (["--task", a.task] if a.task else []) + files + ["--vocab", a.vocab, "--init", a.init, "--max-seq", str(a.max_seq)]
    common += shlex.split(a.extra)
    results = {"init": a.init, "train": a.train or a.data, "task": a.task, "extra": a.extra, "epochs": a.epochs, "runs": []}
    study_path = os.path.join(a.out, "study.json")
    if os.path.exists(study_path):
        # Continue an interrupted study: the runs it finished are kept, not repeated; the settings must match.
        with open(study_path) as f:
            previous = json.load(f)
        for key in ("init", "train", "task", "extra", "epochs"):
            if previous.get(key) != results[key]:
                raise SystemExit(f"study: {study_path} was made with {key} {previous[key]!r}, this run has {results[key]!r}; "
                                 "use another --out")
        results = previous
    finished = {(r["seed"], r["arm"]): r for r in results["runs"]}
    with open(os.path.join(a.out, "study.log"), "a") as log:
        for seed in a.seeds:
            seed_dir = os.path.join(a.out, f"seed{seed}")
            os.makedirs(seed_dir, exist_ok=True)
            seeded = common + ["--seed", str(seed)]
            base = seeded + ["--epochs", str(a.epochs)]
            done = {arm: r for (s, arm), r in finished.items() if s == seed}
            for arm in a.arms:
                if arm in done:
                    print(f"study: seed {seed} {arm}: kept from {study_path}", file=sys.stderr, flush=True)
                    continue
                if arm == "dense":
                    args = base
                elif arm == "earlybert":
                    args = base + ["--earlybert"]
                elif arm == "random_ticket":
                    args = base + ["--earlybert", "--importance", "random"]
                elif arm == "earlybert_layerwise":
                    args = base + ["--earlybert", "--ffn-scope", "layerwise"]
                else:  # reduced_dense: needs the dense and EarlyBERT runs of this seed
                    dense, eb = done.get("dense"), done.get("earlybert")
                    if dense is None or eb is None:
                        raise SystemExit("study: reduced_dense needs the dense and earlybert arms")
                    args = seeded + ["--steps", str(reduced_steps(dense, eb))]  # the run's length in steps, instead of --epochs
                done[arm] = run(a.earlybert, args, seed_dir, arm, log)
                results["runs"].append({"seed": seed, "arm": arm, **done[arm]})
                s = done[arm]
                name, value = main_metric(s)
                print(f"study: seed {seed} {arm}: dev {name} {value:.4f}, {s['train_wall_s']:.1f} s", file=sys.stderr, flush=True)
                # After every run, through a temporary file: an interrupted study loses at most the run in progress.
                with open(study_path + ".tmp", "w") as f:
                    json.dump(results, f, indent=1)
                os.replace(study_path + ".tmp", study_path)
    report(results, a)


def write_table(out_dir, header, rows, preamble=""):
    """Writes <out_dir>/table.md (the preamble, then a markdown table) and prints it."""
    table = preamble + "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    table += "".join("| " + " | ".join(row) + " |\n" for row in rows)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(table)
    print(table)


def pyplot(who):
    """matplotlib's pyplot drawing to files, or None (and a note) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"{who}: matplotlib not installed; no picture", file=sys.stderr)
        return None
    return plt


def report(results, a):
    # The table: mean ± standard deviation over the seeds, time and FLOPs relative to dense per seed.
    by_seed = {(r["seed"], r["arm"]): r for r in results["runs"]}
    rows = []
    metric = main_metric(results["runs"][0])[0] if results["runs"] else "accuracy"
    header = ["run", f"dev {metric}", "train time (s)", "time / dense", "FLOPs / dense", "search (s)", "efficient (s)",
              "ticket (fraction of epoch 1)", "detected"]
    for arm in a.arms:
        runs = [r for r in results["runs"] if r["arm"] == arm]
        dense = [by_seed.get((r["seed"], "dense")) for r in runs]
        rows.append([
            arm,
            mean_std([main_metric(r)[1] for r in runs]),
            mean_std([r["train_wall_s"] for r in runs]),
            mean_std([r["train_wall_s"] / d["train_wall_s"] for r, d in zip(runs, dense) if d]),
            mean_std([r["train_flops"] / d["train_flops"] for r, d in zip(runs, dense) if d]),
            mean_std([r.get("search_wall_s") for r in runs]),
            mean_std([r.get("efficient_wall_s") for r in runs]),
            mean_std([r.get("ticket_epoch_fraction") for r in runs]),
            "-" if "detected" not in runs[0] else f"{sum(bool(r['detected']) for r in runs)}/{len(runs)}",
        ])
    write_table(a.out, header, rows)
    plt = pyplot("study")
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results["runs"]:
        if r["arm"] != "earlybert" or not r["checks"]:
            continue
        per_epoch = r["ticket_step"] / r["ticket_epoch_fraction"] if r["ticket_epoch_fraction"] else 1
        steps = [c["step"] / per_epoch for c in r["checks"] if c["head_distance"] is not None]
        heads = [c["head_distance"] for c in r["checks"] if c["head_distance"] is not None]
        ffn = [c["ffn_distance"] for c in r["checks"] if c["ffn_distance"] is not None]
        ax.plot(steps, heads, color="tab:blue", alpha=0.7, label="heads" if r["seed"] == a.seeds[0] else None)
        ax.plot(steps, ffn, color="tab:orange", alpha=0.7, label="FFN neurons" if r["seed"] == a.seeds[0] else None)
    ax.axhline(0.1, color="gray", linestyle="--", linewidth=1, label="ε = 0.1")
    ax.set_xlabel("fraction of the first epoch")
    ax.set_ylabel("largest mask distance over the window")
    ax.set_title(f"EarlyBERT search on {results.get('task') or 'SST-2'}: mask distance, one line per seed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "mask_distance_by_seed.png"), dpi=120)


if __name__ == "__main__":
    main()
