#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Pictures of an EarlyBERT run, from what `earlybert finetune --earlybert` (or `earlybert demo`) wrote.

    scripts/plot_earlybert.py RUN_DIR [--metrics FILE] [--out DIR]

RUN_DIR is the checkpoint directory holding earlybert_ticket.json; --metrics is the run's JSON-lines
metrics file (default: RUN_DIR.jsonl beside it). Writes, into --out (default RUN_DIR):

  mask_distance.png      head and FFN mask distance at every check (the early-bird curve), the draw marked
  distance_matrix.png    pairwise distances of all recorded masks (heads | FFN)
  coefficients.png       per-layer histograms of the slimming coefficients at the draw
  kept_structure.png     the kept heads and FFN neurons of every layer

Needs Debian's python3-matplotlib; the library and the program do not.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bits(layers):
    return [[c == "1" for c in layer] for layer in layers]


def distance(a, b):
    total = sum(len(layer) for layer in a)
    differ = sum(x != y for la, lb in zip(a, b) for x, y in zip(la, lb))
    return differ / total if total else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--metrics")
    parser.add_argument("--out")
    args = parser.parse_args()
    out = args.out or args.run
    metrics_path = args.metrics or args.run.rstrip("/") + ".jsonl"
    with open(os.path.join(args.run, "earlybert_ticket.json")) as f:
        ticket = json.load(f)
    checks = []
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            checks = [e for e in map(json.loads, f) if e.get("event") == "eb_check"]
    os.makedirs(out, exist_ok=True)
    steps_per_epoch = ticket["steps_per_epoch"]

    # The mask-distance curve.
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key, label in (("head_distance", "heads"), ("ffn_distance", "FFN neurons")):
        points = [(c["step"] / steps_per_epoch, c[key]) for c in checks if c[key] is not None]
        if points:
            ax.plot(*zip(*points), marker=".", label=label)
    ax.axvline(ticket["ticket_step"] / steps_per_epoch, color="grey", linestyle="--", label="ticket drawn")
    ax.set_xlabel("epoch")
    ax.set_ylabel("largest distance to the last masks")
    ax.set_title("Early-bird mask distance")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "mask_distance.png"), dpi=120)
    plt.close(fig)

    # The pairwise distance matrices.
    recorded = ticket["checks"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, title in ((axes[0], "heads", "heads"), (axes[1], "ffn", "FFN neurons")):
        masks = [bits(c[key]) for c in recorded]
        matrix = [[distance(a, b) for b in masks] for a in masks]
        image = ax.imshow(matrix, cmap="viridis", origin="lower")
        ax.set_title(f"pairwise mask distance: {title}")
        ax.set_xlabel("check")
        ax.set_ylabel("check")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "distance_matrix.png"), dpi=120)
    plt.close(fig)

    # Coefficient histograms per layer.
    layers = len(ticket["ffn_coefficients"])
    fig, axes = plt.subplots(2, layers, figsize=(3 * layers, 5), squeeze=False)
    for l in range(layers):
        axes[0][l].hist(ticket["head_coefficients"][l], bins=10, color="tab:orange")
        axes[0][l].set_title(f"layer {l}: heads")
        axes[1][l].hist(ticket["ffn_coefficients"][l], bins=40, color="tab:blue")
        axes[1][l].set_title(f"layer {l}: FFN")
    fig.suptitle("slimming coefficients when the ticket was drawn")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "coefficients.png"), dpi=120)
    plt.close(fig)

    # The kept structure.
    heads, ffn = bits(ticket["ticket"]["heads"]), bits(ticket["ticket"]["ffn"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.6 * layers + 1.6), gridspec_kw={"width_ratios": [1, 4]})
    axes[0].imshow(heads, cmap="Greens", aspect="auto", vmin=0, vmax=1, origin="lower")
    axes[0].set_title("kept heads")
    axes[0].set_xticks(range(len(heads[0])))
    axes[0].set_yticks(range(layers))
    axes[1].set_yticks(range(layers))
    axes[0].set_xlabel("head")
    axes[0].set_ylabel("layer")
    axes[1].imshow(ffn, cmap="Greens", aspect="auto", interpolation="nearest", vmin=0, vmax=1, origin="lower")
    axes[1].set_title("kept FFN neurons: " + ", ".join(f"layer {l}: {sum(m)}" for l, m in enumerate(ffn)))
    axes[1].set_xlabel("neuron")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "kept_structure.png"), dpi=120)
    plt.close(fig)
    print(f"plot_earlybert: wrote 4 pictures into {out}")


if __name__ == "__main__":
    sys.exit(main())
