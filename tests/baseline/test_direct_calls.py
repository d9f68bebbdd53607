"""Direct calls (runtime/src/jit/direct_call.rs): compiled code calling a Python function pushes
the callee's frame itself, as stock 3.11 does inline in CALL, and enters compiled callees
without vectorcall and the hook. Differential against the interpreter, with what a frame shows:
arguments' and the callable's reference counts (the frame steals them, as stock's does),
`f_back` and `f_lasti` of the caller, frames that outlive their call, tracebacks, recursion
depth at the limit and in destructors run while the callee's frame is cleared. Shapes the direct
path does not take (keywords, `*args`, keyword-only parameters, generators) must still agree."""

import sys

import peregrine
import pytest

from difftest import run_baseline, run_both

N = 40


def _direct_calls(func, *args):
    """Direct calls into compiled code made while the baseline runs func(*args)."""
    before = peregrine.stats()["baseline"]["direct_calls"]
    run_baseline(func, *args)
    return peregrine.stats()["baseline"]["direct_calls"] - before


def shapes(n):
    def exact(a, b):
        return a * 10 + b

    def defaults(a, b=2, c=3):
        return a + b * 10 + c * 100

    def keywords(a, *, k=5):
        return a - k

    def star(*args, **kwargs):
        return len(args), sorted(kwargs)

    x = 7

    def closure(a):
        return a + x

    class C:
        def m(self, a, b=1):
            return (type(self).__name__, a, b)

        @staticmethod
        def s(a):
            return a * 2

    c = C()
    out = []
    for i in range(n):
        out.append((exact(i, 1), defaults(i), defaults(i, 1), defaults(i, 1, 1), keywords(i),
                    keywords(i, k=1), star(i, j=2), star(), closure(i), c.m(i), c.m(i, 2),
                    C.m(c, i), c.s(i), exact(b=i, a=2)))
    return out


def test_argument_shapes():
    run_both(shapes, N)
    assert _direct_calls(shapes, N) >= 8 * (N - 2)


def calls_that_do_not_bind(n):
    def two_defaults(a, b, c=3, d=4):
        return a + b + c + d

    def one_default(a, b=2):
        return a + b

    out = []
    for i in range(n):
        # Warm calls that bind first, so that the failing ones meet a site that calls directly.
        out.append((two_defaults(i, 1), two_defaults(i, 1, 2), one_default(i)))
        for call in (lambda: two_defaults(i), lambda: one_default(), lambda: one_default(i, 1, 2),
                     lambda: two_defaults(i, 1, 2, 3, 4)):
            try:
                out.append(call())
            except TypeError as e:
                out.append(str(e))
    return out


def test_calls_that_do_not_bind():
    # Too few arguments for the defaults, too many for the parameters: the direct call must
    # leave them to the generic path, which raises the TypeError.
    run_both(calls_that_do_not_bind, N)
    assert _direct_calls(calls_that_do_not_bind, N) >= 3 * (N - 2)


def refcounts(n):
    default = object()

    def callee(a, b=default):
        # The frame holds the arguments and the function: no further reference (stock's
        # inlined push steals the stack's).
        return sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(callee_ref[0])

    callee_ref = [callee]
    o = object()
    return [callee(o) for _ in range(n)][-3:], [callee(o, o) for _ in range(n)][-3:]


def test_arguments_and_callable_are_stolen():
    out = run_both(refcounts, N)
    assert _direct_calls(refcounts, N) > 0
    assert out.value[0][-1][0] == 3, out.value


def keywords(n):
    def f(a, b=2, *, c, d=4):
        return a, b, c, d

    def g(p, /, q, r=3):
        return p, q, r

    def h(x, y):
        return x - y

    def counts(a, *, b):
        # Keyword arguments are stolen too: the frame holds the only extra reference.
        return sys.getrefcount(a), sys.getrefcount(b)

    o, k = object(), object()
    out = []
    for i in range(n):
        out.append((f(i, c=1), f(i, 5, c=1), f(a=i, c=2), f(c=3, a=i, d=9), f(i, d=0, c=1, b=7),
                    g(i, 1), g(i, q=2), g(i, r=0, q=1), h(y=i, x=1), h(i, y=2), counts(o, b=k)))
    return out


def test_keyword_arguments_and_keyword_only_parameters():
    run_both(keywords, N)
    assert _direct_calls(keywords, N) >= 11 * (N - 2)


