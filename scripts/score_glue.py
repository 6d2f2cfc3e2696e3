#!/usr/bin/python3
"""Scores `earlybert predict` output on a GLUE dev file the way the reference recipe does
(HuggingFace's glue_compute_metrics: scikit-learn's matthews_corrcoef, f1_score and accuracy,
scipy's pearsonr and spearmanr), independently of the library's own metrics.

    scripts/score_glue.py TASK DEV.tsv PREDICTIONS.jsonl

Needs Debian's python3-sklearn and python3-scipy. Prints one JSON object of the task's metrics.
"""
import csv
import json
import sys

from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

# (label column, header?, text labels in class order, metrics)
TASKS = {
    "cola": (1, False, None, ["mcc", "accuracy"]),
    "sst2": ("label", True, None, ["accuracy"]),
    "mrpc": ("Quality", True, None, ["f1", "accuracy"]),
    "stsb": ("score", True, None, ["pearson", "spearman"]),
    "qqp": ("is_duplicate", True, None, ["f1", "accuracy"]),
    "mnli": ("gold_label", True, ["contradiction", "entailment", "neutral"], ["accuracy"]),
    "qnli": ("label", True, ["entailment", "not_entailment"], ["accuracy"]),
    "rte": ("label", True, ["entailment", "not_entailment"], ["accuracy"]),
}


def gold_labels(task, dev):
    """The dev file's gold answers: class indices, or STS-B's scores."""
    column, header, names, _ = TASKS[task]
    with open(dev, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if header:
        column = rows[0].index(column)
        rows = rows[1:]
    gold = [row[column] for row in rows]
    if task == "stsb":
        return [float(g) for g in gold]
    return [names.index(g) if names else int(g) for g in gold]


def score(task, y, p):
    """The task's metrics of predictions p (class indices, or STS-B's scores) against gold y."""
    if task == "stsb":
        return {"pearson": float(pearsonr(p, y)[0]), "spearman": float(spearmanr(p, y)[0])}
    out = {}
    for m in TASKS[task][3]:
        if m == "mcc":
            out[m] = matthews_corrcoef(y, p)
        elif m == "f1":
            out[m] = f1_score(y_true=y, y_pred=p)
        else:
            out[m] = sum(a == b for a, b in zip(y, p)) / len(y)
    return {k: float(v) for k, v in out.items()}


def constant_answer(task, dev):
    """The trivial baseline: each metric's best score over the answers that ignore the input (one class
    for every example), or None for STS-B, whose correlations a constant leaves undefined."""
    if task == "stsb":
        return None
    y = gold_labels(task, dev)
    best = {}
    for c in sorted(set(y)):
        for name, value in score(task, y, [c] * len(y)).items():
            best[name] = max(best.get(name, value), value)
    return best


def main():
    task, dev, predictions = sys.argv[1:4]
    y = gold_labels(task, dev)
    with open(predictions, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    p = [line["score"] for line in lines] if task == "stsb" else [line["label"] for line in lines]
    print(json.dumps(score(task, y, p)))


if __name__ == "__main__":
    main()
