"""Turning raw measurements into the report: speedups, summaries and the terminal tables.

Speedup is ``stock median / configuration median``: above 1.00x the configuration is faster than
stock CPython, below it slower. The same number is used in the table, the JSON and the chart.
"""

import math

from .suite import REFERENCE

TIERS = ("baseline", "optimized")


def speedup(results, benchmark, configuration):
    """Stock time over this configuration's time, or None if either run failed."""
    reference = results.get(benchmark, {}).get(REFERENCE, {})
    measured = results.get(benchmark, {}).get(configuration, {})
    if "median_s" not in reference or "median_s" not in measured or measured["median_s"] <= 0:
        return None
    return reference["median_s"] / measured["median_s"]


def summarize(results, benchmark_names, configuration_names):
    """Per configuration: geometric mean, worst and best speedup over the benchmarks that ran."""
    summary = {}
    for config in configuration_names:
        speedups = {b: speedup(results, b, config) for b in benchmark_names}
        speedups = {b: s for b, s in speedups.items() if s is not None}
        if not speedups:
            summary[config] = {"geomean_speedup": None, "benchmarks": 0}
            continue
        worst = min(speedups, key=speedups.get)
        best = max(speedups, key=speedups.get)
        summary[config] = {
            "geomean_speedup": math.exp(sum(math.log(s) for s in speedups.values()) / len(speedups)),
            "worst": {"benchmark": worst, "speedup": speedups[worst]},
            "best": {"benchmark": best, "speedup": speedups[best]},
            "benchmarks": len(speedups),
        }
    return summary


def compile_totals(jit_stats, configuration_names):
    """Per configuration and tier: compiled/refused code objects, compile time and code size,
    summed over every benchmark's probe run."""
    totals = {}
    for config in configuration_names:
        per_tier = {}
        for tier in TIERS:
            entry = {"compiled": 0, "failed": 0, "compile_ms": 0.0, "code_kib": 0.0, "deopts": 0, "refusals": {}}
            for by_config in jit_stats.values():
                stats = by_config.get(config)
                if not stats:
                    continue
                tier_stats = stats[tier]
                entry["compiled"] += tier_stats["compiled"]
                entry["failed"] += tier_stats["failed"]
                entry["compile_ms"] += tier_stats["compile_ns"] / 1e6
                entry["code_kib"] += tier_stats["code_bytes"] / 1024
                entry["deopts"] += tier_stats["deopts"]
                for reason, n in stats["compile_failures"].get(tier, {}).items():
                    entry["refusals"][reason] = entry["refusals"].get(reason, 0) + n
            per_tier[tier] = entry
        totals[config] = per_tier
    return totals


def format_time(seconds):
    """Three significant digits in a unit that suits the value."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            break
    else:
        unit, scale = "ns", 1e-9
    value = seconds / scale
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {unit}"


def _cell(results, benchmark, config):
    measured = results.get(benchmark, {}).get(config)
    if measured is None:
        return "-"
    if "error" in measured:
        return "FAILED"
    spread = 100 * measured["stdev_s"] / measured["median_s"] if measured["median_s"] else 0.0
    text = f"{format_time(measured['median_s'])} ±{spread:.0f}%"
    if config == REFERENCE:
        return text
    ratio = speedup(results, benchmark, config)
    return f"{text} {ratio:.2f}x" if ratio is not None else f"{text}  n/a"


def _table(header, rows, text_columns=1):
    """Aligned columns: the first ``text_columns`` left-aligned (names), the rest right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i < text_columns else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def timing_table(results, benchmark_names, configuration_names, summary):
    """Median ± relative standard deviation per benchmark and configuration, with speedup vs stock."""
    header = ["benchmark", *configuration_names]
    rows = [[b, *(_cell(results, b, c) for c in configuration_names)] for b in benchmark_names]
    geomean_row, worst_row = ["geometric mean"], ["worst case"]
    for config in configuration_names:
        s = summary.get(config, {})
        if config == REFERENCE:
            geomean_row.append("1.00x")
            worst_row.append("")
        elif s.get("geomean_speedup") is None:
            geomean_row.append("n/a")
            worst_row.append("n/a")
        else:
            geomean_row.append(f"{s['geomean_speedup']:.2f}x")
            worst_row.append(f"{s['worst']['speedup']:.2f}x {s['worst']['benchmark']}")
    rows += [geomean_row, worst_row]
    return _table(header, rows)


def compile_table(totals):
    """Compiled code objects, compile time and code size per configuration and tier."""
    header = ["configuration", "tier", "compiled", "refused", "compile ms", "code KiB", "deopts"]
    rows, reasons = [], []
    for config, per_tier in totals.items():
        for tier, t in per_tier.items():
            reason = ""
            if t["refusals"]:
                top = max(t["refusals"], key=t["refusals"].get)
                reason = f"{t['refusals'][top]}x {top}"
            rows.append(
                [config, tier, t["compiled"], t["failed"], f"{t['compile_ms']:.2f}", f"{t['code_kib']:.1f}", t["deopts"]]
            )
            reasons.append(reason)
    # The refusal reason is free text of any length: appended after the aligned numeric columns.
    lines = _table(header, rows, text_columns=2)
    reason_header = "most common refusal"
    reason_column = [reason_header, "-" * len(reason_header), *reasons]
    return [f"{line}  {reason}".rstrip() for line, reason in zip(lines, reason_column)]


def failures(results):
    """One line per failed run, for the end of the report."""
    lines = []
    for benchmark, by_config in results.items():
        for config, measured in by_config.items():
            if "error" in measured:
                lines.append(f"  {benchmark} [{config}]: {measured['error']}")
    return lines