def binding_errors(n):
    def f(a, b=2, *, c, d=4):
        return a, b, c, d

    def g(p, /, q):
        return p, q

    def attempt(call):
        # A frame of its own per attempt: an exception hands the rest of a frame over.
        try:
            return call()
        except TypeError as e:
            return str(e)

    out = []
    for i in range(n):
        out.append((attempt(lambda: f(i)), attempt(lambda: f(i, a=1, c=2)),
                    attempt(lambda: f(i, e=1, c=1)), attempt(lambda: g(p=1, q=2)),
                    attempt(lambda: g(1, 2, q=3)), attempt(lambda: f(1, 2, 3, c=4))))
    return out


def test_calls_that_do_not_bind_raise_as_in_stock():
    run_both(binding_errors, N)


def replaced_defaults(n):
    def f(a, b=1, *, c=2):
        return a, b, c

    out = []
    for i in range(n):
        if i == n // 2:
            f.__defaults__ = (10,)
            f.__kwdefaults__ = {"c": 20}
        if i == n - 3:
            f.__kwdefaults__ = None  # c is now required
        try:
            out.append((f(i), f(i, c=0), f(a=i, b=0)))
        except TypeError as e:
            out.append(str(e))
    return out


def test_defaults_replaced_after_warm_up():
    run_both(replaced_defaults, N)
    assert _direct_calls(replaced_defaults, N) > 0


class _Hostile(str):
    """A `__kwdefaults__` key equal in hash to a parameter name whose comparison raises."""

    compared = 0

    def __hash__(self):
        return hash("c")

    def __eq__(self, other):
        _Hostile.compared += 1
        raise LookupError("compared")


def hostile_kwdefaults(n):
    def f(a, *, c=1):
        return a, c

    f.__kwdefaults__ = {_Hostile("x"): 0}

    def attempt(i):
        before = _Hostile.compared
        try:
            return f(i)
        except LookupError as e:
            # Compared once per call, as stock's binding compares once.
            return "raised", str(e), _Hostile.compared - before

    return [attempt(i) for i in range(n)]


def test_a_kwdefaults_lookup_that_raises():
    run_both(hostile_kwdefaults, N)


def frames(n):
    def callee():
        f = sys._getframe(1)
        return f.f_code.co_name, f.f_lasti, f.f_lineno, sys._getframe(0).f_back is f

    def keep(i):
        return sys._getframe()

    got = [callee() for _ in range(n)][-2:]
    kept = [keep(i) for i in range(n)]
    # Frames that outlived their calls: they own their data now, and link back to the caller.
    late = [(k.f_code.co_name, k.f_back.f_code.co_name, k.f_lasti, k.f_lineno, k.f_locals)
            for k in kept[-3:]]
    return got, late, kept[-1].f_back is kept[0].f_back


def test_caller_frame_and_frames_kept_alive():
    run_both(frames, N)
    assert _direct_calls(frames, N) > 0


def tracebacks(n):
    def inner(i):
        if i % 7 == 3:
            raise ValueError(i)
        return i

    def outer(i):
        return inner(i) + 1

    def attempt(i):
        # A frame of its own per call: an exception hands the rest of a frame to the
        # interpreter, which (under any hook) pushes no callee inline.
        try:
            return outer(i)
        except ValueError as e:
            tb, entries = e.__traceback__, []
            while tb is not None:
                f = tb.tb_frame
                entries.append((f.f_code.co_name, tb.tb_lasti, tb.tb_lineno,
                                f.f_back.f_code.co_name if f.f_back else None))
                tb = tb.tb_next
            return entries

    return [attempt(i) for i in range(n)]


def test_exceptions_through_direct_calls():
    run_both(tracebacks, N)
    assert _direct_calls(tracebacks, N) > 0


def recursion_limit():
    def down(k):
        return down(k + 1) if k < 10**9 else k

    def probe():
        depth = [0]

        def rec(k):
            depth[0] = k
            return rec(k + 1)

        try:
            rec(0)
        except RecursionError as e:
            return depth[0], str(e)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        for _ in range(3):  # warm: compiled, then direct
            r = probe()
        try:
            down(0)
        except RecursionError as e:
            r2 = str(e)
        return r, r2
    finally:
        sys.setrecursionlimit(limit)


def test_recursion_to_the_limit():
    run_both(recursion_limit)
    assert _direct_calls(recursion_limit) > 250


class DepthOnDeath:
    """Its destructor records how much recursion is left (how deep a recursion gets before
    RecursionError): stock clears a returning frame one level deeper than the caller."""

    def __init__(self, log):
        self.log = log

    def __del__(self):
        def rec(k):
            try:
                return rec(k + 1)
            except RecursionError:
                return k

        self.log.append(rec(0))


def destructor_depth(n):
    log = []

    def callee(i):
        d = DepthOnDeath(log)
        return i

    for i in range(n):
        callee(i)
    return log[-3:]


def test_destructors_while_the_frame_is_cleared():
    run_both(destructor_depth, 12)
    assert _direct_calls(destructor_depth, 12) > 0


