"""The Python API of `peregrine`: argument checking, thresholds, statistics, tier_of, compile."""

import types

import pytest

import peregrine
from conftest import with_unreachable_bad_constant


def test_enable_disable_round_trip():
    was = peregrine.is_enabled()
    try:
        peregrine.enable()
        assert peregrine.is_enabled()
        peregrine.enable()  # idempotent
        assert peregrine.is_enabled()
        peregrine.disable()
        assert not peregrine.is_enabled()
        peregrine.disable()  # idempotent
        assert not peregrine.is_enabled()
    finally:
        (peregrine.enable if was else peregrine.disable)()


def test_thresholds_set_get_and_omitted_stay(jit):
    jit.set_thresholds(baseline=5, optimize=50)
    assert jit.get_thresholds() == {"baseline": 5, "optimize": 50}
    jit.set_thresholds(optimize="off")
    assert jit.get_thresholds() == {"baseline": 5, "optimize": "off"}
    jit.set_thresholds(baseline=0)
    assert jit.get_thresholds() == {"baseline": 0, "optimize": "off"}
    jit.set_thresholds()
    assert jit.get_thresholds() == {"baseline": 0, "optimize": "off"}
    jit.set_thresholds(baseline="off")
    assert jit.get_thresholds()["baseline"] == "off"


@pytest.mark.parametrize(
    "kwargs, exc, param",
    [
        ({"baseline": -1}, ValueError, "baseline"),
        ({"baseline": 10**12}, ValueError, "baseline"),
        ({"baseline": 1.5}, TypeError, "baseline"),
        ({"baseline": True}, TypeError, "baseline"),
        ({"baseline": "soon"}, ValueError, "baseline"),
        ({"optimize": "never"}, ValueError, "optimize"),
        ({"optimize": -3}, ValueError, "optimize"),
        ({"optimize": [1]}, TypeError, "optimize"),
    ],
)
def test_bad_thresholds_raise_naming_the_parameter(jit, kwargs, exc, param):
    before = jit.get_thresholds()
    with pytest.raises(exc, match=param):
        jit.set_thresholds(**kwargs)
    assert jit.get_thresholds() == before


def test_a_bad_value_changes_nothing(jit):
    jit.set_thresholds(baseline=7, optimize=70)
    with pytest.raises(ValueError):
        jit.set_thresholds(baseline=8, optimize=-1)
    assert jit.get_thresholds() == {"baseline": 7, "optimize": 70}


def test_thresholds_are_keyword_only():
    with pytest.raises(TypeError):
        peregrine.set_thresholds(5)


def test_stats_shape_and_reset(jit):
    s = jit.stats()
    assert set(s) >= {"interpreter", "baseline", "optimized", "exits", "compile_failures"}
    assert set(s["interpreter"]) >= {"entries"}
    assert set(s["baseline"]) >= {"compiled", "entries", "compile_ns"}
    assert set(s["optimized"]) >= {"compiled", "entries", "compile_ns", "deopts"}
    # One key per declared exit reason: the frames that never ran compiled code (at entry) and
    # those handed over mid-way.
    assert set(s["exits"]) == set(jit.exit_reasons())
    when = {name: r["when"] for name, r in jit.exit_reasons().items()}
    assert {n for n, w in when.items() if w == "entry"} == {
        "tracing_at_entry", "throwflag", "uncompilable", "resumed_frame", "recursion_limit"}
    assert {n for n, w in when.items() if w == "mid_frame"} >= {"exception", "tracing", "eval_breaker"}
    jit.reset_stats()

    def g():
        return 1

    for _ in range(10):
        g()
    assert jit.stats()["interpreter"]["entries"] >= 10
    jit.reset_stats()
    s = jit.stats()
    assert s["interpreter"]["entries"] <= 2  # only frames run since the reset


def _sample(x):
    return x + 1


class _Thing:
    def method(self):
        return 1


