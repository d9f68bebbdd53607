"""What the harness measures: the JIT configurations and the benchmark suite.

Benchmarks come from two places. The classic set runs from the installed ``pyperformance``
package's own scripts (``data-files/benchmarks/bm_*/run_benchmark.py``), unmodified, so numbers
stay comparable with published pyperformance results. Our workloads, in ``benches/workloads/`` of
the repository, fill the gaps the classic set leaves (closures, string formatting, exceptions in
loops, ...). Both kinds are ordinary pyperf scripts and are run the same way.
"""

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

# Every variable the configurations set; all of them are cleared before a run so that nothing from
# the caller's environment (PEREGRINE_STATS, say) leaks into a measurement.
JIT_ENV_VARS = ("PEREGRINE", "PEREGRINE_BASELINE_THRESHOLD", "PEREGRINE_OPTIMIZE_THRESHOLD", "PEREGRINE_STATS")


@dataclass(frozen=True)
class Configuration:
    name: str
    description: str
    env: dict = field(default_factory=dict)

    @property
    def jit(self):
        return bool(self.env)


CONFIGURATIONS = [
    Configuration("stock", "stock CPython: PEREGRINE unset, the extension is never loaded"),
    Configuration(
        "hook",
        "frame hook only: every frame goes through Peregrine's hook and runs in the interpreter",
        {"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "off", "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    ),
    Configuration(
        "baseline",
        "baseline tier only (default threshold), optimizer off",
        {"PEREGRINE": "1", "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    ),
    Configuration("tiered", "baseline + optimizer at their default thresholds", {"PEREGRINE": "1"}),
    Configuration(
        "opt-forced",
        "optimizer compiles every code object on its first call",
        {"PEREGRINE": "1", "PEREGRINE_OPTIMIZE_THRESHOLD": "0"},
    ),
]

REFERENCE = "stock"


def threshold_configuration(threshold):
    """The baseline tier alone at `threshold` entries, for a threshold sweep."""
    return Configuration(
        f"baseline@{threshold}",
        f"baseline tier only, threshold {threshold}, optimizer off",
        {"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": str(threshold), "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    )


@dataclass(frozen=True)
class Benchmark:
    name: str
    source: str  # "pyperformance" or "peregrine"
    category: str
    # Part of the quick run. The quick subset keeps every category while staying under five
    # minutes for all five configurations on a two-core machine.
    quick: bool = False
    # Plotted in the warm-up chart: short iterations, so many fit in a few seconds.
    warmup: bool = False
    args: tuple = ()


# The reference set, by pyperformance's directory names (bm_<name>).
PYPERFORMANCE = [
    Benchmark("nbody", "pyperformance", "float loops", quick=True),
    Benchmark("spectral_norm", "pyperformance", "float loops", quick=True),
    Benchmark("float", "pyperformance", "float, objects", quick=True),
    Benchmark("fannkuch", "pyperformance", "int, lists"),
    Benchmark("nqueens", "pyperformance", "generators, sets", quick=True),
    Benchmark("richards", "pyperformance", "OO, method calls", quick=True, warmup=True),
    Benchmark("chaos", "pyperformance", "OO, float"),
    Benchmark("deltablue", "pyperformance", "OO, constraint solver", quick=True),
    Benchmark("go", "pyperformance", "whole program: game AI", quick=True),
    Benchmark("hexiom", "pyperformance", "whole program: puzzle solver"),
    Benchmark("raytrace", "pyperformance", "whole program: ray tracer"),
    Benchmark("generators", "pyperformance", "generators", quick=True),
    Benchmark("coroutines", "pyperformance", "coroutines, recursion", quick=True),
    Benchmark("unpack_sequence", "pyperformance", "tuple/list unpacking"),
    Benchmark("json_dumps", "pyperformance", "stdlib: json"),
    Benchmark("regex_v8", "pyperformance", "stdlib: re", quick=True),
    Benchmark("regex_effbot", "pyperformance", "stdlib: re"),
]

# Ours, by file name in benches/workloads/ (without .py).
WORKLOADS = [
    Benchmark("int_loops", "peregrine", "int loops", quick=True, warmup=True),
    Benchmark("closures", "peregrine", "closures, higher-order", quick=True),
    Benchmark("string_format", "peregrine", "string building, formatting", quick=True),
    Benchmark("dict_set_ops", "peregrine", "dict/list/set", quick=True),
    Benchmark("exceptions_loop", "peregrine", "exceptions in loops", quick=True),
    Benchmark("recursion", "peregrine", "recursion", quick=True),
    Benchmark("oo_methods", "peregrine", "OO, attributes, properties", quick=True),
    Benchmark("generator_pipeline", "peregrine", "generators", quick=True),
    Benchmark("stack_vm", "peregrine", "whole program: interpreter", quick=True, warmup=True),
    Benchmark("sudoku", "peregrine", "whole program: solver", quick=True),
    Benchmark("life_sim", "peregrine", "whole program: simulation", quick=True),
]

ALL_BENCHMARKS = PYPERFORMANCE + WORKLOADS


def pyperformance_benchmarks_dir():
    """The directory holding pyperformance's bm_* scripts, or None if pyperformance is missing."""
    spec = importlib.util.find_spec("pyperformance")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data-files" / "benchmarks"
    return path if path.is_dir() else None


def find_workloads_dir(explicit=None):
    """Where benches/workloads/ is: given explicitly, or found from the current directory upwards
    (the harness is normally run from a checkout), or next to this file in a source tree."""
    if explicit is not None:
        path = Path(explicit)
        return path if path.is_dir() else None
    cwd = Path(os.getcwd()).resolve()
    candidates = [parent / "benches" / "workloads" for parent in (cwd, *cwd.parents)]
    # python/peregrine/bench/suite.py -> repository root is three levels above the package.
    candidates.append(Path(__file__).resolve().parents[3] / "benches" / "workloads")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def script_path(benchmark, pyperformance_dir, workloads_dir):
    """The pyperf script to run for ``benchmark``, or None when its source is not available."""
    if benchmark.source == "pyperformance":
        if pyperformance_dir is None:
            return None
        path = pyperformance_dir / f"bm_{benchmark.name}" / "run_benchmark.py"
    else:
        if workloads_dir is None:
            return None
        path = workloads_dir / f"{benchmark.name}.py"
    return path if path.is_file() else None


def environment_for(configuration):
    """The process environment for one configuration: the caller's, minus any Peregrine
    variables, plus the configuration's own."""
    env = {k: v for k, v in os.environ.items() if k not in JIT_ENV_VARS}
    env.update(configuration.env)
    return env
