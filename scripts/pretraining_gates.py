#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Does pre-training help? For each task and seed, fine-tune a pre-trained checkpoint and the same shape
from random weights with the `earlybert` program (dense, batches of 32) and compare the task's main
metric on its full dev set.

    scripts/pretraining_gates.py --earlybert BIN --init data/pretrained/tiny --data "$DATA" --out runs/gates \\
        [--tasks sst2 stsb qnli upos squad cola mrpc rte] [--seeds 1 2 3] [--recipe select|defaults] [--threads 2]

Each start gets its own recipe, chosen the same way and never on dev (--recipe select, the default):
the learning rate (3e-4 or 1e-3) and the number of epochs (2 or 6) that score best, seed 1, when
trained on the first 90% of the task's training file and scored on its last 10% (scripts/hold_out.py;
SST-2's by sentence, with the phrases each contains).
--recipe defaults takes the program's defaults instead: 2 epochs at 3e-4 from a pre-trained model, 1e-3
from random weights.

--data is the folder of the full datasets (data/README.md, "Full datasets"): sst2/, stsb/, cola/,
mrpc/, rte/ (train.tsv, dev.tsv), qnli/dev.tsv (split here by scripts/split_qnli.py: every 4th pair to
dev, the rest to train), squad/dev-v1.1.json (split here by scripts/split_squad.py: every 4th article
to dev) and ud_ewt/ (UPOS).

A gate passes when the pre-trained start's mean beats the random start's by more than two standard
deviations over the seeds, the larger of the two starts' (a conservative reading of "two of the seeds'
standard deviations"). CoLA, MRPC and RTE are reported beside their trivial baselines (scripts/
score_glue.py's constant answer: the majority class; CoLA's MCC 0; MRPC's F1 of answering "paraphrase"
always). Writes <out>/gates.json after every run (a study started again with the same --out keeps its
runs and does only the missing ones) and <out>/table.md.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hold_out import hold_out  # noqa: E402
from study import mean_std, run, spread, write_json  # noqa: E402

# Per task: the folder under --data (or the split made from it), finetune's options, and whether its
# gate is decided (the others are reported beside a trivial baseline).
TASKS = {
    "sst2": ("sst2", ["--max-seq", "64"], True),
    "stsb": ("stsb", [], True),
    "qnli": ("split:qnli", [], True),
    "upos": ("ud_ewt", [], True),
    "squad": ("split:squad", [], True),
    "cola": ("cola", ["--max-seq", "64"], False),
    "mrpc": ("mrpc", [], False),
    "rte": ("rte", [], False),
}
STARTS = ["pretrained", "random"]
# The files a task's folder holds under the program's names (GLUE's: train.tsv and dev.tsv; CoLA's
# have no header line).
FILES = {"upos": ("en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu"), "squad": ("train-v1.1.json", "dev-v1.1.json")}
HEADERLESS = {"cola"}
PHRASES = {"sst2"}  # a training file of every phrase of each sentence: held out by sentence (hold_out.py)
# --recipe select's grid: (peak learning rate, epochs), each start choosing on the held-out part.
GRID = [(lr, epochs) for lr in (3e-4, 1e-3) for epochs in (2, 6)]


def task_folder(task, a):
    where = TASKS[task][0]
    if not where.startswith("split:"):
        return os.path.join(a.data, where)
    folder = os.path.join(a.out, "data", task)
    if not os.path.isdir(folder):
        if task == "qnli":
            command = [sys.executable, os.path.join(HERE, "split_qnli.py"), os.path.join(a.data, "qnli", "dev.tsv"), folder]
        else:
            command = [sys.executable, os.path.join(HERE, "split_squad.py"), os.path.join(a.data, "squad", "dev-v1.1.json"), folder]
        subprocess.run(command, check=True)
    return folder


def baseline(task, folder):
    """The constant answer's score on the dev set (GLUE tasks only), by scripts/score_glue.py."""
    import score_glue  # needs python3-sklearn and python3-scipy
    return score_glue.constant_answer(task, os.path.join(folder, "dev.tsv")) if task in score_glue.TASKS else None


def held_out_folder(task, a):
    """The task's folder with the last 10% of its training file as dev (hold_out.py), made once."""
    folder = os.path.join(a.out, "data", task + "_held_out")
    train_name, dev_name = FILES.get(task, ("train.tsv", "dev.tsv"))
    if not os.path.exists(os.path.join(folder, dev_name)):
        hold_out(os.path.join(task_folder(task, a), train_name), folder, train_name, dev_name, 0.1, task not in HEADERLESS, task in PHRASES)
    return folder