def test_tier_of_accepts_functions_methods_and_code():
    assert peregrine.tier_of(_sample) == "interpreter"
    assert peregrine.tier_of(_sample.__code__) == "interpreter"
    assert peregrine.tier_of(_Thing().method) == "interpreter"
    assert peregrine.tier_of(_Thing.method) == "interpreter"
    assert peregrine.tier_of(lambda: 0) == "interpreter"


@pytest.mark.parametrize("bad", [len, 42, "f", None, types.SimpleNamespace(__code__=1)])
def test_tier_of_rejects_other_objects(bad):
    with pytest.raises(TypeError, match="function, method or code object"):
        peregrine.tier_of(bad)


def test_compile_reports_why_a_tier_cannot_compile():
    def double(a):
        return a * 2

    victim = with_unreachable_bad_constant(double)
    for tier in ("baseline", "optimized"):
        with pytest.raises(peregrine.CompileError) as info:
            peregrine.compile(victim, tier=tier)
        message = str(info.value)
        assert tier in message and "double" in message and "test_api.py" in message
    with pytest.raises(peregrine.CompileError, match="malformed bytecode: LOAD_CONST 255"):
        peregrine.compile(victim, tier="baseline")
    assert peregrine.tier_of(victim) == "interpreter"
    assert victim(4) == 8
    failures = peregrine.stats()["compile_failures"]
    assert sum(failures["baseline"].values()) >= 1
    assert issubclass(peregrine.CompileError, RuntimeError)


def test_compile_to_baseline_changes_the_tier_not_the_result():
    def double(a):
        return a * 2

    assert peregrine.tier_of(double) == "interpreter"
    peregrine.compile(double, tier="baseline")
    assert peregrine.tier_of(double) == "baseline"
    assert double(21) == 42


def test_compile_rejects_bad_tier_and_objects():
    with pytest.raises(ValueError, match="tier"):
        peregrine.compile(_sample, tier="interpreter")
    with pytest.raises(ValueError, match="tier"):
        peregrine.compile(_sample, tier="fast")
    with pytest.raises(TypeError):
        peregrine.compile(print)


def test_dis_annotates_native_code_with_bytecode(capsys):
    import dis as pydis

    def scale(a, b):
        return a * b

    with pytest.raises(ValueError, match="no baseline code"):
        peregrine.dis(scale)
    peregrine.compile(scale, tier="baseline")
    peregrine.dis(scale)
    text = capsys.readouterr().out
    # Every bytecode instruction appears as a header, with the offset dis shows for it.
    for ins in pydis.get_instructions(scale):
        if ins.opname not in ("CACHE", "EXTENDED_ARG"):
            assert f"{ins.offset:>5} {ins.opname} " in text, ins
    assert "pg_frame_enter" in text and "slow path of BINARY_OP" in text
    assert "cold code" in text
    assert text == peregrine.disassemble(scale)


def test_malformed_bytecode_is_refused_not_compiled():
    import opcode

    def f(a):
        return a

    code = f.__code__
    op = opcode.opmap
    # Each variant is reachable and breaks a rule the compiled code would trust. They are only
    # compiled, never called: the interpreter would misbehave on them too.
    prefix = code.co_code[:2]  # RESUME
    variants = {
        "POP_TOP": bytes([op["POP_TOP"], 0, op["LOAD_FAST"], 0, op["RETURN_VALUE"], 0]),  # underflow
        "LOAD_FAST 7": bytes([op["LOAD_FAST"], 7, op["RETURN_VALUE"], 0]),  # no such local
        "BINARY_OP 99": bytes([op["LOAD_FAST"], 0, op["LOAD_FAST"], 0, op["BINARY_OP"], 99, 0, 0,
                               op["RETURN_VALUE"], 0]),  # no such operator
        "falls off the end": bytes([op["LOAD_FAST"], 0, op["POP_TOP"], 0]),
    }
    for what, body in variants.items():
        bad = code.replace(co_code=prefix + body)
        with pytest.raises(peregrine.CompileError, match="malformed bytecode") as info:
            peregrine.compile(bad, tier="baseline")
        assert what.split()[0] in str(info.value) or what == "falls off the end", (what, str(info.value))
        assert peregrine.tier_of(bad) == "interpreter"
