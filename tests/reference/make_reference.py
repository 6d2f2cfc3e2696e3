#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the PyTorch reference that tests/reference/parity_test.cpp checks earlybert against.

A small BERT is written here in plain PyTorch, module for module as HuggingFace's modeling_bert.py
(post-LN layers, exact-erf GELU, additive padding mask of -10000, padding_idx on the word embeddings,
the masked-LM decoder tied to the word embeddings), so that its state_dict carries HuggingFace's
tensor names. The script writes, into tests/reference/tiny_bert/:

  config.json, model.safetensors, vocab.txt   the checkpoint (F32), as earlybert saves one
  golden.safetensors                          F64 outputs and every gradient, for one batch
  golden.json                                 that batch (ids, token types, attention, labels)

and, for the command-line program, a checkpoint of a shape that is none of the named ones (3 layers,
hidden 64, 2 heads of size 32, FFN 96) into tests/reference/head32_bert/:

  config.json, model.safetensors, vocab.txt   the checkpoint (F32)
  sentences.tsv                               sentence pairs of vocabulary words, for `earlybert predict`
  expected_logits.json                        PyTorch's logits for them, [[...] per row], from the F32
                                              weights in float64

and a checkpoint pruned the way HuggingFace's PreTrainedModel.prune_heads() prunes one (the Q/K/V rows
and the attention output's columns of the removed heads cut out, the removed heads recorded only in
config.json's "pruned_heads"; the first layer loses every head) into tests/reference/hf_pruned_bert/:

  config.json, model.safetensors, vocab.txt   the checkpoint (F32, no earlybert metadata)
  expected.json                               a padded batch and PyTorch's classification logits for it,
                                              from the F32 weights in float64

and F32 values with PyTorch's F16 and BF16 roundings of them (torch.Tensor.half(), .bfloat16()) into
tests/reference/half_precision/values.safetensors, which earlybert's safetensors reader and writer
must match bit for bit.

The golden values are computed in float64 from the F32 weights (exactly representable), with dropout
off, for four heads on the same encoder: sequence classification (pooler + classifier), masked LM
(only the labelled positions go through the decoder, as earlybert computes them), regression (pooler +
a one-output classifier, mean squared error, as BertForSequenceClassification with num_labels 1) and
question answering (qa_outputs on every token; start and end cross-entropy over each sequence's real
positions: earlybert masks padding out of the span softmax, HuggingFace does not). The last two heads'
weights are in golden.safetensors ("regression.classifier.*", "question_answering.qa_outputs.*"), not
in the checkpoint, whose classifier is the three-class one.

Run with Debian's PyTorch (python3-torch), which only /usr/bin/python3 has:
    /usr/bin/python3 tests/reference/make_reference.py
The test suite itself never needs torch: the outputs are committed.
"""
import json
import math
import os
import struct

import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tiny_bert")
OUT_HEAD32 = os.path.join(HERE, "head32_bert")
OUT_HF_PRUNED = os.path.join(HERE, "hf_pruned_bert")
OUT_HALF = os.path.join(HERE, "half_precision")

# The shape: tests/reference/parity_test.cpp instantiates bert_shape<2, 32, 4, 64>.
CONFIG = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    vocab_size=64, max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12,
    hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    initializer_range=0.02, pad_token_id=0, num_labels=3,
)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, ids, types):
        positions = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads = c["num_attention_heads"]
        self.head_dim = c["hidden_size"] // self.heads
        self.query = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.key = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.value = nn.Linear(c["hidden_size"], c["hidden_size"])

    def split(self, x):  # [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def prune(self, kept):
        """HuggingFace's prune_linear_layer on Q, K and V: keep the rows of the `kept` heads."""
        index = torch.cat([torch.arange(h * self.head_dim, (h + 1) * self.head_dim) for h in kept]) if kept else torch.zeros(0, dtype=torch.long)
        for name in ("query", "key", "value"):
            old = getattr(self, name)
            new = nn.Linear(old.in_features, len(index))
            with torch.no_grad():
                new.weight.copy_(old.weight[index])
                new.bias.copy_(old.bias[index])
            setattr(self, name, new)
        self.heads = len(kept)
        return index

    def forward(self, x, additive_mask):
        if self.heads == 0:  # a layer that lost every head adds only the output projection's bias
            return x.new_zeros(x.shape[0], x.shape[1], 0)
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + additive_mask
        context = torch.softmax(scores, dim=-1) @ v
        b, h, s, d = context.shape
        return context.permute(0, 2, 1, 3).reshape(b, s, h * d)


class SelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, context, x):
        return self.LayerNorm(self.dense(context) + x)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = SelfOutput(c)

    def forward(self, x, additive_mask):
        return self.output(self.self(x, additive_mask), x)

    def prune_heads(self, removed):
        """As HuggingFace's BertAttention.prune_heads: Q, K, V rows and the output's columns go."""
        kept = [h for h in range(self.self.heads) if h not in removed]
        index = self.self.prune(kept)
        old = self.output.dense
        new = nn.Linear(len(index), old.out_features)
        with torch.no_grad():
            new.weight.copy_(old.weight[:, index])
            new.bias.copy_(old.bias)
        self.output.dense = new


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class Output(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h, x):
        return self.LayerNorm(self.dense(h) + x)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Output(c)

    def forward(self, x, additive_mask):
        a = self.attention(x, additive_mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, additive_mask):
        for layer in self.layer:
            x = layer(x, additive_mask)
        return x


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c)

    def forward(self, ids, types, attention):
        additive_mask = ((1.0 - attention.to(self.embeddings.LayerNorm.weight.dtype)) * -10000.0)[:, None, None, :]
        return self.encoder(self.embeddings(ids, types), additive_mask)


class PredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class LMPredictionHead(nn.Module):
    def __init__(self, c, word_embeddings):
        super().__init__()
        self.transform = PredictionHeadTransform(c)
        self.decoder = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.decoder.weight = word_embeddings.weight  # tied
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def forward(self, x):
        return self.decoder(self.transform(x)) + self.bias


class OnlyMLMHead(nn.Module):
    def __init__(self, c, word_embeddings):
        super().__init__()
        self.predictions = LMPredictionHead(c, word_embeddings)


class BertWithHeads(nn.Module):
    """BertModel with both task heads, named as BertForSequenceClassification and BertForMaskedLM name them."""

    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.classifier = nn.Linear(c["hidden_size"], c["num_labels"])
        self.cls = OnlyMLMHead(c, self.bert.embeddings.word_embeddings)
        self.hidden = c["hidden_size"]

    def classify(self, ids, types, attention):
        return self.classifier(self.bert.pooler(self.bert(ids, types, attention)))

    def masked_lm(self, ids, types, attention, labels):
        hidden = self.bert(ids, types, attention).reshape(-1, self.hidden)
        picked = (labels.reshape(-1) != -100).nonzero().squeeze(1)
        logits = self.cls.predictions(hidden[picked])
        return logits, F.cross_entropy(logits, labels.reshape(-1)[picked])


