"""Exits: every reason a frame leaves compiled code or never enters it, declared once
(runtime/src/exits.rs), counted process-wide in stats()["exits"] and by site (the instruction
where the interpreter takes over) in peregrine.exits(f)."""

import dis
import gc
import pathlib
import sys

import pytest

import peregrine

sys.path.insert(0, str(pathlib.Path(__file__).parent / "baseline"))
from difftest import assert_compiles, fresh_function  # noqa: E402

# The declaration's names and codes. Codes are what machine code passes, names what users and
# saved statistics read: changing either is a compatibility break, so this list is literal.
DECLARED = {
    "exception": 0,
    "tracing": 1,
    "eval_breaker": 2,
    "resumed_frame": 3,
    "recursion_limit": 4,
    "interpreter_only_instruction": 5,
    "tracing_at_entry": 6,
    "throwflag": 7,
    "uncompilable": 8,
    "generator_creation": 9,
}


def offsets(func, opname, argrepr=None):
    """The dis offsets of `func`'s instructions named `opname` (and showing `argrepr`)."""
    return [i.offset for i in dis.get_instructions(func)
            if i.opname == opname and (argrepr is None or i.argrepr == argrepr)]


def only(xs):
    assert len(xs) == 1, xs
    return xs[0]


# --- the declaration ---------------------------------------------------------------------------

def test_names_and_codes_are_unique_and_stable():
    reasons = peregrine.exit_reasons()
    assert {name: r["code"] for name, r in reasons.items()} == DECLARED
    assert [r["code"] for r in reasons.values()] == list(range(len(reasons)))  # in code order
    for name, r in reasons.items():
        assert r["when"] in ("entry", "mid_frame"), name
        assert r["doc"] and not r["doc"].startswith(" "), name


def test_each_reason_says_whether_it_happens_at_entry_or_mid_frame():
    when = {name: r["when"] for name, r in peregrine.exit_reasons().items()}
    assert {n for n, w in when.items() if w == "entry"} == {
        "tracing_at_entry", "throwflag", "uncompilable", "resumed_frame", "recursion_limit"}
    assert {n for n, w in when.items() if w == "mid_frame"} == {
        "exception", "tracing", "eval_breaker", "interpreter_only_instruction", "generator_creation"}


def test_stats_has_a_counter_for_every_reason():
    s = peregrine.stats()
    assert set(s["exits"]) == set(peregrine.exit_reasons())
    assert all(isinstance(n, int) for n in s["exits"].values())
    assert "fallbacks" not in s and "deopt_reasons" not in s
    assert isinstance(s["exit_sites"], int) and isinstance(s["exit_sites_dropped"], int)


# --- exits(): the argument -----------------------------------------------------------------------

@pytest.mark.parametrize("bad", [42, "f", None, len, object()])
def test_exits_of_something_without_bytecode_is_a_type_error(bad):
    with pytest.raises(TypeError, match=r"exits\(\) expects a Python function, method or code object"):
        peregrine.exits(bad)


def test_exits_of_unseen_code_is_empty_and_accepts_code_and_methods():
    def never_called():
        return 1

    class C:
        def m(self):
            return 1

    assert peregrine.exits(never_called) == {}
    assert peregrine.exits(never_called.__code__) == {}
    assert peregrine.exits(C().m) == {}
    assert peregrine.exits(C.m) == {}


# --- sites, through the differential helper ------------------------------------------------------

def loop_only(n):
    total = 0
    for i in range(n):
        total += i * 2
    return total


def test_a_loop_only_function_never_leaves_compiled_code():
    assert assert_compiles(loop_only, 2000).value == sum(i * 2 for i in range(2000))


def divides_by_zero(x):
    y = x + 1
    return y // 0


def test_an_exception_leaves_the_frame_from_compiled_code():
    # Unwound in compiled code (no handler here): no exit, the same traceback.
    out = assert_compiles(divides_by_zero, 1)
    assert out.kind == "raise"


def iterates_an_int():
    for _ in 5:
        pass


def reads_an_unbound_local(flag):
    if flag:
        v = 1
    return v


def test_errors_of_instructions_without_caches_leave_no_exit():
    assert assert_compiles(iterates_an_int).kind == "raise"
    assert assert_compiles(reads_an_unbound_local, False).kind == "raise"


def catches_in_a_loop(n):
    caught = 0
    for i in range(n):
        try:
            1 // (i - i)
        except ZeroDivisionError:
            caught += 1
    return caught


def test_a_frame_stays_in_compiled_code_after_catching_an_exception():
    assert assert_compiles(catches_in_a_loop, 5).value == 5


def _fails():
    raise KeyError("inner")


def calls_a_failing_function():
    return _fails()


def test_an_exception_from_a_callee_leaves_no_exit():
    assert assert_compiles(calls_a_failing_function).kind == "raise"


def raises_directly():
    raise ValueError("boom")


def test_raise_varargs_runs_compiled():
    assert assert_compiles(raises_directly).kind == "raise"


def catches_a_group(n):
    try:
        raise ExceptionGroup("g", [ValueError(n), KeyError(n)])
    except* ValueError:
        n += 1
    except* KeyError:
        n += 10
    return n


def test_except_star_is_left_to_the_interpreter_at_its_first_match():
    # CHECK_EG_MATCH and PREP_RERAISE_STAR hand the frame over (PREP_RERAISE_STAR's projection
    # is private to libpython); the interpreter runs the rest of the frame.
    at = offsets(catches_a_group, "CHECK_EG_MATCH")[0]
    out = assert_compiles(catches_a_group, 1, exits={(at, "interpreter_only_instruction"): 1})
    assert out.value == 12


