"""Integer arithmetic in tight loops: a prime sieve, Collatz chain lengths and Euclid's gcd.

Peregrine workload: plain ``for``/``while`` loops over small ints, the code a JIT's integer fast
paths (unboxed add/compare, range iteration) should speed up most.
"""

import pyperf


def sieve(limit):
    """Count the primes below ``limit`` with the sieve of Eratosthenes."""
    is_prime = [True] * limit
    is_prime[0] = is_prime[1] = False
    i = 2
    while i * i < limit:
        if is_prime[i]:
            for multiple in range(i * i, limit, i):
                is_prime[multiple] = False
        i += 1
    count = 0
    for flag in is_prime:
        if flag:
            count += 1
    return count


def longest_collatz(limit):
    """The start below ``limit`` with the longest Collatz chain, and that chain's length."""
    best_start, best_length = 1, 1
    for start in range(1, limit):
        n, length = start, 1
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            length += 1
        if length > best_length:
            best_start, best_length = start, length
    return best_start, best_length


def gcd_sum(limit):
    """The sum of gcd(a, b) over a small grid, written out as Euclid's loop."""
    total = 0
    for a in range(1, limit):
        for b in range(1, limit):
            x, y = a, b
            while y:
                x, y = y, x % y
            total += x
    return total


def run():
    assert sieve(60_000) == 6_057
    assert longest_collatz(6_000) == (3_711, 238)
    total = gcd_sum(110)
    assert total == 36_893, total
    return total


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Integer loops: sieve, Collatz, gcd"
    runner.bench_func("int_loops", run)
