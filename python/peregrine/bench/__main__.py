"""``python -m peregrine.bench``: run the benchmark suite in every JIT configuration and report.

Quick run by default (a subset, short pyperf runs: under five minutes on two cores); ``--full`` for
the whole suite with more worker processes. See docs/benchmarks.md.
"""

import argparse
import dataclasses
import datetime
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

from . import report
from .runner import FULL, QUICK, Settings, progress, run_probe, run_pyperf
from .suite import (
    ALL_BENCHMARKS,
    CONFIGURATIONS,
    REFERENCE,
    find_workloads_dir,
    pyperformance_benchmarks_dir,
    script_path,
    threshold_configuration,
)

PIP_COMMAND = f"{Path(sys.executable).name} -m pip install pyperf pyperformance matplotlib"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m peregrine.bench",
        description="Benchmark Peregrine against stock CPython in every JIT configuration.",
    )
    parser.add_argument("--full", action="store_true", help="the full run: every benchmark, 8 worker processes each")
    parser.add_argument("--out", default="bench-results", help="output directory (default: %(default)s)")
    parser.add_argument("--benchmarks", help="comma-separated benchmark names (default: the mode's set)")
    parser.add_argument("--configs", help="comma-separated configuration names (default: all; stock is always run)")
    parser.add_argument("--workloads", help="directory of our own workloads (default: find benches/workloads/)")
    parser.add_argument("--processes", type=int, help="override pyperf worker processes per benchmark")
    parser.add_argument("--values", type=int, help="override pyperf values per worker process")
    parser.add_argument(
        "--baseline-thresholds",
        help="comma-separated baseline thresholds: one configuration baseline@N per threshold "
        "(optimizer off), for sweeping the default (docs/thresholds.md)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up runs and chart")
    parser.add_argument("--list", action="store_true", help="list benchmarks and configurations, then exit")
    return parser


