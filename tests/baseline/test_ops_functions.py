"""MAKE_FUNCTION: defaults, keyword-only defaults, annotations, closures, and the functions'
attributes."""

import pytest

from difftest import Cases, run_both

case = Cases()


def describe(f):
    return (f.__name__, f.__qualname__, f.__defaults__, f.__kwdefaults__, f.__annotations__,
            None if f.__closure__ is None else len(f.__closure__), f.__code__.co_name)


@case(1)
def make_plain(x):
    def f(a):
        return a
    return describe(f), f(x)


@case(1)
def make_defaults(x):
    def f(a, b=x, c=[x]):
        return a, b, c
    return describe(f), f(0), f(0, 1, 2)


@case(1)
def make_kwdefaults(x):
    def f(a, *, k=x, j):
        return a, k, j
    return describe(f), f(0, j=2)


@case(1)
def make_annotations(x):
    def f(a: int, b: "str" = "s") -> list:
        return a
    return describe(f)


@case(1)
def make_closure_all_flags(x):
    def f(a: int = x, *, k: str = "k") -> None:
        return a, k, x
    return describe(f), f()


@case(1)
def make_lambda(x):
    g = lambda a=x: a + x  # noqa: E731
    return describe(g), g(), g(5)


@case()
def defaults_evaluation_raises():
    def f(a=1 // 0):
        return a
    return f


@case()
def missing_kwonly_argument():
    def f(*, needed):
        return needed
    return f()


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_functions(func, args, kwargs):
    run_both(func, *args, **kwargs)
