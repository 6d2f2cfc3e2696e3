#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The PyTorch side of the benchmarks: the model and step `earlybert bench` times, in plain PyTorch.

Same BERT as earlybert's (post-LN layers, exact-erf GELU, additive padding mask, dropout 0.1 on the
embeddings, the attention probabilities and both residual branches), the same tasks (masked LM on 15%
of the positions, only those through the decoder tied to the word embeddings; or a pooled [CLS]
two-class classifier), the same step (forward, loss, backward, global gradient-norm clipping at 1.0,
AdamW with decoupled weight decay 0.01), the same random full-length sequences. With --prune-heads /
--prune-ffn every layer is built with round((1 - r) n) heads and FFN neurons: a compacted model.
Prints one JSON object with the keys `earlybert bench --json` prints.

Run with Debian's PyTorch (python3-torch), which only /usr/bin/python3 has, with OMP_WAIT_POLICY=PASSIVE
(docs/performance.md: PyTorch's OpenMP pool and OpenBLAS's otherwise thrash on two cores):
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 benchmarks/pytorch_reference.py --shape mini --json
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

SHAPES = {  # layers, hidden, heads, ffn
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}
VOCAB, POSITIONS, TYPES = 30522, 512, 2
CLS, SEP, MASK = 101, 102, 103
DROPOUT = 0.1


class Layer(nn.Module):
    def __init__(self, hidden, heads, head_dim, ffn):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.query, self.key, self.value = (nn.Linear(hidden, inner) for _ in range(3))
        self.attention_output = nn.Linear(inner, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, ffn)
        self.output = nn.Linear(ffn, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)

    def split(self, x):  # [batch, seq, inner] -> [batch, heads, seq, head_dim]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, additive_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + additive_mask
        probabilities = F.dropout(torch.softmax(scores, dim=-1), DROPOUT, self.training)
        context = (probabilities @ v).permute(0, 2, 1, 3).flatten(2)
        x = self.attention_norm(x + F.dropout(self.attention_output(context), DROPOUT, self.training))
        h = F.gelu(self.intermediate(x))
        return self.output_norm(x + F.dropout(self.output(h), DROPOUT, self.training))


class Bert(nn.Module):
    def __init__(self, shape, heads_kept, ffn_kept, task):
        super().__init__()
        layers, hidden, heads, _ = shape
        head_dim = hidden // heads
        self.word = nn.Embedding(VOCAB, hidden, padding_idx=0)
        self.position = nn.Embedding(POSITIONS, hidden)
        self.token_type = nn.Embedding(TYPES, hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList([Layer(hidden, heads_kept, head_dim, ffn_kept) for _ in range(layers)])
        self.task = task
        if task == "mlm":
            self.transform = nn.Linear(hidden, hidden)
            self.transform_norm = nn.LayerNorm(hidden, eps=1e-12)
            self.decoder_bias = nn.Parameter(torch.zeros(VOCAB))
        else:
            self.pooler = nn.Linear(hidden, hidden)
            self.classifier = nn.Linear(hidden, 2)

    def forward(self, ids, types, attention, labels):
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.embedding_norm(self.word(ids) + self.position(positions) + self.token_type(types))
        x = F.dropout(x, DROPOUT, self.training)
        additive_mask = ((1.0 - attention.float()) * -10000.0)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, additive_mask)
        if self.task == "mlm":
            rows = labels.view(-1) >= 0  # only the masked positions reach the decoder
            h = self.transform_norm(F.gelu(self.transform(x.reshape(-1, x.shape[-1])[rows])))
            logits = h @ self.word.weight.t() + self.decoder_bias
            return F.cross_entropy(logits, labels.view(-1)[rows])
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return F.cross_entropy(self.classifier(F.dropout(pooled, DROPOUT, self.training)), labels)


def random_batch(batch, seq, task, generator):
    ids = torch.randint(1000, VOCAB, (batch, seq), generator=generator)
    ids[:, 0], ids[:, -1] = CLS, SEP
    types = torch.zeros_like(ids)
    attention = torch.ones_like(ids)
    if task == "cls":
        return ids, types, attention, torch.randint(0, 2, (batch,), generator=generator)
    # BERT's rule on the non-special positions: 15% chosen; of those 80% [MASK], 10% random, 10% kept.
    chosen = torch.rand(batch, seq, generator=generator) < 0.15
    chosen[:, 0] = chosen[:, -1] = False
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(batch, seq, generator=generator)
    masked = ids.clone()
    masked[chosen & (roll < 0.8)] = MASK
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = torch.randint(1000, VOCAB, (int(swap.sum()),), generator=generator)
    return masked, types, attention, labels


def forward_flops(shape, heads_kept, ffn_kept, batch, seq, task, labelled):
    """The cost model of docs/earlybert.md §0, as earlybert's forward_flops counts it."""
    layers, hidden, heads, _ = shape
    head_dim = hidden // heads
    inner = heads_kept * head_dim
    per_token = layers * (2 * (3 * hidden * inner + inner * hidden + 2 * hidden * ffn_kept) + 4 * seq * inner)
    flops = batch * seq * per_token
    if task == "mlm":
        return flops + labelled * (2 * hidden * hidden + 2 * hidden * VOCAB)
    return flops + batch * (2 * hidden * hidden + 2 * hidden * 2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="mini", choices=SHAPES)
    p.add_argument("--task", default="mlm", choices=["mlm", "cls"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--prune-heads", type=float, default=0.0)
    p.add_argument("--prune-ffn", type=float, default=0.0)
    p.add_argument("--inference", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    shape = SHAPES[a.shape]
    heads_kept = max(1, round((1 - a.prune_heads) * shape[2]))
    ffn_kept = max(1, round((1 - a.prune_ffn) * shape[3]))
    model = Bert(shape, heads_kept, ffn_kept, a.task)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids, types, attention, labels = random_batch(a.batch, a.seq, a.task, torch.Generator().manual_seed(a.seed))
    labelled = int((labels >= 0).sum()) if a.task == "mlm" else a.batch
    flops = forward_flops(shape, heads_kept, ffn_kept, a.batch, a.seq, a.task, labelled)
    if not a.inference:
        flops *= 3

    times = []
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        if a.inference:
            model.eval()
            with torch.no_grad():
                model(ids, types, attention, labels).item()
        else:
            model.train()
            optimizer.zero_grad(set_to_none=False)
            loss = model(ids, types, attention, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        elapsed = (time.perf_counter() - start) * 1e3
        if step >= a.warmup:
            times.append(elapsed)

    median = statistics.median(times)
    result = {
        "shape": a.shape, "task": a.task, "mode": "inference" if a.inference else "train",
        "batch": a.batch, "seq": a.seq, "heads_kept": heads_kept, "ffn_kept": ffn_kept, "steps": a.steps,
        "step_ms_median": median, "step_ms_min": min(times), "step_ms_max": max(times),
        "tokens_per_s": a.batch * a.seq / (median / 1e3),
        ("forward_flops_per_step" if a.inference else "train_flops_per_step"): flops,
        "gflops": flops / (median / 1e3) / 1e9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    print(json.dumps(result) if a.json else
          f"pytorch: {a.shape} {a.task} {result['mode']}: median {median:.2f} ms, {result['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
