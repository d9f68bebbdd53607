"""Direct resumption (runtime/src/jit/direct_resume.rs): compiled FOR_ITER and SEND resume a
generator or coroutine frame themselves, doing what `gen_send_ex2` does, without `tp_iternext`,
`PyIter_Send`, `_PyEval_EvalFrame` and the hook. Differential against the interpreter, with what
a generator shows: values sent and returned, `StopIteration` turned into RuntimeError, exceptions
raised through it, `sys.exc_info()` inside and outside, `gi_running`/`gi_suspended`, `f_back`
and frames that outlive the generator, tracing switched on inside it, the recursion limit
through chains of `yield from`. Each test also asserts that resumptions were direct."""

import sys

import peregrine
import pytest

from difftest import run_baseline, run_both

N = 30


def _direct_resumes(func, *args):
    """Direct resumptions of compiled generators while the baseline runs func(*args)."""
    before = peregrine.stats()["baseline"]["direct_resumes"]
    run_baseline(func, *args)
    return peregrine.stats()["baseline"]["direct_resumes"] - before


def for_loops(n):
    def count(k):
        for i in range(k):
            yield i * i
        return "done"  # a FOR_ITER drops it (StopIteration carries it, then is cleared)

    def tuple_return(k):
        yield k
        return (1, 2)  # wrapped in StopIteration by gen_iternext, then cleared

    def empty():
        return
        yield

    out = []
    for i in range(n):
        out.append(sum(count(i)))
        out.append(list(tuple_return(i)))
        out.append(list(empty()))
        out.append([x for x in count(3)])
    return out


def test_for_loops_over_generators():
    run_both(for_loops, N)
    assert _direct_resumes(for_loops, N) >= N * 4


def delegation(n):
    def leaf(k):
        got = []
        for i in range(k):
            got.append((yield i))
        return got

    def middle(k):
        result = yield from leaf(k)
        return ("middle", result)

    def outer(k):
        r = yield from middle(k)
        yield r
        r = yield from ()  # SEND into a non-generator iterator
        yield r

    out = []
    for i in range(n):
        g = outer(3)
        out.append(next(g))
        out.append(g.send("a"))
        out.append(g.send("b"))
        out.append(g.send("c"))
        out.append(list(g))
        out.append(list(outer(i % 4)))
    return out


def test_yield_from_sends_and_returns():
    run_both(delegation, N)
    assert _direct_resumes(delegation, N) > N * 3


def raising(n):
    # Each case runs in a frame of its own: after an exception compiled code hands the rest of
    # its frame to the interpreter, which would then drive the generators itself.
    def boom(k):
        yield k
        raise ValueError(k)

    def stop(k):
        yield k
        raise StopIteration(k)

    def delegate(g):
        return (yield from g)

    def raises_through_for(out, i):
        g = boom(i)
        try:
            for x in g:
                out.append(x)
        except ValueError as e:
            out.append(("caught", e.args, next(g, "finished"), g.gi_frame))

    def stop_iteration_in_for(out, i):
        try:
            for x in stop(i):
                out.append(x)
        except RuntimeError as e:
            out.append(("runtime", str(e), type(e.__cause__).__name__, e.__cause__.args))

    def stop_iteration_in_yield_from(out, i):
        try:
            for x in delegate(stop(i)):
                out.append(x)
        except RuntimeError as e:
            out.append(("delegated", str(e), repr(e.__context__)))

    def traceback_through_yield_from(out, i):
        try:
            for x in delegate(boom(i)):
                out.append(x)
        except ValueError as e:
            tb = e.__traceback__
            names = []
            while tb is not None:
                names.append(tb.tb_frame.f_code.co_name)
                tb = tb.tb_next
            out.append(("traceback", names))

    out = []
    for i in range(n):
        raises_through_for(out, i)
        stop_iteration_in_for(out, i)
        stop_iteration_in_yield_from(out, i)
        traceback_through_yield_from(out, i)
    return out


def test_exceptions_through_resumed_generators():
    run_both(raising, N)
    assert _direct_resumes(raising, N) > N * 3


def exc_state(n):
    def sees(k):
        yield sys.exc_info()[0]
        try:
            raise KeyError(k)
        except KeyError:
            yield sys.exc_info()[0]  # suspended inside its handler
            yield repr(sys.exc_info()[1])
        yield sys.exc_info()[0]

    def step(g):
        for x in g:  # FOR_ITER: a direct resumption (next() would go through tp_iternext)
            return x

    out = []
    for i in range(n):
        g = sees(i)
        try:
            raise IndexError(i)
        except IndexError:
            out.append(step(g))  # the caller's exception is the context inside
            out.append(step(g))
            out.append(sys.exc_info()[0])  # the generator's handler does not leak out
        out.append(step(g))
        out.append(sys.exc_info()[0])
        out.append(step(g))
    return out