def initialise(model, generator):
    """BERT's initialisation, with LayerNorm and biases randomised too so that every path is tested."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))


TORCH_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}


def write_safetensors(path, tensors, dtype, metadata=None):
    """The safetensors format: u64 header length, JSON header, raw little-endian data. `dtype` is one
    for every tensor, or a dict from tensor name to dtype."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        code = dtype[name] if isinstance(dtype, dict) else dtype
        converted = t.detach().to(TORCH_DTYPES[code]).contiguous()
        # numpy has no bfloat16: the 16-bit types are written through their bits.
        data = (converted.view(torch.int16) if code in ("F16", "BF16") else converted).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_checkpoint(out, config, seed):
    """A BertWithHeads of `config`, initialised from `seed`, written as a HuggingFace checkpoint in `out`."""
    os.makedirs(out, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    model = BertWithHeads(config)
    initialise(model, generator)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[config["pad_token_id"]].zero_()

    # The checkpoint, F32, without the tied decoder weight (HuggingFace does not store it twice).
    state = {k: v for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    write_safetensors(os.path.join(out, "model.safetensors"), state, "F32", {"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dict(architectures=["BertForSequenceClassification"], model_type="bert", **config), f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        for token in SPECIALS + [f"w{i}" for i in range(config["vocab_size"] - len(SPECIALS))]:
            f.write(token + "\n")
    return model, state


# A shape none of earlybert's named shapes has: head size 32, three layers, an FFN of 160.
CONFIG_HEAD32 = dict(CONFIG, hidden_size=64, num_hidden_layers=3, num_attention_heads=2, intermediate_size=96)


def write_head32():
    """The checkpoint of CONFIG_HEAD32, sentence pairs of its vocabulary words and PyTorch's logits for them."""
    model, _ = write_checkpoint(OUT_HEAD32, CONFIG_HEAD32, 20261202)
    generator = torch.Generator().manual_seed(7)
    words = len(SPECIALS) + torch.randint(0, CONFIG_HEAD32["vocab_size"] - len(SPECIALS), (24,), generator=generator)
    pairs = [(words[0:5], words[5:8]), (words[8:10], words[10:16]), (words[16:17], words[17:18]), (words[18:24], words[0:2])]
    rows, ids, types = [], [], []
    for a, b in pairs:
        text = lambda w: " ".join(f"w{int(i) - len(SPECIALS)}" for i in w)
        rows.append(f"{text(a)}\t{text(b)}")
        ids.append([2] + a.tolist() + [3] + b.tolist() + [3])
        types.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
    seq = max(len(i) for i in ids)
    attention = torch.tensor([[1] * len(i) + [0] * (seq - len(i)) for i in ids])
    ids = torch.tensor([i + [0] * (seq - len(i)) for i in ids])
    types = torch.tensor([t + [0] * (seq - len(t)) for t in types])
    with open(os.path.join(OUT_HEAD32, "sentences.tsv"), "w") as f:
        f.write("sentence1\tsentence2\n" + "\n".join(rows) + "\n")
    with torch.no_grad():
        logits = model.double().classify(ids, types, attention)
    with open(os.path.join(OUT_HEAD32, "expected_logits.json"), "w") as f:
        json.dump(dict(logits=logits.tolist(), torch_version=torch.__version__), f)
        f.write("\n")
    print(f"wrote {OUT_HEAD32}: {len(rows)} sentence pairs (torch {torch.__version__})")


# Four layers of three heads (head size 16); HuggingFace's pruned_heads as prune_heads() records them.
CONFIG_HF_PRUNED = dict(CONFIG, hidden_size=48, num_hidden_layers=4, num_attention_heads=3, intermediate_size=64, num_labels=2)
HF_PRUNED_HEADS = {0: [0, 1, 2], 2: [0, 2], 3: [1]}


def write_hf_pruned():
    """A checkpoint pruned as HuggingFace prunes one, with a batch and PyTorch's logits for it."""
    config = CONFIG_HF_PRUNED
    os.makedirs(OUT_HF_PRUNED, exist_ok=True)
    generator = torch.Generator().manual_seed(20261207)
    model = BertWithHeads(config)
    initialise(model, generator)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[config["pad_token_id"]].zero_()
    for layer, removed in HF_PRUNED_HEADS.items():
        model.bert.encoder.layer[layer].attention.prune_heads(removed)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("cls.")}
    write_safetensors(os.path.join(OUT_HF_PRUNED, "model.safetensors"), state, "F32", {"format": "pt"})
    with open(os.path.join(OUT_HF_PRUNED, "config.json"), "w") as f:
        json.dump(dict(architectures=["BertForSequenceClassification"], model_type="bert", **config,
                       pruned_heads={str(k): v for k, v in HF_PRUNED_HEADS.items()}), f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT_HF_PRUNED, "vocab.txt"), "w") as f:
        for token in SPECIALS + [f"w{i}" for i in range(config["vocab_size"] - len(SPECIALS))]:
            f.write(token + "\n")
    ids = torch.tensor([[2, 10, 11, 12, 3, 20, 3], [2, 30, 31, 3, 0, 0, 0], [2, 40, 4, 42, 43, 3, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])
    attention = (ids != 0).long()
    with torch.no_grad():
        logits = model.double().classify(ids, types, attention)
    with open(os.path.join(OUT_HF_PRUNED, "expected.json"), "w") as f:
        json.dump(dict(batch=3, seq=7, ids=ids.reshape(-1).tolist(), type_ids=types.reshape(-1).tolist(),
                       attention=attention.reshape(-1).tolist(), logits=logits.tolist(), torch_version=torch.__version__), f)
        f.write("\n")
    print(f"wrote {OUT_HF_PRUNED}: {len(state)} tensors, heads kept per layer "
          f"{[model.bert.encoder.layer[l].attention.self.heads for l in range(config['num_hidden_layers'])]} (torch {torch.__version__})")


def main():
    model, state = write_checkpoint(OUT, CONFIG, 20210101)

    # One batch: 3 sequences of 7 positions, two of them padded, token types 0 and 1.
    ids = torch.tensor([[2, 10, 11, 12, 3, 20, 3], [2, 30, 31, 3, 0, 0, 0], [2, 40, 4, 42, 43, 3, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]])
    attention = (ids != 0).long()
    class_labels = torch.tensor([0, 2, 1])
    mlm_labels = torch.full_like(ids, -100)
    mlm_labels[0, 2] = 11
    mlm_labels[0, 5] = 63
    mlm_labels[1, 1] = 30
    mlm_labels[2, 2] = 41

    model = model.double()
    golden = {}

    model.zero_grad()
    logits = model.classify(ids, types, attention)
    loss = F.cross_entropy(logits, class_labels)
    loss.backward()
    golden["classification.logits"] = logits
    golden["classification.loss"] = loss.reshape(1)
    for name, p in model.named_parameters():
        if p.grad is not None and not name.startswith("cls."):
            golden["classification.grad." + name] = p.grad.clone()

    model.zero_grad()
    logits, loss = model.masked_lm(ids, types, attention, mlm_labels)
    loss.backward()
    golden["masked_lm.logits"] = logits
    golden["masked_lm.loss"] = loss.reshape(1)
    for name, p in model.named_parameters():
        if p.grad is not None and not name.startswith(("classifier.", "bert.pooler.")):
            golden["masked_lm.grad." + name] = p.grad.clone()

    # The regression and span heads, initialised from their own generator after the rest (so the
    # checkpoint and the goldens above stay what they were).
    heads = torch.Generator().manual_seed(20261203)
    regressor = nn.Linear(CONFIG["hidden_size"], 1).double()
    qa_outputs = nn.Linear(CONFIG["hidden_size"], 2).double()
    with torch.no_grad():
        for p in list(regressor.parameters()) + list(qa_outputs.parameters()):
            p.copy_(0.2 * torch.randn(p.shape, generator=heads, dtype=torch.float64))
    golden["regression.classifier.weight"] = regressor.weight.detach().clone()
    golden["regression.classifier.bias"] = regressor.bias.detach().clone()
    golden["question_answering.qa_outputs.weight"] = qa_outputs.weight.detach().clone()
    golden["question_answering.qa_outputs.bias"] = qa_outputs.bias.detach().clone()
    targets = torch.tensor([0.5, 3.2, 4.75], dtype=torch.float64)

    model.zero_grad()
    regressor.zero_grad()
    scores = regressor(model.bert.pooler(model.bert(ids, types, attention)))
    loss = F.mse_loss(scores.squeeze(1), targets)
    loss.backward()
    golden["regression.logits"] = scores
    golden["regression.loss"] = loss.reshape(1)
    for name, p in list(model.named_parameters()) + [("classifier." + n, p) for n, p in regressor.named_parameters()]:
        if p.grad is not None and not name.startswith("cls.") and not (name.startswith("classifier.") and p.shape[0] == CONFIG["num_labels"]):
            golden["regression.grad." + name] = p.grad.clone()

    starts, ends = torch.tensor([1, 2, 3]), torch.tensor([4, 2, 5])
    model.zero_grad()
    logits = qa_outputs(model.bert(ids, types, attention))  # [batch, seq, 2]
    padding = (1 - attention.double()) * -10000.0
    loss = (F.cross_entropy(logits[..., 0] + padding, starts) + F.cross_entropy(logits[..., 1] + padding, ends)) / 2
    loss.backward()
    golden["question_answering.logits"] = logits.reshape(-1, 2)
    golden["question_answering.loss"] = loss.reshape(1)
    for name, p in list(model.named_parameters()) + [("qa_outputs." + n, p) for n, p in qa_outputs.named_parameters()]:
        if p.grad is not None and not name.startswith(("cls.", "classifier.", "bert.pooler.")):
            golden["question_answering.grad." + name] = p.grad.clone()

    write_safetensors(os.path.join(OUT, "golden.safetensors"), golden, "F64")
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(dict(batch=3, seq=7, ids=ids.reshape(-1).tolist(), type_ids=types.reshape(-1).tolist(),
                       attention=attention.reshape(-1).tolist(), classification_labels=class_labels.tolist(),
                       masked_lm_labels=mlm_labels.reshape(-1).tolist(), regression_targets=targets.tolist(),
                       span_labels=torch.stack([starts, ends], 1).reshape(-1).tolist(), torch_version=torch.__version__), f)
        f.write("\n")
    print(f"wrote {OUT}: {len(state)} tensors, {len(golden)} golden tensors (torch {torch.__version__})")
    write_head32()
    write_hf_pruned()
    write_half_precision()


def write_half_precision():
    """F32 values, and PyTorch's F16 and BF16 roundings of them (torch.Tensor.half() and .bfloat16(): round
    to nearest, ties to even): ties, subnormals, the largest finite values, infinities and N(0, s) draws
    at scales from 1e-7 to 1e4; "values.f16_float" and "values.bf16_float" hold the rounded values widened
    back to F32, as PyTorch reads them."""
    os.makedirs(OUT_HALF, exist_ok=True)
    generator = torch.Generator().manual_seed(20261207)
    edges = [0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, -65519.0, 6.0e-8, 2.98e-8, 8.9e-8, 1.0e-5, 6.1e-5,
             1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.0e38, 1.0e-40,
             float("inf"), float("-inf")]
    draws = [scale * torch.randn(200, generator=generator) for scale in (1e-7, 1e-4, 0.02, 1.0, 1e4)]
    values = torch.cat([torch.tensor(edges, dtype=torch.float32)] + draws).to(torch.float32)
    fits_half = values.abs() <= 65519.0  # beyond, F16 has only infinity: earlybert refuses to write those
    fits_half |= values.isinf()
    half_values = values[fits_half]
    tensors = {"values": values, "values.bf16": values, "values.bf16_float": values.bfloat16().float(),
               "half_values": half_values, "half_values.f16": half_values, "half_values.f16_float": half_values.half().float()}
    dtypes = {name: ("BF16" if name.endswith(".bf16") else "F16" if name.endswith(".f16") else "F32") for name in tensors}
    write_safetensors(os.path.join(OUT_HALF, "values.safetensors"), tensors, dtypes)
    print(f"wrote {OUT_HALF}: {values.numel()} values, {half_values.numel()} within F16's range (torch {torch.__version__})")


if __name__ == "__main__":
    main()
