#!/usr/bin/python3
"""Splits QNLI's dev file into a training and a dev file of the same layout, for when QNLI's training
set is not at hand (only its dev file is among the full datasets): every `--every`-th pair (0, k, 2k,
...) goes to dev.tsv, the others to train.tsv, header and column order kept. scripts/make_corpus.py
reads only the training part, by the same rule.

    scripts/split_qnli.py $DATA/qnli/dev.tsv OUT_DIR [--every 4]
"""
import argparse
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--every", type=int, default=4)
    args = parser.parse_args()
    if args.every < 2:
        parser.error(f"--every is {args.every}, expected at least 2")
    with open(args.source, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    header, rows = lines[0], [line for line in lines[1:] if line]
    if header.split("\t")[:4] != ["index", "question", "sentence", "label"]:
        raise SystemExit(f"split_qnli: '{args.source}' starts with {header!r}, expected QNLI's header 'index<TAB>question<TAB>sentence<TAB>label'")
    parts = {"dev.tsv": [r for i, r in enumerate(rows) if i % args.every == 0],
             "train.tsv": [r for i, r in enumerate(rows) if i % args.every != 0]}
    os.makedirs(args.out, exist_ok=True)
    for name, part in parts.items():
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
            f.write("\n".join([header] + part) + "\n")
        os.replace(path + ".tmp", path)
        print(f"{name}: {len(part)} pairs")


if __name__ == "__main__":
    main()
