"""Locals, constants and the value stack: LOAD_FAST (incl. UnboundLocalError), STORE_FAST,
DELETE_FAST, LOAD_CONST, POP_TOP, COPY, SWAP, PUSH_NULL, EXTENDED_ARG."""

import pytest

from difftest import Cases, run_both

case = Cases()


@case(3)
@case("s")
def load_store(x):
    y = x
    z = y
    y = None
    return z, y, x


@case()
def unbound_local():
    print(a)  # noqa: F821
    a = 1


@case(False)
@case(True)
def unbound_local_conditional(flag):
    if flag:
        v = 1
    return v


@case()
def delete_fast():
    a = [1]
    b = a
    del a
    return b


@case()
def delete_fast_twice():
    a = 1
    del a
    del a


@case()
def delete_then_load():
    a = 1
    del a
    return a


# Where the baseline drops LOAD_FAST's unbound test (baseline/src/bound_locals.rs: bound on
# every path to it), and where it must keep it: exception edges, loops, deleted parameters.
@case(0)
@case(1)
def bound_in_try_unbound_in_handler(n):
    try:
        1 / n
        r = 1
    except ZeroDivisionError:
        return r  # noqa: F821 (unbound: the handler is reached before the store)
    return r


@case(0)
@case(1)
def bound_unless_the_try_raised(n):
    try:
        r = 1 / n
    except ZeroDivisionError:
        pass
    return r  # unbound after the handler


@case(3)
def deleted_at_the_end_of_each_iteration(n):
    out = []
    for i in range(n):
        if i == 2:
            return out, x  # noqa: F821 (deleted by the previous iteration)
        x = i
        out.append(x)
        del x
    return out


@case(5)
def deleted_parameter(a):
    b = a
    del a
    return b, a  # noqa: F821


@case(True)
@case(False)
def bound_after_loop_maybe_empty(flag):
    for i in range(1 if flag else 0):
        pass
    return i  # unbound when the loop ran no iteration


@case(2)
def bound_on_both_branches(n):
    if n > 1:
        v = "big"
    else:
        v = "small"
    return v, n


@case()
def consts_of_all_kinds():
    return (None, True, False, 1, -1, 2**70, 1.5, 1j, "s", b"b", (1, (2, "x")), frozenset({1}), ...)


@case()
def pop_top_calls():
    len("abc")
    abs(-1)
    return 1


class Box:
    def __init__(self):
        self.v = 1


@case([1, 2], 0)
@case({"k": 1}, "k")
def copy_swap_augassign_subscr(c, k):
    c[k] += 10  # COPY 2, BINARY_SUBSCR, BINARY_OP, SWAP 3, SWAP 2, STORE_SUBSCR
    return c


@case()
def copy_swap_augassign_attr():
    b = Box()
    b.v += 5
    b.v *= 3
    return b.v


@case([1], 5)
@case((1,), 0)
@case(None, 0)
def augassign_subscr_errors(c, k):
    c[k] += 1
    return c


@case(1, 2, 3)
@case(5, 4, 3)
@case(1, 1, "a")
def chained_comparison(a, b, c):  # COPY/SWAP
    return a < b < c, a == b != c


@case(1, 2)
def swap_assignment(a, b):
    a, b = b, a
    a, b, c = b, a, a
    return a, b, c


@case()
def push_null_calls():
    return len([1, 2]), max(1, 2), str(3)


def _many_locals_source(n):
    lines = ["def many_locals(flag):"]
    lines += [f"    v{i} = {i}" for i in range(n - 1)]
    lines += ["    if flag:", f"        v{n - 1} = 1", f"    return v0 + v{n - 2} + v{n - 1}"]
    return "\n".join(lines)


_ns = {}
exec(compile(_many_locals_source(300), __file__, "exec"), _ns)  # EXTENDED_ARG on LOAD/STORE_FAST
many_locals = _ns["many_locals"]
case(True)(many_locals)
case(False)(many_locals)  # UnboundLocalError on a local whose index needs EXTENDED_ARG


def _many_consts_source(n):
    body = " + ".join(f"{i}.5" for i in range(n))
    return f"def many_consts(x):\n    y = {body}\n    return y + x\n"


_ns2 = {}
exec(compile(_many_consts_source(300), __file__, "exec"), _ns2)
many_consts = _ns2["many_consts"]
case(1)(many_consts)
case("a")(many_consts)  # TypeError after an EXTENDED_ARG LOAD_CONST


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_locals(func, args, kwargs):
    run_both(func, *args, **kwargs)
