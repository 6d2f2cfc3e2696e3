#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The early-exit study of docs/results.md: for every task and seed, fine-tune one pre-trained checkpoint
with an exit after every layer (`earlybert finetune --early-exit`: joint epochs, then self-sampling) and,
as the static baseline, the same checkpoint cut to its first k layers (`--layers k`) trained for as many
epochs; then tag the dev set with `earlybert predict --exit-report` under sentence- and token-level exit
over a sweep of thresholds, with batches of one sentence (on --latency-threads threads) and of --batch
sentences (on --threads), and the baselines the same way. Each prediction is timed --repeats times, in
rounds over the whole plan, and its median wall time is the one reported.

Each run and each prediction is skipped when its output exists, so the study started again with the
same --out does only what it lacks (a fine-tuning run interrupted is resumed). Writes <out>/study.json
(every report), <out>/table.md (means and standard deviations over the seeds) and, when matplotlib is
installed, <out>/<task>_tradeoff.png (quality against speed-up, FLOPs and wall time) and
<out>/<task>_exit_layers.png (where the words left, at the default threshold).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study import mean_std, pyplot, spread  # noqa: E402

TASKS = {
    "upos": {"data": "ud_ewt", "dev": "en_ewt-ud-dev.conllu", "metric": "accuracy"},
    "ner": {"data": "wnut17", "dev": "emerging.dev.conll", "metric": "f1"},
}


def run(command, log):
    print("early-exit study:", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, stdout=log, stderr=log)


def finetuned(path):
    return os.path.exists(os.path.join(path, "model.safetensors")) and not os.path.exists(os.path.join(path, "training_state.safetensors"))


