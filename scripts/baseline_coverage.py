#!/usr/bin/env python3
"""How much of the standard library the baseline tier compiles, why it refuses the rest, and
what compiling costs.

For every .py file under the stdlib (sysconfig.get_paths()["stdlib"], site-packages excluded;
files that don't compile are skipped) the source is compiled, every code object is visited
(recursively through co_consts) and handed to `peregrine.compile(code, tier="baseline")`.
Refusals (peregrine.CompileError) are ranked by the reason part of their message. For each
compiled code object the deltas of stats()["baseline"]["compile_ns"] and ["code_bytes"] give the
compile time and the machine-code size per bytecode instruction (instructions counted with
dis.get_instructions, so CACHE entries are not counted).

    PYTHONPATH=python python3 scripts/baseline_coverage.py [--json PATH] [--limit N]

Compiled code objects are dropped right after their measurement (their space in the code arena
is reused).
"""

import argparse
import collections
import dis
import json
import os
import re
import statistics
import sys
import sysconfig
import time
import types
import warnings

import peregrine


def stdlib_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__"))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def code_objects(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from code_objects(c)


_REASON = re.compile(r"^the baseline tier cannot compile .*?\(.*?\): (.*)$", re.S)


def reason_of(message):
    """The reason part of a CompileError message ("... cannot compile NAME (FILE:LINE): REASON")."""
    m = _REASON.match(message)
    return (m.group(1) if m else message).strip()


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--limit", type=int, help="only the first N files (for a quick look)")
    ap.add_argument("--top", type=int, default=25, help="refusal reasons to list (default 25)")
    args = ap.parse_args()

    root = sysconfig.get_paths()["stdlib"]
    files = list(stdlib_files(root))
    if args.limit:
        files = files[: args.limit]

    n_files = skipped = 0
    n_code = n_compiled = 0
    reasons = collections.Counter()
    refused_by_kind = collections.Counter()
    ns_per_instr, bytes_per_instr = [], []
    total_ns = total_bytes = total_instr = 0
    started = time.monotonic()
    warnings.simplefilter("ignore")
    for path in files:
        try:
            with open(path, "rb") as f:
                source = f.read()
            top = compile(source, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
            skipped += 1
            continue
        n_files += 1
        for code in code_objects(top):
            n_code += 1
            before = peregrine.stats()["baseline"]
            try:
                peregrine.compile(code, tier="baseline")
            except peregrine.CompileError as e:
                reasons[reason_of(str(e))] += 1
                if code.co_flags & (0x20 | 0x80 | 0x100 | 0x200):  # generator/coroutine kinds
                    refused_by_kind["generator/coroutine"] += 1
                elif code.co_name == "<module>":
                    refused_by_kind["module body"] += 1
                elif code.co_name.startswith("<") and code.co_name.endswith("comp>"):
                    refused_by_kind["comprehension"] += 1
                else:
                    refused_by_kind["function/class body"] += 1
                continue
            after = peregrine.stats()["baseline"]
            n_compiled += 1
            ninstr = len(list(dis.get_instructions(code))) or 1
            dns = after["compile_ns"] - before["compile_ns"]
            dbytes = after["code_bytes"] - before["code_bytes"]
            total_ns += dns
            total_bytes += dbytes
            total_instr += ninstr
            ns_per_instr.append(dns / ninstr)
            bytes_per_instr.append(dbytes / ninstr)
        del top, code  # compiled code objects (and their mmaps) go away with the module's code

    elapsed = time.monotonic() - started
    share = 100 * n_compiled / n_code if n_code else 0.0
    lines = [
        f"Baseline coverage of the stdlib ({root}, Python {sys.version.split()[0]})",
        f"  files compiled by CPython:  {n_files} ({skipped} skipped: not compilable)",
        f"  code objects:               {n_code}",
        f"  compiled by the baseline:   {n_compiled} ({share:.1f}%)",
        f"  refused:                    {n_code - n_compiled} ({100 - share:.1f}%)",
        "  refused code objects by kind:",
    ]
    for kind, n in refused_by_kind.most_common():
        lines.append(f"    {n:>8}  {kind}")
    lines.append(f"  refusals by reason (top {args.top} of {len(reasons)}):")
    for reason, n in reasons.most_common(args.top):
        lines.append(f"    {n:>8}  {100 * n / n_code:5.1f}%  {reason}")
    lines += [
        "  compile cost per bytecode instruction (compiled code objects):",
        f"    ns/instr:    median {statistics.median(ns_per_instr) if ns_per_instr else float('nan'):8.1f}"
        f"   p95 {percentile(ns_per_instr, 95):8.1f}   overall {total_ns / max(total_instr, 1):8.1f}",
        f"    bytes/instr: median {statistics.median(bytes_per_instr) if bytes_per_instr else float('nan'):8.1f}"
        f"   p95 {percentile(bytes_per_instr, 95):8.1f}   overall {total_bytes / max(total_instr, 1):8.1f}",
        f"    total: {total_instr} instructions, {total_ns / 1e6:.1f} ms, {total_bytes / 1024:.0f} KiB of machine code",
        f"  (wall time of this survey: {elapsed:.1f} s)",
    ]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "stdlib": root,
                "python": sys.version,
                "files": n_files,
                "files_skipped": skipped,
                "code_objects": n_code,
                "compiled": n_compiled,
                "compiled_share": share / 100,
                "refused_by_kind": dict(refused_by_kind),
                "refusals_by_reason": dict(reasons.most_common()),
                "ns_per_instr": {"median": statistics.median(ns_per_instr) if ns_per_instr else None,
                                 "p95": percentile(ns_per_instr, 95),
                                 "overall": total_ns / max(total_instr, 1)},
                "bytes_per_instr": {"median": statistics.median(bytes_per_instr) if bytes_per_instr else None,
                                    "p95": percentile(bytes_per_instr, 95),
                                    "overall": total_bytes / max(total_instr, 1)},
                "instructions": total_instr,
                "compile_ns": total_ns,
                "code_bytes": total_bytes,
            }, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
