"""Calls: PRECALL/CALL with positional and keyword arguments (KW_NAMES), bound methods,
builtins, classes, callables that raise, wrong signatures, and frames seen from callees."""

import sys

import pytest

from difftest import Cases, run_both

case = Cases()


def add(a, b=2, *, c=3):
    return a + b + c


def raiser(exc):
    raise exc


class Callable:
    def __call__(self, x, y=0):
        return ("called", x, y)


class Obj:
    def meth(self, a, b=0):
        return ("meth", a, b)


@case()
def positional_and_keywords():
    return add(1), add(1, 2), add(1, b=5), add(a=1, c=0), add(1, 2, c=10), add(b=1, a=2)


@case()
def builtins_and_classes():
    return len("abc"), sorted([3, 1], reverse=True), dict(a=1), int("10", base=2), Obj().meth(1, b=2)


@case()
def bound_method_object():
    m = Obj().meth  # a bound method called through a local: PRECALL unpacks it
    return m(1), m(1, b=3), m(a=4)


@case()
def callable_instance():
    c = Callable()
    return c(1), c(2, y=3)


@case()
def wrong_signature_missing():
    return add()


@case()
def wrong_signature_unexpected_kw():
    return add(1, d=4)


@case()
def wrong_signature_too_many():
    return add(1, 2, 3)


@case()
def call_non_callable():
    x = 5
    return x(1)


@case()
def builtin_raises():
    return int("zz")


@case()
def builtin_raises_kw():
    return sorted([1, "a"], key=None)


@case()
def callee_raises():
    a = 1
    return raiser(KeyError(a)) + 1


@case()
def callee_raises_nested():
    def level1():
        return level2() * 2

    def level2():
        return raiser(ValueError("deep"))
    return level1()


@case()
def caller_frame_visible():
    def who():
        f = sys._getframe(1)
        return f.f_code.co_name, f.f_lineno, sorted(f.f_locals)
    local_a = 1
    return who()


@case()
def f_back_chain():
    def inner():
        f = sys._getframe()
        names = []
        while f is not None and len(names) < 3:
            names.append(f.f_code.co_name)
            f = f.f_back
        return names
    def middle():
        return inner()
    return middle()


@case()
def lambda_calls():
    f = lambda a, b=1, *args, k=2, **kw: (a, b, args, k, sorted(kw))  # noqa: E731
    return f(1), f(1, 2, 3, 4), f(1, k=5, z=6)


@case()
def call_class_init_raises():
    class_ = ZeroDivisionError
    return class_(1, 2).args, int(object())


# KW_NAMES whose constant index needs EXTENDED_ARG (more than 256 constants before it).
_ns = {}
exec(
    "def many_consts_then_kw_call(x):\n"
    "    y = (x + " + " + ".join(f"{i}.5" for i in range(300)) + ")\n"
    "    return add(x, c=y), dict(alpha=1, beta=2), add(x, b=1, c='no')\n",
    {**globals(), "__name__": __name__}, _ns,
)
case(1)(_ns["many_consts_then_kw_call"])


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_calls(func, args, kwargs):
    run_both(func, *args, **kwargs)
