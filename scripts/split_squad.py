#!/usr/bin/python3
"""Splits a SQuAD v1.1 file by article into a training and a dev file of the same format, for when the
official training set is not at hand (SQuAD's train-v1.1.json is not among the shared data): every
`--every`-th article (0, k, 2k, ...) goes to dev-v1.1.json, the others to train-v1.1.json. Articles
stay whole, so no paragraph is in both.

    scripts/split_squad.py $DATA/squad/dev-v1.1.json OUT_DIR [--every 4] [--articles N] [--paragraphs P]

--articles keeps only the first N articles, --paragraphs the first P paragraphs of each (small excerpts).
"""
import argparse
import json
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--articles", type=int, default=0)
    parser.add_argument("--paragraphs", type=int, default=0)
    args = parser.parse_args()
    with open(args.source, encoding="utf-8") as f:
        source = json.load(f)
    articles = source["data"][: args.articles] if args.articles else source["data"]
    if args.paragraphs:
        articles = [dict(a, paragraphs=a["paragraphs"][: args.paragraphs]) for a in articles]
    dev = [a for i, a in enumerate(articles) if i % args.every == 0]
    train = [a for i, a in enumerate(articles) if i % args.every != 0]
    os.makedirs(args.out, exist_ok=True)
    for name, part in (("train-v1.1.json", train), ("dev-v1.1.json", dev)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump({"data": part, "version": source.get("version", "1.1")}, f)
        questions = sum(len(p["qas"]) for a in part for p in a["paragraphs"])
        print(f"{name}: {len(part)} articles, {questions} questions")


if __name__ == "__main__":
    main()
