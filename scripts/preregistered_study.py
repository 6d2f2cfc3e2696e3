#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The pre-registered study of docs/results.md §11: EarlyBERT against the random ticket (A) and against
dense stopped at EarlyBERT's wall time (B), fine-tuned from two independently pre-trained checkpoints
with seeds 1-5 each, on SST-2 (the bundled 8,419-sentence subset), QNLI (its dev file split by
scripts/split_qnli.py) and STS-B, and the paired tests decided in advance.

    scripts/preregistered_study.py --earlybert BIN --start P1=DIR --start P2=DIR --data "$DATA" --out runs/prereg \\
        [--tasks sst2 qnli stsb] [--seeds 1 2 3 4 5] [--threads 2]
    scripts/preregistered_study.py --out runs/prereg --analyse-only

Dense's recipe, per task: the learning rate (1e-4, 3e-4, 1e-3) and epochs (2, 3, 4) scoring best when
trained from the first start (seed 1) on the first 90% of the training file and scored on its last 10%
(scripts/hold_out.py; SST-2's by sentence, with the phrases each contains); every dense run, full and
reduced, uses it. EarlyBERT and the random ticket keep
the program's defaults, with dense's learning rate (the efficient stage at twice it) and a ticket
trained for 2 epochs. The reduced-budget dense run takes as many steps as fit in the same seed's
EarlyBERT wall time at the dense run's step time (scripts/study.py's reduced_steps).

The analysis, per comparison and task, over the (start, seed) pairs, in points of the main metric
(accuracy or Pearson, times 100): the mean difference with a paired-t 95% interval, and the exact
two-sided sign-flip test of a zero mean (every one of the 2^n sign patterns). Pooled over tasks: the
sign-flip test over all pairs with each task's differences divided by the standard deviation of its
full dense runs (Monte Carlo over 10^6 sign patterns, fixed seed, when 2^n is larger), and the
paired-t 95% interval of the pooled differences in points. Verdicts at 0.05, two-sided: (A) supported
when the pooled difference is positive and significant, contradicted when negative and significant;
(B) supported when the pooled 95% interval lies above -1 point, contradicted when it lies below -1;
otherwise not resolved. Writes <out>/study.json after every run and <out>/analysis.json and
<out>/analysis.md at the end.
"""
import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from hold_out import hold_out  # noqa: E402
from study import main_metric, reduced_steps, run, write_json  # noqa: E402

TASKS = {"sst2": ["--max-seq", "64"], "qnli": [], "stsb": []}
DENSE_GRID = [(lr, epochs) for lr in (1e-4, 3e-4, 1e-3) for epochs in (2, 3, 4)]
ARMS = ["dense", "earlybert", "random_ticket", "reduced_dense"]
COMPARISONS = {"A": ("earlybert", "random_ticket"), "B": ("earlybert", "reduced_dense")}
TICKET_EPOCHS = 2
EXACT_LIMIT = 20  # sign patterns are enumerated up to 2^20; beyond, sampled
SAMPLES = 10**6


def task_folder(task, a):
    """The task's train.tsv and dev.tsv as the study uses them, made once under <out>/data."""
    folder = os.path.join(a.out, "data", task)
    if os.path.exists(os.path.join(folder, "dev.tsv")):
        return folder
    if task == "sst2":
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(os.path.join(REPO, "data", "sst2", "train_subset.tsv"), os.path.join(folder, "train.tsv"))
        shutil.copyfile(os.path.join(REPO, "data", "sst2", "dev.tsv"), os.path.join(folder, "dev.tsv"))
    elif task == "qnli":
        subprocess.run([sys.executable, os.path.join(HERE, "split_qnli.py"), os.path.join(a.data, "qnli", "dev.tsv"), folder], check=True)
    else:
        os.makedirs(folder, exist_ok=True)
        for name in ("train.tsv", "dev.tsv"):
            shutil.copyfile(os.path.join(a.data, task, name), os.path.join(folder, name))
    return folder


def held_out_folder(task, a):
    folder = os.path.join(a.out, "data", task + "_held_out")
    if not os.path.exists(os.path.join(folder, "dev.tsv")):
        hold_out(os.path.join(task_folder(task, a), "train.tsv"), folder, "train.tsv", "dev.tsv", 0.1, families=task == "sst2")
    return folder


