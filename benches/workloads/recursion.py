"""Recursive functions: naive Fibonacci, Ackermann, and building and summing a binary tree.

Peregrine workload: deep call chains of small Python functions, so call overhead (frame setup,
argument passing, returns) dominates.
"""

import sys

import pyperf


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


def build_tree(depth):
    """A perfect binary tree of nested tuples (left, value, right)."""
    if depth == 0:
        return None
    return (build_tree(depth - 1), depth, build_tree(depth - 1))


def tree_sum(node):
    if node is None:
        return 0
    left, value, right = node
    return tree_sum(left) + value + tree_sum(right)


def run():
    total = fib(21)
    total += ackermann(2, 200)
    total += tree_sum(build_tree(12))
    assert total == 19_527, total
    return total


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    runner = pyperf.Runner()
    runner.metadata["description"] = "fib, Ackermann, recursive tree build and sum"
    runner.bench_func("recursion", run)
