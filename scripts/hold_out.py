#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Holds out the last part of a task's training file, for choosing a recipe without looking at dev:
writes a folder laid out as the task's own (the same file names), whose training file is the first
(1 - fraction) of the examples and whose dev file is the rest. An example is a TSV row (the header, if
the file has one, is kept in both parts), a CoNLL-U sentence (its comment lines travel with it) or a
SQuAD article (every question of an article stays on one side).

SST-2's training file holds phrases cut from each review sentence's parse tree, shuffled, so nine in ten
phrases of its last tenth appear word for word inside a phrase of the rest: a held-out score there
rewards memorising. With --phrase-families the examples are families instead: a sentence is a phrase
that no other phrase contains (word for word, at word boundaries), its family the phrases it contains
(a phrase inside several sentences joins the first of them in file order), and the last `fraction` of
the sentences, in the order of their first line, are held out with their families.

    scripts/hold_out.py TRAIN_FILE OUT_DIR --train-name train.tsv --dev-name dev.tsv [--fraction 0.1] [--no-header] [--phrase-families]
"""
import argparse
import bisect
import json
import os


def _tsv(text, header):
    lines = [line for line in text.split("\n") if line]
    return (lines[:1] if header else []), lines[1:] if header else lines


def phrase_families(texts):
    """For each text (a phrase), the index of its family's sentence among the texts (see above)."""
    unique = sorted(set(texts), key=lambda t: (-len(t), t))
    starts, at = {}, 0
    for t in unique:
        starts[t] = at
        at += len(t) + 3
    joined = "".join(f" {t} \n" for t in unique)
    sentences = []
    for t in unique:  # longest first: a container is always seen before what it contains
        key, at = f" {t} ", 0
        while True:
            at = joined.find(key, at)
            if at != starts[t]:
                break
            at += 1
        if at < 0:
            sentences.append(t)
    first_line = {}
    for i, t in enumerate(texts):
        first_line.setdefault(t, i)
    sentences.sort(key=lambda t: first_line[t])
    offsets, roots = [], "\n"
    for t in sentences:
        offsets.append(len(roots))
        roots += f" {t} \n"
    family = {}
    for t in unique:
        at = roots.find(f" {t} ")
        family[t] = first_line[sentences[bisect.bisect_right(offsets, at) - 1]]
    return [family[t] for t in texts]


def _write(path, text):
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def hold_out(source, out, train_name, dev_name, fraction=0.1, header=True, families=False):
    """Splits source into out/train_name (the first part) and out/dev_name (the last `fraction` of
    its examples, or with `families` of its phrase families); returns the two parts' example counts.
    Files are written whole or not at all."""
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
        if families:
            roots = phrase_families([e.split("\t")[0].strip() for e in examples])
            order = sorted(set(roots))
            held = set(order[len(order) - max(1, round(len(order) * fraction)):])
            kept = [e for e, r in zip(examples, roots) if r not in held]
            out_part = [e for e, r in zip(examples, roots) if r in held]
        else:
            cut = len(examples) - max(1, round(len(examples) * fraction))
            kept, out_part = examples[:cut], examples[cut:]
        parts = [joiner.join(head + kept) + ending, joiner.join(head + out_part) + ending]
        counts = [len(kept), len(out_part)]
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
    p.add_argument("--phrase-families", action="store_true", help="hold out whole sentences with their phrases (SST-2; see above)")
    a = p.parse_args()
    try:
        kept, held = hold_out(a.source, a.out, a.train_name, a.dev_name, a.fraction, not a.no_header, a.phrase_families)
    except (OSError, ValueError, KeyError) as e:
        p.error(str(e))
    print(f"{a.train_name}: {kept} examples; {a.dev_name}: {held} held out")


if __name__ == "__main__":
    main()
