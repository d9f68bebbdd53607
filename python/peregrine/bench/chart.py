"""PNG charts with matplotlib's Agg backend (no display needed): speedup per benchmark, and warm-up.

The speedup chart uses horizontal grouped bars so that benchmark names stay readable however many
there are, and a log scale so that 2x faster and 2x slower are the same distance from 1x.
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot loads
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from .report import speedup  # noqa: E402
from .suite import REFERENCE  # noqa: E402

# One colour per configuration, shared by both charts; stock is black in the warm-up chart.
COLOURS = {
    "stock": "#000000",
    "hook": "#9e9e9e",
    "baseline": "#1f77b4",
    "tiered": "#2ca02c",
    "opt-forced": "#d62728",
}

# Speedup ticks people read at a glance (matplotlib's log locator would give only powers of 2).
READABLE_TICKS = [0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 4, 5, 10, 20, 50, 100]


def _colour(config, index):
    return COLOURS.get(config, plt.get_cmap("tab10")(index % 10))


def speedup_chart(results, benchmark_names, configuration_names, summary, path, title):
    """Grouped horizontal bars: speedup vs stock for every benchmark, plus the geometric mean."""
    compared = [c for c in configuration_names if c != REFERENCE]
    rows = [*benchmark_names, "geometric mean"]
    bar_height = 0.8 / max(len(compared), 1)
    fig, ax = plt.subplots(figsize=(11, 1.6 + len(rows) * (0.1 + 0.14 * max(len(compared), 1))))
    all_values = []
    for index, config in enumerate(compared):
        values = [speedup(results, b, config) for b in benchmark_names]
        values.append(summary.get(config, {}).get("geomean_speedup"))
        # Failed runs get no bar; the table says FAILED for them.
        positions = [r + (index - (len(compared) - 1) / 2) * bar_height for r in range(len(rows))]
        shown = [(p, v) for p, v in zip(positions, values) if v is not None]
        if not shown:
            continue
        all_values += [v for _, v in shown]
        ax.barh(
            [p for p, _ in shown],
            [v - 1 for _, v in shown],
            left=1,
            height=bar_height,
            color=_colour(config, index),
            label=config,
        )
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    # Symmetric around 1x in log space, and never narrower than 0.5x..2x, so small differences
    # are not blown up into what looks like a large effect.
    extreme = max([2.0] + [max(v, 1 / v) for v in all_values if v > 0]) * 1.15
    ax.set_xlim(1 / extreme, extreme)
    ticks = [t for t in READABLE_TICKS if 1 / extreme <= t <= extreme]
    if extreme > 1.8:  # 0.9x and 1.1x would crowd the labels around 1x
        ticks = [t for t in ticks if t not in (0.9, 1.1)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.get_yticklabels()[-1].set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first benchmark at the top, geometric mean at the bottom
    for r in range(len(rows) - 1):
        ax.axhline(r + 0.5, color="#e0e0e0", linewidth=0.5)
    ax.set_xlabel("speedup vs stock CPython (log scale; right of 1x = faster)")
    ax.set_title(title)
    ax.grid(axis="x", which="major", color="#e0e0e0")
    if all_values:
        ax.legend(title="configuration", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def warmup_chart(warmup, configuration_names, path, title):
    """Time per iteration against iteration number, one panel per benchmark, one line per
    configuration; dashed (baseline) and dotted (optimizer) verticals mark the iteration after
    which that tier had first compiled something in that configuration."""
    benchmarks = list(warmup)
    columns = 2 if len(benchmarks) > 1 else 1
    panel_rows = math.ceil(len(benchmarks) / columns)
    fig, axes = plt.subplots(panel_rows, columns, figsize=(7 * columns, 4 * panel_rows), squeeze=False)
    for ax, benchmark in zip(axes.flat, benchmarks):
        compiled_any = False
        for index, config in enumerate(configuration_names):
            probe = warmup[benchmark].get(config)
            if not probe or "iteration_seconds" not in probe:
                continue
            times_ms = [s * 1e3 for s in probe["iteration_seconds"]]
            colour = _colour(config, index)
            ax.plot(range(1, len(times_ms) + 1), times_ms, color=colour, linewidth=1.2, label=config)
            for tier, style in (("baseline", "--"), ("optimized", ":")):
                iteration = (probe.get("first_compiled_at") or {}).get(tier)
                if iteration is not None:
                    compiled_any = True
                    ax.axvline(iteration, color=colour, linestyle=style, linewidth=1)
        ax.set_yscale("log")
        # Plain numbers: a narrow log range otherwise gets labels such as 3.8x10^1.
        for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.set_title(benchmark)
        ax.set_xlabel("iteration")
        ax.set_ylabel("time per iteration (ms, log scale)")
        ax.grid(color="#e0e0e0", which="both")
        if not compiled_any:
            ax.text(
                0.98, 0.97, "no tier compiled anything", transform=ax.transAxes, ha="right", va="top",
                fontsize=8, color="#555555",
            )
        ax.legend(fontsize=8, loc="upper left", ncol=2)
    for ax in list(axes.flat)[len(benchmarks):]:
        ax.set_visible(False)
    fig.suptitle(title + "\ndashed line: baseline tier first compiled; dotted: optimizer first compiled", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
