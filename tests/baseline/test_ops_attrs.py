"""Attributes: LOAD_ATTR, STORE_ATTR, DELETE_ATTR (incl. AttributeError and its suggestions),
properties that raise, __getattr__, and LOAD_METHOD on methods, classmethods, staticmethods,
instance attributes holding callables, C methods and modules."""

import math

import pytest

from difftest import Cases, run_both_copying

case = Cases()


class Point:
    cls_attr = "c"

    def __init__(self, x=1, y=2):
        self.x, self.y = x, y

    def norm1(self):
        return abs(self.x) + abs(self.y)

    @classmethod
    def make(cls, v):
        return cls(v, v)

    @staticmethod
    def static(a, b=10):
        return a + b

    @property
    def bad(self):
        raise ValueError("bad property")

    @property
    def good(self):
        return self.x * 100


class Dynamic:
    def __getattr__(self, name):
        if name.startswith("d_"):
            return name[2:]
        raise AttributeError(f"Dynamic has no {name}")


class Slots:
    __slots__ = ("a",)


@case(Point())
def load_attrs(p):
    return p.x, p.y, p.cls_attr, p.good, Point.cls_attr


@case(Point())
def attribute_error_suggestion(p):
    return p.xx


@case(Point())
def attribute_error_caught(p):
    try:
        p.norm
    except AttributeError as e:
        return e.name, e.obj is p, str(e)


@case(Point())
def property_raises(p):
    return p.bad


@case(Dynamic())
def getattr_hook(d):
    return d.d_hello, d.d_


@case(Dynamic())
def getattr_hook_raises(d):
    return d.other


@case(Point())
def store_attrs(p):
    p.x = 10
    p.z = 3
    return p.x, p.z


@case(Slots())
def store_attr_slots_error(s):
    s.a = 1
    s.b = 2


@case(5)
def store_attr_on_int(x):
    x.real = 3


@case(Point())
def delete_attrs(p):
    del p.x
    return hasattr(p, "x")


@case(Point())
def delete_attr_missing(p):
    del p.nope


@case(Slots())
def delete_slot_unset(s):
    del s.a


@case(Point(3, -4))
def load_method_forms(p):
    p.fn = lambda v: v * 2
    return (p.norm1(), Point.make(2).y, p.make(3).x, p.static(1), Point.static(1, b=2), p.fn(21),
            "a,b".split(","), [3, 1].index(1), math.floor(2.5), Point.norm1(p))


@case(Point())
def load_method_missing(p):
    return p.missing_method(1)


@case([1, 2])
def load_method_c_method_raises(lst):
    return lst.index(99)


@case("abc")
def load_method_wrong_args(s):
    return s.upper(1)


@case(None)
def load_attr_on_none(x):
    return x.anything


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_attrs(func, args, kwargs):
    run_both_copying(func, *args, **kwargs)
