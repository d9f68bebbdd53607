"""The baseline's fast paths for operators, subscripts and unpacking (runtime/src/semantics and
the UNPACK_SEQUENCE site), against the interpreter: every case near a fast path's edge (one-digit
ints and their overflow, division by zero, -0.0, NaN, bool and subclasses, negative and
out-of-range indices, dict misses, keys with side effects) must give the interpreter's result or
exception, and unpacking must allocate what the interpreter allocates (seen through the GC)."""

import gc
import math

import pytest

from difftest import Cases, run_both

case = Cases()

BIG = 2 ** 30  # the smallest two-digit int: the int fast path's edge
OPERATORS = ["+", "-", "*", "/", "//", "%", "&", "|", "^"]
INT_OPERANDS = [0, 1, -1, 7, -7, 3, -3, BIG - 1, -(BIG - 1), BIG, -BIG, 2 ** 62, True, False]
FLOAT_OPERANDS = [0.0, -0.0, 1.5, -2.25, 1e308, float("inf"), float("-inf"), float("nan"), 3.0]


def _apply(op, a, b):
    code = compile(f"def f(a, b):\n    return a {op} b\n", "<fast>", "exec")
    ns = {}
    exec(code, ns)
    return ns["f"]


def _apply_inplace(op, a, b):
    code = compile(f"def f(a, b):\n    a {op}= b\n    return a\n", "<fast>", "exec")
    ns = {}
    exec(code, ns)
    return ns["f"]


def _results(make, op, operands):
    out = []
    f = make(op, None, None)
    for a in operands:
        for b in operands:
            try:
                r = f(a, b)
                out.append((type(r).__name__, repr(r), math.copysign(1, r) if isinstance(r, float) else None))
            except Exception as e:  # noqa: BLE001 - the exception is the result
                out.append((type(e).__name__, str(e)))
    return out


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("make", [_apply, _apply_inplace], ids=["binary", "inplace"])
def test_int_operators(make, op):
    def f(op):
        return _results(make, op, INT_OPERANDS)
    run_both(f, op)


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("make", [_apply, _apply_inplace], ids=["binary", "inplace"])
def test_float_operators(make, op):
    def f(op):
        return _results(make, op, FLOAT_OPERANDS)
    run_both(f, op)


MIXED_OPERANDS = [0, 1, -1, 7, -(BIG - 1), BIG - 1, BIG, 2 ** 53 + 1, True, 0.0, -0.0, 1.5, -2.25,
                  float("inf"), float("nan"), 1e308, 3.0, None]


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("make", [_apply, _apply_inplace], ids=["binary", "inplace"])
def test_mixed_int_and_float_operators(make, op):
    # One-digit ints beside floats (and divided by each other) are converted to doubles
    # inline; bigger ints, bools and zero divisors take the number protocol.
    def f(op):
        return _results(make, op, MIXED_OPERANDS)
    run_both(f, op)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_mixed_operands_that_are_not_numbers(op):
    # A one-item tuple has a size of 1 where an int has it: only the type check tells them apart.
    def f(op):
        return _results(_apply, op, [(5,), 1.5, 2, "s"])
    run_both(f, op)


class MyInt(int):
    def __add__(self, other):
        return "MyInt.__add__"


class MyFloat(float):
    def __mul__(self, other):
        return "MyFloat.__mul__"


@case()
def subclasses_and_mixed():
    return [MyInt(3) + 4, MyInt(3) + MyInt(4), 4 + MyInt(3), MyFloat(2.0) * 3.0, 3.0 * MyFloat(2.0),
            1 + 2.5, 2.5 - 1, True + True, 3 * 1.0]


@case()
def int_results_cross_one_digit():
    a = BIG - 1
    return [a + 1, a + a, -a - a, a * a, a * -a, (BIG - 1) * 2, (a + 1) == BIG, id(250 + 6) == id(256)]


@case()
def float_identity_and_signs():
    z = 0.0
    return [repr(-z * 1.0), repr(z * -1.0), repr(-0.0 - 0.0), repr(0.0 - 0.0), repr(-0.0 + -0.0)]


# --- Subscripts --------------------------------------------------------------------------------

