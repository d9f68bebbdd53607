"""UNPACK_SEQUENCE: right length, too few, too many, non-iterables, iterators raising."""

import pytest

from difftest import Cases, run_both_copying

case = Cases()


@case((1, 2))
@case([1, 2])
@case("ab")
@case({"a": 1, "b": 2})
@case(iter([1, 2]))
@case((1,))
@case([1])
@case("a")
@case(iter([]))
@case(5)
@case(None)
@case({"a": 1, "b": 2, "c": 3})  # dicts and other iterables: "(expected 2)" only
@case(iter([1, 2, 3]))
def unpack_two(seq):
    a, b = seq
    return a, b


@case((1, 2, 3))
@case([[1, 2], [3, 4], [5, 6]])
def unpack_three_nested(seq):
    (a, b), c, d = seq if len(seq) == 3 and isinstance(seq[0], list) else ((seq[0], seq[1]), seq[1], seq[2])
    return a, b, c, d


class FailingIter:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return self

    def __next__(self):
        if self.n == 0:
            raise RuntimeError("iterator failed")
        self.n -= 1
        return self.n


class SequenceOnly:
    def __getitem__(self, i):
        if i < 2:
            return i * 10
        raise IndexError


@case(FailingIter(1))  # fails while producing the items
@case(FailingIter(2))  # fails while checking that there is no third item
@case(SequenceOnly())
def unpack_custom(seq):
    a, b = seq
    return a, b


@case()
def unpack_in_for():
    out = []
    for k, v in {"a": 1, "b": 2}.items():
        out.append(k * v)
    for k, v in [(1, 2), (3,)]:
        out.append(k)
    return out


@case()
def unpack_zero():
    () = []
    () = iter([1])  # a list here would hit the message bug below


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_unpack(func, args, kwargs):
    run_both_copying(func, *args, **kwargs)


@pytest.mark.parametrize("seq", [(1, 2, 3), [1, 2, 3]], ids=["tuple", "list"])
def test_unpack_too_many_message_tuple_list(seq):
    def unpack(s):
        a, b = s
        return a, b

    run_both_copying(unpack, seq)


def test_unpack_zero_targets_message():
    def f():
        () = [42]

    run_both_copying(f)
