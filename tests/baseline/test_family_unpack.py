"""Differential tests of the baseline's unpack family against the interpreter.

CALL_FUNCTION_EX, DICT_MERGE, DICT_UPDATE, LIST_EXTEND, SET_UPDATE, UNPACK_EX, BEFORE_WITH,
MATCH_CLASS, MATCH_KEYS, MATCH_MAPPING, MATCH_SEQUENCE: every case runs a fresh copy of a function
in the interpreter (JIT disabled) and another copy compiled by the baseline, and compares the
result, or the exception's type, args and traceback lines inside this file.
"""

import collections
import collections.abc
import dataclasses
import dis
import gc
import sys
import traceback
import types
import weakref

import pytest

import peregrine

THIS_FILE = __file__


# ---------------------------------------------------------------------------------------------
# Harness


@pytest.fixture
def baseline(jit):
    """The JIT on, every code object compiled by the baseline on first call, no optimizer;
    `jit` (tests/conftest.py) restores the previous state and thresholds afterwards."""
    jit.set_thresholds(baseline=0, optimize="off")
    yield jit


def fresh(f):
    """A new function with a new code object (so nothing compiled for `f` carries over)."""
    g = types.FunctionType(f.__code__.replace(), f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    return g


class Fresh:
    """An argument made anew for each run (iterators are consumed by the first run)."""

    def __init__(self, make, *args):
        self.make, self.args = make, args

    def __call__(self):
        return self.make(*self.args)


def materialize(args):
    return tuple(a() if isinstance(a, Fresh) else a for a in args)


def outcome(f, args):
    args = materialize(args)
    try:
        return ("ok", f(*args))
    except Exception as e:  # noqa: BLE001 - every exception is compared
        tb = [(fs.name, fs.lineno) for fs in traceback.extract_tb(e.__traceback__) if fs.filename == THIS_FILE]
        return ("raise", type(e), e.args, tb)


def run_interpreted(f, args):
    g = fresh(f)
    was = peregrine.is_enabled()
    peregrine.disable()
    try:
        return outcome(g, args)
    finally:
        if was:
            peregrine.enable()
    # (g was never compiled: the JIT was off for its whole life.)


def run_baseline(f, args):
    g = fresh(f)
    peregrine.compile(g, tier="baseline")
    assert peregrine.tier_of(g) == "baseline"
    before = peregrine.stats()["baseline"]["entries"]
    got = outcome(g, args)
    assert peregrine.stats()["baseline"]["entries"] > before, "the compiled code never ran"
    assert peregrine.tier_of(g) == "baseline"
    return got


def check(f, *args):
    """Runs `f(*args)` in the interpreter and in the baseline; returns the shared outcome."""
    expected = run_interpreted(f, args)
    got = run_baseline(f, args)
    assert got == expected
    return got


def uses(f, *opnames):
    """Asserts the test function really contains the opcodes it is meant to test."""
    ops = {i.opname for i in dis.get_instructions(f)}
    missing = set(opnames) - ops
    assert not missing, f"{f.__name__} does not use {missing}"


# ---------------------------------------------------------------------------------------------
# Helpers the tested code calls


def collect(*args, **kwargs):
    return args, sorted(kwargs.items())


def only_x(x):
    return x


def gen(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("generator failed", i)
        yield i


class Mapping:
    """A mapping through keys() and __getitem__ only (not a dict)."""

    def __init__(self, d):
        self.d = d

    def keys(self):
        return list(self.d)

    def __getitem__(self, k):
        return self.d[k]


class KeysRaise:
    def keys(self):
        raise AttributeError("inner attribute error")

    def __getitem__(self, k):
        return k


class KeysRaiseValue:
    def keys(self):
        raise ValueError("keys failed")


class GetItemOnly:
    """Iterable through the old sequence protocol."""

    def __getitem__(self, i):
        if i < 3:
            return i * 10
        raise IndexError(i)


class BadIter:
    def __iter__(self):
        return 42  # not an iterator


class Obj:
    def m(self, *args, **kwargs):
        return ("m", args, sorted(kwargs.items()))


# ---------------------------------------------------------------------------------------------
# CALL_FUNCTION_EX and DICT_MERGE


def call_star(a):
    return collect(*a)


def call_star_kw(a, k):
    return collect(*a, **k)


def call_mixed(a, k, b):
    return collect(1, *a, 2, x=1, **k, y=2, **b)


def call_only_kw(k):
    return collect(**k)


def call_method_star(o, a, k):
    return o.m(*a, **k)


def call_builtin_star(a):
    return max(*a)


def call_builtin_kw(k):
    return dict(**k)


def call_type_star(a):
    return tuple(*a)


def call_dup(k):
    return collect(x=1, **k)


def call_dup_two(a, b):
    return collect(**a, **b)


def call_only_x(k):
    return only_x(**k)


def call_star_gen(n, fail_at):
    return collect(*gen(n, fail_at))


def call_lambda_star(a):
    f = lambda *xs: sum(xs)  # noqa: E731
    return f(*a)


def call_raises_inside(a):
    return only_x(*a)


def test_call_function_ex_uses_its_opcodes():
    uses(call_star, "CALL_FUNCTION_EX")
    uses(call_star_kw, "CALL_FUNCTION_EX", "DICT_MERGE")
    uses(call_mixed, "CALL_FUNCTION_EX", "DICT_MERGE", "LIST_EXTEND")
    uses(call_dup_two, "CALL_FUNCTION_EX", "DICT_MERGE")


@pytest.mark.parametrize(
    "f, args",
    [
        (call_star, ((1, 2, 3),)),
        (call_star, ([1, 2],)),
        (call_star, ((),)),
        (call_star, ("abc",)),
        (call_star, ({"k": 1},)),
        (call_star, (range(4),)),
        (call_star, (GetItemOnly(),)),
        (call_star, (Fresh(iter, [5, 6]),)),
        (call_star, (1,)),  # not iterable
        (call_star, (None,)),
        (call_star, (BadIter(),)),  # iter() returned non-iterator
        (call_star_kw, ((1,), {"a": 1, "b": 2})),
        (call_star_kw, ([1], Mapping({"a": 1}))),
        (call_star_kw, ((), collections.OrderedDict(z=1))),
        (call_star_kw, ((), 5)),  # not a mapping
        (call_star_kw, ((), [1, 2])),  # not a mapping
        (call_star_kw, ((), KeysRaise())),  # AttributeError inside keys(): reported as "not a mapping"
        (call_star_kw, ((), KeysRaiseValue())),
        (call_star_kw, ((), {1: 2})),  # keywords must be strings
        (call_star_kw, ((), Mapping({1: 2}))),
        (call_star_kw, (7, 5)),  # both bad: ** is checked first
        (call_star_kw, (7, {})),
        (call_mixed, ((3,), {"k": 1}, {"b": 2})),
        (call_mixed, ((3,), {"x": 1}, {})),  # duplicate x
        (call_mixed, ((3,), {}, {"y": 9})),  # duplicate y
        (call_mixed, ((3,), {"k": 1}, {"k": 2})),  # duplicate k across two **
        (call_mixed, (None, {}, {})),  # Value after * must be an iterable
        (call_mixed, ((), {}, 3)),
        (call_only_kw, ({},)),
        (call_only_kw, ({"q": 1},)),
        (call_only_kw, (Mapping({"q": 2}),)),
        (call_only_kw, (object(),)),
        (call_method_star, (Obj(), (1, 2), {"z": 3})),
        (call_method_star, (Obj(), 1, {})),
        (call_method_star, (Obj(), (), 1)),
        (call_builtin_star, ((3, 9, 2),)),
        (call_builtin_star, ((),)),  # max() error from C
        (call_builtin_star, (3,)),
        (call_builtin_kw, ({"a": 1},)),
        (call_builtin_kw, (Mapping({"a": 1}),)),
        (call_builtin_kw, (1,)),
        (call_type_star, (([1, 2],),)),
        (call_type_star, (1,)),
        (call_dup, ({"x": 2},)),
        (call_dup, (Mapping({"x": 2}),)),
        (call_dup, ({"y": 2},)),
        (call_dup_two, ({"a": 1}, {"b": 2})),
        (call_dup_two, ({"a": 1}, {"a": 2})),
        (call_dup_two, ({"a": 1}, Mapping({"a": 2}))),
        (call_dup_two, ({"a": 1}, 2)),
        (call_dup_two, (2, {"a": 1})),
        (call_only_x, ({"x": 5},)),
        (call_only_x, ({"y": 5},)),  # unexpected keyword argument
        (call_only_x, ({},)),
        (call_star_gen, (3, None)),
        (call_star_gen, (3, 1)),  # generator raises while the tuple is built
        (call_lambda_star, ((1, 2, 3),)),
        (call_raises_inside, ((1, 2),)),  # the callee raises TypeError
    ],
)
def test_call_function_ex(baseline, f, args):
    check(f, *args)


def test_call_function_ex_error_messages(baseline):
    r = check(call_star, 1)
    assert r[1] is TypeError and "argument after * must be an iterable, not int" in r[2][0]
    r = check(call_star_kw, (), 5)
    assert r[1] is TypeError and "argument after ** must be a mapping, not int" in r[2][0]
    r = check(call_dup, {"x": 2})
    assert r[1] is TypeError and "got multiple values for keyword argument 'x'" in r[2][0]
    r = check(call_dup_two, {"a": 1}, {"a": 2})
    assert r[1] is TypeError and "got multiple values for keyword argument 'a'" in r[2][0]
    r = check(call_mixed, None, {}, {})
    assert r[1] is TypeError and r[2][0] == "Value after * must be an iterable, not NoneType"


def test_call_function_ex_releases_its_operands(baseline):
    """No reference is kept to the * and ** arguments on success or on error."""

    class Box:
        pass

    def run(f, *makers):
        # The operands are made here, so no caller's frame holds them.
        g = fresh(f)
        peregrine.compile(g, tier="baseline")
        args = [m() for m in makers]
        refs = [weakref.ref(a) for a in args]
        outcome(g, args)
        del args
        gc.collect()
        return [r() for r in refs]

    class Seq(list):
        pass

    class Map(dict):
        pass

    seq, m = (lambda: Seq([1])), (lambda: Map(a=1))
    assert run(call_star_kw, seq, m) == [None, None]
    assert run(call_star_kw, seq, lambda: Map(x=1, y=2)) == [None, None]
    assert run(call_dup, lambda: Map(x=2)) == [None]
    assert run(call_star_kw, Box, m) == [None, None]
    assert run(call_star_kw, seq, Box) == [None, None]


def test_call_function_ex_refcounts(baseline):
    a, k = (object(), object()), {"x": object()}

    def counts():
        return [sys.getrefcount(o) for o in (a, k, a[0], a[1], k["x"])]

    g = fresh(call_star_kw)
    peregrine.compile(g, tier="baseline")
    g(a, {})
    before = counts()
    for _ in range(50):
        g(a, k)
        outcome(g, (a, 1))
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# LIST_EXTEND, SET_UPDATE, DICT_UPDATE


def list_display(a, b):
    return [*a, 0, *b]


def tuple_display(a, b):
    return (*a, *b)


def set_display(a, b):
    return {*a, *b}


def set_display_mixed(a):
    return {1, *a, 2}


def dict_display(a, b):
    return {**a, "k": 0, **b}


def dict_display_one(a):
    return {**a}


def test_display_uses_its_opcodes():
    uses(list_display, "LIST_EXTEND")
    uses(tuple_display, "LIST_EXTEND", "LIST_TO_TUPLE")
    uses(set_display, "SET_UPDATE")
    uses(dict_display, "DICT_UPDATE")


@pytest.mark.parametrize(
    "f, args",
    [
        (list_display, ([1], (2, 3))),
        (list_display, ("ab", range(2))),
        (list_display, (Fresh(gen, 3), {"k": 1})),
        (list_display, (GetItemOnly(), [])),
        (list_display, (1, [])),  # Value after * must be an iterable, not int
        (list_display, ([], None)),
        (list_display, ([], BadIter())),
        (list_display, ([], Fresh(gen, 3, 2))),
        (tuple_display, ([1], (2,))),
        (tuple_display, ((), 3.5)),
        (set_display, ([1, 2], (2, 3))),
        (set_display, ("aa", {"b": 1})),
        (set_display, (1, [])),  # 'int' object is not iterable
        (set_display, ([], [[1]])),  # unhashable
        (set_display, ([], Fresh(gen, 2, 1))),
        (set_display_mixed, ((3,),)),
        (set_display_mixed, (None,)),
        (dict_display, ({"a": 1}, {"b": 2})),
        (dict_display, ({"k": 1}, {"k": 2})),  # later wins, no error
        (dict_display, (Mapping({"a": 1}), {})),
        (dict_display, ({}, [("p", 1)])),  # a list: 'list' object is not a mapping
        (dict_display, ({}, 1)),
        (dict_display, ({}, KeysRaise())),
        (dict_display, ({}, KeysRaiseValue())),
        (dict_display, ({}, Mapping({"a": 1, "b": 2}))),
        (dict_display_one, ({"a": 1},)),
        (dict_display_one, (None,)),
        (dict_display_one, (collections.Counter("aab"),)),
    ],
)
def test_displays(baseline, f, args):
    check(f, *args)


def test_display_error_messages(baseline):
    assert check(list_display, 1, [])[2] == ("Value after * must be an iterable, not int",)
    assert check(dict_display, {}, 1)[2] == ("'int' object is not a mapping",)
    assert check(set_display, 1, [])[2] == ("'int' object is not iterable",)


# ---------------------------------------------------------------------------------------------
# UNPACK_EX


def unpack_first_star(s):
    a, *b = s
    return a, b


def unpack_star_last(s):
    *a, b = s
    return a, b


def unpack_middle(s):
    a, *b, c = s
    return a, b, c


def unpack_many(s):
    a, b, c, *d, e, f, g = s
    return a, b, c, d, e, f, g


def unpack_only_star(s):
    *a, = s
    return a


def unpack_nested(s):
    (a, *b), *c = s
    return a, b, c


def unpack_for(rows):
    out = []
    for a, *b in rows:
        out.append((a, b))
    return out


def unpack_wide(s):
    (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, *rest, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9) = s
    return a0, a9, rest, b0, b9


def test_unpack_ex_uses_its_opcode():
    for f in (unpack_first_star, unpack_star_last, unpack_middle, unpack_many, unpack_only_star,
              unpack_nested, unpack_for, unpack_wide):
        uses(f, "UNPACK_EX")
    # Both halves of the argument are non-zero somewhere.
    args = {i.arg for f in (unpack_many, unpack_wide) for i in dis.get_instructions(f) if i.opname == "UNPACK_EX"}
    assert any(a & 0xFF and a >> 8 for a in args)


@pytest.mark.parametrize("f", [unpack_first_star, unpack_star_last, unpack_middle, unpack_many,
                               unpack_only_star, unpack_wide])
@pytest.mark.parametrize(
    "s",
    [
        (),
        (1,),
        (1, 2),
        [1, 2, 3],
        tuple(range(6)),
        list(range(7)),
        tuple(range(20)),
        tuple(range(25)),
        "abcdefgh",
        b"xy",
        {"k": 1, "l": 2},
        range(9),
        GetItemOnly(),
        None,  # cannot unpack non-iterable NoneType object
        5,
        BadIter(),
    ],
)
def test_unpack_ex(baseline, f, s):
    check(f, s)


@pytest.mark.parametrize("fail_at", [None, 0, 1, 2, 5, 8])
@pytest.mark.parametrize("f", [unpack_first_star, unpack_middle, unpack_many])
def test_unpack_ex_generator(baseline, f, fail_at):
    check(f, Fresh(gen, 8, fail_at))


@pytest.mark.parametrize(
    "f, s",
    [
        (unpack_nested, ([1, 2], 3, 4)),
        (unpack_nested, ([1], )),
        (unpack_nested, ([], 1)),
        (unpack_nested, (5, 1)),
        (unpack_for, ([[1, 2, 3], (4,), "xy"],)),
        (unpack_for, ([[1], []],)),
    ],
)
def test_unpack_ex_shapes(baseline, f, s):
    check(f, s)


def test_unpack_ex_messages(baseline):
    assert check(unpack_middle, (1,))[2] == ("not enough values to unpack (expected at least 2, got 1)",)
    assert check(unpack_many, (1, 2))[2] == ("not enough values to unpack (expected at least 6, got 2)",)
    assert check(unpack_many, (1, 2, 3, 4))[2] == ("not enough values to unpack (expected at least 6, got 4)",)
    assert check(unpack_middle, 5)[2] == ("cannot unpack non-iterable int object",)


def test_unpack_ex_releases(baseline):
    class Item:
        pass

    items = [Item() for _ in range(5)]
    refs = [weakref.ref(i) for i in items]
    g = fresh(unpack_many)
    peregrine.compile(g, tier="baseline")
    r = outcome(g, (list(items),))  # 5 < 6: error after the starred list was built
    assert r[1] is ValueError
    del items, r
    gc.collect()
    assert [w() for w in refs] == [None] * 5


# ---------------------------------------------------------------------------------------------
# BEFORE_WITH


class CM:
    def __init__(self, log, suppress=False, enter_raises=False):
        self.log, self.suppress, self.enter_raises = log, suppress, enter_raises

    def __enter__(self):
        self.log.append("enter")
        if self.enter_raises:
            raise KeyError("enter")
        return self

    def __exit__(self, t, v, tb):
        self.log.append(("exit", t.__name__ if t else None))
        return self.suppress


class NoEnter:
    def __exit__(self, *a):
        return False


class NoExit:
    def __enter__(self):
        return self


class InstanceOnly:
    def __init__(self):
        self.__enter__ = lambda: 1
        self.__exit__ = lambda *a: None


class EnterDescriptorRaises:
    @property
    def __enter__(self):
        raise AttributeError("from the property")

    def __exit__(self, *a):
        return False


class StaticCM:
    @staticmethod
    def __enter__():
        return "static"

    @classmethod
    def __exit__(cls, *a):
        return None


class ExitNotCallable:
    def __enter__(self):
        return 1

    __exit__ = 5


def with_simple(mgr):
    log = []
    with mgr(log) as m:
        log.append("body")
    return log, type(m).__name__


def with_value(mgr):
    with mgr as v:
        r = v
    return r


def with_suppress(suppress):
    log = []
    with CM(log, suppress=suppress):
        log.append("body")
        raise ValueError("in body")
    log.append("after")
    return log


def with_enter_raises():
    log = []
    with CM(log, enter_raises=True):
        log.append("body")
    return log


def with_nested():
    log = []
    with CM(log) as a, CM(log) as b:
        log.append(a is not b)
    with CM(log):
        with CM(log):
            log.append("inner")
    return log


def with_return_inside(x):
    log = []
    with CM(log):
        if x:
            return log, "early"
    return log, "late"


def with_in_loop(n):
    log = []
    for i in range(n):
        with CM(log):
            if i == 1:
                continue
            log.append(i)
    return log


def test_before_with_uses_its_opcode():
    uses(with_simple, "BEFORE_WITH")
    uses(with_value, "BEFORE_WITH")


@pytest.mark.parametrize(
    "f, args",
    [
        (with_simple, (CM,)),
        (with_value, (CM([]),)),
        (with_value, (NoEnter(),)),
        (with_value, (NoExit(),)),
        (with_value, (InstanceOnly(),)),  # special lookup: instance attributes do not count
        (with_value, (EnterDescriptorRaises(),)),
        (with_value, (StaticCM(),)),
        (with_value, (ExitNotCallable(),)),  # fails only when __exit__ is called
        (with_value, (1,)),
        (with_value, (None,)),
        (with_value, (int,)),  # a type: type(int) has no __enter__
        (with_suppress, (True,)),
        (with_suppress, (False,)),
        (with_enter_raises, ()),
        (with_nested, ()),
        (with_return_inside, (True,)),
        (with_return_inside, (False,)),
        (with_in_loop, (3,)),
    ],
)
def test_before_with(baseline, f, args):
    check(f, *args)


def test_before_with_messages(baseline):
    assert check(with_value, 1)[2] == ("'int' object does not support the context manager protocol",)
    assert check(with_value, NoEnter())[2] == ("'NoEnter' object does not support the context manager protocol",)
    assert check(with_value, NoExit())[2] == (
        "'NoExit' object does not support the context manager protocol (missed __exit__ method)",
    )


def test_before_with_builtin_managers(baseline):
    import threading
    import contextlib

    def locked(lock):
        with lock:
            return lock.locked()

    def nullctx():
        with contextlib.nullcontext(5) as v:
            return v

    def suppress():
        with contextlib.suppress(KeyError):
            {}["x"]
        return "suppressed"

    assert check(locked, threading.Lock()) == ("ok", True)
    assert check(nullctx) == ("ok", 5)
    assert check(suppress) == ("ok", "suppressed")


def test_before_with_releases_manager(baseline):
    class M:
        def __enter__(self):
            return None

        def __exit__(self, *a):
            return None

    def f(m):
        with m:
            pass

    g = fresh(f)
    peregrine.compile(g, tier="baseline")
    m = M()
    before = sys.getrefcount(m)
    for _ in range(20):
        g(m)
    assert sys.getrefcount(m) == before
    for bad in (NoEnter(), NoExit()):
        before = sys.getrefcount(bad)
        for _ in range(5):
            outcome(g, (bad,))
        assert sys.getrefcount(bad) == before


# ---------------------------------------------------------------------------------------------
# MATCH_CLASS


class Point:
    __match_args__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y


class Point3(Point):
    __match_args__ = ("x", "y", "z")

    def __init__(self, x, y, z):
        super().__init__(x, y)
        self.z = z


class NoArgs:
    def __init__(self):
        self.a = 1


class BadMatchArgs:
    __match_args__ = ["a"]
    a = 1


class NonStrMatchArgs:
    __match_args__ = ("a", 2)
    a = 1


class DupMatchArgs:
    __match_args__ = ("a", "a")
    a = 1


class RaisingAttr:
    __match_args__ = ("boom",)

    @property
    def boom(self):
        raise KeyError("boom")


class MissingAttr:
    __match_args__ = ("nope",)


@dataclasses.dataclass
class DC:
    a: int
    b: str = "b"


class MatchArgsRaises(type):
    @property
    def __match_args__(cls):
        raise RuntimeError("metaclass property")


class Meta(metaclass=MatchArgsRaises):
    pass


def match_point(p):
    match p:
        case Point(0, 0):
            return "origin"
        case Point(x, 0):
            return ("x-axis", x)
        case Point(0, y=y):
            return ("y-axis", y)
        case Point(x=x, y=y) if x == y:
            return ("diagonal", x)
        case Point3(a, b, c):
            return ("3d", a, b, c)
        case Point(a, b):
            return ("point", a, b)
        case _:
            return "other"


def match_three(p):
    match p:
        case Point(a, b, c):  # Point has only two __match_args__
            return a, b, c
    return None


def match_noargs(o):
    match o:
        case NoArgs(a=1):
            return "kw"
    match o:
        case NoArgs(1):  # no __match_args__: 0 positional allowed
            return "pos"
    return None


def match_one_positional(o, cls):
    match o:
        case cls(v):
            return ("matched", v)
    return "no"


def match_two_positional(o, cls):
    match o:
        case cls(v, w):
            return ("matched", v, w)
    return "no"


def match_kw_twice(o):
    match o:
        case Point(1, x=1):  # x given positionally and by keyword
            return "yes"
    return "no"


def match_builtins(o):
    match o:
        case bool(b):
            return ("bool", b)
        case int(i):
            return ("int", i)
        case str(s):
            return ("str", s)
        case float(f):
            return ("float", f)
        case tuple(t):
            return ("tuple", t)
        case dict(d):
            return ("dict", d)
        case frozenset(fs):
            return ("frozenset", sorted(fs))
    return "other"


def match_builtin_too_many(o):
    match o:
        case int(a, b):
            return a, b
    return "no"


def match_dataclass(o):
    match o:
        case DC(1, b):
            return ("one", b)
        case DC(a, b="x"):
            return ("x", a)
        case DC(a=a):
            return ("any", a)
    return "no"


def match_missing_attr(o):
    match o:
        case MissingAttr(v):
            return v
        case MissingAttr(zzz=v):
            return v
    return "no"


def test_match_class_uses_its_opcode():
    for f in (match_point, match_noargs, match_one_positional, match_builtins, match_dataclass):
        uses(f, "MATCH_CLASS")


@pytest.mark.parametrize(
    "f, args",
    [
        (match_point, (Point(0, 0),)),
        (match_point, (Point(3, 0),)),
        (match_point, (Point(0, 4),)),
        (match_point, (Point(5, 5),)),
        (match_point, (Point(1, 2),)),
        (match_point, (Point3(1, 2, 3),)),
        (match_point, (Point3(0, 0, 3),)),
        (match_point, (42,)),
        (match_three, (Point(1, 2),)),  # TypeError: accepts 2 positional sub-patterns (3 given)
        (match_three, (7,)),  # not an instance: no error, no match
        (match_noargs, (NoArgs(),)),
        (match_one_positional, (NoArgs(), NoArgs)),  # accepts 0 positional sub-patterns (1 given)
        (match_one_positional, (BadMatchArgs(), BadMatchArgs)),  # must be a tuple (got list)
        (match_one_positional, (NonStrMatchArgs(), NonStrMatchArgs)),
        (match_two_positional, (NonStrMatchArgs(), NonStrMatchArgs)),  # elements must be strings
        (match_two_positional, (DupMatchArgs(), DupMatchArgs)),  # multiple sub-patterns for 'a'
        (match_one_positional, (RaisingAttr(), RaisingAttr)),  # KeyError propagates
        (match_one_positional, (Meta(), Meta)),  # RuntimeError from __match_args__
        (match_one_positional, (5, "notatype")),  # called match pattern must be a type
        (match_one_positional, (5, len)),
        (match_one_positional, (5, int)),
        (match_one_positional, (True, int)),
        (match_two_positional, (5, int)),  # int() accepts 1 positional sub-pattern (2 given)
        (match_kw_twice, (Point(1, 1),)),
        (match_kw_twice, (3,)),
        (match_builtins, (True,)),
        (match_builtins, (3,)),
        (match_builtins, ("s",)),
        (match_builtins, (1.5,)),
        (match_builtins, ((1, 2),)),
        (match_builtins, ({"a": 1},)),
        (match_builtins, (frozenset({3, 1}),)),
        (match_builtins, (None,)),
        (match_builtin_too_many, (1,)),
        (match_builtin_too_many, ("x",)),
        (match_dataclass, (DC(1, "q"),)),
        (match_dataclass, (DC(2, "x"),)),
        (match_dataclass, (DC(3),)),
        (match_dataclass, (Point(1, 2),)),
        (match_missing_attr, (MissingAttr(),)),
    ],
)
def test_match_class(baseline, f, args):
    check(f, *args)


def test_match_class_messages(baseline):
    assert check(match_three, Point(1, 2))[2] == ("Point() accepts 2 positional sub-patterns (3 given)",)
    assert check(match_one_positional, NoArgs(), NoArgs)[2] == ("NoArgs() accepts 0 positional sub-patterns (1 given)",)
    assert check(match_two_positional, 5, int)[2] == ("int() accepts 1 positional sub-pattern (2 given)",)
    assert check(match_one_positional, BadMatchArgs(), BadMatchArgs)[2] == (
        "BadMatchArgs.__match_args__ must be a tuple (got list)",
    )
    assert check(match_two_positional, NonStrMatchArgs(), NonStrMatchArgs)[2] == (
        "__match_args__ elements must be strings (got int)",
    )
    assert check(match_two_positional, DupMatchArgs(), DupMatchArgs)[2] == (
        "DupMatchArgs() got multiple sub-patterns for attribute 'a'",
    )
    assert check(match_kw_twice, Point(1, 1))[2] == ("Point() got multiple sub-patterns for attribute 'x'",)
    assert check(match_one_positional, 5, "notatype")[2] == ("called match pattern must be a type",)


# ---------------------------------------------------------------------------------------------
# MATCH_MAPPING, MATCH_KEYS


class Keys:
    A = "a"
    B = "a"  # equal to A: a runtime duplicate


class GetRaises(dict):
    def get(self, key, default=None):
        raise LookupError("get failed", key)


class GetLogs(collections.abc.Mapping):
    def __init__(self, d, log):
        self.d, self.log = d, log

    def __getitem__(self, k):
        self.log.append(("getitem", k))
        return self.d[k]

    def __iter__(self):
        return iter(self.d)

    def __len__(self):
        return len(self.d)

    def get(self, k, default=None):
        self.log.append(("get", k))
        return self.d.get(k, default)


class NotHashableKey:
    __hash__ = None


class UnhashableKeys:
    K = NotHashableKey()  # a value pattern that cannot go into the set of seen keys


def match_mapping(m):
    match m:
        case {"a": 1, "b": b}:
            return ("ab", b)
        case {"a": a, **rest}:
            return ("a-rest", a, sorted(rest.items()))
        case {}:
            return ("empty-pattern", len(m))
    return "no"


def match_mapping_empty_keys(m):
    match m:
        case {**rest}:
            return sorted(rest.items())
    return "no"


def match_value_keys(m):
    match m:
        case {Keys.A: 1, Keys.B: 2}:
            return "both"
    return "no"


def match_unhashable_key(m):
    match m:
        case {UnhashableKeys.K: 1}:
            return "yes"
    return "no"


def match_logged(m):
    match m:
        case {"x": 1, "y": y}:
            return y
    return "no"


def test_match_mapping_uses_its_opcodes():
    uses(match_mapping, "MATCH_MAPPING", "MATCH_KEYS")
    uses(match_value_keys, "MATCH_MAPPING", "MATCH_KEYS")


@pytest.mark.parametrize(
    "f, args",
    [
        (match_mapping, ({"a": 1, "b": 2},)),
        (match_mapping, ({"a": 1, "b": 2, "c": 3},)),
        (match_mapping, ({"a": 5, "c": 3, "d": 4},)),
        (match_mapping, ({"c": 3},)),
        (match_mapping, ({},)),
        (match_mapping, (collections.OrderedDict(a=1, b=7),)),
        (match_mapping, (collections.defaultdict(int, a=2),)),
        (match_mapping, (collections.Counter(a=1, b=3),)),
        (match_mapping, (types.MappingProxyType({"a": 1, "b": 0}),)),
        (match_mapping, ([("a", 1)],)),  # not a mapping
        (match_mapping, ("ab",)),
        (match_mapping, (GetRaises(a=1),)),  # get() raises
        (match_mapping, (GetLogs({"a": 1, "z": 9}, []),)),
        (match_mapping_empty_keys, ({"q": 1},)),
        (match_mapping_empty_keys, (GetLogs({"q": 2}, []),)),
        (match_mapping_empty_keys, (3,)),
        (match_value_keys, ({"a": 1, "b": 2},)),  # duplicate key at run time: ValueError
        (match_value_keys, ([],)),
        (match_unhashable_key, ({"a": 1},)),  # TypeError: unhashable
    ],
)
def test_match_mapping(baseline, f, args):
    check(f, *args)


def test_match_keys_uses_get_without_missing(baseline):
    def run(runner):
        d = collections.defaultdict(list, x=1)
        log = []
        r = runner(match_logged, (d,))
        m = GetLogs({"x": 1, "y": 2}, log)
        r2 = runner(match_logged, (m,))
        return r, sorted(d), r2, log

    assert run(run_interpreted) == run(run_baseline)
    assert run(run_baseline)[1] == ["x"]  # no "y" created by __missing__


def test_match_keys_message(baseline):
    assert check(match_value_keys, {"a": 1, "b": 2})[2] == ("mapping pattern checks duplicate key ('a')",)


# ---------------------------------------------------------------------------------------------
# MATCH_SEQUENCE


class MySeq(collections.abc.Sequence):
    def __getitem__(self, i):
        return (7, 8)[i]

    def __len__(self):
        return 2


class GetItemNoFlag:
    def __getitem__(self, i):
        return i

    def __len__(self):
        return 2


def match_sequence(s):
    match s:
        case []:
            return "empty"
        case [x]:
            return ("one", x)
        case [1, *rest]:
            return ("starts-1", list(rest))
        case [a, b]:
            return ("two", a, b)
        case [a, *_, z]:
            return ("many", a, z)
    return "no"


def match_str_like(s):
    match s:
        case [*items]:
            return ("seq", items)
        case str() | bytes() | bytearray():
            return ("string", s)
    return "no"


def match_len_raises(s):
    match s:
        case [a, b]:
            return a, b
    return "no"


class LenRaises(list):
    def __len__(self):
        raise OSError("len")


def test_match_sequence_uses_its_opcode():
    uses(match_sequence, "MATCH_SEQUENCE")
    uses(match_str_like, "MATCH_SEQUENCE")


@pytest.mark.parametrize(
    "f, args",
    [
        (match_sequence, ([],)),
        (match_sequence, ((5,),)),
        (match_sequence, ([1, 2, 3],)),
        (match_sequence, ((4, 5),)),
        (match_sequence, (range(10),)),
        (match_sequence, (collections.deque([9, 8, 7]),)),
        (match_sequence, (MySeq(),)),
        (match_sequence, (GetItemNoFlag(),)),  # not flagged as a sequence
        (match_sequence, (memoryview(b"ab"),)),
        (match_sequence, ({1: 2},)),
        (match_sequence, ({1, 2},)),
        (match_sequence, (iter([1]),)),
        (match_str_like, ("abc",)),
        (match_str_like, (b"abc",)),
        (match_str_like, (bytearray(b"ab"),)),
        (match_str_like, ([1, "a"],)),
        (match_str_like, (None,)),
        (match_len_raises, (LenRaises([1, 2]),)),  # GET_LEN raises after MATCH_SEQUENCE
    ],
)
def test_match_sequence(baseline, f, args):
    check(f, *args)


# ---------------------------------------------------------------------------------------------
# Everything at once, run many times (compiled code re-entered, no state carried over)


def everything(n):
    out = []
    for i in range(n):
        a, *b = range(i + 2)
        out.append(collect(*b, **{"i": i}))
        out.append([*b, *"xy"])
        out.append({**{"k": i}, **{"j": -i}})
        with CM([]) as cm:
            out.append(type(cm).__name__)
        match Point(i, 0):
            case Point(x, 0):
                out.append(x)
        match {"a": i}:
            case {"a": v, **r}:
                out.append((v, r))
        match [i, i]:
            case [p, q]:
                out.append(p + q)
    return out


def test_everything_repeated(baseline):
    uses(everything, "CALL_FUNCTION_EX", "DICT_MERGE", "DICT_UPDATE", "LIST_EXTEND", "UNPACK_EX",
         "BEFORE_WITH", "MATCH_CLASS", "MATCH_KEYS", "MATCH_MAPPING", "MATCH_SEQUENCE")
    expected = run_interpreted(everything, (30,))
    got = run_baseline(everything, (30,))
    assert got == expected
    assert got[0] == "ok"


def test_malformed_arguments_are_refused(baseline):
    """CALL_FUNCTION_EX with an argument the compiler never emits is refused, not compiled."""

    def f(a):
        return collect(*a)

    code = f.__code__
    raw = bytearray(code.co_code)
    op = dis.opmap["CALL_FUNCTION_EX"]
    for i in range(0, len(raw), 2):
        if raw[i] == op:
            raw[i + 1] = 2
    bad = types.FunctionType(code.replace(co_code=bytes(raw)), f.__globals__)
    with pytest.raises(peregrine.CompileError):
        peregrine.compile(bad, tier="baseline")

    def g(a, b):
        return [*a, *b]

    raw = bytearray(g.__code__.co_code)
    op = dis.opmap["LIST_EXTEND"]
    for i in range(0, len(raw), 2):
        if raw[i] == op:
            raw[i + 1] = 0
    bad = types.FunctionType(g.__code__.replace(co_code=bytes(raw)), g.__globals__)
    with pytest.raises(peregrine.CompileError):
        peregrine.compile(bad, tier="baseline")
