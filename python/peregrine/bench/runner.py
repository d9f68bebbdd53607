"""Running benchmark scripts: timed with pyperf, and probed once for tier statistics and warm-up.

Each (benchmark, configuration) pair gets

* a pyperf run: the script itself with pyperf's options (worker processes, warm-ups, values), the
  configuration's variables in the environment and passed on to the workers with
  ``--inherit-environ`` (pyperf workers otherwise get a scrubbed environment, and the JIT would
  silently be off in them);
* a probe run (``probe.py``): a single process that runs the same workload for a few iterations
  and reports per-iteration times and ``peregrine.stats()``. Stock CPython has no statistics, so it
  is probed only for the warm-up chart.

Failures (a crash, a timeout, a wrong answer caught by a workload's own assertion) are recorded with
the tail of the process's stderr and the run carries on, so one broken benchmark cannot hide the
others' numbers.
"""

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .suite import JIT_ENV_VARS, environment_for

PROBE_SCRIPT = Path(__file__).with_name("probe.py")


@dataclass(frozen=True)
class Settings:
    """How long to measure: one set for the quick run, one for the full run."""

    processes: int
    values: int
    warmups: int
    min_time: float  # pyperf's --min-time: seconds per value, which sets its loop count
    probe_seconds: float  # how long the statistics probe keeps iterating
    warmup_iterations: int  # iterations recorded for the warm-up chart
    timeout: float  # seconds before a single pyperf or probe run is abandoned


QUICK = Settings(
    processes=2, values=2, warmups=1, min_time=0.02, probe_seconds=0.2, warmup_iterations=40, timeout=300
)
FULL = Settings(
    processes=8, values=3, warmups=1, min_time=0.1, probe_seconds=2.0, warmup_iterations=300, timeout=1800
)


# The last line of a Python traceback: "AssertionError: ...", "pyperf.SomeError: ...".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _failure(completed):
    """One line saying why a run failed. Under pyperf the worker's own exception comes first in
    stderr and pyperf's "worker failed with exit code N" (a negative N is a signal) comes last:
    keep both."""
    code = completed.returncode
    status = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    lines = (completed.stderr or "").strip().splitlines()
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)]
    if not exceptions:
        return f"{status}: {lines[-1]}" if lines else status
    reasons = [exceptions[0]] if exceptions[0] == exceptions[-1] else [exceptions[0], exceptions[-1]]
    return f"{status}: " + " / ".join(reasons)


def _run(command, env, timeout):
    """Run ``command``; None on success, otherwise a one-line description of what went wrong."""
    try:
        completed = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    return None if completed.returncode == 0 else _failure(completed)


def run_pyperf(python, script, benchmark, configuration, settings, output_path):
    """Time one benchmark in one configuration with pyperf. Returns a result dict."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.unlink(missing_ok=True)  # pyperf refuses to overwrite an existing file
    command = [
        python,
        str(script),
        *benchmark.args,
        "--processes", str(settings.processes),
        "--values", str(settings.values),
        "--warmups", str(settings.warmups),
        "--min-time", str(settings.min_time),
        "--inherit-environ", ",".join(JIT_ENV_VARS),
        "--quiet",
        "--output", str(output_path),
    ]
    started = time.perf_counter()
    error = _run(command, environment_for(configuration), settings.timeout)
    elapsed = time.perf_counter() - started
    if error is not None:
        return {"error": error, "wall_s": elapsed}

    import pyperf  # checked present by __main__ before anything runs

    measured = pyperf.Benchmark.load(str(output_path))
    values = measured.get_values()
    return {
        "median_s": measured.median(),
        "stdev_s": measured.stdev() if len(values) > 1 else 0.0,
        "values": len(values),
        "pyperf_json": str(output_path),
        "wall_s": elapsed,
    }


def run_probe(python, script, benchmark, configuration, iterations, seconds, timeout, output_path):
    """Run the workload once in a single process; returns the probe's JSON as a dict."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        python,
        str(PROBE_SCRIPT),
        "--out", str(output_path),
        "--iterations", str(iterations),
        "--seconds", str(seconds),
        str(script),
        *benchmark.args,
    ]
    error = _run(command, environment_for(configuration), timeout)
    if error is not None:
        return {"error": error}
    with open(output_path) as f:
        return json.load(f)


def progress(message):
    """One line of progress on stderr, so stdout stays the report alone."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
