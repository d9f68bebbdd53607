"""Closures and higher-order functions: counters with ``nonlocal``, decorators, composed functions.

Peregrine workload: cell variables (LOAD_DEREF/STORE_DEREF), calls through function objects
created at run time, and functions passed as values, none of which the classic suite stresses.
"""

import functools

import pyperf


def make_counter(step):
    count = 0

    def increment():
        nonlocal count
        count += step
        return count

    return increment


def compose(*functions):
    def composed(x):
        for f in reversed(functions):
            x = f(x)
        return x

    return composed


def counting_calls(func):
    """A decorator that counts calls in a closure cell, as memoisation or tracing decorators do."""
    calls = 0

    @functools.wraps(func)
    def wrapper(*args):
        nonlocal calls
        calls += 1
        return func(*args)

    wrapper.call_count = lambda: calls
    return wrapper


@counting_calls
def scale(x):
    return x * 3


def make_adders(n):
    return [lambda x, k=k: x + k for k in range(n)]


def run():
    counters = [make_counter(step) for step in range(1, 11)]
    for _ in range(2_000):
        for counter in counters:
            counter()
    assert counters[-1]() == 20_010

    pipeline = compose(lambda x: x + 1, scale, lambda x: x - 2, abs)
    total = 0
    for i in range(20_000):
        total += pipeline(i)

    adders = make_adders(50)
    for i in range(400):
        for add in adders:
            total += add(i)
    assert total == 604_350_000, total
    return total


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Closures, nonlocal, decorators, function composition"
    runner.bench_func("closures", run)
