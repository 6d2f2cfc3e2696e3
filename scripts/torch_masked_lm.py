#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A masked-LM checkpoint of earlybert's, loaded into PyTorch and scored on held-out text exactly as
`earlybert predict` scores it.

    /usr/bin/python3 scripts/torch_masked_lm.py CHECKPOINT --input TEXT [--max-seq N] [--expect PREDICT.json]

CHECKPOINT is a folder as `earlybert pretrain` writes one (config.json, model.safetensors in F32, F16
or BF16, vocab.txt, tokenizer_config.json). The weights go by their HuggingFace names into the plain
PyTorch BERT of tests/reference/make_reference.py (HuggingFace's modeling_bert.py, module for module):
every tensor of the file must find its parameter with its shape, and every parameter its tensor (the
decoder weight is tied to the word embeddings, as HuggingFace stores it).

The text is read as earlybert reads a corpus (io/datasets.hpp): each line that is not blank,
tokenised by BERT's tokenizer (this script's own port, checked first against the bundled tokenizer
cases), a literal "<unk>" becoming [UNK]; the tokens are cut into sequences of N - 2 between [CLS]
and [SEP] (N: --max-seq, else the checkpoint's model_max_length), and every sequence is masked as
earlybert's held-out evaluation masks it (evaluate_masked_lm: SplitMix64 seeded with
held_out_masking_seed, 15% of the tokens; of those 80% [MASK], 10% a random token, 10% unchanged).
The script prints the masked-LM loss and accuracy over the masked positions. With --expect, the JSON
`earlybert predict --out` wrote for the same checkpoint and text: the figures must agree (the same
positions masked; loss to 1e-3, accuracy to 1e-3), or the script exits 1.

Needs Debian's PyTorch (python3-torch), which only /usr/bin/python3 has.
"""
import argparse
import json
import math
import os
import struct
import sys
import unicodedata

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
from make_reference import BertModel, OnlyMLMHead  # noqa: E402  (the repository's one PyTorch BERT)

HELD_OUT_MASKING_SEED = 0xE7A1  # train/evaluation.hpp: held_out_masking_seed
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ---- BERT's tokenizer (google-research/bert tokenization.py; io/tokenizer.hpp) -------------------

def is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def is_punctuation(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def is_cjk(o):
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0x2A700 <= o <= 0x2B73F
            or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F)


class Tokenizer:
    def __init__(self, vocab, lower_case, never_split=SPECIALS):
        self.vocab = vocab  # token -> id
        self.lower_case = lower_case
        self.never_split = set(never_split or [])

    def basic(self, text):
        cleaned = []
        for c in text:
            o = ord(c)
            if o == 0 or o == 0xFFFD or is_control(c):
                continue
            if is_whitespace(c):
                cleaned.append(" ")
            elif is_cjk(o):
                cleaned.append(" " + c + " ")
            else:
                cleaned.append(c)
        words = []
        for word in "".join(cleaned).split():
            if word in self.never_split:
                words.append(word)
                continue
            if self.lower_case:
                word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
            current = ""
            for c in word:
                if is_punctuation(c):
                    if current:
                        words.append(current)
                    words.append(c)
                    current = ""
                else:
                    current += c
            if current:
                words.append(current)
        return words

    def wordpiece(self, word):
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text):
        return [p for w in self.basic(text) for p in self.wordpiece(w)]


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def check_tokenizer():
    """The port against the bundled cases of whole-text tokenisation (single texts, no special tokens)."""
    cases = json.load(open(os.path.join(ROOT, "data", "tokenizer_tests", "bert_wordpiece_cases.json"), encoding="utf-8"))["cases"]
    checked = 0
    for case in cases:
        if case.get("component") or case.get("add_special_tokens") or "input_pair" in case or not isinstance(case["vocab"], str):
            continue
        vocab = read_vocab(os.path.join(ROOT, "data", case["vocab"]))
        got = Tokenizer(vocab, case["do_lower_case"], case.get("never_split")).tokenize(case["input"])
        if got != case["expected_tokens"]:
            sys.exit(f"torch_masked_lm.py: this script's tokenizer fails case '{case['id']}': {got} != {case['expected_tokens']}")
        checked += 1
    return checked


# ---- The corpus and earlybert's masking ----------------------------------------------------------

MASK64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


class SplitMix64:
    """core/rng.hpp's rng: next(), uniform() in [0, 1) from 53 bits, below(n) by multiply-shift."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        return mix64(self.state)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def below(self, n):
        return (self.next() * n) >> 64


def read_corpus(path, tokenizer):
    ids, unk = [], tokenizer.vocab["[UNK]"]
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            line = line.rstrip("\r")
            if not line.strip(" \t"):
                continue
            parts = line.split("<unk>")
            for k, part in enumerate(parts):
                if k > 0:
                    ids.append(unk)
                ids.extend(tokenizer.vocab[p] for p in tokenizer.tokenize(part))
    return ids