def _split(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def select(options, parser_error):
    """The benchmarks and configurations to run, checked against what exists."""
    known = {b.name: b for b in ALL_BENCHMARKS}
    if options.benchmarks:
        unknown = [n for n in _split(options.benchmarks) if n not in known]
        if unknown:
            parser_error(f"unknown benchmark(s): {', '.join(unknown)} (see --list)")
        benchmarks = [known[n] for n in _split(options.benchmarks)]
    else:
        benchmarks = [b for b in ALL_BENCHMARKS if options.full or b.quick]

    configurations = CONFIGURATIONS
    if options.configs:
        by_name = {c.name: c for c in CONFIGURATIONS}
        unknown = [n for n in _split(options.configs) if n not in by_name]
        if unknown:
            parser_error(f"unknown configuration(s): {', '.join(unknown)} (see --list)")
        wanted = {REFERENCE, *_split(options.configs)}  # every ratio is against stock
        configurations = [c for c in CONFIGURATIONS if c.name in wanted]
    if options.baseline_thresholds:
        sweep = []
        for text in _split(options.baseline_thresholds):
            if not text.isdigit():
                parser_error(f"--baseline-thresholds: {text!r} is not a non-negative integer")
            sweep.append(threshold_configuration(int(text)))
        if not options.configs:
            configurations = [c for c in CONFIGURATIONS if c.name == REFERENCE]
        configurations = configurations + sweep
    return benchmarks, configurations



def list_suite():
    print("configurations:")
    for c in CONFIGURATIONS:
        env = " ".join(f"{k}={v}" for k, v in c.env.items()) or "(PEREGRINE unset)"
        print(f"  {c.name:<11} {c.description}\n  {'':<11} {env}")
    print("\nbenchmarks (Q: in the quick run, W: in the warm-up chart):")
    for b in ALL_BENCHMARKS:
        flags = ("Q" if b.quick else "-") + ("W" if b.warmup else "-")
        print(f"  {flags} {b.name:<20} {b.source:<14} {b.category}")


def missing_module_message(modules, consequence):
    return f"{', '.join(modules)} not installed: {consequence}. Install with: {PIP_COMMAND}"


@dataclasses.dataclass
class Measurements:
    """Everything one session measured, keyed by benchmark name then configuration name."""

    results: dict = dataclasses.field(default_factory=dict)  # pyperf: median, stdev, or error
    jit_stats: dict = dataclasses.field(default_factory=dict)  # peregrine.stats() from the probe
    warmup: dict = dataclasses.field(default_factory=dict)  # probe output for warm-up benchmarks
    probe_failures: dict = dataclasses.field(default_factory=dict)
    interrupted: bool = False
    duration_s: float = 0.0


def check_dependencies(options):
    """Report missing optional pieces; returns (pyperformance dir, workloads dir, matplotlib?) or
    None when nothing can run at all."""
    if importlib.util.find_spec("pyperf") is None:
        progress("peregrine.bench: " + missing_module_message(["pyperf"], "cannot run any benchmark"))
        return None
    have_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if not have_matplotlib:
        progress("peregrine.bench: " + missing_module_message(["matplotlib"], "no PNG charts this time"))
    pyperformance_dir = pyperformance_benchmarks_dir()
    if pyperformance_dir is None:
        progress("peregrine.bench: " + missing_module_message(["pyperformance"], "skipping its benchmarks"))
    workloads_dir = find_workloads_dir(options.workloads)
    if workloads_dir is None:
        progress(
            "peregrine.bench: benches/workloads/ not found: skipping our own workloads "
            "(run from the repository checkout or pass --workloads DIR)"
        )
    return pyperformance_dir, workloads_dir, have_matplotlib


def measure(benchmarks, scripts, configurations, settings, out, with_warmup):
    """Run every benchmark in every configuration: pyperf, then the probe."""
    measured = Measurements()
    started = time.perf_counter()
    total = len(benchmarks) * len(configurations)
    done = 0
    try:
        # Benchmark-major order: the configurations of one benchmark run back to back, so a change
        # in machine load during the session shifts all of them rather than skewing one.
        for benchmark in benchmarks:
            script = scripts[benchmark.name]
            for configuration in configurations:
                done += 1
                result = run_pyperf(
                    sys.executable, script, benchmark, configuration, settings,
                    out / "pyperf" / configuration.name / f"{benchmark.name}.json",
                )
                measured.results.setdefault(benchmark.name, {})[configuration.name] = result
                progress(
                    f"[{done}/{total}] {benchmark.name:<20} {configuration.name:<11} "
                    + _describe(measured.results, benchmark.name, configuration.name)
                )

                wants_warmup = benchmark.warmup and with_warmup
                if not configuration.jit and not wants_warmup:
                    continue  # stock has no JIT statistics to collect
                probe = run_probe(
                    sys.executable, script, benchmark, configuration,
                    iterations=settings.warmup_iterations if wants_warmup else 1,
                    seconds=0.0 if wants_warmup else settings.probe_seconds,
                    timeout=settings.timeout,
                    output_path=out / "probe" / configuration.name / f"{benchmark.name}.json",
                )
                if configuration.jit and "error" not in probe and not probe["jit_enabled"]:
                    # The environment did not switch the JIT on (a broken install, say): the
                    # pyperf numbers for this configuration are stock numbers in disguise.
                    probe = {"error": "the JIT was not enabled in the process; check the peregrine install"}
                if "error" in probe:
                    measured.probe_failures.setdefault(benchmark.name, {})[configuration.name] = probe["error"]
                    progress(f"    probe failed: {probe['error']}")
                    continue
                if probe.get("stats") is not None:
                    measured.jit_stats.setdefault(benchmark.name, {})[configuration.name] = probe["stats"]
                if wants_warmup:
                    measured.warmup.setdefault(benchmark.name, {})[configuration.name] = probe
    except KeyboardInterrupt:
        measured.interrupted = True
        progress("peregrine.bench: interrupted; reporting what has been measured so far")
    measured.duration_s = time.perf_counter() - started
    return measured


def render_text(title, measured, bench_names, configurations, summary, totals, skipped):
    """The terminal report (also saved as report.txt)."""
    config_names = [c.name for c in configurations]
    lines = [title, ""]
    lines += report.timing_table(measured.results, bench_names, config_names, summary)
    lines += ["", "Cells: median ± relative standard deviation, then speedup vs stock (>1.00x = faster).", ""]
    lines += ["JIT compilation, summed over each benchmark's single-process probe run:"]
    lines += report.compile_table(totals)
    problems = report.failures(measured.results) + [
        f"  {b} [{c}] probe: {error}" for b, by_config in measured.probe_failures.items() for c, error in by_config.items()
    ]
    if problems:
        lines += ["", "Failed runs:", *problems]
    if skipped:
        lines += ["", "Skipped:", *(f"  {s['benchmark']}: {s['reason']}" for s in skipped)]
    minutes, seconds = divmod(round(measured.duration_s), 60)
    lines += ["", f"Total time {minutes} min {seconds} s" + (" (interrupted)" if measured.interrupted else "")]
    return "\n".join(lines)


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.list:
        list_suite()
        return 0
    found = check_dependencies(options)
    if found is None:
        return 1
    pyperformance_dir, workloads_dir, have_matplotlib = found

    benchmarks, configurations = select(options, parser.error)
    scripts, skipped = {}, []
    for benchmark in benchmarks:
        path = script_path(benchmark, pyperformance_dir, workloads_dir)
        if path is None:
            skipped.append({"benchmark": benchmark.name, "reason": f"{benchmark.source} script not found"})
        else:
            scripts[benchmark.name] = path
    benchmarks = [b for b in benchmarks if b.name in scripts]
    if not benchmarks:
        progress("peregrine.bench: nothing to run")
        return 1

    mode = "full" if options.full else "quick"
    settings: Settings = FULL if options.full else QUICK
    overrides = {k: getattr(options, k) for k in ("processes", "values") if getattr(options, k) is not None}
    settings = dataclasses.replace(settings, **overrides)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    progress(
        f"peregrine.bench: {mode} run, {len(benchmarks)} benchmarks x {len(configurations)} configurations, "
        f"pyperf {settings.processes} processes x {settings.values} values; results in {out}/"
    )

    measured = measure(benchmarks, scripts, configurations, settings, out, with_warmup=not options.no_warmup)

    bench_names = [b.name for b in benchmarks]
    config_names = [c.name for c in configurations]
    summary = report.summarize(measured.results, bench_names, config_names)
    totals = report.compile_totals(measured.jit_stats, [c.name for c in configurations if c.jit])
    title = f"Peregrine vs stock CPython {platform.python_version()} ({mode} run)"
    text = render_text(title, measured, bench_names, configurations, summary, totals, skipped)
    print(text)
    (out / "report.txt").write_text(text + "\n")

    charts = {}
    if have_matplotlib:
        from . import chart

        charts["speedup"] = str(out / "speedup.png")
        chart.speedup_chart(measured.results, bench_names, config_names, summary, charts["speedup"], title)
        if measured.warmup:
            charts["warmup"] = str(out / "warmup.png")
            warmup_title = f"Warm-up, one process per configuration ({mode} run)"
            chart.warmup_chart(measured.warmup, config_names, charts["warmup"], warmup_title)

    document = {
        "title": title,
        "mode": mode,
        "interrupted": measured.interrupted,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version,
        "platform": platform.platform(),
        "duration_s": measured.duration_s,
        "settings": dataclasses.asdict(settings),
        "configurations": [{"name": c.name, "description": c.description, "env": c.env} for c in configurations],
        "benchmarks": [
            {"name": b.name, "source": b.source, "category": b.category, "script": str(scripts[b.name])}
            for b in benchmarks
        ],
        "skipped": skipped,
        "results": {
            b: {c: {**r, "speedup": report.speedup(measured.results, b, c)} for c, r in by_config.items()}
            for b, by_config in measured.results.items()
        },
        "summary": summary,
        "compile_totals": totals,
        "jit_stats": measured.jit_stats,
        "probe_failures": measured.probe_failures,
        "warmup": measured.warmup,
        "charts": charts,
    }
    with open(out / "results.json", "w") as f:
        json.dump(document, f, indent=1)
    written = [f"{out}/report.txt", f"{out}/results.json", *charts.values()]
    progress(f"peregrine.bench: wrote {', '.join(written)}")
    return 130 if measured.interrupted else 0


def _describe(results, benchmark, config):
    """The progress line's result: time, speedup so far, and how long the pyperf run took."""
    measured = results[benchmark][config]
    if "error" in measured:
        return f"FAILED: {measured['error']}"
    ratio = report.speedup(results, benchmark, config)
    text = report.format_time(measured["median_s"])
    if ratio is not None and config != REFERENCE:
        text += f" ({ratio:.2f}x)"
    return text + f"  [{measured['wall_s']:.1f} s]"


if __name__ == "__main__":
    sys.exit(main())
