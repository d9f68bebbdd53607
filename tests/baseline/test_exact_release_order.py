"""The order in which container-building and unpacking opcodes compare, hash and release their
operands, on their normal and error paths, and the references CALL_FUNCTION_EX keeps, as stock
CPython 3.11 does them (Python/ceval.c). Objects whose __hash__/__eq__/__del__ log their calls
make the order visible; sys.getrefcount makes kept references visible; sys.getsizeof shows how a
dict display was presized."""

import dis
import sys
import types

import pytest

from difftest import Cases, run_both

case = Cases()


class Item:
    """Hashable; logs hashing, comparison and destruction. Equal when the hashes are equal."""

    def __init__(self, name, h, log):
        self.name, self.h, self.log = name, h, log

    def __hash__(self):
        self.log.append(("hash", self.name))
        return self.h

    def __eq__(self, other):
        self.log.append(("eq", self.name, getattr(other, "name", None)))
        return isinstance(other, Item) and self.h == other.h

    def __del__(self):
        self.log.append(("del", self.name))


class Unhashable:
    __hash__ = None

    def __init__(self, name, log):
        self.name, self.log = name, log

    def __del__(self):
        self.log.append(("del", self.name))


class BadHash(Item):
    def __hash__(self):
        self.log.append(("hash", self.name))
        raise KeyError(self.name)


def _outcome(log, body):
    try:
        body()
    except Exception as e:  # noqa: BLE001 - the exception is part of what is compared
        log.append(("raised", type(e).__name__, str(e)))
    return log


# ---------------------------------------------------------------------------------------------
# BUILD_SET: ceval adds the items first to last and releases each one right after adding it; on
# an error it goes on releasing the rest (without adding them), then releases the set.


@case()
def build_set_unhashable_middle():
    log = []

    def body():
        {Item("a", 1, log), Item("b", 2, log), Unhashable("c", log), Item("d", 4, log)}

    return _outcome(log, body)


@case()
def build_set_unhashable_first():
    log = []

    def body():
        {Unhashable("a", log), Item("b", 2, log), Item("c", 3, log)}

    return _outcome(log, body)


@case()
def build_set_unhashable_last():
    log = []

    def body():
        {Item("a", 1, log), Item("b", 2, log), Unhashable("c", log)}

    return _outcome(log, body)


@case()
def build_set_hash_raises():
    log = []

    def body():
        {Item("a", 1, log), BadHash("b", 2, log), Item("c", 3, log), Item("d", 4, log)}

    return _outcome(log, body)


@case()
def build_set_duplicates():
    # An item equal to one already in the set is not added, so releasing it destroys it at once.
    log = []
    s = {Item("a", 1, log), Item("a2", 1, log), Item("b", 2, log), Item("b2", 2, log), Item("c", 3, log)}
    log.append(("built", len(s)))
    del s
    return log


@case()
def build_set_duplicates_then_unhashable():
    log = []

    def body():
        {Item("a", 1, log), Item("a2", 1, log), Unhashable("u", log), Item("b", 2, log)}

    return _outcome(log, body)


# ---------------------------------------------------------------------------------------------
# UNPACK_SEQUENCE and UNPACK_EX: on an error, ceval releases the values already unpacked from
# the last one unpacked to the first, then the iterator, then the sequence.


def items(log, n, fail_after=None):
    """A generator (not a list or tuple: those take another path) of n logging items; raises
    RuntimeError after `fail_after` items if given."""
    for i in range(n):
        if i == fail_after:
            raise RuntimeError(f"stopped after {i}")
        yield Item(f"i{i}", i, log)
    log.append(("exhausted",))


@case()
def unpack_sequence_not_enough():
    log = []

    def body():
        a, b, c, d = items(log, 3)

    return _outcome(log, body)


@case()
def unpack_sequence_iterator_raises():
    log = []

    def body():
        a, b, c, d = items(log, 4, fail_after=2)

    return _outcome(log, body)


@case()
def unpack_sequence_too_many():
    log = []

    def body():
        a, b, c = items(log, 4)

    return _outcome(log, body)


@case()
def unpack_sequence_ok():
    log = []
    a, b, c = items(log, 3)
    log.append(("unpacked",))
    del b, a, c
    return log


@case()
def unpack_ex_not_enough_before_star():
    log = []

    def body():
        a, b, c, *rest = items(log, 2)

    return _outcome(log, body)


@case()
def unpack_ex_not_enough_after_star():
    log = []

    def body():
        a, b, *rest, c, d, e = items(log, 4)

    return _outcome(log, body)


@case()
def unpack_ex_iterator_raises_in_star():
    log = []

    def body():
        a, b, *rest, c = items(log, 5, fail_after=3)

    return _outcome(log, body)


@case()
def unpack_ex_iterator_raises_before_star():
    log = []

    def body():
        a, b, c, *rest = items(log, 5, fail_after=2)

    return _outcome(log, body)


