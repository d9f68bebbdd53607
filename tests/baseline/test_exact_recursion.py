"""The recursion depth at which RecursionError is raised, where it depends on which C calls count
a recursion level: ceval's combined compare-and-jump instructions (warm code), IMPORT_NAME's
direct import when `__import__` is the original, and the warm-up of code that creates
generators. Each case returns what it observed (the deepest recursion that completed under a
limit set just above the caller, or the depth a callback saw); run_both compares it with stock.
"""

import sys

import _testinternalcapi
import pytest

from difftest import run_both

_depth_now = _testinternalcapi.get_recursion_depth


def _deepest(rec, arg):
    """The largest n for which `rec(arg(n))` completes with the recursion limit 40 levels above
    the caller: where the limit is hit depends on every level the recursion counts."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth_now() + 40)
    try:
        n = 0
        while n < 100:
            try:
                rec(arg(n + 1))
            except RecursionError:
                break
            n += 1
        return n
    finally:
        sys.setrecursionlimit(old)


# --- COMPARE_OP followed by a conditional jump --------------------------------------------------
# Warm stock code runs COMPARE_OP_{INT,FLOAT,STR}_JUMP there, which compares without
# PyObject_RichCompare and so counts no level "in comparison"; everywhere else the generic
# compare counts one.

def deepest_int_eq_jump():
    def rec(n):
        if n == 0:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_int_lt_jump():
    def rec(n):
        if n < 1:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_int_backward_jump():
    def rec(n):
        i = 0
        while i < 1:  # the condition at the loop's bottom is a backward compare-and-jump
            i += 1
        if n <= 0:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_float_jump():
    def rec(x):
        if x <= 0.0:
            return 0
        return rec(x - 1.0) + 1
    return _deepest(rec, float)


def deepest_str_eq_jump():
    def rec(s):
        if s == "":
            return 0
        return rec(s[1:]) + 1
    return _deepest(rec, lambda n: "x" * n)


def deepest_str_ne_jump():
    def rec(s):
        if s != "":
            return rec(s[1:]) + 1
        return 0
    return _deepest(rec, lambda n: "x" * n)


# Not specialized by ceval, so counted by both: the compiled code must not take a shortcut.

def deepest_str_ordering():  # only == and != of strs combine
    def rec(s):
        if s <= "":
            return 0
        return rec(s[1:]) + 1
    return _deepest(rec, lambda n: "x" * n)


def deepest_compare_not_jumped_on():
    def rec(n):
        done = n == 0
        if done:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_big_int():
    big = 10 ** 30

    def rec(n):
        if n == big:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, lambda n: big + n)


def deepest_mixed_int_float():
    def rec(n):
        if n == 0.0:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_nan():
    nan = float("nan")

    def rec(n, x):
        if x == nan:  # never true, and a NaN operand makes the combined form bail out
            return 0
        if n == 0:
            return 0
        return rec(n - 1, x) + 1
    return _deepest(lambda n: rec(n, 1.0), int)


def deepest_str_subclass():
    class S(str):
        pass

    def rec(s):
        if s == S(""):
            return 0
        return rec(s[1:]) + 1
    return _deepest(rec, lambda n: "x" * n)


# --- IMPORT_NAME --------------------------------------------------------------------------------
# With the original `builtins.__import__`, ceval calls PyImport_ImportModuleLevelObject directly
# (no level); an `__import__` of the user's own is called, and a builtin call counts a level.

def deepest_import():
    def rec(n):
        import sys as _s  # noqa: F401
        if not n:
            return 0
        return rec(n - 1) + 1
    return _deepest(rec, int)


def deepest_import_overridden():
    import builtins

    original = builtins.__import__

    def rec(n):
        import sys as _s  # noqa: F401
        if not n:
            return 0
        return rec(n - 1) + 1
    builtins.__import__ = lambda *a, **k: original(*a, **k)
    try:
        return _deepest(rec, int)
    finally:
        builtins.__import__ = original


@pytest.mark.parametrize("case", [
    deepest_int_eq_jump, deepest_int_lt_jump, deepest_int_backward_jump, deepest_float_jump,
    deepest_str_eq_jump, deepest_str_ne_jump, deepest_str_ordering, deepest_compare_not_jumped_on,
    deepest_big_int, deepest_mixed_int_float, deepest_nan, deepest_str_subclass,
    deepest_import, deepest_import_overridden,
], ids=lambda f: f.__name__.removeprefix("deepest_"))
def test_deepest_recursion_is_the_interpreters(case):
    out = run_both(case)
    assert out.kind == "return" and 10 < out.value < 40, out


# --- Warm-up of code that creates generators ------------------------------------------------------
# ceval counts a code object's warm-up at RESUME, which creating a generator does not run (its
# first instruction is RETURN_GENERATOR); each send does. Warm code calls `len` directly
# (PRECALL_NO_KW_LEN, no level for the C call), cold code through the generic call (one level).
# The depth __len__ sees, per generator run, shows where each tier thinks warm-up ends.

class _Sized:
    seen = None

    def __len__(self):
        _Sized.seen = _depth_now()
        return 1


def depths_in_fresh_generators():
    def gen(p):
        len(p)
        yield _Sized.seen

    p, out = _Sized(), []
    for _ in range(12):
        d = _depth_now()
        out.append(next(gen(p)) - d)
    return out


def depths_in_resumed_generator():
    def gen(p):
        while True:
            len(p)
            yield _Sized.seen

    p, out = _Sized(), []
    g = gen(p)
    for _ in range(12):
        d = _depth_now()
        out.append(next(g) - d)
    return out


def depths_in_generator_resumed_by_for():
    # FOR_ITER resumes a compiled generator directly (jit::direct_resume): each resumption is
    # still one warm-up step, counted before the frame runs.
    def gen(p):
        while True:
            len(p)
            yield _Sized.seen

    p, out = _Sized(), []
    d = _depth_now()
    for seen in gen(p):
        out.append(seen - d)
        if len(out) == 12:
            break
    return out


def depths_in_straight_generator_resumed_by_for():
    # No loop in the generator: resumptions alone move its warm-up (no backward jumps hide an
    # entry counted late).
    def gen(p):
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen
        len(p)
        yield _Sized.seen

    p, out = _Sized(), []
    d = _depth_now()
    for seen in gen(p):
        out.append(seen - d)
    return out


def depths_in_generators_created_by_direct_calls():
    def gen(p):
        len(p)
        yield _Sized.seen

    p, out = _Sized(), []
    for _ in range(12):
        d = _depth_now()
        for seen in gen(p):  # created by a direct call, run by FOR_ITER
            out.append(seen - d)
    return out


@pytest.mark.parametrize("case", [depths_in_fresh_generators, depths_in_resumed_generator,
                                  depths_in_generator_resumed_by_for,
                                  depths_in_straight_generator_resumed_by_for,
                                  depths_in_generators_created_by_direct_calls],
                         ids=["fresh", "resumed", "resumed-by-for", "straight-resumed-by-for",
                              "created-directly"])
def test_generator_warm_up_is_the_interpreters(case):
    out = run_both(case)
    assert out.kind == "return"
    # Stock goes from counting the C call (cold) to not counting it (warm) along the way.
    assert len(set(out.value)) >= 2, out.value
