"""C functions called in one step (`jit::precall_forms`): at a warm PRECALL site (without
keywords) whose specialized form calls a C function itself, compiled code calls the form's
handler, which runs PRECALL and CALL together and goes on after the CALL, as ceval's forms skip
it. Differential against the interpreter, with what such a call shows: results of every form,
exceptions raised by the C function (their `tb_lasti`: PRECALL's offset once warm, CALL's
before), the caller's `f_lasti` seen by Python code the C function calls back, recursion counted
for METH_O functions and not for `list.append`, the order in which a form releases its operands,
signal handlers run right after the call (the eval breaker), a form whose guard stops passing.
Each test also asserts that the calls were made in one step
(`stats()["baseline"]["direct_c_calls"]`) and that the frames never left compiled code."""

import _thread
import signal
import sys
import threading
import time

import pytest

import peregrine
from difftest import assert_compiles, run_baseline

N = 60  # warm after 8 iterations (the RESUMEs and backward jumps ceval's warm-up counts)


def _c_calls(func, *args):
    """C functions called in one step while the baseline runs func(*args)."""
    before = peregrine.stats()["baseline"]["direct_c_calls"]
    run_baseline(func, *args)
    return peregrine.stats()["baseline"]["direct_c_calls"] - before


def every_form(n):
    d = {}
    s = set()
    out = []
    for i in range(n):
        d[i % 7] = d.get(i % 7, 0) + 1        # METHOD_DESCRIPTOR_FAST
        s.add(i % 5)                          # METHOD_DESCRIPTOR_O
        out.append(len(d))                    # LEN, then LIST_APPEND (its result popped)
        out.append(isinstance(i, int))        # ISINSTANCE
        out.append(str(i))                    # STR_1
        out.append(type(i).__name__)          # TYPE_1
        out.append(tuple(s))                  # TUPLE_1
        out.append(abs(-i))                   # BUILTIN_O
        out.append(divmod(i, 3))              # BUILTIN_FAST
        out.append(sorted(s))                 # BUILTIN_FAST_WITH_KEYWORDS, no keywords
        out.append("ab".upper())              # METHOD_DESCRIPTOR_NOARGS
        out.append(int("12"))                 # BUILTIN_CLASS
        out.append("a,b".split(","))          # METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS
    return out, d, s


def test_every_form():
    assert_compiles(every_form, N)
    # 16 calls per iteration (one of them, out.append, a method of list: 13 times), all of them
    # in one step once the code is warm.
    assert _c_calls(every_form, N) >= 16 * (N - 10)


def raising(n):
    d = {}
    lasti = []
    for i in range(n):
        try:
            d.pop(i)                          # METHOD_DESCRIPTOR_FAST raising KeyError
        except KeyError as e:
            lasti.append(("pop", e.__traceback__.tb_lasti))
        try:
            int("x%d" % i)                    # BUILTIN_CLASS raising ValueError
        except ValueError as e:
            lasti.append(("int", e.__traceback__.tb_lasti))
        try:
            abs("")                           # BUILTIN_O raising TypeError
        except TypeError as e:
            lasti.append(("abs", e.__traceback__.tb_lasti))
    return lasti


def test_exceptions_raised_by_the_c_function():
    out = assert_compiles(raising, N)
    # Both offsets occur: CALL's while cold, PRECALL's once warm.
    assert len({x for x in out.value if x[0] == "pop"}) == 2
    assert _c_calls(raising, N) >= 3 * (N - 10)


def callbacks(n):
    seen = []

    def key(x):
        seen.append(sys._getframe(1).f_lasti)  # the caller, below the C function
        return x

    for i in range(n):
        list(map(key, [i]))                   # BUILTIN_CLASS (list), map too
    return seen


def test_callee_sees_the_callers_lasti():
    out = assert_compiles(callbacks, N)
    assert len(set(out.value)) == 2  # CALL's offset while cold, PRECALL's once warm
    assert _c_calls(callbacks, N) >= 2 * (N - 10)


def recursion_through_meth_o(n):
    reached = []

    class Deep:
        def __init__(self, depth):
            self.depth = depth

        def __repr__(self):
            reached.append(self.depth)
            return repr(Deep(self.depth + 1))  # BUILTIN_O: counts a recursion level

    out = []
    for i in range(n):
        reached.clear()
        try:
            repr(Deep(0))
        except RecursionError:
            out.append(max(reached))  # how deep the recursion got: any level miscounted shows
    return out


def test_recursion_counted_for_meth_o():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        assert_compiles(recursion_through_meth_o, 12)
    finally:
        sys.setrecursionlimit(old)


