#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The lottery-ticket studies of docs/results.md: for every seed, fine-tune one pre-trained checkpoint on
one task with the `earlybert` program's lottery methods (docs/lottery.md) and tabulate them.

  imp        iterative magnitude pruning, rewinding to the pre-trained weights: --levels levels of 20%
             (level 0 is the dense run)
  controls   at each of --control-levels, the level's ticket retrained with a random mask of the same
             per-matrix sparsity (random) and with its kept weights drawn afresh (reinit), from the
             pre-trained weights
  lmc        instability analysis of dense fine-tuning: two copies parting at each of --lmc-steps, the
             error along the line between them
  sparse     static random sparsity and RigL at each of --sparsities
  structured structured IMP (heads and FFN neurons by magnitude, --structured-levels levels of 20%), EarlyBERT
             and EarlyBERT's pipeline with a random ticket, compared at the FLOPs each keeps

Every run is one `earlybert finetune` with --resume: a study started again with the same --out does only
the runs it lacks and continues a run that was interrupted. Studies may run side by side on the same
--out, for other seeds or the same ones: each run is taken by one study, and the others pass it by
(and pass by the controls while another study still has the IMP levels they branch from).

Writes <out>/lottery.json (every run's summary and the method's events), <out>/table.md (means and
standard deviations over the seeds) and, when matplotlib is installed, <out>/imp_levels.png,
<out>/instability.png, <out>/rigl_turnover.png and <out>/structured.png.
"""
import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study import mean_std, pyplot, spread, read_metrics  # noqa: E402

PARTS = ["imp", "controls", "lmc", "sparse", "structured"]


def finished(metrics):
    """The events of a finished run, or None."""
    if os.path.exists(metrics):
        events = read_metrics(metrics)
        if events and events[-1]["event"] == "summary":
            return events
    return None


def finetune(a, common, seed_dir, name, args, log):
    """One run, resumed if it was interrupted; its events, or the finished run's as kept. None when another
    study holds the run: studies of the same seeds may share the work, each run taken by one of them (a
    lock on <run>.lock, released by the system if the study dies)."""
    out = os.path.join(seed_dir, name)
    metrics = out + ".jsonl"
    events = finished(metrics)
    if events:
        return events
    with open(out + ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"lottery study: {name} of {seed_dir} is another study's, left to it", file=sys.stderr, flush=True)
            return None
        events = finished(metrics)  # finished by another study since the first look
        if events:
            return events
        command = [a.earlybert, "finetune", *common, *args, "--out", out, "--metrics", metrics, "--checkpoint-every", "50",
                   "--resume"]
        print("lottery study:", " ".join(command), file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=log, stderr=log)
        return read_metrics(metrics)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earlybert", help="the earlybert program")
    p.add_argument("--init", help="pre-trained checkpoint directory")
    p.add_argument("--task", required=True)
    p.add_argument("--data", help="the task's directory (or --train and --dev files in its layout)")
    p.add_argument("--train")
    p.add_argument("--dev")
    p.add_argument("--vocab")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--levels", type=int, default=8, help="IMP levels of 20%% (8: 83%% sparse)")
    p.add_argument("--control-levels", type=int, nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--lmc-steps", type=int, nargs="+", default=[0, 10, 25, 50, 100])
    p.add_argument("--lmc-points", type=int, default=30)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.8, 0.9])
    p.add_argument("--rigl-interval", type=int, default=25)
    p.add_argument("--structured-levels", type=int, default=4)
    p.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    p.add_argument("--aggregate-only", action="store_true")
    p.add_argument("--from-json", help="tabulate and plot the runs of a study's lottery.json (docs/data/lottery_*.json), running nothing")
    a = p.parse_args()
    if (a.data is None) == (a.train is None or a.dev is None):
        p.error("give --data, or --train and --dev")
    os.makedirs(a.out, exist_ok=True)
    if a.from_json:
        with open(a.from_json, encoding="utf-8") as f:
            study = json.load(f)
        if study["task"] != a.task:
            p.error(f"--from-json holds a study of {study['task']}, not of --task {a.task}")
        runs = [r for r in study["runs"] if r["seed"] in a.seeds]
        report(runs, a)
        return
    for flag in ("earlybert", "init", "vocab"):
        if getattr(a, flag) is None:
            p.error(f"--{flag} is required (unless --from-json)")
    files = ["--data", a.data] if a.data else ["--train", a.train, "--dev", a.dev]
    common = ["--task", a.task, *files, "--vocab", a.vocab, "--init", a.init, "--max-seq", str(a.max_seq),
              "--epochs", str(a.epochs), "--threads", str(a.threads), "-q"]
    runs = []
    with open(os.path.join(a.out, "study.log"), "a") as log:
        for seed in a.seeds:
            seed_dir = os.path.join(a.out, f"seed{seed}")
            os.makedirs(seed_dir, exist_ok=True)
            base = common + ["--seed", str(seed)]
            plan = []
            if "imp" in a.parts:
                plan.append(("imp", ["--imp", "--imp-levels", str(a.levels)]))
            if "controls" in a.parts:
                for level in a.control_levels:
                    for control in ("random", "reinit"):
                        plan.append((f"{control}_L{level}", ["--mask-from", os.path.join(seed_dir, "imp", f"level_{level:02}"),
                                                             "--control", control]))
            if "lmc" in a.parts:
                for k in a.lmc_steps:
                    plan.append((f"lmc_k{k}", ["--lmc-step", str(k), "--lmc-points", str(a.lmc_points)]))
            if "sparse" in a.parts:
                for s in a.sparsities:
                    plan.append((f"static_{s:g}", ["--sparsity", str(s)]))
                    plan.append((f"rigl_{s:g}", ["--sparsity", str(s), "--rigl", "--rigl-interval", str(a.rigl_interval)]))
            if "structured" in a.parts:
                plan.append(("structured_imp", ["--imp", "--imp-structures", "--imp-levels", str(a.structured_levels)]))
                plan.append(("earlybert", ["--earlybert"]))
                plan.append(("random_ticket", ["--earlybert", "--importance", "random"]))
            for name, args in plan:
                metrics = os.path.join(seed_dir, name + ".jsonl")
                if a.aggregate_only:
                    events = finished(metrics)
                    if events is None:
                        continue
                elif "--mask-from" in args and not finished(os.path.join(seed_dir, "imp.jsonl")):
                    # The controls branch from the IMP levels, which another study has yet to finish.
                    print(f"lottery study: {name} of {seed_dir} waits for the IMP levels, left to the study that has them",
                          file=sys.stderr, flush=True)
                    continue
                else:
                    events = finetune(a, base, seed_dir, name, args, log)
                    if events is None:
                        continue
                runs.append({"seed": seed, "name": name, "events": [e for e in events if e["event"] != "step"]})
                summary = events[-1]
                print(f"lottery study: seed {seed} {name}: dev {summary['main_metric']} {summary['dev_main']:.4f}", file=sys.stderr, flush=True)
                # A temporary file of this process's own: studies may share --out.
                partial = os.path.join(a.out, f"lottery.json.{os.getpid()}.tmp")
                with open(partial, "w") as f:
                    json.dump({"task": a.task, "init": a.init, "epochs": a.epochs, "runs": runs}, f, indent=1)
                os.replace(partial, os.path.join(a.out, "lottery.json"))
    report(runs, a)


def rise_above_ends(lmc):
    """How far the largest error on an instability path rises above the worse endpoint's (0 when an
    endpoint is the worst point): what a ridge between the two copies would add."""
    errors = [p["error"] for p in lmc["points"]]
    return max(errors) - max(errors[0], errors[-1])


def dip_below_ends(lmc):
    """How far the smallest error on an instability path falls below the better endpoint's."""
    errors = [p["error"] for p in lmc["points"]]
    return min(errors[0], errors[-1]) - min(errors)