class Order:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def __del__(self):
        self.log.append(self.name)


def release_order(n):
    log = []

    def callee(a, b):
        c = Order(log, "c")
        d = Order(log, "d")
        return None

    for i in range(n):
        callee(Order(log, "a"), Order(log, "b"))
    return log[-8:]


def test_locals_released_in_order():
    run_both(release_order, N)


class _Referent:
    pass


def _makes_f_locals(o):
    # locals() stores a dict in the frame's f_locals, which holds `o` until the frame is cleared.
    return len(locals())


def f_locals_released(n):
    import weakref

    out = []
    for _ in range(n):
        o = _Referent()
        w = weakref.ref(o)
        out.append(_makes_f_locals(o))
        del o
        out.append(w() is None)
    return out


def test_a_callees_f_locals_is_released_with_its_frame():
    assert _direct_calls(f_locals_released, N) > 0
    assert run_both(f_locals_released, N).value == [1, True] * N


def replaced_after_warmup(n):
    def f(a, b=1):
        return a + b

    def g(a, b=1):
        return a * b

    out = []
    for i in range(n):
        if i == n // 2:
            f.__code__ = g.__code__
            f.__defaults__ = (5,)
        if i == 3 * n // 4:
            f.__defaults__ = None
        try:
            out.append(f(i))
        except TypeError as e:
            out.append(str(e))
        out.append(f(i, 2))
    return out


def test_code_and_defaults_replaced_after_warmup():
    run_both(replaced_after_warmup, N)


def tracing_switched_on(n):
    events = []

    def tracer(frame, event, arg):
        if event == "call":
            events.append((frame.f_code.co_name, frame.f_back.f_code.co_name))
        return None

    def callee(i):
        if i == n // 2:
            sys.settrace(tracer)
        return i

    try:
        total = sum(callee(i) for i in range(3)) + sum([callee(i) for i in range(n)])
    finally:
        sys.settrace(None)
    return total, events


def test_tracing_switched_on_in_a_callee():
    run_both(tracing_switched_on, N)


def generators_and_keywords(n):
    def gen(k):
        yield from range(k)

    def kw(a, *, b):
        return a - b

    return [sum(gen(i % 5)) + kw(i, b=1) for i in range(n)]


def test_shapes_left_to_vectorcall():
    run_both(generators_and_keywords, N)


@pytest.mark.parametrize("depth", [1, 50])
def test_nested_direct_calls_and_data_stack_chunks(depth):
    # Deep enough that frames fill the data stack's first chunk: pushes that find no room go the
    # generic way (which allocates a chunk), and the frames pushed after them still pop right.
    def f(depth):
        def big(k, *pad):
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = k
            if k <= 0:
                return [sys._getframe(i).f_code.co_name for i in range(3)]
            return big(k - 1) if k % 3 else big(k - 1, 0)

        return [big(depth * 20) for _ in range(5)]

    run_both(f, depth)


def mixed_precall_site(n):
    # One call site alternating between a Python function and `sorted`, a C function whose
    # comparisons call back into Python: PRECALL_PYFUNC's inline guard fails for `sorted` (the
    # generic path, counting misses until the site specializes to sorted's FASTCALL form, which
    # keeps the caller's prev_instr on PRECALL), and the callbacks see the caller's f_lasti as
    # stock's.
    seen = []

    class Key:
        def __init__(self, v):
            self.v = v

        def __lt__(self, other):
            seen.append(sys._getframe(1).f_lasti)
            return self.v < other.v

    def probe(x):
        seen.append(sys._getframe(1).f_lasti)
        return x

    for i in range(n):
        g = probe if (i // 150) % 2 == 0 else sorted
        g([Key(2), Key(1)])
    return seen


def test_precall_site_mixing_python_and_c_callables():
    out = run_both(mixed_precall_site, 600)
    assert len(set(out.value)) == 3, sorted(set(out.value))  # PRECALL, CALL and its last unit


def under_another_hook(n, record):
    import _testinternalcapi

    def inner():
        pass

    try:
        for i in range(n):
            if i == n // 2:
                # Another tool's hook replaces ours while this compiled frame runs: from now on
                # stock calls through vectorcall and that hook, and so must compiled code.
                _testinternalcapi.set_eval_frame_record(record)
            inner()
    finally:
        _testinternalcapi.set_eval_frame_default()
    return len(record)


def test_calls_go_through_another_tools_hook():
    pytest.importorskip("_testinternalcapi")
    record = []
    try:
        out = run_baseline(under_another_hook, 40, record)
    finally:
        peregrine.enable()  # set_eval_frame_default removed our hook too
    assert out.value == 20 and record == ["inner"] * 20, (out, record)