def finetune(a, state, key, args, folder, log):
    """One run through study.py's runner, kept in state["runs"] under key (done once)."""
    if key in state["runs"]:
        return state["runs"][key]
    name = key.replace("/", "_")
    vocab = os.path.join(a.starts[0][1], "vocab.txt")
    full = ["--data", folder, "--vocab", vocab, "--threads", str(a.threads), "--overwrite", *args]
    summary = run(a.earlybert, full, a.out, name, log)
    state["runs"][key] = {"args": full, "main_metric": main_metric(summary)[0], "value": main_metric(summary)[1],
                          "total_steps": summary.get("total_steps"), "train_wall_s": summary.get("train_wall_s"),
                          "train_flops": summary.get("train_flops")}
    write_json(os.path.join(a.out, "study.json"), state)
    return state["runs"][key]


def choose_dense_recipe(a, state, task, log):
    label, start = a.starts[0]
    trials = {}
    for lr, epochs in DENSE_GRID:
        args = ["--task", task, *TASKS[task], "--init", start, "--seed", "1", "--lr", f"{lr:g}", "--epochs", str(epochs)]
        trials[(lr, epochs)] = finetune(a, state, f"select/{task}/lr{lr:g}_e{epochs}", args, held_out_folder(task, a), log)["value"]
    return max(DENSE_GRID, key=lambda recipe: trials[recipe])  # the first of a tie, in the grid's order


def run_study(a):
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "study.json")
    state = json.load(open(path)) if os.path.exists(path) else {"starts": dict(a.starts), "runs": {}, "recipes": {}}
    if state["starts"] != dict(a.starts):
        raise SystemExit(f"preregistered_study: '{path}' was made from the starts {state['starts']}, not {dict(a.starts)}: give another --out")
    with open(os.path.join(a.out, "study.log"), "a") as log:
        for task in a.tasks:
            lr, epochs = state["recipes"].get(task) or choose_dense_recipe(a, state, task, log)
            state["recipes"][task] = [lr, epochs]
            folder = task_folder(task, a)
            for label, start in a.starts:
                for seed in a.seeds:
                    base = ["--task", task, *TASKS[task], "--init", start, "--seed", str(seed), "--lr", f"{lr:g}"]
                    key = f"{task}/{label}/seed{seed}/"
                    dense = finetune(a, state, key + "dense", base + ["--epochs", str(epochs)], folder, log)
                    ticket = base + ["--epochs", str(epochs), "--earlybert", "--efficient-epochs", str(TICKET_EPOCHS)]
                    eb = finetune(a, state, key + "earlybert", ticket, folder, log)
                    finetune(a, state, key + "random_ticket", ticket + ["--importance", "random"], folder, log)
                    finetune(a, state, key + "reduced_dense", base + ["--steps", str(reduced_steps(dense, eb))], folder, log)
    return state


def sign_flip_p(differences, rng_seed=0):
    """Two-sided p of a zero mean: the share of sign patterns whose |mean| reaches the observed one."""
    n = len(differences)
    observed = abs(sum(differences)) - 1e-12 * max(1.0, sum(abs(d) for d in differences))
    if n <= EXACT_LIMIT:
        patterns = itertools.product((1, -1), repeat=n)
        hits = sum(abs(sum(s * d for s, d in zip(signs, differences))) >= observed for signs in patterns)
        return hits / 2**n
    rng = random.Random(rng_seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in differences)) >= observed for _ in range(SAMPLES))
    return (hits + 1) / (SAMPLES + 1)


def t_interval(differences):
    """The mean and its paired-t 95% interval."""
    from scipy import stats  # python3-scipy (scripts/install-deps.sh)
    n, mean = len(differences), statistics.mean(differences)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(differences) / n**0.5
    return mean, mean - half, mean + half


