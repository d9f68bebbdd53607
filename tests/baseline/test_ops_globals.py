"""Globals: LOAD_GLOBAL (module hit, builtin, NameError with "Did you mean" suggestions and the
`name` attribute), STORE_GLOBAL, DELETE_GLOBAL (incl. NameError)."""

import pytest

from difftest import Cases, run_both

case = Cases()

GLOBAL_VALUE = 41
counter = 0


@case()
def load_global_hit():
    return GLOBAL_VALUE + 1


@case()
def load_global_builtin():
    return len, abs(-3), min(4, 2)


@case()
def load_global_shadowing_builtin():
    global len
    len = lambda x: "mine"  # noqa: E731
    try:
        return len([1])
    finally:
        del len


@case()
def name_error_plain():
    return qqqqqqqqqqqqqq  # noqa: F821


@case()
def name_error_suggestion():
    return GLOBAL_VALU  # noqa: F821 - "Did you mean: 'GLOBAL_VALUE'?"


@case()
def name_error_builtin_suggestion():
    return lenn([1])  # noqa: F821 - "Did you mean: 'len'?"


@case()
def name_error_attribute():
    try:
        GLOBAL_VALU  # noqa: B018,F821
    except NameError as e:
        return e.name, e.args


@case()
def store_global():
    global counter
    counter = 0
    for _ in range(3):
        counter += 1
    return counter


@case()
def store_then_delete_global():
    global fresh_name
    fresh_name = 5
    v = fresh_name
    del fresh_name
    return v, "fresh_name" in globals()


@case()
def delete_global_missing():
    global never_defined_global
    del never_defined_global


@case()
def delete_global_missing_name_attr():
    global never_defined_globa
    try:
        del never_defined_globa
    except NameError as e:
        return e.name, str(e)


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_globals(func, args, kwargs):
    run_both(func, *args, **kwargs)
