"""Subscripts: BINARY_SUBSCR (incl. raising: IndexError, KeyError, TypeError, __missing__,
__getitem__ raising), STORE_SUBSCR, DELETE_SUBSCR, and slices via BUILD_SLICE."""

import pytest

from difftest import Cases, run_both_copying

case = Cases()


@case([1, 2, 3], 1)
@case([1, 2, 3], -1)
@case([1, 2, 3], 5)
@case((1, 2), "a")
@case({"a": 1}, "a")
@case({"a": 1}, "b")
@case({}, [])
@case("abc", 2)
@case(5, 0)
@case(None, 0)
@case(list, int)
def binary_subscr(c, k):
    return c[k]


class Missing(dict):
    def __missing__(self, key):
        return ("missing", key)


class RaisingItem:
    def __getitem__(self, k):
        raise LookupError(f"no {k}")

    def __setitem__(self, k, v):
        raise ValueError("read-only")

    def __delitem__(self, k):
        raise TypeError("undeletable")


@case(Missing(a=1), "a")
@case(Missing(a=1), "z")
@case(RaisingItem(), 3)
def subscr_custom(c, k):
    return c[k]


@case([0, 0], 1, "x")
@case([0, 0], 2, "x")
@case({}, "k", 1)
@case({}, [], 1)
@case((1,), 0, 1)
@case("s", 0, "t")
@case(RaisingItem(), 0, 0)
def store_subscr(c, k, v):
    c[k] = v
    return c


@case([1, 2, 3], 0)
@case([1, 2, 3], 9)
@case({"a": 1}, "a")
@case({"a": 1}, "b")
@case((1,), 0)
@case(RaisingItem(), 0)
def delete_subscr(c, k):
    del c[k]
    return c


@case(list(range(10)))
@case("abcdefghij")
@case(tuple(range(10)))
def slices(s):
    return s[1:3], s[::2], s[-3:], s[:-3], s[::-1], s[1:8:3], s[5:1], s[None:None:None]


@case(list(range(10)), 0)
@case(list(range(10)), "a")
def slice_step_zero_or_bad(s, step):
    return s[1:5:step]


@case(list(range(6)))
def slice_store_delete(s):
    s[1:3] = list("abc")
    del s[::2]
    s[0:0] = "xy"
    return s


@case(list(range(6)))
def slice_store_extended_wrong_size(s):
    s[::2] = [1]


@case(5)
def slice_non_sliceable(x):
    return x[1:2]


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_subscr(func, args, kwargs):
    run_both_copying(func, *args, **kwargs)
