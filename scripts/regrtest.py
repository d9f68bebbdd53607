#!/usr/bin/env python3
"""Runs CPython's regression-test modules under JIT configurations and compares them with stock.

Each module runs in its own `python3 -m test` process per configuration (two at a time by default),
so a crash or hang is pinned to one module. A module regresses when it passes on stock CPython and
fails under a configuration. Prints a Markdown table, writes it with --output, ends with the line
`regrtest: N passed, N failed` (failed = regressions) and exits non-zero on any regression.

    python3 scripts/regrtest.py --config hook test_generators test_sys
    python3 scripts/regrtest.py --config baseline --modules-file tests/regrtest_modules.txt
    python3 scripts/regrtest.py --config baseline --all -x test__xxsubinterpreters --output table.md

With --huntrleaks (`-m test -R`) under a debug interpreter (--python python3.11d with Peregrine
built for it, as scripts/test.sh sets up) it is the leak check: a module that leaks references or
memory blocks reads LEAK, one that crashes or fails a C assertion CRASH, and the summary line is
`leakcheck: N passed, N failed`.

    python3 scripts/regrtest.py --python build/debug-venv/bin/python --huntrleaks 3:3 \
        --config baseline --no-stock --modules-file tests/leakcheck_modules.txt
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys
import time

# What each configuration sets in the environment (PEREGRINE* variables are cleared first).
CONFIGS = {
    "stock": {},
    "hook": {"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "off", "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    "default": {"PEREGRINE": "1"},
    "baseline": {"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "0", "PEREGRINE_OPTIMIZE_THRESHOLD": "off"},
    "optimized": {"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "0", "PEREGRINE_OPTIMIZE_THRESHOLD": "0"},
}


# Test cases that fail on stock CPython on this machine for reasons outside CPython and Peregrine;
# ignored in every configuration alike so the module's other tests still count.
MACHINE_IGNORES = {
    # The sandbox's site-packages/_sandboxing_egress_ca.pth imports certifi (and with it threading)
    # at every start, even with -I; the test asserts threading is not imported yet.
    "test_threading": ["test_import_from_another_thread"],
}


# Test cases that observe the specializing interpreter's internal state rather than program
# behaviour; ignored under the JIT configurations only, and listed in every report.
JIT_IGNORES = {
    "test_dis": [
        # CPython 3.11 does not specialize calls to Python functions while any PEP 523 hook is
        # installed (the hook alone fails this), so the quickened disassembly differs.
        "test_loop_quicken",
        # Frames that run compiled never execute the interpreter's quickening/specialization, so
        # dis(adaptive=True) shows the unspecialized instructions.
        "test_load_attr_specialize",
        "test_binary_specialize",
        "test_call_specialize",
        "test_super_instructions",
        "test_show_caches",
    ],
}


def config_env(name):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEREGRINE")}
    env.update(CONFIGS[name])
    return env


# The interpreter the modules run on (--python); this script's own by default.
PYTHON = sys.executable


def check_config_is_live(name):
    """Fails fast if a JIT configuration would silently run without the JIT."""
    if name == "stock":
        return
    probe = subprocess.run(
        [PYTHON, "-c", "import peregrine, sys; sys.exit(0 if peregrine.is_enabled() else 1)"],
        env=config_env(name), capture_output=True, text=True,
    )
    if probe.returncode != 0:
        sys.exit(f"regrtest: configuration {name!r} does not enable the JIT: {probe.stderr.strip()}")


def run_module(module, config, timeout, huntrleaks=None):
    """Runs one test module; returns (status, seconds, tail of output)."""
    start = time.monotonic()
    try:
        patterns = MACHINE_IGNORES.get(module, []) + (JIT_IGNORES.get(module, []) if config != "stock" else [])
        ignores = [arg for pat in patterns for arg in ("-i", pat)]
        leaks = ["-R", huntrleaks] if huntrleaks else []
        proc = subprocess.run(
            [PYTHON, "-m", "test", "--timeout", str(timeout), *leaks, *ignores, module],
            env=config_env(config), capture_output=True, text=True, timeout=timeout + 60,
        )
        # "Result: SUCCESS" (3.11.7) or "Tests result: SUCCESS" (Debian's 3.11.2 debug build).
        ok = proc.returncode == 0 and "result: success" in proc.stdout.lower()
        status = "OK" if ok else f"FAIL({proc.returncode})"
        if ok and "Total test files: run=1/1 skipped=1" in proc.stdout:
            status = "SKIP"
        elif "Result: NO TESTS RAN" in proc.stdout and "resource_denied=1" in proc.stdout:
            status = "DENIED"  # needs a resource (-u gui, network, audio...) not enabled here
        elif proc.returncode < 0:
            # A signal: a segfault, or the abort of a failed C assertion or a fatal error (test
            # output may quote such messages, so the exit status decides, not the text).
            status = f"CRASH({proc.returncode})"
        elif " leaked [" in proc.stdout + proc.stderr:
            status = "LEAK"  # `-R`: references or memory blocks leaked in every repetition
        tail = (proc.stdout + proc.stderr)[-3000:]
    except subprocess.TimeoutExpired as exc:
        status, tail = "TIMEOUT", str(exc)
    return status, time.monotonic() - start, tail


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="test modules, e.g. test_generators")
    ap.add_argument("--modules-file", help="file with one module per line (# comments allowed)")
    ap.add_argument("--all", action="store_true",
                    help="every module of CPython's test suite (`python3 -m test --list-tests`)")
    ap.add_argument("-x", "--exclude", action="append", default=[], metavar="MODULE",
                    help="leave this module out (repeatable)")
    ap.add_argument("--config", action="append", choices=sorted(set(CONFIGS) - {"stock"}), required=True,
                    help="JIT configuration(s) to compare with stock")
    ap.add_argument("--no-stock", action="store_true",
                    help="skip the stock run and count any failure as a regression")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per module")
    ap.add_argument("--output", help="also write the Markdown table here")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter to run the modules on (default: this one)")
    ap.add_argument("-R", "--huntrleaks", metavar="WARMUPS:RUNS",
                    help="hunt reference and memory-block leaks (`python -m test -R`); needs a debug build")
    args = ap.parse_args()
    global PYTHON
    PYTHON = args.python

    modules = list(args.modules)
    if args.modules_file:
        with open(args.modules_file) as f:
            modules += [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
    if args.all:
        listed = subprocess.run([PYTHON, "-m", "test", "--list-tests"], capture_output=True,
                                text=True, check=True).stdout.split()
        modules += [m for m in listed if m not in modules]
    modules = [m for m in modules if m not in args.exclude]
    if not modules:
        ap.error("no test modules given")
    configs = ([] if args.no_stock else ["stock"]) + args.config
    for c in configs:
        check_config_is_live(c)

    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_module, m, c, args.timeout, args.huntrleaks): (m, c) for m in modules for c in configs}
        for fut in concurrent.futures.as_completed(futures):
            m, c = futures[fut]
            results[m, c] = fut.result()
            print(f"  {m:<32} {c:<10} {results[m, c][0]:<10} {results[m, c][1]:7.1f}s", flush=True)

    header = "| module | " + " | ".join(configs) + " |"
    rows = [header, "|" + "---|" * (len(configs) + 1)]
    passed = failed = 0
    regressions = []
    for m in modules:
        cells = [f"{results[m, c][0]} ({results[m, c][1]:.0f}s)" for c in configs]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
        stock_ok = args.no_stock or results[m, "stock"][0] in ("OK", "SKIP", "DENIED")
        for c in args.config:
            ok = results[m, c][0] in ("OK", "SKIP", "DENIED")
            if ok or not stock_ok:
                passed += 1
            else:
                failed += 1
                regressions.append((m, c))
    ignored = [f"{m}.{p} (machine)" for m in modules for p in MACHINE_IGNORES.get(m, [])]
    ignored += [f"{m}.{p} (JIT configurations only)" for m in modules for p in JIT_IGNORES.get(m, [])]
    if ignored:
        rows.append("")
        rows.append("Ignored test cases (see MACHINE_IGNORES and JIT_IGNORES in scripts/regrtest.py): "
                    + ", ".join(ignored))
    table = "\n".join(rows)
    print("\n" + table + "\n")
    for m, c in regressions:
        print(f"--- {m} under {c}:\n{results[m, c][2]}\n")
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")
    print(f"{'leakcheck' if args.huntrleaks else 'regrtest'}: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
