"""Recursion: deep recursion that fits, and RecursionError with a small recursion limit (the
depth at which it happens, its message and the traceback must match the interpreter's)."""

import sys

import pytest

from conftest import run_python
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


# --- Deep recursion under a raised recursion limit ---------------------------------------------
# With any PEP 523 hook every Python call nests on the C stack; past what the thread's stack holds
# the hook continues on fresh stack segments, so these programs behave as on stock CPython. Each
# runs in a subprocess, on stock and with every code object forced into the baseline, and must
# print the same and exit the same way.

# Deep enough to need more than the main thread's 8 MiB of C stack under the JIT (a direct call
# and its callee's frame take about 130 bytes of it per level), which stock CPython, inlining
# Python calls, does not use.
DEEP_SCRIPT = """
import sys
sys.setrecursionlimit(250000)
def r(n):
    if n == 0:
        return 0
    return r(n - 1) + 1
print(r(150000))
"""

DEEPER_SCRIPT = """
import sys
sys.setrecursionlimit(1000000)
def r(n):
    return 0 if n == 0 else r(n - 1) + 1
def down(n):  # calls through C code (map, list) and a method on the way
    return 0 if n == 0 else sum(map(down, [n - 1])) + 1
class A:
    def m(self, n):
        return 0 if n == 0 else self.m(n - 1) + 1
print(r(300000), down(10000), A().m(200000))
"""

INFINITE_SCRIPT = """
import sys
sys.setrecursionlimit(200000)
def r(n):
    return r(n + 1) + 1
try:
    r(0)
except RecursionError as e:
    print(type(e).__name__, e)
def depth(n):
    try:
        return depth(n + 1)
    except RecursionError:
        return n
d = depth(0)
print(d > 199000)
r(0)
"""

ACROSS_SEGMENTS_SCRIPT = """
import sys, traceback
sys.setrecursionlimit(300000)
def gen_at(n):  # a generator created deep, resumed at the top
    if n == 0:
        def g():
            x = yield 1
            yield x * 2
        return g()
    return gen_at(n - 1)
it = gen_at(100000)
print(next(it), it.send(21))
def fail_at(n):
    if n == 0:
        raise ValueError("deep")
    return fail_at(n - 1)
try:
    fail_at(120000)
except ValueError as e:
    print("caught", e, len(traceback.extract_tb(e.__traceback__)))
def consume(n, it):  # a generator created at the top, resumed deep
    return next(it) if n == 0 else consume(n - 1, it)
def count():
    i = 0
    while True:
        yield i
        i += 1
c = count()
print([consume(k, c) for k in (0, 90000, 5, 110000)])
"""

THREAD_SCRIPT = """
import sys, threading
sys.setrecursionlimit(100000)
threading.stack_size(256 * 1024)
def r(n):
    return 0 if n == 0 else r(n - 1) + 1
out = []
t = threading.Thread(target=lambda: out.append(r(50000)))
t.start(); t.join()
print(out)
"""


FORCED_BASELINE = dict(PEREGRINE="1", PEREGRINE_BASELINE_THRESHOLD="0", PEREGRINE_OPTIMIZE_THRESHOLD="off")


def _run(script, jit, extra=""):
    return run_python("-c", script + extra, env=FORCED_BASELINE if jit else None, timeout=300)


SEGMENTS_USED = """
import peregrine
print("segments used:", peregrine.stats()["stack_segments"] > 0)
"""


@pytest.mark.parametrize("script", [DEEP_SCRIPT, DEEPER_SCRIPT, ACROSS_SEGMENTS_SCRIPT, THREAD_SCRIPT],
                         ids=["deep", "deeper", "across_segments", "small_thread_stack"])
def test_deep_recursion_with_high_limit_runs_like_stock(script):
    stock = _run(script, jit=False)
    assert stock.returncode == 0, stock.stderr[-500:]
    jit = _run(script, jit=True, extra=SEGMENTS_USED)
    assert jit.returncode == 0, f"exit status {jit.returncode}: {jit.stderr[-500:]}"
    assert jit.stdout == stock.stdout + "segments used: True\n"
    assert jit.stderr == stock.stderr


def test_infinite_recursion_with_high_limit_ends_in_recursion_error_like_stock():
    stock = _run(INFINITE_SCRIPT, jit=False)
    jit = _run(INFINITE_SCRIPT, jit=True)
    assert stock.returncode == 1 and stock.stdout.splitlines() == [
        "RecursionError maximum recursion depth exceeded", "True"]
    assert (jit.returncode, jit.stdout) == (stock.returncode, stock.stdout), jit.stderr[-500:]
    assert jit.stderr.splitlines()[-1] == stock.stderr.splitlines()[-1]