def label_of(name, mode, threshold, batch):
    return f"{name}_{mode}" + (f"_{threshold:g}" if threshold is not None else "") + f"_b{batch}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earlybert", required=True, help="the earlybert program")
    p.add_argument("--init", required=True, help="pre-trained checkpoint directory")
    p.add_argument("--data", required=True, help="the folder of the full datasets (data/README.md: full datasets)")
    p.add_argument("--vocab", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=3, help="joint epochs (the baselines train this plus the self-sampling epochs)")
    p.add_argument("--self-sampling-epochs", type=int, default=1)
    p.add_argument("--max-seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="threads of the fine-tuning runs and of the batched predictions")
    p.add_argument("--latency-threads", type=int, default=1,
                   help="threads of the predictions one sentence at a time (the latency setting: one core per request)")
    p.add_argument("--repeats", type=int, default=3, help="times each prediction is timed; the table takes the median")
    p.add_argument("--batch", type=int, default=64, help="sentences per forward pass in the batched predictions")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6])
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--default-threshold", type=float, default=0.15)
    p.add_argument("--aggregate-only", action="store_true")
    p.add_argument("--train-only", action="store_true",
                   help="fine-tune, but tag nothing: the timed predictions can then run later, on a quiet machine")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    layers = json.load(open(os.path.join(a.init, "config.json")))["num_hidden_layers"]
    reports = []
    with open(os.path.join(a.out, "study.log"), "a") as log:
        for task in a.tasks:
            info = TASKS[task]
            data = os.path.join(a.data, info["data"])
            dev = os.path.join(data, info["dev"])
            for seed in a.seeds:
                base = [a.earlybert, "finetune", "--task", task, "--data", data, "--vocab", a.vocab, "--init", a.init, "--max-seq", str(a.max_seq),
                        "--threads", str(a.threads), "--seed", str(seed), "-q"]
                models = {"exits": os.path.join(a.out, task, f"seed{seed}", "exits")}
                for k in range(1, layers):
                    models[f"static_{k}"] = os.path.join(a.out, task, f"seed{seed}", f"layers_{k}")
                models["full"] = os.path.join(a.out, task, f"seed{seed}", "full")
                for name, path in models.items():
                    if a.aggregate_only or finetuned(path):
                        continue
                    extra = ["--early-exit", "--epochs", str(a.epochs), "--self-sampling-epochs", str(a.self_sampling_epochs)] if name == "exits" \
                        else ["--epochs", str(a.epochs + a.self_sampling_epochs)]
                    if name.startswith("static_"):
                        extra += ["--layers", name.split("_")[1]]
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    run(base + extra + ["--out", path, "--metrics", path + ".jsonl", "--checkpoint-every", "100", "--resume"], log)
                if a.train_only:
                    continue
                # The predictions: the model with exits under each policy, the baselines as they are.
                plan = []
                for batch in (1, a.batch):
                    plan.append(("exits", "none", None, batch))
                    for mode in ("sentence", "token"):
                        for threshold in a.thresholds:
                            plan.append(("exits", mode, threshold, batch))
                    for name in models:
                        if name != "exits":
                            plan.append((name, "none", None, batch))
                # Every prediction --repeats times, in rounds over the whole plan (so that a slow spell of the
                # machine falls on every setting alike); its wall time is the median of its rounds.
                def report_path(label, round_):
                    return os.path.join(a.out, task, f"seed{seed}", "reports", f"{label}.r{round_}.json")
                for round_ in range(a.repeats):
                    for name, mode, threshold, batch in plan:
                        path = report_path(label_of(name, mode, threshold, batch), round_)
                        if os.path.exists(path) or a.aggregate_only or not finetuned(models[name]):
                            continue
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        threads = a.latency_threads if batch == 1 else a.threads
                        command = [a.earlybert, "predict", "--checkpoint", models[name], "--input", dev, "--out", path[:-5] + ".jsonl",
                                   "--batch", str(batch), "--max-seq", str(a.max_seq), "--threads", str(threads), "--exit-report", path]
                        if mode != "none":
                            command += ["--exit-mode", mode, "--exit-threshold", str(threshold), "--exit-window", str(a.window)]
                        run(command, log)
                        os.remove(path[:-5] + ".jsonl")
                for name, mode, threshold, batch in plan:
                    label = label_of(name, mode, threshold, batch)
                    rounds = [json.load(open(report_path(label, k))) for k in range(a.repeats) if os.path.exists(report_path(label, k))]
                    if not rounds:
                        continue
                    r = dict(rounds[0], wall_s=statistics.median(x["wall_s"] for x in rounds), wall_s_rounds=[x["wall_s"] for x in rounds])
                    r.update({"task": task, "seed": seed, "model": name, "batch": batch})
                    reports.append(r)
                with open(os.path.join(a.out, "study.json.tmp"), "w") as f:
                    json.dump({"init": a.init, "epochs": a.epochs, "self_sampling_epochs": a.self_sampling_epochs, "reports": reports}, f, indent=1)
                os.replace(os.path.join(a.out, "study.json.tmp"), os.path.join(a.out, "study.json"))
    report(reports, a, layers)


def rows_of(reports, task, batch):
    """Per (model, mode, threshold): the reports of every seed, with each seed's full-model wall time."""
    full = {r["seed"]: r["wall_s"] for r in reports if r["task"] == task and r["batch"] == batch and r["model"] == "exits" and r["mode"] == "none"}
    groups = {}
    for r in reports:
        if r["task"] != task or r["batch"] != batch or r["seed"] not in full:
            continue
        key = (r["model"], r["mode"], r["threshold"] if r["mode"] != "none" else None)
        r = dict(r, wall_speed_up=full[r["seed"]] / r["wall_s"])
        groups.setdefault(key, []).append(r)
    return groups