# ---------------------------------------------------------------------------------------------
# CALL_FUNCTION_EX: when the `*` argument is not iterable, or iterating it fails, ceval 3.11
# leaves the `**` dict it popped unreleased (a leak in CPython 3.11). The dict and its contents
# then stay referenced: the baseline keeps them too.


def callee(*args, **kwargs):
    return args, kwargs


class FailingIterable:
    def __iter__(self):
        raise ValueError("no iteration today")


@case()
def call_ex_star_not_iterable_keeps_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    try:
        callee(*1, k=value)
    except TypeError as e:
        msg = str(e)
    return sys.getrefcount(value) - before, msg


@case()
def call_ex_star_iteration_fails_keeps_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    try:
        callee(*FailingIterable(), **{"k": value})
    except ValueError as e:
        msg = str(e)
    return sys.getrefcount(value) - before, msg


@case()
def call_ex_ok_releases_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    r = callee(*(1, 2), k=value)
    del r
    return sys.getrefcount(value) - before


def _without_dict_merge(func):
    """`func` with its `BUILD_MAP 0; LOAD_FAST d; DICT_MERGE 1` (how the compiler copies a `**`
    argument) turned into `NOP; LOAD_FAST d; NOP`, so CALL_FUNCTION_EX gets the mapping itself,
    as hand-written bytecode can give it."""
    code = bytearray(func.__code__.co_code)
    op = dis.opmap
    for i in range(0, len(code) - 4, 2):
        if (code[i], code[i + 1]) == (op["BUILD_MAP"], 0) and code[i + 2] == op["LOAD_FAST"] \
                and (code[i + 4], code[i + 5]) == (op["DICT_MERGE"], 1):
            code[i:i + 2] = bytes((op["NOP"], 0))
            code[i + 4:i + 6] = bytes((op["NOP"], 0))
            break
    else:  # pragma: no cover - the compiler changed
        raise AssertionError("no BUILD_MAP 0; LOAD_FAST; DICT_MERGE 1 in " + func.__name__)
    f = types.FunctionType(func.__code__.replace(co_code=bytes(code)), func.__globals__, func.__name__)
    f.__qualname__ = func.__qualname__
    return f


class Mapping:
    """A mapping that is not a dict: CALL_FUNCTION_EX copies it into a new dict."""

    def __init__(self, **items):
        self.items = items

    def keys(self):
        return self.items.keys()

    def __getitem__(self, key):
        return self.items[key]


def _call_ex_raw(star, kw):
    return callee(*star, **kw)


call_ex_raw = _without_dict_merge(_call_ex_raw)


def call_ex_raw_refcounts(star, make_kw):
    value = ["kwarg value"]
    kw = make_kw(value)
    before = sys.getrefcount(kw), sys.getrefcount(value)
    try:
        r = call_ex_raw(star, kw)
        del r
        msg = None
    except Exception as e:  # noqa: BLE001
        msg = (type(e).__name__, str(e))
    return sys.getrefcount(kw) - before[0], sys.getrefcount(value) - before[1], msg


def make_dict(value):
    return {"k": value}


def make_mapping(value):
    return Mapping(k=value)


def test_raw_call_ex_gets_the_mapping_itself():
    # The patched bytecode does what the tests below rely on.
    assert call_ex_raw((1,), Mapping(k=2)) == ((1,), {"k": 2})
    ops = [i.opname for i in dis.get_instructions(call_ex_raw)]
    assert "DICT_MERGE" not in ops and "CALL_FUNCTION_EX" in ops


@pytest.mark.parametrize("star", [1, FailingIterable(), (1, 2)], ids=["not-iterable", "iter-fails", "tuple"])
@pytest.mark.parametrize("make_kw", [make_dict, make_mapping], ids=["dict", "mapping"])
def test_call_ex_kwargs_references(star, make_kw):
    # An exact dict is used as it is: on the two error paths ceval keeps the reference it popped.
    # Another mapping is copied and released at once: ceval keeps the copy, so its values.
    out = run_both(call_ex_raw_refcounts, star, make_kw)
    assert out.kind == "return"
    kept = 0 if isinstance(star, tuple) else 1
    dict_kept, value_kept = (kept, 0) if make_kw is make_dict else (0, kept)
    assert out.value[:2] == (dict_kept, value_kept), out.value


@case()
def call_ex_raw_not_a_mapping():
    try:
        return call_ex_raw((1,), 5)
    except TypeError as e:
        return str(e)


@case()
def call_ex_raw_duplicate_keyword():
    class Twice:
        def keys(self):
            return ["k", "k"]

        def __getitem__(self, key):
            return 1

    try:
        return call_ex_raw((1,), Twice())
    except TypeError as e:
        return str(e)


@pytest.mark.parametrize("func, args, kwargs", case.params)
def test_release_order(func, args, kwargs):
    out = run_both(func, *args, **kwargs)
    assert out.kind == "return", out
