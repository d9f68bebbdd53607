"""Cells and free variables: MAKE_CELL, COPY_FREE_VARS, LOAD_CLOSURE, LOAD_DEREF, STORE_DEREF,
DELETE_DEREF, including unbound cell (UnboundLocalError) and free variable (NameError) errors."""

import pytest

from difftest import Cases, run_both

case = Cases()


@case(1)
def closure_read(x):
    def inner():
        return x + 1
    return inner()


@case()
def closure_write():
    n = 0

    def inc():
        nonlocal n
        n += 1
        return n

    inc()
    inc()
    return n, inc()


@case()
def store_deref_releases_the_old_value():
    log = []

    class D:
        def __init__(self, n):
            self.n = n

        def __del__(self):
            log.append(("released", self.n))

    x = D(0)

    def inner():
        return x.n

    for i in range(1, 4):
        x = D(i)  # STORE_DEREF: the value it replaces is released there, after the store
        log.append(("stored", inner()))
    return log


@case(5)
def argument_cell(a):  # an argument that is also a cell: MAKE_CELL keeps its value
    def get():
        return a
    a += 1
    return get()


@case()
def cell_unbound_in_owner():
    def get():
        return v
    print(v)  # UnboundLocalError from LOAD_DEREF in the owner
    v = 1
    return get


@case()
def free_unbound_in_inner():
    def get():
        return v  # NameError: free variable
    r = get()
    v = 1
    return r


@case()
def delete_deref():
    v = 1

    def get():
        return v
    del v
    try:
        get()
    except NameError as e:
        return str(e)


@case()
def delete_deref_unbound():
    v = 1

    def get():
        return v
    del v
    del v


@case()
def delete_deref_then_load():
    v = 1

    def get():
        return v
    del v
    return v


@case()
def nested_three_levels():
    a = 1

    def mid():
        b = 2

        def inner():
            nonlocal a
            a += b
            return a
        return inner()
    return mid(), a


@case(3)
def closures_in_loop(n):
    fs = []
    for i in range(n):
        fs.append(lambda i=i: i)
    gs = [lambda: i for i in range(n)]
    return [f() for f in fs], [g() for g in gs]


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_cells(func, args, kwargs):
    run_both(func, *args, **kwargs)
