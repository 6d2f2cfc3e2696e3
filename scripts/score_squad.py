#!/usr/bin/python3
"""Scores a SQuAD v1.1 prediction file ({"question id": "answer"}) against the gold file with the
official recipe of evaluate-v1.1.py: normalise (str.lower; drop string.punctuation; re.sub of
\\b(a|an|the)\\b; ' '.join(split())), exact match, bag-of-tokens F1, the maximum over each question's
gold answers, averaged x 100. Python's own lower(), regex word boundaries and split() make it an
independent check of the program's C++ scoring.

    scripts/score_squad.py DEV.json PREDICTIONS.json
"""
import collections
import json
import re
import string
import sys


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(prediction, gold):
    p, g = normalize(prediction).split(), normalize(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)["data"]
    with open(sys.argv[2], encoding="utf-8") as f:
        predictions = json.load(f)
    em = f1_sum = total = 0
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                golds = [a["text"] for a in qa["answers"]]
                prediction = predictions.get(qa["id"], "")
                em += max(float(normalize(prediction) == normalize(g)) for g in golds)
                f1_sum += max(f1(prediction, g) for g in golds)
    print(json.dumps({"exact_match": 100 * em / total, "f1": 100 * f1_sum / total}))


if __name__ == "__main__":
    main()