class Key:
    """A dict key that logs its hashing and comparisons."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def __hash__(self):
        self.log.append(("hash", self.name))
        return 1

    def __eq__(self, other):
        self.log.append(("eq", self.name))
        return self is other


class Missing(dict):
    def __missing__(self, key):
        return ("missing", key)


@case()
def list_and_tuple_indices():
    seq = [10, 20, 30]
    tup = (10, 20, 30)
    out = []
    for container in (seq, tup):
        for i in (0, 2, -1, -3, 3, -4, BIG, -BIG, True, False):
            try:
                out.append(container[i])
            except IndexError as e:
                out.append(("IndexError", str(e)))
    out.append(seq[0:2])
    out.append(tup[::-1])
    return out


@case()
def non_int_indices():
    out = []
    for container, sub in (([1], "x"), ((1,), 1.0), ([1], None)):
        try:
            out.append(container[sub])
        except TypeError as e:
            out.append(("TypeError", str(e)))
    return out


@case()
def dict_hits_misses_and_key_side_effects():
    log = []
    a, b = Key("a", log), Key("b", log)
    d = {a: 1, (1, 2): "tuple", 3: "int"}
    out = [d[a], d[(1, 2)], d[3]]
    for k in (b, (1, 2, 3), 4, ()):
        try:
            out.append(d[k])
        except KeyError as e:
            # Names, not the keys: comparing two runs' keys would call (and log) their __eq__.
            out.append(("KeyError", [getattr(a, "name", a) for a in e.args], e.args[0] is k))
    try:
        d[[]]
    except TypeError as e:
        out.append(("TypeError", str(e)))
    out.append(Missing(x=1)["y"])
    return out, log


@case()
def list_and_dict_stores():
    seq = [0, 1, 2]
    out = []
    for i in (0, -1, 2, 3, -4, BIG, True):
        try:
            seq[i] = i
        except IndexError as e:
            out.append(("IndexError", str(e)))
    out.append(list(seq))
    log = []
    d = {}
    k = Key("k", log)
    d[k] = 1
    d[k] = 2
    d[(1,)] = 3
    try:
        d[[]] = 4
    except TypeError as e:
        out.append(("TypeError", str(e)))
    out.append(sorted(map(repr, d.values())))
    return out, log


@case()
def store_releases_the_old_item():
    log = []

    class Dies:
        def __init__(self, n):
            self.n = n

        def __del__(self):
            log.append(self.n)

    seq = [Dies(0), Dies(1)]
    seq[0] = Dies(2)
    log.append("stored")
    seq[-1] = None
    log.append("end")
    return log


@case()
def subscript_in_a_loop():
    seq, tup, d = list(range(50)), tuple(range(50)), {i: -i for i in range(50)}
    total = 0
    for i in range(50):
        total += seq[i] + tup[-i - 1] + d[i]
        seq[i] = total
    return total, seq[-3:]


class Missing(dict):
    def __missing__(self, key):
        return ("missing", key)


@case(60)
def dict_site_sees_a_subclass(n):
    # A site specialized for exact dicts (BINARY_SUBSCR_DICT once warm) then sees a dict
    # subclass: the form's guard misses, and the generic path calls __missing__.
    out = []
    plain, sub = {0: "a"}, Missing({0: "b"})
    for i in range(n):
        d = plain if i < n // 2 or i % 3 else sub
        try:
            out.append(d[i % 2])  # 1 is missing: KeyError from the dict, __missing__ from sub
        except KeyError as e:
            out.append(("KeyError", e.args))
    return out


class Str(str):
    pass


@case(60)
def strings_joined_in_place(n):
    # `s += t` and `s = s + t` before a STORE_FAST to `s` (BINARY_OP_INPLACE_ADD_UNICODE once
    # warm): joined in place only while the local holds the only other reference; an alias, a
    # str subclass on either side, another local as the target or a non-str must see ordinary
    # concatenation.
    s, t, u = "", "", Str("")
    aliases = []
    for i in range(n):
        s += str(i)
        t = t + "."
        if i % 10 == 0:
            aliases.append(s)   # another reference: `s` must not change under it
        u += "x"                # a subclass on the left
        s += Str("y")           # a subclass on the right
        other = s + "z"         # the target is another local
    try:
        s += 1
    except TypeError as e:
        error = str(e)
    return s, t, u, type(u).__name__, aliases, other, error


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_fast_paths_match_the_interpreter(func, args, kwargs):
    run_both(func, *args, **kwargs)


# --- UNPACK_SEQUENCE: the site replays ceval's choice --------------------------------------------
# Warm stock code unpacks an exact tuple or list of the right size by copying its items; cold
# code, and any other sequence, goes through an iterator, a GC object whose allocation counts
# towards the next collection. With the collection threshold at 1, collections show which ran.

def _collections_during(body):
    starts = []

    def cb(phase, info):
        if phase == "start" and info["generation"] == 0:
            starts.append(1)

    old = gc.get_threshold()
    gc.collect()
    gc.callbacks.append(cb)
    gc.set_threshold(3)
    try:
        result = body()
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(cb)
    return len(starts), result


def unpack_collections(kind):
    def body():
        seqs = {"tuple": (1, 2), "tuple3": (1, 2, 3), "list": [1, 2, 3], "range": range(2),
                "mixed": None}[kind]
        out, keep = 0, []
        for i in range(40):
            keep.append([])  # a GC allocation that stays: collections come every few iterations
            s = seqs
            if kind == "mixed":
                s = (i, i) if i % 3 else [i, i]
            if len(s) == 2:
                a, b = s
                out += a + b
            else:
                a, b, c = s
                out += a + b + c
        return out
    return _collections_during(body)


@pytest.mark.parametrize("kind", ["tuple", "tuple3", "list", "range", "mixed"])
def test_unpack_allocates_as_the_interpreter(kind):
    out = run_both(unpack_collections, kind)
    assert out.kind == "return"


def unpack_errors_warm():
    out = []
    for s in [(1, 2)] * 10 + [(1, 2, 3), [1], "ab", iter([1, 2]), 5]:
        try:
            a, b = s
            out.append((a, b))
        except (ValueError, TypeError) as e:
            out.append((type(e).__name__, str(e)))
    return out


def test_unpack_errors_warm():
    run_both(unpack_errors_warm)