def test_exception_state_is_chained_and_restored():
    run_both(exc_state, N)
    assert _direct_resumes(exc_state, N) >= N * 4


def states(n):
    holder = []

    def watch():
        while True:
            f = sys._getframe()
            me = holder[0]
            yield (me.gi_running, me.gi_suspended, f.f_back.f_code.co_name, f.f_lasti > 0)

    def drive(g, k):
        out = []
        for x in g:  # FOR_ITER resumes directly: the generator's f_back is this frame
            out.append(x)
            if len(out) == k:
                break
        return out

    out = []
    for _ in range(n):
        g = watch()
        holder[:] = [g]
        out.append(drive(g, 3))
        out.append((g.gi_running, g.gi_suspended, g.gi_frame.f_back))

        def reentrant():
            for x in it:  # ValueError: generator already executing
                yield x

        it = reentrant()
        try:
            drive(it, 1)
        except ValueError as e:
            out.append(str(e))
        out.append(drive((i for i in range(10)), 4))
    return out


def test_generator_states_and_frames():
    run_both(states, N)
    assert _direct_resumes(states, N) > N


def kept_frames(n):
    def gen(k):
        x = [k]
        yield sys._getframe()
        yield x

    out = []
    for i in range(n):
        frames = []
        for v in gen(i):
            frames.append(v)
        f = frames[0]
        # The generator finished; its frame object outlives it with the locals it had.
        out.append((f.f_locals["x"], f.f_lineno, f.f_back, f.f_code.co_name))
    return out


def test_frames_that_outlive_the_generator():
    run_both(kept_frames, N)
    assert _direct_resumes(kept_frames, N) > N


def coroutines(n):
    import types

    @types.coroutine
    def suspend(v):
        return (yield v)

    async def leaf(k):
        got = await suspend(k)
        return got * 2

    async def middle(k):
        return await leaf(k) + await leaf(k + 1)

    def run(coro):
        sent = None
        trail = []
        try:
            while True:
                trail.append(coro.send(sent))
                sent = len(trail)
        except StopIteration as e:
            return trail, e.value

    out = []
    for i in range(n):
        out.append(run(middle(i)))
        c = leaf(i)
        try:
            c.send(1)  # a value sent into a just-started coroutine
        except TypeError as e:
            out.append(str(e))
        c.close()
        done = middle(i)
        run(done)
        try:
            done.send(None)
        except RuntimeError as e:
            out.append(str(e))
    return out


def test_coroutines_awaiting_coroutines():
    run_both(coroutines, N)
    assert _direct_resumes(coroutines, N) > N * 2


def traced(n):
    events = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name == "gen":
            events.append((event, frame.f_lineno))
        return tracer

    def gen(k):
        for i in range(k):
            if i == 2:
                sys.settrace(tracer)  # switched on while the generator runs
            yield i
        sys.settrace(None)

    out = []
    try:
        for i in range(n):
            out.append(list(gen(4)))
    finally:
        sys.settrace(None)
    return out, events


def test_tracing_switched_on_inside_a_resumed_generator():
    run_both(traced, 6)


def chain(depth):
    def nested(k):
        if k == 0:
            yield "bottom"
        else:
            yield from nested(k - 1)

    return list(nested(depth))


@pytest.mark.parametrize("depth", [50, 400])
def test_deep_yield_from_chains(depth):
    run_both(chain, depth)


def recursion_limit():
    def nested(k):
        yield from nested(k + 1)

    try:
        list(nested(0))
    except RecursionError as e:
        tb = e.__traceback__
        depth = 0
        while tb is not None:
            depth += 1
            tb = tb.tb_next
        return "RecursionError", depth
    return "no error"


def test_recursion_limit_through_yield_from():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        run_both(recursion_limit)
    finally:
        sys.setrecursionlimit(old)


def test_async_generators_go_the_generic_way():
    def agen_driver(n):
        async def agen(k):
            for i in range(k):
                yield i

        async def consume(k):
            return [x async for x in agen(k)]

        out = []
        for i in range(n):
            c = consume(i)
            try:
                c.send(None)
            except StopIteration as e:
                out.append(e.value)
        return out

    run_both(agen_driver, N)