def report(runs, a):
    by = {}
    for r in runs:
        by.setdefault(r["name"], {})[r["seed"]] = r["events"]
    lines = [f"# Lottery tickets on {a.task} (seeds {', '.join(map(str, a.seeds))})", ""]
    metric = next((r["events"][-1]["main_metric"] for r in runs), "metric")
    # IMP levels with the controls beside them.
    levels = {}
    for seed, events in by.get("imp", {}).items():
        for e in events:
            if e["event"] == "imp_level":
                levels.setdefault(e["level"], {})[seed] = e
    if levels:
        lines += [f"| level | sparsity | IMP {metric} | random mask {metric} | random reinit {metric} |", "|---|---|---|---|---|"]
        for level in sorted(levels):
            row = levels[level]
            sparsity = next(iter(row.values()))["sparsity"]
            imp = [e["dev_metrics"][metric] for e in row.values()]
            controls = []
            for control in ("random", "reinit"):
                seeds = by.get(f"{control}_L{level}", {})
                controls.append(mean_std([ev[-1]["dev_main"] for ev in seeds.values()]) if seeds else "-")
            lines.append(f"| {level} | {sparsity:.3f} | {mean_std(imp)} | {controls[0]} | {controls[1]} |")
        lines.append("")
    # Instability.
    lmc = sorted((int(name[5:]), seeds) for name, seeds in by.items() if name.startswith("lmc_k"))
    if lmc:
        lines += ["| split step k | error barrier | loss barrier | endpoints' error | rise above the worse endpoint | "
                  "dip below the better endpoint |", "|---|---|---|---|---|---|"]
        for k, seeds in lmc:
            events = [next(e for e in ev if e["event"] == "lmc") for ev in seeds.values()]
            ends = [(e["points"][0]["error"] + e["points"][-1]["error"]) / 2 for e in events]
            rise = [rise_above_ends(e) for e in events]
            dip = [dip_below_ends(e) for e in events]
            lines.append(f"| {k} | {mean_std([e['error_barrier'] for e in events])} | {mean_std([e['loss_barrier'] for e in events])} | "
                         f"{mean_std(ends)} | {mean_std(rise)} | {mean_std(dip)} |")
        lines.append("")
    # Sparse training.
    sparse = sorted({float(name.split("_")[1]) for name in by if name.startswith(("static_", "rigl_"))})
    if sparse:
        dense = [levels[0][s]["dev_metrics"][metric] for s in levels.get(0, {})] if levels else []
        lines += [f"| sparsity | static random {metric} | RigL {metric} | dense {metric} |", "|---|---|---|---|"]
        for s in sparse:
            cells = []
            for kind in ("static", "rigl"):
                seeds = by.get(f"{kind}_{s:g}", {})
                cells.append(mean_std([ev[-1]["dev_main"] for ev in seeds.values()]) if seeds else "-")
            lines.append(f"| {s:g} | {cells[0]} | {cells[1]} | {mean_std(dense)} |")
        lines.append("")
    # Structured: each level's FLOPs ratio and metric, and the two tickets'.
    structured = {}
    for seed, events in by.get("structured_imp", {}).items():
        for e in events:
            if e["event"] == "imp_level":
                structured.setdefault(e["level"], {})[seed] = e
    # Level l's run trains the ticket the runs of levels 0..l-1 found: reaching it costs levels 0..l.
    if structured or "earlybert" in by:
        lines += [f"| arm | encoder FLOPs ratio | {metric} | training FLOPs of the run | training FLOPs to reach it | "
                  "training wall s |", "|---|---|---|---|---|---|"]
        for level in sorted(structured):
            row = structured[level]
            reach = [sum(structured[l][seed]["train_flops"] for l in structured if l <= level and seed in structured[l]) for seed in row]
            lines.append(f"| structured IMP level {level} | {mean_std([e['encoder_flops_ratio'] for e in row.values()])} | "
                         f"{mean_std([e['dev_metrics'][metric] for e in row.values()])} | "
                         f"{mean_std([e['train_flops'] for e in row.values()])} | {mean_std(reach)} | "
                         f"{mean_std([e['train_wall_s'] for e in row.values()])} |")
        for arm in ("earlybert", "random_ticket"):
            seeds = by.get(arm, {})
            if seeds:
                ratio = [next(e for e in ev if e["event"] == "ticket")["flops_ratio"] for ev in seeds.values()]
                flops = mean_std([ev[-1]["train_flops"] for ev in seeds.values()])
                lines.append(f"| {arm} | {mean_std(ratio)} | {mean_std([ev[-1]['dev_main'] for ev in seeds.values()])} | "
                             f"{flops} | {flops} | {mean_std([ev[-1]['train_wall_s'] for ev in seeds.values()])} |")
        lines.append("")
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(by, levels, lmc, structured, a, metric)


