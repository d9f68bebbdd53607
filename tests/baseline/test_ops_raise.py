"""LOAD_ASSERTION_ERROR and RAISE_VARARGS: assert statements (with and without messages),
raise X, raise X(...), raise X from Y, raise from None, bare raise inside except, and errors of
raise itself."""

import pytest

from difftest import Cases, assert_compiles_unless_except_star

case = Cases()


@case(1)
@case(0)
def assert_plain(x):
    assert x
    return "passed"


@case(0)
def assert_message(x):
    assert x, f"x was {x!r}"


@case(0)
def assert_message_raises(x):
    assert x, 1 // x


@case()
def raise_class():
    raise KeyError


@case()
def raise_instance():
    raise ValueError("v", 2)


@case()
def raise_from():
    raise ValueError("outer") from KeyError("cause")


@case()
def raise_from_none():
    try:
        {}["k"]
    except KeyError:
        raise ValueError("no context") from None


@case()
def raise_in_except_sets_context():
    try:
        1 / 0
    except ZeroDivisionError:
        raise RuntimeError("during handling")


@case()
def bare_reraise():
    try:
        [][1]
    except IndexError:
        raise


@case()
def bare_raise_without_active_exception():
    raise


@case()
def raise_non_exception():
    raise 5


@case()
def raise_from_non_exception():
    raise ValueError from 5


@case()
def raise_class_whose_init_fails():
    raise UnicodeDecodeError  # instantiating it without arguments fails


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_raise(func, args, kwargs):
    # Unwound and handled in compiled code: the frame never leaves it.
    assert_compiles_unless_except_star(func, *args, **kwargs)
