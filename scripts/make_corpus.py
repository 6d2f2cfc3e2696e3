#!/usr/bin/python3
"""Writes the pre-training corpus: freely licensed English text that Debian packages ship, and the
training text of downstream tasks (task-adaptive pre-training), as plain-text files with one paragraph
per line (the layout `earlybert pretrain --corpus` reads). Never a dev or test text: QNLI and SQuAD
have only their dev files here, so only the training part of the fixed split (scripts/split_qnli.py,
scripts/split_squad.py: every 4th example or article is dev) is used.

    scripts/make_corpus.py --out DIR [--data DIR] [--sources NAME ...]

--data is the folder of the full datasets (sst2/, qnli/, squad/, ud_ewt/, wnut17/ as their files are
named upstream). The sources and their licences:

    gcide    GNU Collaborative International Dictionary of English 0.48 (dict-gcide; GPL-2+): entries
    wordnet  WordNet 3.0 glosses with their words (wordnet-base; WordNet 3.0 licence, BSD-like)
    kjv      King James Version of the Bible (bible-kjv-text via bible-kjv; public domain), a chapter a line
    tasks    SST-2 train (research use, as GLUE), the QNLI and SQuAD v1.1 training parts (CC BY-SA 4.0),
             UD English EWT train (CC BY-SA 4.0), WNUT-17 train (CC BY 4.0)

MRPC, STS-B (Microsoft Research terms), CoLA and RTE (research only, no licence) are left out. Each
file is written whole or not at all (a temporary file, renamed), and SOURCES.md beside them says where
each came from. WikiText-2's train split is read from where it lies (pass it to --corpus as well).
"""
import argparse
import csv
import gzip
import json
import os
import re
import subprocess
import sys

SOURCES = ("gcide", "wordnet", "kjv", "tasks")

ATTRIBUTION = {
    "gcide": "GNU Collaborative International Dictionary of English (GCIDE) 0.48, Debian package dict-gcide "
             "(/usr/share/dictd/gcide.dict.dz); GPL-2 or later. Derived from Webster's Revised Unabridged "
             "Dictionary (1913) and WordNet. Markup, pronunciations and source tags removed; one entry a line.",
    "wordnet": "WordNet 3.0, Princeton University, Debian package wordnet-base (/usr/share/wordnet/data.*); "
               "WordNet 3.0 licence. Each synset's words and gloss, one synset a line.",
    "kjv": "The King James Version of the Bible (1611; public domain), Debian package bible-kjv-text, "
           "printed by the bible program of bible-kjv. One chapter a line, verse numbers removed.",
    "tasks": "Training text of downstream tasks: SST-2 train (GLUE; research use), the training part of QNLI "
             "dev and SQuAD v1.1 dev (every 4th example or article is dev and left out; CC BY-SA 4.0), "
             "UD English EWT train (CC BY-SA 4.0), WNUT-17 train (CC BY 4.0). One sentence, question or "
             "paragraph a line.",
}


def fail(message):
    print(f"make_corpus: {message}", file=sys.stderr)
    sys.exit(1)


def clean(text):
    return re.sub(r"\s+", " ", text).strip()


def gcide_lines():
    path = "/usr/share/dictd/gcide.dict.dz"
    if not os.path.exists(path):
        fail(f"'{path}' is missing: install dict-gcide (scripts/install-deps.sh --corpus)")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    for block in re.split(r"\n\s*\n", text):
        if block.startswith("00-database") or block.startswith("00database"):
            continue
        block = re.sub(r"\\[^\\\n]*\\", "", block)  # pronunciations: \Ab*do"men\
        block = re.sub(r"\[(?:[0-9]{4} )?Webster[^\]]*\]|\[PJC\]|\[WordNet[^\]]*\]|\[Century[^\]]*\]", "", block)
        line = clean(block)
        if len(line.split()) >= 4:
            yield line


