"""Peregrine: a JIT compiler for CPython 3.11.

Switch it on for a whole program with ``PEREGRINE=1``, run a script with ``python -m peregrine
script.py``, or call :func:`enable` yourself. See docs/api.md for every function.
"""

import os as _os
import sys as _sys

from ._peregrine import (
    CompileError,
    compile,
    disable,
    disassemble,
    enable,
    exit_reasons,
    exits,
    get_thresholds,
    is_enabled,
    profile,
    reset_stats,
    set_thresholds,
    stats,
    tier_of,
)
from ._peregrine import _startup_warnings

__all__ = [
    "CompileError",
    "compile",
    "disable",
    "dis",
    "disassemble",
    "enable",
    "exit_reasons",
    "exits",
    "format_stats",
    "get_thresholds",
    "is_enabled",
    "profile",
    "reset_stats",
    "set_thresholds",
    "stats",
    "tier_of",
]

_TIERS = ("interpreter", "baseline", "optimized")
_EXIT_GROUPS = (
    ("entry", "frames the interpreter ran instead of compiled code"),
    ("mid_frame", "frames compiled code handed to the interpreter mid-way"),
    ("other", "other exits"),
)


def format_stats(s=None):
    """A readable table of :func:`stats` (what ``PEREGRINE_STATS=1`` prints at exit)."""
    s = stats() if s is None else s
    total = sum(s[t]["entries"] for t in _TIERS) or 1
    lines = [
        "Peregrine tier statistics" + ("" if s["enabled"] else " (JIT currently disabled)"),
        f"  {'tier':<12} {'entries':>12} {'share':>7} {'compiled':>9} {'failed':>7} "
        f"{'compile ms':>11} {'code KiB':>9} {'deopts':>7}",
    ]
    for tier in _TIERS:
        t = s[tier]
        entries = t["entries"]
        if tier == "interpreter":
            extra = f"{'-':>9} {'-':>7} {'-':>11} {'-':>9} {'-':>7}"
        else:
            extra = (
                f"{t['compiled']:>9} {t['failed']:>7} {t['compile_ns'] / 1e6:>11.2f} "
                f"{t['code_bytes'] / 1024:>9.1f} {t['deopts']:>7}"
            )
        lines.append(f"  {tier:<12} {entries:>12} {100 * entries / total:>6.1f}% {extra}")
    # Both views of the exits: frames that never ran compiled code, and frames handed over
    # mid-way. A name this build does not declare (a snapshot from another version) is "other".
    when = {name: info["when"] for name, info in exit_reasons().items()}
    taken = {k: v for k, v in s["exits"].items() if v}
    for group, title in _EXIT_GROUPS:
        part = {k: v for k, v in taken.items() if when.get(k, "other") == group}
        if part:
            lines.append(f"  {title}, by reason:")
            for reason, n in sorted(part.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {reason:<28} {n:>12}")
    if s.get("exit_sites_dropped"):
        lines.append(f"  exits not recorded by site (site table full): {s['exit_sites_dropped']}")
    for tier, reasons in s["compile_failures"].items():
        if reasons:
            lines.append(f"  code objects the {tier} tier refused, by reason:")
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {n:>8}  {reason}")
    return "\n".join(lines)


def dis(func, *, file=None):
    """Prints the native code the baseline produced for `func`, each bytecode instruction's
    template under its offset and name (as `dis.dis` shows them). Raises ValueError if `func` has
    no baseline code yet."""
    (file or _sys.stdout).write(disassemble(func))


def _print_stats_at_exit():
    _sys.stderr.write(format_stats() + "\n")


def _configure_from_environment():
    for warning in _startup_warnings:
        _sys.stderr.write(f"peregrine: {warning}\n")
    value = _os.environ.get("PEREGRINE_STATS")
    if value == "1":
        import atexit

        atexit.register(_print_stats_at_exit)
    elif value not in (None, "0"):
        _sys.stderr.write(f"peregrine: ignoring PEREGRINE_STATS={value!r}: use 1 to print statistics at exit\n")


_configure_from_environment()
