#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Does pre-training help? For each task and seed, fine-tune a pre-trained checkpoint and the same shape
from random weights with the `earlybert` program (dense, each start with the program's defaults for it:
2 epochs of batches of 32; learning rate 3e-4 from a pre-trained model, 1e-3 from random weights) and compare the
task's main metric on its full dev set.

    scripts/pretraining_gates.py --earlybert BIN --init data/pretrained/tiny --data "$DATA" --out runs/gates \\
        [--tasks sst2 stsb qnli upos squad cola mrpc rte] [--seeds 1 2 3] [--threads 2]

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
from study import mean_std, run, spread  # noqa: E402

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


def finetune(a, task, start, seed):
    """One dense run through study.py's runner; its record, with the command that made it."""
    name = f"{task}_{start}_seed{seed}"
    args = ["--task", task, "--data", task_folder(task, a), *TASKS[task][1], "--seed", str(seed), "--threads", str(a.threads),
            "--vocab", os.path.join(a.init, "vocab.txt"), "--overwrite"]
    args += ["--init", a.init] if start == "pretrained" else ["--shape", a.shape]
    with open(os.path.join(a.out, name + ".log"), "w") as log:
        summary = run(a.earlybert, args, a.out, name, log)
    command = [a.earlybert, "finetune", *args, "--out", os.path.join(a.out, name), "--metrics", os.path.join(a.out, name + ".jsonl")]
    return {"task": task, "start": start, "seed": seed, "main_metric": summary["main_metric"], "dev_main": summary["dev_main"],
            "dev_metrics": summary.get("dev_metrics"), "train_wall_s": summary.get("train_wall_s"), "command": command}


def write_json(path, value):
    """Written whole or not at all (a study stopped mid-write keeps its last record)."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def report(runs, a):
    lines = ["| task | metric | pre-trained | random weights | difference | 2 × larger sd | gate | trivial baseline |",
             "|---|---|---|---|---|---|---|---|"]
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
        lines.append(f"| {task} | {metric} | {mean_std(values['pretrained'])} | {mean_std(values['random'])} | {mp - mr:+.4f} | "
                     f"{margin:.4f} | {('pass' if passed else 'FAIL') if decided else 'reported'} | "
                     f"{'' if trivial is None else ', '.join(f'{k} {v:.4f}' for k, v in trivial.items())} |")
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
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    # The shape trained from random weights: the checkpoint's, as the program names it.
    a.shape = json.loads(subprocess.run([a.earlybert, "inspect", a.init, "--json"], check=True, capture_output=True, text=True).stdout)["shape"]
    if a.shape is None:
        p.error(f"--init '{a.init}' holds a model of none of the named shapes (earlybert inspect), expected one")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "gates.json")
    runs = json.load(open(path))["runs"] if os.path.exists(path) else []
    for task in a.tasks:
        trivial = baseline(task, task_folder(task, a))
        for seed in a.seeds:
            for start in STARTS:
                if any(r["task"] == task and r["start"] == start and r["seed"] == seed for r in runs):
                    continue
                run = finetune(a, task, start, seed)
                run["baseline"] = trivial
                record = finetune(a, task, start, seed)
                record["baseline"] = trivial
                runs.append(record)
                write_json(path, {"init": a.init, "shape": a.shape, "runs": runs})
    write_json(path, {"init": a.init, "shape": a.shape, "runs": runs, "verdicts": report(runs, a)})


if __name__ == "__main__":
    main()
