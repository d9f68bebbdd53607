"""Jumps: POP_JUMP_{FORWARD,BACKWARD}_IF_{TRUE,FALSE,NONE,NOT_NONE}, JUMP_FORWARD/BACKWARD,
JUMP_IF_{TRUE,FALSE}_OR_POP via `and`/`or` chains, with objects whose __bool__/__len__ raise or
return odd values."""

import pytest

from difftest import Cases, run_both

case = Cases()


class Truthy:
    def __init__(self, v):
        self.v = v

    def __bool__(self):
        return self.v

    def __repr__(self):
        return f"T({self.v})"


class BadBool:
    def __bool__(self):
        raise RuntimeError("bool failed")


class BoolReturnsInt:
    def __bool__(self):
        return 1


class LenOnly:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


VALUES = [0, 1, "", "x", None, [], [0], Truthy(True), Truthy(False), LenOnly(0), LenOnly(3), 0.0, float("nan")]


@pytest.mark.parametrize("v", VALUES, ids=repr)
def test_truth_forms(v):
    def forms(v):
        out = []
        if v:
            out.append("if")
        if not v:
            out.append("not")
        if v is None:
            out.append("none")
        if v is not None:
            out.append("notnone")
        out.append(v and "and")
        out.append(v or "or")
        out.append(1 and v and 2)
        out.append(0 or v or 3)
        out.append("t" if v else "f")
        n = 0
        while v and n < 3:  # a backward conditional jump
            n += 1
        out.append(n)
        return [repr(x) for x in out]

    run_both(forms, v)


case = Cases()


@case(BadBool())
def if_bool_raises(v):
    if v:
        return 1
    return 2


@case(BadBool())
def and_bool_raises(v):
    return v and 1


@case(BadBool())
def or_bool_raises(v):
    return v or 1


@case(BadBool())
def not_bool_raises(v):
    return not v


@case(BadBool())
def while_bool_raises(v):
    n = 0
    while n < 5 and v:
        n += 1
    return n


@case(BoolReturnsInt())
@case(LenOnly(-1))
@case(LenOnly(2**70))
def bool_protocol_errors(v):
    if v:
        return "t"
    return "f"


@case(5)
def loops_with_none_jumps(n):
    items = list((None, 1, None, 2)) * n
    out = 0
    for x in items:
        if x is None:
            continue
        out += x
    i = 0
    while items[i] is not None or i < 3:
        i += 1
    return out, i


@case(3)
def long_jumps(n):
    # A body long enough for EXTENDED_ARG on the jumps.
    total = 0
    for i in range(n):
        if i:
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
            total += 1; total += 2; total += 3; total += 4; total += 5; total += 6; total += 7  # noqa: E702
        else:
            total -= 1
    return total + 1 // (n - 3)


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_jumps(func, args, kwargs):
    run_both(func, *args, **kwargs)