def report(reports, a, layers):
    lines = [f"# Early exit: {', '.join(a.tasks)} (seeds {', '.join(map(str, a.seeds))})", ""]
    for task in a.tasks:
        metric = TASKS[task]["metric"]
        for batch in (1, a.batch):
            groups = rows_of(reports, task, batch)
            if not groups:
                continue
            lines += [f"## {task}, batches of {batch}", "",
                      f"| model | exit | threshold | dev {metric} | layers per word | FLOPs speed-up | wall speed-up | FFN rows / query rows |",
                      "|---|---|---|---|---|---|---|---|"]
            order = sorted(groups, key=lambda k: (k[0] != "exits", k[0], k[1], k[2] if k[2] is not None else -1))
            for key in order:
                rs = groups[key]
                model, mode, threshold = key
                flops = [1 / r["flops_ratio"] for r in rs if "flops_ratio" in r]
                if model.startswith("static_") or model == "full":  # its FLOPs against the full depth's
                    flops = [layers / r["layers"] for r in rs]
                rows = [f"{r['running_rows_ratio'] / r['query_rows_ratio']:.3f}" for r in rs if "query_rows_ratio" in r]
                lines.append(f"| {model} | {mode} | {'-' if threshold is None else f'{threshold:g}'} | "
                             f"{mean_std([r['metrics'][metric] for r in rs])} | {mean_std([r['mean_layers'] for r in rs])} | "
                             f"{mean_std(flops)} | {mean_std([r['wall_speed_up'] for r in rs])} | {rows[0] if len(rows) == 1 else mean_std([float(x) for x in rows])} |")
            lines.append("")
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(reports, a, layers)


def plot(reports, a, layers):
    plt = pyplot("early-exit study")
    if plt is None:
        return
    for task in a.tasks:
        metric = TASKS[task]["metric"]
        groups = rows_of(reports, task, a.batch)
        if not groups:
            continue
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for axis, speed in ((left, "FLOPs"), (right, "wall")):
            for mode, style in (("sentence", "s--"), ("token", "o-")):
                keys = sorted((k for k in groups if k[0] == "exits" and k[1] == mode), key=lambda k: k[2])
                xs = [statistics.mean(1 / r["flops_ratio"] if speed == "FLOPs" else r["wall_speed_up"] for r in groups[k]) for k in keys]
                ys, sds = zip(*[spread(r["metrics"][metric] for r in groups[k]) for k in keys]) if keys else ((), ())
                axis.errorbar(xs, ys, yerr=sds, fmt=style, capsize=2, label=f"{mode}-level exit")
            static = sorted((k for k in groups if k[0].startswith("static_") or k[0] == "full"), key=lambda k: k[0])
            xs = [statistics.mean(layers / r["layers"] if speed == "FLOPs" else r["wall_speed_up"] for r in groups[k]) for k in static]
            ys, sds = zip(*[spread(r["metrics"][metric] for r in groups[k]) for k in static]) if static else ((), ())
            axis.errorbar(xs, ys, yerr=sds, fmt="k^", capsize=2, label="static: first k layers")
            axis.set_xlabel(f"speed-up ({speed}, batches of {a.batch})")
            axis.legend(fontsize=8)
        left.set_ylabel(f"dev {metric}")
        # The error bars are the seeds' spread, so the axis always spans it.
        fig.suptitle(f"{task}: quality against speed-up (mean ± sd over seeds)")
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, f"{task}_tradeoff.png"), dpi=120)
        fig, ax = plt.subplots(figsize=(6, 4))
        width = 0.4
        for offset, mode in ((-width / 2, "sentence"), (width / 2, "token")):
            rs = groups.get(("exits", mode, a.default_threshold), [])
            if not rs:
                continue
            totals = [sum(r["word_exits"][l] for r in rs) for l in range(layers)]
            ax.bar([l + 1 + offset for l in range(layers)], [t / sum(totals) for t in totals], width, label=f"{mode}-level")
        ax.set_xticks(range(1, layers + 1))
        ax.set_xlabel("exit layer")
        ax.set_ylabel("fraction of words")
        ax.set_title(f"{task}: where words leave (threshold {a.default_threshold:g}, window {a.window})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, f"{task}_exit_layers.png"), dpi=120)


if __name__ == "__main__":
    main()
