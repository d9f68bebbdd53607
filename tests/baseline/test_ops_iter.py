"""Iteration: GET_ITER (incl. non-iterables and bad __iter__), FOR_ITER (normal, exhaustion,
iterator raising mid-way, generators, break/continue, nested loops)."""

import pytest

from difftest import Cases, run_both_copying

case = Cases()


@case([1, 2, 3])
@case("abc")
@case({"a": 1, "b": 2})
@case(range(0))
@case(range(5))
def for_loop(it):
    out = []
    for x in it:
        out.append(x)
    return out


@case(5)
@case(None)
@case(1.5)
def get_iter_non_iterable(x):
    for _ in x:
        pass


class BadIter:
    def __iter__(self):
        return 5


class IterRaises:
    def __iter__(self):
        raise OSError("no iteration")


class Countdown:
    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __iter__(self):
        return self

    def __next__(self):
        if self.n == self.fail_at:
            raise LookupError(f"failed at {self.n}")
        if self.n == 0:
            raise StopIteration
        self.n -= 1
        return self.n


@case(BadIter())
@case(IterRaises())
def get_iter_errors(x):
    for _ in x:
        pass


@case(Countdown(5))
@case(Countdown(5, fail_at=2))
def custom_iterator(it):
    total = []
    for v in it:
        total.append(v)
    return total


@case(Countdown(5, fail_at=2))
def custom_iterator_caught(it):
    total = []
    try:
        for v in it:
            total.append(v)
    except LookupError as e:
        total.append(str(e))
    return total


def gen(n, fail=False):
    for i in range(n):
        yield i
    if fail:
        raise ValueError("generator failed")


@case(4, False)
@case(4, True)
def iterate_generator(n, fail):
    return [x * 2 for x in gen(n, fail)]


@case(10)
def break_continue_else(n):
    out = []
    for i in range(n):
        if i == 2:
            continue
        if i == 7:
            break
        out.append(i)
    else:
        out.append("else")
    for j in range(2):
        pass
    else:
        out.append("else2")
    return out


@case(4)
def nested_loops(n):
    return [(i, j) for i in range(n) for j in range(i)]


@case()
def while_loop():
    i, out = 0, 0
    while i < 1000:
        out += i
        i += 1
    return out


@case()
def iterate_mutating_dict():
    d = {1: 1}
    for k in d:
        d[k + 1] = 1


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_iter(func, args, kwargs):
    run_both_copying(func, *args, **kwargs)
