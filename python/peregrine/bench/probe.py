"""Run one pyperf benchmark script in this process, time each iteration and dump the JIT's stats.

The harness runs this file *by path* (``python3 probe.py --out FILE SCRIPT [SCRIPT_ARGS...]``), not as
``peregrine.bench.probe``: importing the ``peregrine`` package would load the extension, and a
stock-CPython run must not have it loaded. Under ``PEREGRINE=1`` the start-up hook has already
imported ``peregrine``, which is how this file knows the JIT is on.

Every benchmark script, pyperformance's or ours, hands its workload to ``pyperf.Runner.bench_func``
or ``bench_time_func``. This file replaces ``pyperf.Runner`` with a subclass that records that call
instead of spawning worker processes, runs the script as ``__main__``, then calls the recorded
workload itself. That way the workload is exactly what pyperf times, with no per-script adapter.

Output (JSON): per-iteration seconds, the iteration after which each tier had first compiled
something (for the warm-up chart), and ``peregrine.stats()`` at the end (``null`` when the JIT
is off).
"""

import argparse
import json
import runpy
import sys
import time

import pyperf


class _Workload:
    """The callable a benchmark script registered, and how to time one iteration of it."""

    def __init__(self, name, func, args, timed_by_func, inner_loops):
        self.name = name
        self.func = func
        self.args = args
        # bench_time_func workloads take a loop count and return the seconds they measured
        # themselves (excluding their own setup); bench_func workloads are timed from outside.
        self.timed_by_func = timed_by_func
        self.inner_loops = inner_loops or 1

    def run_once(self):
        """Seconds for one iteration, per inner loop as pyperf reports it."""
        if self.timed_by_func:
            seconds = self.func(1, *self.args)
        else:
            start = time.perf_counter()
            self.func(*self.args)
            seconds = time.perf_counter() - start
        return seconds / self.inner_loops


class _RecordingRunner(pyperf.Runner):
    """A pyperf.Runner whose bench_* methods record the workload instead of measuring it."""

    workload = None

    def bench_func(self, name, func, *args, inner_loops=None, metadata=None):
        _RecordingRunner.workload = _Workload(name, func, args, False, inner_loops)

    def bench_time_func(self, name, time_func, *args, inner_loops=None, metadata=None):
        _RecordingRunner.workload = _Workload(name, time_func, args, True, inner_loops)

    def bench_async_func(self, name, func, *args, **kwargs):
        raise SystemExit(f"probe: {name} uses bench_async_func, which the probe does not support")

    def bench_command(self, name, command):
        raise SystemExit(f"probe: {name} uses bench_command, which the probe does not support")


def _tiers_compiled(peregrine):
    s = peregrine.stats()
    return {tier: s[tier]["compiled"] for tier in ("baseline", "optimized")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a pyperf benchmark script")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--iterations", type=int, default=1, help="run at least this many iterations")
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="and keep iterating until this much time has passed"
    )
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed on to the script")
    options = parser.parse_args()

    pyperf.Runner = _RecordingRunner
    sys.argv = [options.script, *options.script_args]
    runpy.run_path(options.script, run_name="__main__")
    workload = _RecordingRunner.workload
    if workload is None:
        raise SystemExit(f"probe: {options.script} registered no workload with pyperf")

    # Present only when PEREGRINE=1 made the start-up hook import it: see the module docstring.
    peregrine = sys.modules.get("peregrine")
    first_compiled_at = {"baseline": None, "optimized": None}
    iteration_seconds = []
    started = time.perf_counter()
    while len(iteration_seconds) < options.iterations or time.perf_counter() - started < options.seconds:
        iteration_seconds.append(workload.run_once())
        if peregrine is not None:
            for tier, compiled in _tiers_compiled(peregrine).items():
                if compiled and first_compiled_at[tier] is None:
                    first_compiled_at[tier] = len(iteration_seconds)

    result = {
        "benchmark": workload.name,
        "iteration_seconds": iteration_seconds,
        "first_compiled_at": first_compiled_at,
        "jit_enabled": peregrine is not None and peregrine.is_enabled(),
        "thresholds": peregrine.get_thresholds() if peregrine is not None else None,
        "stats": peregrine.stats() if peregrine is not None else None,
    }
    with open(options.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
