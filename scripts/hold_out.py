#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Holds out the last part of a task's training file, for choosing a recipe without looking at dev:
writes a folder laid out as the task's own (the same file names), whose training file is the first
(1 - fraction) of the examples and whose dev file is the rest. An example is a TSV row (the header, if
the file has one, is kept in both parts), a CoNLL-U sentence (its comment lines travel with it) or a
SQuAD article (every question of an article stays on one side).

    scripts/hold_out.py TRAIN_FILE OUT_DIR --train-name train.tsv --dev-name dev.tsv [--fraction 0.1] [--no-header]
"""
import argparse
import json
import os


def _tsv(text, header):
    lines = [line for line in text.split("\n") if line]
    return (lines[:1] if header else []), lines[1:] if header else lines


def _write(path, text):
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def hold_out(source, out, train_name, dev_name, fraction=0.1, header=True):
    """Splits source into out/train_name (the first part) and out/dev_name (the last `fraction` of
    its examples); returns the two parts' example counts. Files are written whole or not at all."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold_out: fraction is {fraction}, expected a number in (0, 1)")
    with open(source, encoding="utf-8", newline="") as f:
        text = f.read()
    if source.endswith(".json"):
        squad = json.loads(text)
        articles = squad["data"]
        cut = len(articles) - max(1, round(len(articles) * fraction))
        parts = [json.dumps({**squad, "data": articles[:cut]}), json.dumps({**squad, "data": articles[cut:]})]
        counts = [cut, len(articles) - cut]
    else:
        if source.endswith(".conllu"):
            head, examples = [], [block for block in text.split("\n\n") if block.strip()]
            joiner, ending = "\n\n", "\n\n"
        else:
            head, examples = _tsv(text, header)
            joiner, ending = "\n", "\n"
        cut = len(examples) - max(1, round(len(examples) * fraction))
        parts = [joiner.join(head + examples[:cut]) + ending, joiner.join(head + examples[cut:]) + ending]
        counts = [cut, len(examples) - cut]
    if counts[0] < 1:
        raise ValueError(f"hold_out: '{source}' holds {sum(counts)} example(s), too few to hold {fraction:g} of them out")
    os.makedirs(out, exist_ok=True)
    for name, part in zip((train_name, dev_name), parts):
        _write(os.path.join(out, name), part)
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--train-name", required=True)
    p.add_argument("--dev-name", required=True)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--no-header", action="store_true", help="a TSV file without a header line (CoLA)")
    a = p.parse_args()
    try:
        kept, held = hold_out(a.source, a.out, a.train_name, a.dev_name, a.fraction, not a.no_header)
    except (OSError, ValueError, KeyError) as e:
        p.error(str(e))
    print(f"{a.train_name}: {kept} examples; {a.dev_name}: {held} held out")


if __name__ == "__main__":
    main()