def _quiet_tracer(frame, event, arg):
    return None


def turns_tracing_on():
    sys.settrace(_quiet_tracer)
    x = 1
    sys.settrace(None)
    return x


def test_tracing_switched_on_mid_frame_is_a_tracing_exit_before_the_next_instruction():
    # After the call that switched tracing on, the next instruction (the POP_TOP of its result)
    # checks for tracing and hands the frame over before running.
    call = offsets(turns_tracing_on, "CALL")[0]
    at = min(o for o in offsets(turns_tracing_on, "POP_TOP") if o > call)
    try:
        assert_compiles(turns_tracing_on, exits={(at, "tracing"): 1})
    finally:
        sys.settrace(None)


def test_assert_compiles_fails_when_the_exits_differ():
    at = offsets(catches_a_group, "CHECK_EG_MATCH")[0]
    with pytest.raises(AssertionError, match="exits of catches_a_group"):
        assert_compiles(catches_a_group, 1)
    with pytest.raises(AssertionError, match=f"offset {at}: CHECK_EG_MATCH"):
        assert_compiles(catches_a_group, 1, exits={(at + 2, "interpreter_only_instruction"): 1})


# --- entry exits ---------------------------------------------------------------------------------

def counting():
    yield 1
    yield 2


def test_generators_are_created_in_compiled_code(jit):
    g = fresh_function(counting)
    jit.compile(g)
    jit.set_thresholds(baseline=0, optimize="off")
    before = jit.stats()["exits"]["generator_creation"]
    for _ in range(3):
        assert list(g()) == [1, 2]
    # RETURN_GENERATOR runs compiled, and so does every resumption: no exit at all.
    assert jit.stats()["exits"]["generator_creation"] == before
    assert jit.exits(g) == {}


async def tracked_coroutine():
    return 7


def test_coroutines_whose_origin_is_tracked_are_created_by_the_interpreter(jit):
    c = fresh_function(tracked_coroutine)
    jit.compile(c)
    jit.set_thresholds(baseline=0, optimize="off")
    sys.set_coroutine_origin_tracking_depth(2)
    try:
        coros = [c() for _ in range(3)]
    finally:
        sys.set_coroutine_origin_tracking_depth(0)
    for coro in coros:
        assert coro.cr_origin is not None
        with pytest.raises(StopIteration):
            coro.send(None)
    # The creating calls hand the frame over before RETURN_GENERATOR; the resumptions (one per
    # coroutine) run compiled.
    assert only(offsets(c, "RETURN_GENERATOR")) == 0
    assert jit.exits(c) == {(0, "generator_creation"): 3}
    assert jit.exit_reasons()["generator_creation"]["when"] == "mid_frame"
    untracked = c()
    assert untracked.cr_origin is None
    with pytest.raises(StopIteration):
        untracked.send(None)
    assert jit.exits(c) == {(0, "generator_creation"): 3}


def thrown_into():
    try:
        yield 1
    except KeyError:
        yield 2


def test_throw_exits_at_the_yield_it_raises_at(jit):
    g = fresh_function(thrown_into)
    jit.compile(g)
    jit.set_thresholds(baseline=0, optimize="off")
    it = g()
    assert next(it) == 1
    assert it.throw(KeyError) == 2
    first_yield = offsets(g, "YIELD_VALUE")[0]
    assert jit.exits(g) == {(first_yield, "throwflag"): 1}


def test_tracing_at_entry_is_its_own_reason(jit):
    f = fresh_function(loop_only)
    jit.compile(f)
    before = jit.stats()["exits"]
    sys.settrace(_quiet_tracer)
    try:
        f(3)
    finally:
        sys.settrace(None)
    after = jit.stats()["exits"]
    assert after["tracing_at_entry"] > before["tracing_at_entry"]
    assert after["tracing"] == before["tracing"]
    assert jit.exits(f) == {(0, "tracing_at_entry"): 1}


# --- lifetime and reset --------------------------------------------------------------------------

def test_reset_stats_zeroes_the_sites_too(jit):
    f = fresh_function(catches_a_group)
    jit.compile(f)
    assert f(1) == 12
    assert jit.exits(f) != {}
    jit.reset_stats()
    assert jit.exits(f) == {}
    assert jit.stats()["exits"]["interpreter_only_instruction"] == 0


def test_sites_are_freed_with_the_code_object(jit):
    gc.collect()
    f = fresh_function(catches_a_group)
    jit.compile(f)
    before = jit.stats()["exit_sites"]
    assert f(1) == 12
    assert jit.stats()["exit_sites"] == before + 1
    del f
    gc.collect()
    assert jit.stats()["exit_sites"] == before


# --- format_stats --------------------------------------------------------------------------------

def test_format_stats_shows_entry_and_mid_frame_exits_apart():
    s = peregrine.stats()
    s["exits"] = dict.fromkeys(s["exits"], 0)
    s["exits"].update(throwflag=3, exception=2, some_future_reason=1)
    text = peregrine.format_stats(s)
    entry = text.index("frames the interpreter ran instead of compiled code")
    mid = text.index("frames compiled code handed to the interpreter mid-way")
    other = text.index("other exits")
    assert entry < text.index("throwflag") < mid < text.index("exception") < other
    assert text.index("some_future_reason") > other
