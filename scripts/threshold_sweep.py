#!/usr/bin/env python3
"""Sweeps the baseline tier's threshold: the benchmark suite (steady state, pyperf through
`python -m peregrine.bench --baseline-thresholds`) and the README's main job (a one-shot program,
where compiling too early or too late shows), stock CPython beside each, in one run.

    python3 scripts/threshold_sweep.py [--thresholds 0,50,200,1000,5000] [--out DIR]
                                       [--processes N] [--values N] [--runs N]

Writes DIR/bench/ (the harness's report) and DIR/main-job.json, and prints both tables; the
figures of the last sweep and the default chosen from them are in docs/thresholds.md. Run it on
an otherwise idle machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from peregrine.bench.suite import threshold_configuration

MAIN_JOB_PACKAGES = (
    "email json asyncio unittest xml http urllib logging multiprocessing concurrent importlib idlelib tkinter "
    "lib2to3 distutils"
).split()


def main_job_targets():
    stdlib = sysconfig.get_paths()["stdlib"]
    return [os.path.join(stdlib, p) for p in MAIN_JOB_PACKAGES]


def run_main_job(env):
    """One run of pyflakes over the main job's packages under `env`: its wall time, and its exit
    code and output (compared with stock's)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pyflakes", *main_job_targets()], env=env, capture_output=True, text=True)
    return time.perf_counter() - start, (done.returncode, done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", default="0,50,200,1000,5000")
    parser.add_argument("--out", default="bench-results/threshold-sweep")
    parser.add_argument("--processes", type=int, default=3, help="pyperf worker processes per benchmark")
    parser.add_argument("--values", type=int, default=3, help="pyperf values per worker process")
    parser.add_argument("--runs", type=int, default=3, help="runs of the main job per configuration")
    parser.add_argument("--skip-bench", action="store_true", help="only the main job")
    options = parser.parse_args()
    thresholds = [int(t) for t in options.thresholds.split(",")]
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)

    if not options.skip_bench:
        subprocess.run(
            [sys.executable, "-m", "peregrine.bench", "--no-warmup", "--baseline-thresholds", options.thresholds,
             "--processes", str(options.processes), "--values", str(options.values), "--out", str(out / "bench")],
            check=True,
        )

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PEREGRINE")}
    sweep = [threshold_configuration(t) for t in thresholds]
    configs = [("stock", base_env)] + [(c.name, {**base_env, **c.env}) for c in sweep]
    # Interleaved, so a slow spell of the host hits every configuration alike.
    times = {name: [] for name, _ in configs}
    outputs = {}
    for _ in range(options.runs):
        for name, env in configs:
            t, output = run_main_job(env)
            times[name].append(t)
            outputs.setdefault(name, output)
    stock_best = min(times["stock"])
    rows = []
    for name, _ in configs:
        best = min(times[name])
        rows.append({
            "configuration": name,
            "times_s": times[name],
            "best_s": best,
            "median_s": statistics.median(times[name]),
            "speedup": stock_best / best,
            "same_output": outputs[name] == outputs["stock"],
        })
    (out / "main-job.json").write_text(json.dumps(rows, indent=2))
    print(f"\nmain job (pyflakes over {len(MAIN_JOB_PACKAGES)} stdlib packages), {options.runs} runs each, interleaved:")
    print(f"{'configuration':<15} {'best s':>8} {'median s':>9} {'vs stock':>9}  same output")
    for r in rows:
        print(f"{r['configuration']:<15} {r['best_s']:8.2f} {r['median_s']:9.2f} {r['speedup']:8.2f}x  {r['same_output']}")


if __name__ == "__main__":
    main()
