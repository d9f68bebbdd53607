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


@pytest.mark.parametrize("func, args, kwargs", case.params)
def test_release_order(func, args, kwargs):
    out = run_both(func, *args, **kwargs)
    assert out.kind == "return", out
