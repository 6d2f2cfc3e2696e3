#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A pruning-ratio sweep behind docs/results.md: EarlyBERT's ticket against a random ticket as pruning
deepens, on one task, over several seeds, with the `earlybert` program (scripts/study.py runs each arm).

Each point is HEADS:FFN, the fractions of heads and FFN neurons pruned (--prune-heads, --prune-ffn);
every point runs the `earlybert` and `random_ticket` arms for every seed, and dense runs once per seed
as the reference. Runs of a finished study (--reuse <study>/study.json, made with the same settings and
no --extra) stand in for the dense runs and for the point of the defaults (1/3 : 0.4) instead of being
repeated.

Writes <out>/sweep.json (every run's summary), <out>/table.md (mean ± standard deviation per point and
arm, and the ticket's margin over the random one) and, when matplotlib is installed,
<out>/sweep.png (the main metric against the fraction of FFN neurons pruned, one line per arm, the
seeds' spread shaded, dense as a band). Started again with the same --out it does only the runs it lacks.
"""
import argparse
import json
import os
import shlex
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study import main_metric, mean_std, pyplot, run, write_table  # noqa: E402

DEFAULT_POINT = (1 / 3, 0.4)  # the finetune defaults for --prune-heads and --prune-ffn


def parse_point(text):
    try:
        heads, ffn = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point '{text}' is not HEADS:FFN (e.g. 0.5:0.6)")
    if not (0 <= heads < 1 and 0 <= ffn < 1):
        raise argparse.ArgumentTypeError(f"point '{text}': fractions must lie in [0, 1)")
    return heads, ffn


def is_default(point):
    return abs(point[0] - DEFAULT_POINT[0]) < 1e-3 and abs(point[1] - DEFAULT_POINT[1]) < 1e-9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earlybert", required=True, help="the earlybert program")
    p.add_argument("--init", required=True, help="pre-trained checkpoint directory")
    p.add_argument("--task", required=True)
    p.add_argument("--data", help="the task's directory (or --train and --dev files in the task's layout)")
    p.add_argument("--train")
    p.add_argument("--dev")
    p.add_argument("--vocab", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--points", type=parse_point, nargs="+", default=[DEFAULT_POINT, (0.5, 0.6), (2 / 3, 0.8)],
                   help="HEADS:FFN pruning fractions (default 0.3333:0.4 0.5:0.6 0.6667:0.8)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-seq", type=int, default=64)
    p.add_argument("--extra", default="", help="more finetune options for every run, one string")
    p.add_argument("--reuse", help="a study.json of scripts/study.py with the same settings: its dense, earlybert and random_ticket runs")
    p.add_argument("--title", help="the picture's title (default: the task's name and the question)")
    p.add_argument("--report-only", action="store_true", help="only tabulate and draw <out>/sweep.json, running nothing")
    a = p.parse_args()
    if not a.data and not (a.train and a.dev):
        p.error("give --data, or --train and --dev")
    files = ["--train", a.train, "--dev", a.dev] if a.train else ["--data", a.data]

    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "sweep.json")
    settings = {"init": a.init, "task": a.task, "data": a.data or [a.train, a.dev], "epochs": a.epochs, "max_seq": a.max_seq, "extra": a.extra}
    results = {**settings, "runs": []}
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        for key, value in settings.items():
            if previous.get(key) != value:
                raise SystemExit(f"sweep: {path} was made with {key} {previous.get(key)!r}, this run has {value!r}; use another --out")
        results = previous
    if a.reuse:
        with open(a.reuse) as f:
            study = json.load(f)
        if study.get("init") != a.init or study.get("task") != a.task or study.get("epochs") != a.epochs or study.get("extra"):
            raise SystemExit(f"sweep: {a.reuse} was made with other settings (init, task, epochs or --extra); leave out --reuse")
        have = {(r["seed"], r["arm"], r.get("prune_heads"), r.get("prune_ffn")) for r in results["runs"]}
        for r in study["runs"]:
            point = (None, None) if r["arm"] == "dense" else DEFAULT_POINT
            if r["arm"] in ("dense", "earlybert", "random_ticket") and r["seed"] in a.seeds and (r["seed"], r["arm"], *point) not in have:
                results["runs"].append({**r, "prune_heads": point[0], "prune_ffn": point[1], "reused_from": a.reuse})

    def find(seed, arm, point):
        for r in results["runs"]:
            if r["seed"] == seed and r["arm"] == arm and (arm == "dense" or
                                                        (abs(r["prune_heads"] - point[0]) < 1e-9 and abs(r["prune_ffn"] - point[1]) < 1e-9)):
                return r
        if arm != "dense" and is_default(point):  # a reused default point, given as 1/3 exactly
            return next((r for r in results["runs"] if r["seed"] == seed and r["arm"] == arm and r.get("reused_from")
                         and is_default((r["prune_heads"], r["prune_ffn"]))), None)
        return None

    if a.report_only:
        report(results, a, find)
        return
    common = ["--task", a.task, *files, "--vocab", a.vocab, "--init", a.init, "--max-seq", str(a.max_seq),
              "--epochs", str(a.epochs)] + shlex.split(a.extra)
    with open(os.path.join(a.out, "sweep.log"), "a") as log:
        for seed in a.seeds:
            seed_dir = os.path.join(a.out, f"seed{seed}")
            os.makedirs(seed_dir, exist_ok=True)
            jobs = [("dense", None)] + [(arm, point) for point in a.points for arm in ("earlybert", "random_ticket")]
            for arm, point in jobs:
                if find(seed, arm, point):
                    continue
                args = common + ["--seed", str(seed)]
                name = arm
                if arm != "dense":
                    args += ["--earlybert", "--prune-heads", repr(point[0]), "--prune-ffn", repr(point[1])]
                    args += ["--importance", "random"] if arm == "random_ticket" else []
                    name = f"{arm}_h{point[0]:.3f}_f{point[1]:.2f}"
                summary = run(a.earlybert, args, seed_dir, name, log)
                results["runs"].append({"seed": seed, "arm": arm, "prune_heads": point and point[0], "prune_ffn": point and point[1], **summary})
                metric, value = main_metric(summary)
                print(f"sweep: seed {seed} {name}: dev {metric} {value:.4f}", file=sys.stderr, flush=True)
                with open(path + ".tmp", "w") as f:
                    json.dump(results, f, indent=1)
                os.replace(path + ".tmp", path)
    report(results, a, find)


def heads_per_layer(init):
    """The attention heads per layer of the pre-trained checkpoint (its config.json), or None."""
    try:
        with open(os.path.join(init, "config.json"), encoding="utf-8") as f:
            return int(json.load(f)["num_attention_heads"])
    except (OSError, ValueError, KeyError):
        return None


def report(results, a, find):
    metric = main_metric(results["runs"][0])[0]
    dense = [find(s, "dense", None) for s in a.seeds]
    dense_values = [main_metric(r)[1] for r in dense if r]
    header = ["heads pruned", "FFN pruned", f"earlybert {metric}", f"random {metric}", "earlybert − random (per seed)",
              "earlybert time / dense", "random time / dense"]
    rows, lines = [], {"earlybert": [], "random_ticket": []}
    for point in a.points:
        runs = {arm: [find(s, arm, point) for s in a.seeds] for arm in lines}
        values = {arm: [main_metric(r)[1] if r else None for r in rs] for arm, rs in runs.items()}
        margins = [e - r for e, r in zip(values["earlybert"], values["random_ticket"]) if e is not None and r is not None]
        ratio = {arm: [r["train_wall_s"] / d["train_wall_s"] for r, d in zip(rs, dense) if r and d] for arm, rs in runs.items()}
        rows.append([f"{point[0]:.3g}", f"{point[1]:.3g}", mean_std(values["earlybert"]), mean_std(values["random_ticket"]),
                     mean_std(margins) + " (" + ", ".join(f"{m:+.3f}" for m in margins) + ")",
                     mean_std(ratio["earlybert"]), mean_std(ratio["random_ticket"])])
        for arm in lines:
            lines[arm].append([v for v in values[arm] if v is not None])
    write_table(a.out, header, rows, preamble=f"Dense: {metric} {mean_std(dense_values)}\n\n")
    plt = pyplot("sweep")
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = [point[1] for point in a.points]
    for arm, color, label in (("earlybert", "tab:blue", "EarlyBERT ticket"), ("random_ticket", "tab:red", "random ticket")):
        means = [statistics.mean(v) if v else float("nan") for v in lines[arm]]
        stds = [statistics.stdev(v) if len(v) > 1 else 0 for v in lines[arm]]
        ax.plot(x, means, marker="o", color=color, label=label)
        ax.fill_between(x, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], color=color, alpha=0.15)
    if dense_values:
        m = statistics.mean(dense_values)
        s = statistics.stdev(dense_values) if len(dense_values) > 1 else 0
        ax.axhspan(m - s, m + s, color="gray", alpha=0.2)
        ax.axhline(m, color="gray", linestyle="--", linewidth=1, label="dense")
    # The heads a layer actually loses: round(H · r) of H (tiny's 2 heads lose one at r = 1/3 and at 1/2).
    heads = heads_per_layer(a.init)
    ax.set_xticks(x, [f"FFN {point[1]:.0%}\nheads {round(heads * point[0]) / heads:.0%}" if heads else
                      f"FFN {point[1]:.0%}\nheads {point[0]:.0%} (nominal)" for point in a.points])
    ax.set_xlabel("fraction pruned")
    ax.set_ylabel(f"dev {metric} (mean ± std over {len(a.seeds)} seeds)")
    ax.set_title(a.title or f"{a.task}: EarlyBERT's ticket against a random one as pruning deepens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "sweep.png"), dpi=120)


if __name__ == "__main__":
    main()