class Interrupted(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
def test_signal_handler_runs_after_the_call():
    # While the main thread sleeps in time.sleep (BUILTIN_O), another thread trips SIGUSR1
    # (_thread.interrupt_main sends no real signal, so the sleep is not interrupted): the
    # handler runs at the eval-breaker check right after the call, which raises at the call,
    # PRECALL's offset once warm.
    def signalled(n, go):
        lasti = []
        for i in range(n):
            try:
                go.release()
                time.sleep(0.03)
                lasti.append(("no signal", i))
            except Interrupted as e:
                lasti.append(e.__traceback__.tb_lasti)
        return lasti

    def handler(signum, frame):
        raise Interrupted(signum)

    def interrupter(go, stop):
        while True:
            go.acquire()
            if stop:
                return
            _thread.interrupt_main(signal.SIGUSR1)

    def run(runner):
        go, stop = threading.Lock(), []
        go.acquire()
        t = threading.Thread(target=interrupter, args=(go, stop))
        t.start()
        try:
            return runner(signalled, 14, go)
        finally:
            stop.append(1)
            go.release()
            t.join()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        out = run(assert_compiles)
        assert all(isinstance(x, int) for x in out.value), out.value
        assert len(set(out.value)) == 2
        assert run(_c_calls) >= 14 - 10
    finally:
        signal.signal(signal.SIGUSR1, old)


def guard_stops_passing(n):
    out = []
    values = [[1, 2], (1, 2), "ab", b"ab"]
    for i in range(n):
        # Specialized for list.index (METHOD_DESCRIPTOR_FAST); tuple.index passes its guard
        # too, str's and bytes' (METH_VARARGS) miss it: the generic path, until enough misses
        # make the site adaptive again.
        v = values[0] if i < n // 2 else values[i % len(values)]
        out.append(v.index(v[0]))
        out.append(len(v))
    return out


def test_guard_that_stops_passing():
    assert_compiles(guard_stops_passing, 200)


class Tracked:
    """Logs its release, so the order in which a form releases its operands shows."""

    def __init__(self, log, name):
        self.log, self.name = log, name

    def __del__(self):
        self.log.append(self.name)

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__


def isinstance_raising(n):
    log = []
    for i in range(n):
        try:
            # TypeError (arg 2 is no type): ceval's ISINSTANCE has popped and released `cls`
            # when it jumps to its error label; unwinding then releases `inst`.
            isinstance(Tracked(log, "inst"), Tracked(log, "cls"))
        except TypeError:
            log.append("caught")
    return log


def test_isinstance_raising_releases_cls_first():
    out = assert_compiles(isinstance_raising, N)
    # The generic CALL releases the arguments in order while cold; the form, once warm, `cls`
    # first.
    assert out.value[:3] == ["inst", "cls", "caught"]
    assert out.value[-3:] == ["cls", "inst", "caught"]
    assert _c_calls(isinstance_raising, N) >= N - 10


def method_descriptor_fast_releases(n):
    log = []
    for i in range(n):
        # dict.get (METHOD_DESCRIPTOR_FAST): the arguments after self, then self (the dict and
        # what it holds), then the callable.
        {0: Tracked(log, "self")}.get(Tracked(log, "key"))
        log.append(i)
    return log


def test_method_descriptor_fast_releases_self_last():
    out = assert_compiles(method_descriptor_fast_releases, N)
    assert out.value[-3:] == ["key", "self", N - 1]
    assert _c_calls(method_descriptor_fast_releases, N) >= N - 10


def len_raising(n):
    log = []
    for i in range(n):
        try:
            len(Tracked(log, "arg"))          # LEN: the stack left whole for the unwinding
        except TypeError as e:
            log.append(e.__traceback__.tb_lasti)
    return log


def test_len_raising():
    assert_compiles(len_raising, N)
    assert _c_calls(len_raising, N) >= N - 10


def append_at_the_limit(out, depth):
    out.append(depth)                         # LIST_APPEND: counts no recursion level
    append_at_the_limit(out, depth + 1)


def deepest_append(n):
    reached = []
    for i in range(n):
        out = []
        try:
            append_at_the_limit(out, 0)
        except RecursionError:
            reached.append(out[-1])
    return reached


def test_list_append_counts_no_recursion_level():
    # In the deepest frame no recursion level is left: a C call that counted one would raise
    # there, before the append.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        peregrine.compile(append_at_the_limit, tier="baseline")
        out = assert_compiles(deepest_append, 12)
        assert len(set(out.value[-4:])) == 1
    finally:
        sys.setrecursionlimit(old)
