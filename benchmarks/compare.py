#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""earlybert against PyTorch, side by side: the table of docs/performance.md.

For every shape (default mini and small) and mode (training dense, training compacted at EarlyBERT's
ratios, inference), runs `earlybert bench --json` and benchmarks/pytorch_reference.py in alternation,
--rounds times (the order flips every round), under one environment: the same thread count and
OPENBLAS_CORETYPE as set (or unset) by the caller; PyTorch also gets OMP_WAIT_POLICY=PASSIVE
(docs/performance.md). The machine's GEMM ceiling is measured in the same run (op_benchmarks),
before and after; each training step's rate is quoted as a fraction of it.

Prints a Markdown table of medians and ratios, and with --json-out writes every raw measurement.

    /usr/bin/python3 benchmarks/compare.py --build build/release
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRUNE = ["--prune-heads", str(1 / 3), "--prune-ffn", "0.4"]
MODES = {"train": [], "train pruned": PRUNE, "inference": ["--inference"]}


def run_json(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"compare.py: '{' '.join(command)}' failed with status {done.returncode}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build/release", help="build folder holding bin/earlybert and bin/op_benchmarks")
    p.add_argument("--shapes", default="mini,small")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="timed steps per run, after 3 warm-up steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json-out", help="write every measurement here")
    a = p.parse_args()

    earlybert = os.path.join(a.build, "bin", "earlybert")
    op_benchmarks = os.path.join(a.build, "bin", "op_benchmarks")
    env = dict(os.environ)
    torch_env = dict(env, OMP_WAIT_POLICY="PASSIVE")
    common = ["--batch", "32", "--seq", "128", "--steps", str(a.steps), "--warmup", "3", "--threads", str(a.threads), "--json"]

    def ceiling():
        return run_json([op_benchmarks, "--shape", "tiny", "--threads", str(a.threads), "--rounds", "5", "--json"], env)["ceiling_gflops"]

    ceilings = [ceiling()]
    runs = {}
    for round_index in range(a.rounds):
        for shape in a.shapes.split(","):
            for mode, flags in MODES.items():
                ours = [earlybert, "bench", "--shape", shape, *flags, *common]
                theirs = [sys.executable, os.path.join(HERE, "pytorch_reference.py"), "--shape", shape, *flags, *common]
                pair = [("earlybert", ours, env), ("pytorch", theirs, torch_env)]
                if round_index % 2 == 1:
                    pair.reverse()
                for name, command, command_env in pair:
                    r = run_json(command, command_env)
                    runs.setdefault((shape, mode, name), []).append(r)
                    print(f"round {round_index + 1}: {shape} {mode} {name}: {r['step_ms_median']:.1f} ms", file=sys.stderr)
    ceilings.append(ceiling())
    gemm_ceiling = statistics.median(ceilings)

    def median(shape, mode, name, key="step_ms_median"):
        return statistics.median(r[key] for r in runs[(shape, mode, name)])

    core = runs[next(iter(runs))][0].get("openblas_core", "?")
    print(f"GEMM ceiling (op_benchmarks, 2048^3 split across {a.threads} threads): {gemm_ceiling:.1f} GFLOP/s "
          f"(before {ceilings[0]:.1f}, after {ceilings[1]:.1f}); OpenBLAS core {core}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; medians of {a.rounds} alternating rounds "
          f"of {a.steps} steps, batch 32 x seq 128, masked LM\n")
    print("| shape | mode | earlybert ms | PyTorch ms | ratio | earlybert GFLOP/s | of ceiling | peak RSS MB earlybert / PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    table = []
    for shape in a.shapes.split(","):
        for mode in MODES:
            ours, theirs = median(shape, mode, "earlybert"), median(shape, mode, "pytorch")
            gflops = median(shape, mode, "earlybert", "gflops")
            rss = (max(r["peak_rss_mb"] for r in runs[(shape, mode, "earlybert")]), max(r["peak_rss_mb"] for r in runs[(shape, mode, "pytorch")]))
            row = dict(shape=shape, mode=mode, earlybert_ms=ours, pytorch_ms=theirs, ratio=ours / theirs, earlybert_gflops=gflops,
                       of_ceiling=gflops / gemm_ceiling, peak_rss_mb=rss)
            table.append(row)
            print(f"| {shape} | {mode} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.3f} | {gflops:.1f} | {gflops / gemm_ceiling:.0%} | "
                  f"{rss[0]:.0f} / {rss[1]:.0f} |")
    print("\nCompacted at 1/3 of the heads and 40% of the FFN neurons: step-time ratio to dense against the FLOP ratio\n")
    print("| shape | earlybert time ratio | FLOP ratio | time / FLOP ratio | PyTorch time ratio | PyTorch time / FLOP ratio |")
    print("|---|---|---|---|---|---|")
    for shape in a.shapes.split(","):
        flops = {name: median(shape, "train pruned", name, "train_flops_per_step") / median(shape, "train", name, "train_flops_per_step")
                 for name in ("earlybert", "pytorch")}
        times = {name: median(shape, "train pruned", name) / median(shape, "train", name) for name in ("earlybert", "pytorch")}
        print(f"| {shape} | {times['earlybert']:.3f} | {flops['earlybert']:.3f} | {times['earlybert'] / flops['earlybert']:.3f} | "
              f"{times['pytorch']:.3f} | {times['pytorch'] / flops['pytorch']:.3f} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"ceilings_gflops": ceilings, "table": table,
                       "runs": [{"shape": s, "mode": m, "name": n, "results": r} for (s, m, n), r in runs.items()]}, f, indent=1)


if __name__ == "__main__":
    main()