def finetune(a, task, start, seed, recipe, folder=None, name=None):
    """One dense run through study.py's runner (recipe: (learning rate, epochs), or None for the
    program's defaults; folder: the task's files, its own by default); its record, with the command."""
    name = name or f"{task}_{start}_seed{seed}"
    args = ["--task", task, "--data", folder or task_folder(task, a), *TASKS[task][1], "--seed", str(seed), "--threads", str(a.threads),
            "--vocab", os.path.join(a.init, "vocab.txt"), "--overwrite"]
    args += ["--init", a.init] if start == "pretrained" else ["--shape", a.shape]
    if recipe is not None:
        args += ["--lr", f"{recipe[0]:g}", "--epochs", str(recipe[1])]
    with open(os.path.join(a.out, name + ".log"), "w") as log:
        summary = run(a.earlybert, args, a.out, name, log)
    command = [a.earlybert, "finetune", *args, "--out", os.path.join(a.out, name), "--metrics", os.path.join(a.out, name + ".jsonl")]
    return {"task": task, "start": start, "seed": seed, "recipe": recipe, "main_metric": summary["main_metric"], "dev_main": summary["dev_main"],
            "dev_metrics": summary.get("dev_metrics"), "train_wall_s": summary.get("train_wall_s"), "command": command}


def choose_recipe(a, task, start, state, save):
    """--recipe select: every GRID recipe trained on the held-out folder's training part (seed 1) and
    scored on its held-out part; the best one (the first of a tie). Each trial is kept in state."""
    trials = state.setdefault("selection", [])
    for recipe in GRID:
        if any(t["task"] == task and t["start"] == start and tuple(t["recipe"]) == recipe for t in trials):
            continue
        name = f"{task}_{start}_select_lr{recipe[0]:g}_e{recipe[1]}"
        trials.append(finetune(a, task, start, 1, recipe, held_out_folder(task, a), name))
        save()
    scored = [t for t in trials if t["task"] == task and t["start"] == start]
    best = max(scored, key=lambda t: float("-inf") if t["dev_main"] is None else t["dev_main"])
    return tuple(best["recipe"])


def report(runs, a):
    lines = ["| task | metric | pre-trained | random weights | difference | 2 × larger sd | gate | trivial baseline | recipes (lr, epochs) |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts = {}
    for task in a.tasks:
        values = {s: [r["dev_main"] for r in runs if r["task"] == task and r["start"] == s] for s in STARTS}
        if not all(values.values()):
            continue
        metric = next(r["main_metric"] for r in runs if r["task"] == task)
        (mp, sp), (mr, sr) = spread(values["pretrained"]), spread(values["random"])
        margin = 2 * max(sp, sr)
        decided = TASKS[task][2]
        passed = mp - mr > margin
        verdicts[task] = {"pretrained": values["pretrained"], "random": values["random"], "difference": mp - mr, "two_sd": margin,
                          "gate": (passed if decided else None)}
        trivial = next((r.get("baseline") for r in runs if r["task"] == task and r.get("baseline") is not None), None)
        chosen = {s: next(r.get("recipe") for r in runs if r["task"] == task and r["start"] == s) for s in STARTS}
        recipes = " / ".join("defaults" if c is None else f"{c[0]:g}, {c[1]}" for c in chosen.values())
        lines.append(f"| {task} | {metric} | {mean_std(values['pretrained'])} | {mean_std(values['random'])} | {mp - mr:+.4f} | "
                     f"{margin:.4f} | {('pass' if passed else 'FAIL') if decided else 'reported'} | "
                     f"{'' if trivial is None else ', '.join(f'{k} {v:.4f}' for k, v in trivial.items())} | {recipes} |")
    n = len(a.seeds)
    text = (f"Fine-tuned from `{a.init}` and from random weights (`{a.shape}`), {n} seed(s) each (mean ± sd), full dev sets.\n\n"
            + "\n".join(lines) + "\n")
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(text)
    print(text)
    return verdicts


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--earlybert", required=True, help="the earlybert program")
    p.add_argument("--init", required=True, help="the pre-trained checkpoint (a folder)")
    p.add_argument("--data", required=True, help="the folder of the full datasets")
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--recipe", choices=["select", "defaults"], default="select",
                   help="each start's learning rate and epochs: chosen on a held-out tenth of the training file, or the program's defaults")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    # The shape trained from random weights: the checkpoint's, as the program names it.
    a.shape = json.loads(subprocess.run([a.earlybert, "inspect", a.init, "--json"], check=True, capture_output=True, text=True).stdout)["shape"]
    if a.shape is None:
        p.error(f"--init '{a.init}' holds a model of none of the named shapes (earlybert inspect), expected one")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "gates.json")
    state = json.load(open(path)) if os.path.exists(path) else {}
    made_with = state.get("recipe", "defaults" if state.get("runs") else a.recipe)  # records from before --recipe: defaults
    if made_with != a.recipe:
        p.error(f"--out '{a.out}' holds runs made with --recipe {made_with}, not {a.recipe}: give another --out")
    state.update({"init": a.init, "shape": a.shape, "recipe": a.recipe})
    state.setdefault("runs", [])
    runs = state["runs"]

    def save():
        write_json(path, state)

    for task in a.tasks:
        trivial = baseline(task, task_folder(task, a))
        for start in STARTS:
            recipe = choose_recipe(a, task, start, state, save) if a.recipe == "select" else None
            for seed in a.seeds:
                if any(r["task"] == task and r["start"] == start and r["seed"] == seed for r in runs):
                    continue
                record = finetune(a, task, start, seed, recipe)
                record["baseline"] = trivial
                runs.append(record)
                save()
    state["verdicts"] = report(runs, a)
    save()


if __name__ == "__main__":
    main()
