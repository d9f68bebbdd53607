"""Differential testing of the baseline tier against the interpreter.

`run_both(func, *args, **kwargs)` runs `func` twice, each time on a fresh copy of its code objects
(the function's own and, recursively, every nested one in co_consts, so lambdas, inner functions and
comprehensions are fresh too) and fresh closure cells:

1. under the interpreter, with the JIT hook disabled;
2. under the baseline: JIT enabled, thresholds baseline=0 optimize="off", the copy compiled with
   `peregrine.compile(f, tier="baseline")` (asserting `tier_of(f) == "baseline"`); nested code
   objects called from it compile automatically at threshold 0.

It captures the outcome of each run (the return value, or the exception's type, args, str, the
`format_exception_only` lines including "Did you mean" suggestions, the chain of
`__cause__`/`__context__`, and the traceback frames outside this harness as (filename, lineno,
name)), asserts the two are equal and that the baseline was entered at least once, and restores the
previous JIT state and thresholds. It returns the interpreter's `Outcome` for further checks.

`assert_compiles(func, *args, exits=None, **kwargs)` does the same and then asserts where the
baseline run left compiled code: `peregrine.exits()` of the compiled copy must equal `exits`, a
dict {(dis offset, reason name): count}; omitted or `{}` means the function ran compiled from
start to end and never left (the exits of nested code objects are not checked).
"""

import sys
import traceback
import types

import peregrine

_HERE = __file__