def test_with_greenlet_loaded_deep_recursion_raises_instead_of_switching_stacks():
    # greenlet copies C stacks and assumes one contiguous stack per thread; stand in a module of
    # its name, as the hook only checks sys.modules.
    script = "import sys, types\nsys.modules['greenlet._greenlet'] = types.ModuleType('g')\n" + DEEP_SCRIPT
    jit = _run(script, jit=True)
    assert jit.returncode == 1, f"exit status {jit.returncode}: {jit.stderr[-500:]}"
    assert ("RecursionError: maximum recursion depth exceeded: the C stack is exhausted "
            "(greenlet is loaded and needs one contiguous stack)") in jit.stderr


# --- Recursion depth seen through calls of C functions -------------------------------------------
# Warm interpreter code calls some C functions directly (the specialized PRECALL forms: builtins
# with METH_FASTCALL flags, len, isinstance, str(x), FASTCALL methods of builtin types on their
# exact type) and counts no recursion level for the C call; the generic path, which cold code
# takes, counts one. The baseline must count as stock does, cold and warm:
# test_support.test_recursion depends on the warm depth,
# test_exceptions.test_recursion_normalizing_exception on the cold one. Each case loops (50
# iterations warm the interpreter's copy up) and returns the depth a Python callback saw,
# relative to its caller, on the last iteration.

import _testinternalcapi

_depth_now = _testinternalcapi.get_recursion_depth


class _Probe:
    seen = None

    def __init__(self, v=0):
        self.v = v

    def __getattr__(self, name):
        _Probe.seen = _depth_now()
        return 0

    def __len__(self):
        _Probe.seen = _depth_now()
        return 1

    def __str__(self):
        _Probe.seen = _depth_now()
        return "probe"

    def __lt__(self, other):
        _Probe.seen = _depth_now()
        return self.v < other.v

    def __eq__(self, other):
        _Probe.seen = _depth_now()
        return True

    __hash__ = object.__hash__


class _Meta(type):
    def __instancecheck__(cls, obj):
        _Probe.seen = _depth_now()
        return True


class _Checked(metaclass=_Meta):
    pass


class _SubList(list):
    pass


def _key(x):
    _Probe.seen = _depth_now()
    return 0


def depth_via_fastcall_builtin(n):  # getattr: METH_FASTCALL
    p, out = _Probe(), None
    for _ in range(n):
        getattr(p, "x")
        out = _Probe.seen - _depth_now()
    return out


def depth_via_fastcall_keywords_builtin_with_keywords(n):  # sorted(..., key=): FASTCALL|KEYWORDS
    out = None
    for _ in range(n):
        sorted([1], key=_key)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_fastcall_keywords_builtin_without_keywords(n):
    ps, out = [_Probe(2), _Probe(1)], None
    for _ in range(n):
        sorted(ps)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_len(n):
    p, out = _Probe(), None
    for _ in range(n):
        len(p)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_isinstance(n):
    out = None
    for _ in range(n):
        isinstance(1, _Checked)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_str(n):
    p, out = _Probe(), None
    for _ in range(n):
        str(p)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_fast(n):  # list.index: METH_FASTCALL
    lst, p, out = [_Probe()], _Probe(), None
    for _ in range(n):
        lst.index(p)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_fast_keywords(n):  # list.sort(): FASTCALL|KEYWORDS, no keywords
    lst, out = [_Probe(2), _Probe(1)], None
    for _ in range(n):
        lst.sort()
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_with_keywords(n):  # not specialized: keywords
    lst, out = [1, 2], None
    for _ in range(n):
        lst.sort(key=_key)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_o(n):  # list.count: METH_O, counted by both paths
    lst, p, out = [_Probe()], _Probe(), None
    for _ in range(n):
        lst.count(p)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_on_subclass(n):  # not specialized: not the exact type
    lst, p, out = _SubList([_Probe()]), _Probe(), None
    for _ in range(n):
        lst.index(p)
        out = _Probe.seen - _depth_now()
    return out


def depth_via_method_descriptor_unbound_fast(n):
    lst, p, out = [_Probe()], _Probe(), None
    for _ in range(n):
        list.index(lst, p)
        out = _Probe.seen - _depth_now()
    return out


@pytest.mark.parametrize("case", [
    depth_via_fastcall_builtin,
    depth_via_fastcall_keywords_builtin_with_keywords,
    depth_via_fastcall_keywords_builtin_without_keywords,
    depth_via_len,
    depth_via_isinstance,
    depth_via_str,
    depth_via_method_descriptor_fast,
    depth_via_method_descriptor_fast_keywords,
    depth_via_method_descriptor_o,
    depth_via_method_descriptor_with_keywords,
    depth_via_method_descriptor_on_subclass,
    depth_via_method_descriptor_unbound_fast,
], ids=lambda f: f.__name__.removeprefix("depth_via_"))
@pytest.mark.parametrize("iterations", [1, 50], ids=["cold", "warm"])
def test_depth_seen_through_c_calls_is_the_interpreters(case, iterations):
    # One iteration: the code is cold (not yet specialized by the interpreter), every C call is
    # counted. Fifty: warm, the specialized forms count none.
    out = run_both(case, iterations)
    assert out.kind == "return" and isinstance(out.value, int)
