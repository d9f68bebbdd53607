"""The frame hook: counting, fallback reasons, identical behaviour to the interpreter, and per-code
state freed with its code object."""

import gc
import sys
import traceback

import peregrine
from conftest import with_unreachable_bad_constant


def test_frames_are_counted(jit):
    def leaf(i):
        return i

    jit.reset_stats()
    for i in range(100):
        leaf(i)
    assert jit.stats()["interpreter"]["entries"] >= 100


def test_tracing_frames_fall_back_and_are_counted(jit):
    def traced():
        return 3

    events = []

    def tracer(frame, event, arg):
        if frame.f_code is traced.__code__:
            events.append(event)
        return tracer

    jit.reset_stats()
    sys.settrace(tracer)
    try:
        traced()
    finally:
        sys.settrace(None)
    assert jit.stats()["exits"]["tracing_at_entry"] >= 1
    assert events == ["call", "line", "return"]


def test_generator_throw_falls_back_and_is_counted(jit):
    def gen():
        try:
            yield 1
        except KeyError:
            yield "caught"

    jit.reset_stats()
    g = gen()
    next(g)
    assert g.throw(KeyError) == "caught"
    assert jit.stats()["exits"]["throwflag"] == 1


def test_code_past_the_threshold_that_no_tier_compiles_is_counted(jit):
    def identity(x):
        return x

    hot = with_unreachable_bad_constant(identity)
    jit.set_thresholds(baseline=3, optimize="off")
    jit.reset_stats()
    assert [hot(i) for i in range(10)] == list(range(10))
    s = jit.stats()
    # Calls 4..10 found the threshold reached; the baseline refused once and was not asked again.
    assert s["exits"]["uncompilable"] == 7
    assert s["baseline"]["failed"] == 1
    assert peregrine.tier_of(hot) == "interpreter"


def test_generators_are_created_and_resumed_in_compiled_code(jit):
    def gen(n):
        for i in range(n):
            yield i

    jit.set_thresholds(baseline=0, optimize="off")
    jit.reset_stats()
    assert [list(gen(3)) for _ in range(4)] == [[0, 1, 2]] * 4
    s = jit.stats()
    assert peregrine.tier_of(gen) == "baseline"
    assert s["exits"]["generator_creation"] == 0
    assert s["interpreter"]["entries"] == 0
    # Each generator is created (1 entry) and resumed 4 times (3 values, then exhaustion), all
    # in compiled code.
    assert s["baseline"]["entries"] >= 20


def test_threshold_off_never_tries_to_compile(jit):
    def cold(x):
        return x

    jit.set_thresholds(baseline="off", optimize="off")
    jit.reset_stats()
    for i in range(50):
        cold(i)
    s = jit.stats()
    assert s["baseline"]["failed"] == 0 and s["exits"]["uncompilable"] == 0


def _program():
    """Recursion, generators, closures and exceptions: results and tracebacks must not change."""
    out = []

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    out.append(fib(15))

    def counter():
        total = 0

        def add(k):
            nonlocal total
            total += k
            return total

        return add

    add = counter()
    out.append([add(k) for k in range(5)])
    out.append(list(x * x for x in range(6) if x % 2))

    def fails(depth):
        if depth == 0:
            raise ValueError("bottom")
        return fails(depth - 1)

    try:
        fails(3)
    except ValueError as exc:
        out.append("".join(traceback.format_exception(exc)))

    try:
        try:
            {}["missing"]
        except KeyError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as exc:
        out.append((repr(exc), repr(exc.__cause__), repr(exc.__context__)))
    return out


def test_programs_behave_as_in_the_interpreter(jit):
    jit.disable()
    expected = _program()
    jit.enable()
    jit.set_thresholds(baseline=0)
    assert _program() == expected


def test_code_state_is_freed_with_its_code_object(jit):
    gc.collect()
    before = jit.stats()["live_code_states"]
    for i in range(200):
        namespace = {}
        exec(f"def f{i}(x):\n    return x + {i}\n", namespace)
        assert namespace[f"f{i}"](1) == i + 1
        del namespace
    gc.collect()
    after = jit.stats()["live_code_states"]
    assert after - before < 20, (before, after)


def test_recursion_error_is_raised_as_in_the_interpreter(jit):
    def down(n):
        return down(n + 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        try:
            down(0)
        except RecursionError as exc:
            assert "maximum recursion depth" in str(exc)
        else:
            raise AssertionError("no RecursionError")
    finally:
        sys.setrecursionlimit(limit)


def test_code_with_a_loop_compiles_on_first_entry(jit):
    def once(n):  # called once, loops for long: must not stay in the interpreter
        total = 0
        for i in range(n):
            total += i
        return total

    def straight(x):
        return x + 1

    jit.set_thresholds(baseline=1000, optimize="off")
    assert once(10_000) == sum(range(10_000))
    assert straight(1) == 2
    assert peregrine.tier_of(once) == "baseline"
    assert peregrine.tier_of(straight) == "interpreter"
    jit.set_thresholds(baseline="off")

    def never(n):
        while n:
            n -= 1

    never(3)
    assert peregrine.tier_of(never) == "interpreter"  # "off" means off, loops or not