def analyse(state, a):
    runs = state["runs"]
    labels = list(state["starts"])
    tasks = [t for t in TASKS if any(k.startswith(t + "/") for k in runs)]
    result = {"recipes": state["recipes"], "comparisons": {}}
    lines = []
    for name, (arm, other) in COMPARISONS.items():
        pooled_points, pooled_scaled, per_task = [], [], {}
        for task in tasks:
            pairs = [(label, int(key.split("/")[2][4:])) for key in runs for label in labels
                     if key.startswith(f"{task}/{label}/") and key.endswith("/" + arm)]
            differences, by_start = [], {label: [] for label in labels}
            for label, seed in sorted(pairs):
                base = f"{task}/{label}/seed{seed}/"
                if base + other in runs:
                    d = 100 * (runs[base + arm]["value"] - runs[base + other]["value"])
                    differences.append(d)
                    by_start[label].append(d)
            if len(differences) < 2:
                continue
            dense = [100 * runs[k]["value"] for k in runs if k.startswith(task + "/") and k.endswith("/dense")]
            scale = statistics.stdev(dense)
            mean, low, high = t_interval(differences)
            per_task[task] = {"differences": differences, "mean": mean, "ci95": [low, high], "p_sign_flip": sign_flip_p(differences),
                              "dense_sd": scale, "mean_by_start": {k: statistics.mean(v) for k, v in by_start.items() if v}}
            pooled_points += differences
            pooled_scaled += [d / scale for d in differences]
        if not per_task:
            continue
        mean, low, high = t_interval(pooled_points)
        p = sign_flip_p(pooled_scaled)
        if name == "A":
            verdict = "supported" if p < 0.05 and mean > 0 else "contradicted" if p < 0.05 else "not resolved"
        else:
            verdict = "supported" if low > -1 else "contradicted" if high < -1 else "not resolved"
        result["comparisons"][name] = {"arms": [arm, other], "tasks": per_task, "pooled_mean_points": mean, "pooled_ci95_points": [low, high],
                                       "pooled_p_sign_flip": p, "pairs": len(pooled_points), "verdict": verdict}
        lines.append(f"### ({name}) {arm} − {other}, points\n")
        lines.append("| task | pairs | mean | 95% interval | sign-flip p | mean by start |\n|---|---|---|---|---|---|")
        for task, r in per_task.items():
            by_start = ", ".join(f"{k} {v:+.2f}" for k, v in r["mean_by_start"].items())
            lines.append(f"| {task} | {len(r['differences'])} | {r['mean']:+.2f} | [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}] | "
                         f"{r['p_sign_flip']:.3g} | {by_start} |")
        lines.append(f"| pooled | {len(pooled_points)} | {mean:+.2f} | [{low:+.2f}, {high:+.2f}] | {p:.3g} (scaled by dense sd) | |\n")
        lines.append(f"Verdict ({name}): **{verdict}**.\n")
    write_json(os.path.join(a.out, "analysis.json"), result)
    text = "\n".join(lines)
    with open(os.path.join(a.out, "analysis.md"), "w") as f:
        f.write(text)
    print(text)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--earlybert", help="the earlybert program")
    p.add_argument("--start", action="append", default=[], metavar="LABEL=DIR", help="a pre-trained checkpoint, twice (P1=..., P2=...)")
    p.add_argument("--data", help="the folder of the full datasets (qnli/, stsb/)")
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--analyse-only", action="store_true", help="only analyse <out>/study.json")
    a = p.parse_args()
    if a.analyse_only:
        path = os.path.join(a.out, "study.json")
        if not os.path.exists(path):
            p.error(f"--analyse-only: '{path}' does not exist, expected a study's record")
        analyse(json.load(open(path)), a)
        return
    if not a.earlybert or not a.data:
        p.error("--earlybert and --data are required (or give --analyse-only)")
    if any("=" not in s for s in a.start):
        p.error(f"--start takes LABEL=DIR, found {[s for s in a.start if '=' not in s]}")
    a.starts = [tuple(s.split("=", 1)) for s in a.start]
    if len(a.starts) < 2 or len({label for label, _ in a.starts}) != len(a.starts):
        p.error(f"--start given {len(a.starts)} time(s) with labels {[label for label, _ in a.starts]}, expected two or more distinct labels")
    analyse(run_study(a), a)


if __name__ == "__main__":
    main()