def masked_sequences(ids, seq, vocab):
    """Every whole sequence of the corpus, masked in sequence order: (inputs, labels) rows."""
    cls, sep, pad, mask = (vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]", "[MASK]"))
    body = seq - 2
    random = SplitMix64(HELD_OUT_MASKING_SEED)
    rows, labels = [], []
    for s in range(len(ids) // body):
        row = [cls] + ids[s * body:(s + 1) * body] + [sep]
        label = [-100] * seq
        for i, token in enumerate(row):
            if token in (cls, sep, pad, mask):
                continue
            if random.uniform() >= 0.15:
                continue
            label[i] = token
            action = random.uniform()
            if action < 0.8:
                row[i] = mask
            elif action < 0.9:
                row[i] = random.below(len(vocab))
        rows.append(row)
        labels.append(label)
    return torch.tensor(rows), torch.tensor(labels)


# ---- The checkpoint --------------------------------------------------------------------------------

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__", None)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype, size = DTYPES[entry["dtype"]]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        view = torch.frombuffer(raw, dtype=torch.int16 if size == 2 else torch.float32)
        tensors[name] = (view.view(dtype) if size == 2 else view).to(torch.float32).reshape(entry["shape"])
    return tensors


class MaskedLM(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.bert.pooler = None  # BertForMaskedLM has none
        self.cls = OnlyMLMHead(c, self.bert.embeddings.word_embeddings)
        self.hidden = c["hidden_size"]

    def forward(self, ids, labels):
        hidden = self.bert(ids, torch.zeros_like(ids), torch.ones_like(ids)).reshape(-1, self.hidden)
        picked = (labels.reshape(-1) != -100).nonzero().squeeze(1)
        return self.cls.predictions(hidden[picked]), labels.reshape(-1)[picked]


def load_model(folder):
    config = json.load(open(os.path.join(folder, "config.json")))
    config.setdefault("layer_norm_eps", 1e-12)
    config.setdefault("pad_token_id", 0)
    model = MaskedLM(config)
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    expected = {k: v.shape for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    unknown = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    wrong = sorted(k for k in set(tensors) & set(expected) if tuple(tensors[k].shape) != tuple(expected[k]))
    if unknown or missing or wrong:
        sys.exit(f"torch_masked_lm.py: '{folder}': tensors without a parameter {unknown}, parameters without a tensor {missing}, "
                 f"shapes that differ {wrong}")
    model.load_state_dict(tensors, strict=False)  # the tied decoder weight is the word embeddings
    return model.eval(), config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--input", required=True, help="raw text, one paragraph per line")
    parser.add_argument("--max-seq", type=int, help="sequence length (default: the checkpoint's model_max_length)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--expect", help="the JSON `earlybert predict --out` wrote for this checkpoint and text")
    a = parser.parse_args()

    cases = check_tokenizer()
    model, config = load_model(a.checkpoint)
    settings = json.load(open(os.path.join(a.checkpoint, "tokenizer_config.json")))
    seq = a.max_seq or settings["model_max_length"]
    vocab = read_vocab(os.path.join(a.checkpoint, "vocab.txt"))
    tokenizer = Tokenizer(vocab, settings.get("do_lower_case", True))
    rows, labels = masked_sequences(read_corpus(a.input, tokenizer), seq, vocab)
    if len(rows) == 0:
        sys.exit(f"torch_masked_lm.py: --input '{a.input}' holds fewer tokens than one sequence of {seq}")
    loss_sum, correct, masked = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(rows), a.batch):
            logits, target = model(rows[start:start + a.batch], labels[start:start + a.batch])
            loss_sum += F.cross_entropy(logits.double(), target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
            masked += len(target)
    loss, accuracy = loss_sum / masked, correct / masked
    print(f"torch_masked_lm.py: tokenizer agrees on {cases} cases; {len(rows)} sequences of {seq} ({masked} masked) of '{a.input}': "
          f"masked_lm_loss {loss:.4f}, masked_lm_accuracy {accuracy:.4f}")
    if a.expect:
        e = json.load(open(a.expect))
        theirs = e["metrics"]
        agree = (e["masked"] == masked and abs(theirs["masked_lm_loss"] - loss) <= 1e-3
                 and abs(theirs["masked_lm_accuracy"] - accuracy) <= 1e-3)
        print(f"earlybert predict ('{a.expect}'): {e['masked']} masked, masked_lm_loss {theirs['masked_lm_loss']:.4f}, "
              f"masked_lm_accuracy {theirs['masked_lm_accuracy']:.4f}: {'agree' if agree else 'DISAGREE'} (differences {loss - theirs['masked_lm_loss']:+.1e} "
              f"and {accuracy - theirs['masked_lm_accuracy']:+.1e})")
        if not agree:
            sys.exit(1)


if __name__ == "__main__":
    main()
