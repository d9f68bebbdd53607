"""Recursion: deep recursion that fits, and RecursionError with a small recursion limit (the
depth at which it happens, its message and the traceback must match the interpreter's)."""

import sys

import pytest

from difftest import run_both


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def test_deep_recursion_fits():
    def f():
        return fact(400) % 1000007, fib(15)

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 2000))
    try:
        run_both(f)
    finally:
        sys.setrecursionlimit(old)


def _depth():
    f, n = sys._getframe(), 0
    while f is not None:
        n, f = n + 1, f.f_back
    return n


def forever(n):
    return forever(n + 1) + 1


def mutual_a(n):
    return mutual_b(n + 1)


def mutual_b(n):
    return [mutual_a(n)]


def count_depth(n):
    try:
        return count_depth(n + 1)
    except RecursionError:
        return n


@pytest.mark.parametrize("entry", [forever, mutual_a], ids=["self", "mutual"])
def test_recursion_error_small_limit(entry):
    def f():
        return entry(0)

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + 60)
    try:
        out = run_both(f)
    finally:
        sys.setrecursionlimit(old)
    assert out.kind == "raise" and out.value[0] == "RecursionError"


def test_recursion_depth_reached_is_the_same():
    def f():
        return count_depth(0)

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + 80)
    try:
        run_both(f)
    finally:
        sys.setrecursionlimit(old)


def test_recursion_through_builtin_call():
    def rec(n):
        return list(map(rec, [n + 1]))  # C frames in between

    def f():
        return rec(0)

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + 60)
    try:
        run_both(f)
    finally:
        sys.setrecursionlimit(old)
