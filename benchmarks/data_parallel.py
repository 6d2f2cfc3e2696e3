#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Data parallelism on one machine, side by side: the figures of docs/distributed.md.

Runs masked-LM pre-training steps (the bundled WikiText-2 excerpt, --shape, --batch x --seq) four ways,
in alternation, --rounds times (the order rotating every round):

  1 process x 2 threads                 the program as it runs without MPI
  2 processes x 1 thread                mpirun -np 2 ... --threads 1: the same steps, split in two
  2 processes x 1 thread, no overlap    the same with --overlap off: gradients summed after backward
  1 process x 1 thread                  one process's compute alone (the scaling model's compute term)

and reads each run's metrics: the step time (the median over the steps after --warmup), the job's
tokens per second, and for two processes the time each step spent summing gradients (communication_s)
and of it the time after backward (communication_wait_s). Prints a Markdown table of medians and
ratios; --json-out writes every measurement.

    /usr/bin/python3 benchmarks/data_parallel.py --earlybert build/release/bin/earlybert
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Open MPI as root, and in containers without cross-memory attach.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl_vader_single_copy_mechanism": "none"}


def run(command, metrics, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"data_parallel.py: '{' '.join(command)}' failed with status {done.returncode}:\n{done.stderr}")
    with open(metrics) as f:
        return [e for e in map(json.loads, f) if e["event"] == "step"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--earlybert", default="build/release/bin/earlybert")
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--shape", default="mini")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--warmup", type=int, default=5, help="first steps left out of the medians")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json-out")
    a = p.parse_args()
    env = dict(os.environ, **MPI_ENV)
    work = tempfile.mkdtemp(prefix="earlybert_dp_")
    base = [a.earlybert, "pretrain", "--corpus", os.path.join(ROOT, "data/wikitext2/train_head.txt"),
            "--vocab", os.path.join(ROOT, "data/vocab/bert-base-uncased-vocab.txt"), "--shape", a.shape,
            "--steps", str(a.steps), "--batch", str(a.batch), "--seq", str(a.seq), "--eval-every", "0",
            "--eval-sequences", "8", "--checkpoint-every", "0", "--quiet"]
    setups = {
        "1 process x 2 threads": ([], 2, []),
        "2 processes x 1 thread": ([a.mpirun, "-np", "2"], 1, []),
        "2 processes x 1 thread, no overlap": ([a.mpirun, "-np", "2"], 1, ["--overlap", "off"]),
        "1 process x 1 thread": ([], 1, []),
    }
    results = {name: [] for name in setups}
    names = list(setups)
    for r in range(a.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            launcher, threads, extra = setups[name]
            metrics = os.path.join(work, "metrics.jsonl")
            steps = run(launcher + base + extra + ["--threads", str(threads), "--out", os.path.join(work, "out"), "--metrics", metrics],
                        metrics, env)
            times = [b["elapsed_s"] - e["elapsed_s"] for e, b in zip(steps, steps[1:])][a.warmup:]
            kept = steps[a.warmup + 1:]
            results[name].append({"step_s": statistics.median(times),
                                  "communication_s": statistics.median(s.get("communication_s", 0.0) for s in kept),
                                  "communication_wait_s": statistics.median(s.get("communication_wait_s", 0.0) for s in kept),
                                  "tokens_per_s": a.batch * a.seq / statistics.median(times)})
            print(f"round {r + 1}, {name}: {results[name][-1]}", file=sys.stderr, flush=True)

    def median(name, key):
        return statistics.median(m[key] for m in results[name])

    reference = median("1 process x 2 threads", "step_s")
    print(f"{a.shape}, batch {a.batch} x {a.seq} tokens, median of {a.rounds} rounds (each the median step over steps "
          f"{a.warmup + 2}-{a.steps}):\n")
    print("| setup | step (s) | tokens/s | vs 1 x 2 threads | communication (s) | of it after backward (s) | communication / step |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        step, comm, wait = median(name, "step_s"), median(name, "communication_s"), median(name, "communication_wait_s")
        print(f"| {name} | {step:.3f} | {median(name, 'tokens_per_s'):.0f} | {reference / step:.3f} | {comm:.4f} | {wait:.4f} | "
              f"{comm / step:.3f} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"settings": vars(a), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
