"""Peregrine's benchmark harness: ``python -m peregrine.bench`` (quick) or ``--full``.

Runs pyperformance's classic benchmarks and our own workloads (benches/workloads/) under stock
CPython and under each JIT configuration, then writes a table, JSON and PNG charts. Modules:

* ``suite``: the configurations and the benchmark list;
* ``runner``: pyperf runs and single-process probe runs (``probe.py``, run by path);
* ``report``: speedups, geometric means, the text tables;
* ``chart``: the speedup and warm-up PNGs;
* ``__main__``: the command line.

docs/benchmarks.md explains how to run it and read the results.
"""