def wordnet_lines():
    folder = "/usr/share/wordnet"
    for part in ("noun", "verb", "adj", "adv"):
        path = os.path.join(folder, f"data.{part}")
        if not os.path.exists(path):
            fail(f"'{path}' is missing: install wordnet-base (scripts/install-deps.sh --corpus)")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue  # the licence header
                fields, gloss = line.split(" | ", 1)
                fields = fields.split()
                count = int(fields[3], 16)
                words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
                words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]  # adjective markers: (a), (p), (ip)
                yield clean(", ".join(words) + ": " + gloss)


def kjv_lines():
    try:
        printed = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True,
                                 stdin=subprocess.DEVNULL, timeout=300).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        fail(f"the bible program failed ({error}): install bible-kjv (scripts/install-deps.sh --corpus)")
    chapter = []
    for line in printed.splitlines():
        verse = re.match(r"^\s+[0-9]+ (.*)$", line)
        if verse:
            chapter.append(verse.group(1))
        elif line.strip() and chapter:
            yield clean(" ".join(chapter))  # a heading: the previous chapter is complete
            chapter = []
    if chapter:
        yield clean(" ".join(chapter))


def tsv_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        yield from csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)


def task_lines(data):
    def need(relative):
        path = os.path.join(data, relative)
        if not os.path.exists(path):
            fail(f"'{path}' is missing: --data is the folder of the full datasets")
        return path

    for row in tsv_rows(need("sst2/train.tsv")):
        yield clean(row["sentence"])
    # QNLI: the training part of the dev file (scripts/split_qnli.py: every 4th example is dev).
    for i, row in enumerate(tsv_rows(need("qnli/dev.tsv"))):
        if i % 4 != 0:
            yield clean(row["question"])
            yield clean(row["sentence"])
    # SQuAD: the training articles of the split (scripts/split_squad.py: every 4th article is dev).
    with open(need("squad/dev-v1.1.json"), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    for i, article in enumerate(articles):
        if i % 4 == 0:
            continue
        for paragraph in article["paragraphs"]:
            yield clean(paragraph["context"])
            for qa in paragraph["qas"]:
                yield clean(qa["question"])
    with open(need("ud_ewt/en_ewt-ud-train.conllu"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("# text = "):
                yield clean(line[len("# text = "):])
    words = []
    with open(need("wnut17/wnut17train.conll"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0]:
                words.append(parts[0])
            elif words:
                yield clean(" ".join(words))
                words = []
    if words:
        yield clean(" ".join(words))


def write_atomically(path, lines):
    temporary = path + ".tmp"
    count = words = 0
    with open(temporary, "w", encoding="utf-8") as f:
        for line in lines:
            if not line:
                continue
            f.write(line + "\n")
            count += 1
            words += len(line.split())
    os.replace(temporary, path)
    return count, words


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write <source>.txt and SOURCES.md into")
    parser.add_argument("--data", help="folder of the full datasets (needed for the 'tasks' source)")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES))
    args = parser.parse_args()
    if "tasks" in args.sources and not args.data:
        fail("--data is required for the 'tasks' source (or leave it out of --sources)")
    os.makedirs(args.out, exist_ok=True)
    readers = {"gcide": gcide_lines, "wordnet": wordnet_lines, "kjv": kjv_lines, "tasks": lambda: task_lines(args.data)}
    table = []
    for name in args.sources:
        lines, words = write_atomically(os.path.join(args.out, f"{name}.txt"), readers[name]())
        table.append((name, lines, words))
        print(f"{name}.txt: {lines} lines, {words} words")
    with open(os.path.join(args.out, "SOURCES.md.tmp"), "w", encoding="utf-8") as f:
        f.write("# Sources of this corpus (written by scripts/make_corpus.py)\n\n| file | lines | words | source and licence |\n|---|---|---|---|\n")
        for name, lines, words in table:
            f.write(f"| {name}.txt | {lines} | {words} | {ATTRIBUTION[name]} |\n")
    os.replace(os.path.join(args.out, "SOURCES.md.tmp"), os.path.join(args.out, "SOURCES.md"))


if __name__ == "__main__":
    main()