def copy_code(code):
    """A fresh copy of `code` and, recursively, of the code objects among its constants."""
    consts = tuple(copy_code(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def _fresh_cell(cell):
    try:
        return types.CellType(cell.cell_contents)
    except ValueError:  # empty cell
        return types.CellType()


def fresh_function(func):
    """A copy of `func` with fresh code objects and fresh closure cells (same globals)."""
    closure = None if func.__closure__ is None else tuple(_fresh_cell(c) for c in func.__closure__)
    f = types.FunctionType(copy_code(func.__code__), func.__globals__, func.__name__,
                           func.__defaults__, closure)
    f.__kwdefaults__ = func.__kwdefaults__
    f.__qualname__ = func.__qualname__
    f.__dict__.update(func.__dict__)
    return f


def _exc_summary(exc, depth=0):
    """A comparable description of an exception and its cause/context chain."""
    if exc is None or depth > 5:
        return None
    try:
        args = repr(exc.args)
    except Exception as e:  # pragma: no cover - odd exception objects
        args = f"<repr failed: {e!r}>"
    return (
        type(exc).__qualname__,
        args,
        str(exc),
        tuple(traceback.format_exception_only(type(exc), exc)),
        _exc_summary(exc.__cause__, depth + 1),
        _exc_summary(exc.__context__, depth + 1) if not exc.__suppress_context__ else "suppressed",
        tuple(_frames(exc.__traceback__)),
    )


def _frames(tb):
    # Columns too: they come from the frame's last instruction (tb_lasti), which compiled code
    # must set exactly as the interpreter does.
    return [(fs.filename, fs.lineno, fs.end_lineno, fs.colno, fs.end_colno, fs.name)
            for fs in traceback.extract_tb(tb) if fs.filename != _HERE]


class Outcome:
    """What one run produced: ('return', value) or ('raise', summary)."""

    def __init__(self, kind, value, exc=None):
        self.kind, self.value, self.exc = kind, value, exc

    def key(self):
        if self.kind == "return":
            return ("return", _comparable(self.value))
        return ("raise", self.value)

    def __repr__(self):
        return f"Outcome{self.key()!r}"


def _comparable(v):
    # Values compare by ==, except that NaN-bearing floats and objects without a meaningful ==
    # fall back to repr.
    if isinstance(v, float) and v != v:
        return ("nan",)
    if type(v).__eq__ is object.__eq__ and not isinstance(v, (type, types.FunctionType)):
        return ("repr", type(v).__qualname__)
    return v


def _call(f, args, kwargs):
    try:
        return Outcome("return", f(*args, **kwargs))
    except BaseException as exc:  # noqa: B902 - every exception is an outcome
        if isinstance(exc, (KeyboardInterrupt,)):
            raise
        out = Outcome("raise", _exc_summary(exc), exc)
        exc.__traceback__ = None  # don't keep the frames alive
        return out


def run_interpreted(func, *args, **kwargs):
    """Runs a fresh copy of `func` with the JIT hook disabled."""
    was = peregrine.is_enabled()
    peregrine.disable()
    try:
        return _call(fresh_function(func), args, kwargs)
    finally:
        if was:
            peregrine.enable()


def run_baseline(func, *args, **kwargs):
    """Runs a fresh copy of `func` compiled by the baseline (threshold 0 for nested code)."""
    return _run_baseline(func, args, kwargs)[0]


def _run_baseline(func, args, kwargs):
    """run_baseline, also returning the compiled copy of `func` it ran."""
    was, thresholds = peregrine.is_enabled(), peregrine.get_thresholds()
    f = fresh_function(func)
    peregrine.compile(f, tier="baseline")
    assert peregrine.tier_of(f) == "baseline", peregrine.tier_of(f)
    peregrine.set_thresholds(baseline=0, optimize="off")
    before = peregrine.stats()["baseline"]["entries"]
    peregrine.enable()
    try:
        out = _call(f, args, kwargs)
    finally:
        if not was:
            peregrine.disable()
        peregrine.set_thresholds(**thresholds)
    entries = peregrine.stats()["baseline"]["entries"] - before
    assert entries > 0, "the baseline was never entered"
    return out, f


def run_both(func, *args, **kwargs):
    """Asserts the interpreter and the baseline agree on `func(*args, **kwargs)`; returns the
    interpreter's Outcome."""
    return _run_both(func, args, kwargs, False)


def run_both_copying(func, *args, **kwargs):
    """As run_both, each run getting its own deep copy of the arguments (for mutating code)."""
    return _run_both(func, args, kwargs, True)


def _run_both(func, args, kwargs, copying):
    return _run_both_keeping_copy(func, args, kwargs, copying)[0]


def _run_both_keeping_copy(func, args, kwargs, copying):
    import copy

    def fresh():
        return copy.deepcopy((args, kwargs)) if copying else (args, kwargs)

    a, k = fresh()
    expected = run_interpreted(func, *a, **k)
    a, k = fresh()
    got, compiled = _run_baseline(func, a, k)
    assert got.key() == expected.key(), f"\ninterpreter: {expected!r}\nbaseline:    {got!r}"
    return expected, compiled


def assert_compiles(func, *args, exits=None, **kwargs):
    """As run_both, then asserts that the baseline run's exits from `func`'s compiled code
    (`peregrine.exits` of the copy) are exactly `exits`, {(dis offset, reason): count}; None or
    {} means it never left compiled code. Returns the interpreter's Outcome."""
    return _run_both_with_exits(func, args, kwargs, exits)[0]


def _run_both_with_exits(func, args, kwargs, exits):
    """run_both, then asserts the compiled copy's exits are `exits`; returns (Outcome, copy)."""
    expected_exits = {} if exits is None else dict(exits)
    expected, compiled = _run_both_keeping_copy(func, args, kwargs, False)
    got = peregrine.exits(compiled)
    assert got == expected_exits, (
        f"\nexits of {func.__qualname__}:\n  expected {expected_exits}\n  got      {got}\n"
        + _describe_offsets(func, set(got) | set(expected_exits)))
    return expected, compiled


def assert_compiles_unless_except_star(func, *args, **kwargs):
    """assert_compiles with no exits, for code without `except*`; run_both for code with it
    (its CHECK_EG_MATCH and PREP_RERAISE_STAR hand the frame to the interpreter)."""
    import dis

    if any(i.opname == "CHECK_EG_MATCH" for i in dis.get_instructions(func)):
        return run_both(func, *args, **kwargs)
    return assert_compiles(func, *args, **kwargs)


def run_both_profiled(func, *args, exits=None, **kwargs):
    """As assert_compiles (results agree, the compiled copy takes exactly `exits`), then returns
    the interpreter's Outcome and `peregrine.profile` of the compiled copy: what its inline
    caches and sites saw."""
    expected, compiled = _run_both_with_exits(func, args, kwargs, exits)
    return expected, peregrine.profile(compiled)


def sites(profile, opname):
    """The profile entries of `opname` sites, in code order."""
    return [s for s in profile if s["opname"] == opname]


def _describe_offsets(func, keys):
    import dis

    names = {i.offset: i.opname for i in dis.get_instructions(func)}
    return "".join(f"  offset {off}: {names.get(off, '?')}\n" for off in sorted({off for off, _ in keys}))


def compiles(func):
    """Whether the baseline accepts `func`'s code (without keeping it compiled: uses a copy)."""
    try:
        peregrine.compile(fresh_function(func), tier="baseline")
        return True
    except peregrine.CompileError:
        return False


def refusal(func):
    """The CompileError message for `func`'s code, or None if it compiles."""
    try:
        peregrine.compile(fresh_function(func), tier="baseline")
        return None
    except peregrine.CompileError as e:
        return str(e)


class Cases:
    """Collects differential cases: decorate a function with `@case(*args, **kwargs)` (stackable
    for several argument sets) and parametrize a test with `case.params` (func, args, kwargs)."""

    def __init__(self):
        self.params = []

    def __call__(self, *args, **kwargs):
        import pytest

        def deco(f):
            n = sum(1 for p in self.params if p.values[0] is f)
            self.params.append(pytest.param(f, args, kwargs, id=f"{f.__name__}-{n}" if n else f.__name__))
            return f

        return deco


__all__ = ["Cases", "run_both", "run_both_copying", "assert_compiles", "run_interpreted", "run_baseline", "fresh_function", "copy_code",
           "compiles", "refusal", "Outcome", "sys"]
