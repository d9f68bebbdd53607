"""RETURN_GENERATOR in compiled code (runtime/src/jit/gen.rs `pg_return_generator`): the call of
a generator, coroutine or async generator function runs compiled up to RETURN_GENERATOR, which
makes the object as `_Py_MakeCoro` does and moves the frame into it; a compiled caller calls
such functions directly. Differential against the interpreter, with what the new object shows:
its name, qualname, code, frame (`f_lasti`, `f_lineno`, locals, cells and free variables
copied before RETURN_GENERATOR), state, the arguments' reference counts, the warning for a
coroutine never awaited, and the recursion limit at the creating call."""

import gc
import inspect
import sys
import warnings

import peregrine

from difftest import run_baseline, run_both

N = 30


def _created_compiled(func, *args):
    """Frames that ran compiled and exits by generator creation while the baseline runs func."""
    before = peregrine.stats()
    run_baseline(func, *args)
    after = peregrine.stats()
    return (after["baseline"]["entries"] - before["baseline"]["entries"],
            after["exits"]["generator_creation"] - before["exits"]["generator_creation"])


def shapes(n):
    def plain(a, b=2):
        yield a + b

    def with_cell(a):
        def inner():
            return a
        yield inner  # `a` is a cell: MAKE_CELL runs before RETURN_GENERATOR

    x = 5

    def with_free():
        yield x  # COPY_FREE_VARS runs before RETURN_GENERATOR

    class C:
        def method(self, k):
            yield self, k

    async def coro(a):
        return a

    async def agen(a):
        yield a

    def describe(obj):
        frame = getattr(obj, "gi_frame", None) or getattr(obj, "cr_frame", None) \
            or getattr(obj, "ag_frame", None)
        return (type(obj).__name__, obj.__name__, obj.__qualname__, frame.f_lasti, frame.f_lineno,
                sorted(frame.f_locals), frame.f_code.co_name, frame.f_back)

    out = []
    for i in range(n):
        g = plain(i)
        out.append((describe(g), inspect.getgeneratorstate(g), next(g)))
        g = with_cell(i)
        out.append((describe(g), next(g)()))
        g = with_free()
        out.append((describe(g), next(g)))
        g = C().method(i)
        out.append((describe(g), next(g)[1]))
        c = coro(i)
        out.append((describe(c), inspect.getcoroutinestate(c), c.cr_origin))
        try:
            c.send(None)
        except StopIteration as e:
            out.append(e.value)
        a = agen(i)
        out.append((describe(a), a.ag_running))
        a.aclose().close()
    return out


def test_generators_coroutines_and_async_generators_made_compiled():
    run_both(shapes, N)
    entries, handed = _created_compiled(shapes, N)
    assert handed == 0
    assert entries > 6 * N


def refcounts(n):
    def gen(a, b):
        yield sys.getrefcount(a), sys.getrefcount(b)

    out = []
    for i in range(n):
        arg = object()
        other = [i]
        g = gen(arg, other)  # the arguments move into the generator's frame
        out.append((sys.getrefcount(arg), next(g)))
        del g
        out.append(sys.getrefcount(arg))
    return out


def test_arguments_move_into_the_generator():
    run_both(refcounts, N)


def never_awaited(n):
    async def lonely(k):
        return k

    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(n):
            lonely(i)
            gc.collect()
    out.append(sorted({(w.category.__name__, str(w.message)) for w in caught}))
    return out


def test_a_coroutine_never_awaited_warns():
    run_both(never_awaited, 3)


def depth_at_limit():
    def gen():
        yield 1

    def recurse(k):
        try:
            return recurse(k + 1)
        except RecursionError:
            # At the limit: creating a generator must fail exactly where stock's does.
            try:
                g = gen()
            except RecursionError:
                return k, "creation failed"
            return k, next(g)

    return recurse(0)


def test_the_recursion_limit_at_a_creating_call():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        run_both(depth_at_limit)
    finally:
        sys.setrecursionlimit(old)


def created_only(n):
    def gen(i):
        try:
            abs("x")  # raises at the call: CALL's offset in cold code, PRECALL's once warm
        except TypeError as e:
            yield e.__traceback__.tb_lasti

    from_c = list(map(gen, range(n)))  # n creations, called from C: no RESUME runs
    direct = [gen(i) for i in range(n)]  # n more, called directly by compiled code
    return [next(g) for g in from_c[:2] + direct[:2]]


def test_creations_do_not_warm_the_code_up():
    # ceval's warm-up counts RESUMEs and backward jumps; creating a generator runs neither, also
    # when the hook enters its fresh frame from a C caller or compiled code calls it directly.
    out = run_both(created_only, 40)
    assert len(set(out.value)) == 1, out.value
