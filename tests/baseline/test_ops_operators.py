"""Operators: BINARY_OP (all 26 variants, normal and TypeError/ZeroDivisionError/OverflowError
paths, in-place on mutable and immutable objects), COMPARE_OP (all six, errors), IS_OP,
CONTAINS_OP (incl. errors), UNARY_POSITIVE/NEGATIVE/INVERT/NOT."""

import operator

import pytest

from difftest import Cases, run_both

case = Cases()


def _binary_src(sym):
    return f"def f(a, b):\n    return a {sym} b\n"


def _inplace_src(sym):
    return f"def f(a, b):\n    a {sym}= b\n    return a\n"


BINARY = ["+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^"]

OPERANDS = [
    (7, 3), (-7, 2), (2.5, 0.5), (6, 0), (6.0, 0), ("ab", 3), ([1], [2]), ({1, 2}, {2, 3}),
    ("x", 1), (None, 1), (1, -1), (10**30, 3), (2, 1000), (True, False), (1j, 2), ("%s-%d", ("a", 1)),
]


class MatMul:
    def __matmul__(self, other):
        return ("matmul", other)

    def __rmatmul__(self, other):
        return ("rmatmul", other)

    def __imatmul__(self, other):
        return ("imatmul", other)


def _make(src, name):
    ns = {}
    exec(compile(src, f"<{name}>", "exec"), ns)
    return ns["f"]


def _binary_params():
    params = []
    for i, sym in enumerate(BINARY):
        for maker, kind in ((_binary_src, "binary"), (_inplace_src, "inplace")):
            f = _make(maker(sym), f"{kind}{i}")
            for j, (a, b) in enumerate(OPERANDS + [(MatMul(), 1), (1, MatMul())]):
                params.append(pytest.param(f, a, b, id=f"{kind}[{sym}]-{j}"))
    return params


@pytest.mark.parametrize("func,a,b", _binary_params())
def test_binary_op(func, a, b):
    import copy

    # The operands may be mutated in place (list +=): give each run its own copy.
    run_both(lambda: func(copy.copy(a), copy.copy(b)))


@case([1, 2], [3])
@case([1], (2, 3))
@case([1], 5)
def inplace_list_identity(a, b):
    orig = a
    a += b
    a *= 2
    return a, a is orig, orig


@case("ab", "cd")
def inplace_string_loop(s, t):
    for _ in range(5):
        s += t
    return s


@case()
def big_power_overflow():
    return 10.0 ** 400


@case()
def shift_negative():
    return 1 << -1


@case()
def shift_huge():
    return 1 << 10**20


CMP = ["<", "<=", "==", "!=", ">", ">="]
CMP_OPERANDS = [(1, 2), (2, 1), (1, 1), ("a", "b"), (1, "a"), ([1], [1, 2]), (None, None), (float("nan"), 1),
                ({1}, {1, 2}), ((1, 2), (1, "a"))]


def _compare_params():
    params = []
    for i, sym in enumerate(CMP):
        f = _make(f"def f(a, b):\n    return a {sym} b\n", f"cmp{i}")
        g = _make(f"def f(a, b):\n    if a {sym} b:\n        return 'yes'\n    return 'no'\n", f"cmpjump{i}")
        for j, (a, b) in enumerate(CMP_OPERANDS):
            params.append(pytest.param(f, a, b, id=f"cmp[{sym}]-{j}"))
            params.append(pytest.param(g, a, b, id=f"cmpjump[{sym}]-{j}"))
    return params


@pytest.mark.parametrize("func,a,b", _compare_params())
def test_compare_op(func, a, b):
    run_both(func, a, b)


class BadEq:
    def __eq__(self, other):
        raise ValueError("no eq")

    def __lt__(self, other):
        return NotImplemented

    __hash__ = object.__hash__


@case(BadEq(), 1)
@case(1, BadEq())
def compare_raises(a, b):
    return a == b


@case(BadEq(), BadEq())
def compare_not_implemented(a, b):
    return a < b


@case(None)
@case(1)
def is_op(x):
    return x is None, x is not None, x is x, [] is []


@case(1, [1, 2])
@case(3, [1, 2])
@case("a", "cat")
@case(1, "cat")
@case([], {1: 2})
@case(1, 5)
@case(1, None)
def contains_op(x, c):
    return x in c, x not in c


class ContainsRaises:
    def __contains__(self, item):
        raise KeyError(item)


class IterOnly:
    def __iter__(self):
        return iter([1, 2, 3])


@case(1, ContainsRaises())
@case(2, IterOnly())
@case(5, IterOnly())
def contains_op_custom(x, c):
    return x in c


@case(3)
@case(-2.5)
@case("s")
@case(True)
@case(None)
@case([])
def unary_ops(x):
    out = []
    for op in (lambda v: +v, lambda v: -v, lambda v: ~v, lambda v: not v):
        try:
            out.append(op(x))
        except TypeError as e:
            out.append(str(e))
    return out


@case("s")
def unary_negative_raises(x):
    return -x


@case(1.5)
def unary_invert_raises(x):
    return ~x


@case([])
def unary_positive_raises(x):
    return +x


class BadBool:
    def __bool__(self):
        raise RuntimeError("no bool")


class BadLen:
    def __len__(self):
        return -1


@case(BadBool())
@case(BadLen())
def unary_not_raises(x):
    return not x


class IntSub(int):
    def __bool__(self):
        return True      # an int subclass: its own __bool__, not the size


class Dies:
    def __init__(self, log):
        self.log = log

    def __del__(self):
        self.log.append("released")


@case(60)
def unary_not_of_every_kind(n):
    # True, False, None and the exact sized builtins inline (the shared truth routine); the
    # rest (a float, an int subclass, __bool__, __len__) through the helper; an operand whose
    # release runs a destructor, released before the result is used.
    values = [True, False, None, 0, 7, -1, 2 ** 70, "", "x", [], [0], (), (0,), {}, {0: 0},
              0.0, 1.5, IntSub(0), set(), {0}, b"", b"x"]
    out = []
    log = []
    for i in range(n):
        out.append(not values[i % len(values)])
        out.append((not [Dies(log)], len(log)))
    return out


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_operators(func, args, kwargs):
    run_both(func, *args, **kwargs)


def test_operator_module_table_matches_nb_ops():
    # BINARY_OP's oparg order is opcode._nb_ops; make sure all 26 were generated above.
    import opcode

    assert len(opcode._nb_ops) == 26
    assert operator.add is not None