def constant_answer(a, metric):
    """The best score of an answer that ignores the input on the study's dev set (score_glue.py), or None
    where there is none (STS-B, a custom task) or scipy and scikit-learn are missing."""
    try:
        from score_glue import TASKS, constant_answer as best_constant
    except ImportError:
        return None
    if a.task not in TASKS:
        return None
    values = best_constant(a.task, a.dev or os.path.join(a.data, "dev.tsv"))
    return None if values is None else values.get(metric)


def reference_lines(ax, dense, trivial):
    """The dense run's mean and the constant answer, as horizontal lines."""
    if dense is not None:
        ax.axhline(dense, color="grey", linewidth=0.8, linestyle="--", label="dense (mean)")
    if trivial is not None:
        ax.axhline(trivial, color="black", linewidth=0.8, linestyle=":", label=f"constant answer ({trivial:.3f})")


def plot(by, levels, lmc, structured, a, metric):
    plt = pyplot("lottery study")
    if plt is None:
        return
    trivial = constant_answer(a, metric)
    if levels:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = sorted(levels)
        sparsity = [next(iter(levels[l].values()))["sparsity"] for l in xs]
        # Means with one standard deviation over the seeds as error bars.
        imp = [spread(e["dev_metrics"][metric] for e in levels[l].values()) for l in xs]
        ax.errorbar(sparsity, [m for m, _ in imp], yerr=[s for _, s in imp], fmt="o-", capsize=3,
                    label="IMP (rewound to pre-trained)")
        reference_lines(ax, imp[xs.index(0)][0] if 0 in levels else None, trivial)
        for control, style in (("random", "s--"), ("reinit", "^:")):
            pts = [(sparsity[xs.index(l)], *spread(ev[-1]["dev_main"] for ev in by[f"{control}_L{l}"].values()))
                   for l in xs if f"{control}_L{l}" in by]
            if pts:
                x, m, s = zip(*pts)
                ax.errorbar(x, m, yerr=s, fmt=style, capsize=3, label=f"control: {control}")
        ax.set_xlabel("sparsity of the encoder's weights")
        ax.set_ylabel(f"dev {metric}")
        ax.set_title(f"{a.task}: IMP levels and controls (mean ± sd over seeds)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "imp_levels.png"), dpi=120)
    if lmc:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for k, seeds in lmc:
            events = [next(e for e in ev if e["event"] == "lmc") for ev in seeds.values()]
            alphas = [p["alpha"] for p in events[0]["points"]]
            errors = [statistics.mean(e["points"][i]["error"] for e in events) for i in range(len(alphas))]
            left.plot(alphas, errors, label=f"k = {k}")
        left.set_title(f"{a.task}: error along the line (mean of seeds)")
        left.set_xlabel("α (first copy → second)")
        left.set_ylabel(f"dev error (1 − {metric})")
        left.legend()
        ks = [k for k, _ in lmc]
        # Frankle et al.'s barrier (the worst point less the endpoints' mean) counts half the gap between two
        # copies that merely ended apart; the rise above the worse endpoint is what a ridge would add.
        def over_seeds(measure):
            values = [spread(measure(next(e for e in ev if e["event"] == "lmc")) for ev in seeds.values()) for _, seeds in lmc]
            return [m for m, _ in values], [s for _, s in values]
        barrier = over_seeds(lambda e: e["error_barrier"])
        rise = over_seeds(rise_above_ends)
        right.errorbar(ks, barrier[0], yerr=barrier[1], fmt="o-", capsize=3, label="error barrier")
        right.errorbar(ks, rise[0], yerr=rise[1], fmt="s--", capsize=3, label="rise above the worse endpoint")
        right.set_ylim(bottom=0)
        right.set_xlabel("split step k")
        right.set_ylabel(f"dev error (1 − {metric})")
        right.set_title("instability curve (mean ± sd over seeds)")
        right.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "instability.png"), dpi=120)
    rigl = sorted(name for name in by if name.startswith("rigl_"))
    if rigl:
        fig, ax = plt.subplots(figsize=(6, 4))
        # The measured turnover of every run as hollow markers over the schedule each update asked for.
        markers = iter("osD^v<>ph*")
        for name in rigl:
            for seed, events in sorted(by[name].items()):
                updates = [e for e in events if e["event"] == "rigl_update"]
                ax.plot([u["step"] for u in updates], [u["moved"] / u["active"] for u in updates], next(markers, "o"),
                        fillstyle="none", linestyle="none", label=f"{name} seed {seed}")
        updates = [e for e in next(iter(by[rigl[0]].values())) if e["event"] == "rigl_update"]
        ax.plot([u["step"] for u in updates], [u["fraction"] for u in updates], "-", color="grey", linewidth=0.8,
                label="schedule α (1 + cos(π t / T_end)) / 2")
        ax.set_xlabel("step")
        ax.set_ylabel("fraction of active weights moved")
        ax.set_title(f"{a.task}: RigL's mask turnover per update")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "rigl_turnover.png"), dpi=120)
    if structured or "earlybert" in by:
        fig, ax = plt.subplots(figsize=(6, 4))
        dense = None
        if structured:
            xs = sorted(structured)
            means = [spread(e["dev_metrics"][metric] for e in structured[l].values()) for l in xs]
            ax.errorbar([statistics.mean(e["encoder_flops_ratio"] for e in structured[l].values()) for l in xs],
                        [m for m, _ in means], yerr=[sd for _, sd in means], fmt="o-", capsize=3, label="structured IMP (levels)")
            dense = means[xs.index(0)][0] if 0 in structured else None
        for arm, style in (("earlybert", "*"), ("random_ticket", "X")):
            if arm in by:
                events = by[arm].values()
                mean, sd = spread(ev[-1]["dev_main"] for ev in events)
                ax.errorbar([statistics.mean(next(e for e in ev if e["event"] == "ticket")["flops_ratio"] for ev in events)], [mean],
                            yerr=[sd], fmt=style, markersize=10, capsize=3, label=arm.replace("_", " "))
        reference_lines(ax, dense, trivial)
        ax.set_xlabel("encoder FLOPs of the ticket / dense")
        ax.set_ylabel(f"dev {metric}")
        ax.set_title(f"{a.task}: structured tickets (mean ± sd over seeds)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "structured.png"), dpi=120)


if __name__ == "__main__":
    main()
