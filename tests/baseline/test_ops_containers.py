"""Containers: BUILD_TUPLE/LIST/SET/MAP/CONST_KEY_MAP/STRING (incl. unhashable errors),
LIST_APPEND/SET_ADD/MAP_ADD via comprehensions."""

import pytest

from difftest import Cases, run_both

case = Cases()


@case(1, "a")
def build_tuple_list(a, b):
    return (a, b), [a, b], (a,), [a], (), []


@case(1, 2, 1)
@case(1, [], 2)
@case("a", "b", {})
def build_set(a, b, c):
    return {a, b, c}


@case("k", 1)
@case([], 1)
@case("k", [])
def build_map(k, v):
    return {k: v, "other": v}


@case(1, 2)
def build_map_duplicate_keys(a, b):
    k = "x"
    return {k: a, k: b}  # noqa: F601


@case(1, 2)
def build_const_key_map(a, b):
    return {"a": a, "b": b, 3: a}


@case(1, 2)
def build_const_key_map_duplicates(a, b):
    return {"a": a, "a": b}  # noqa: F601


@case(1, 2.5)
def build_string(a, b):
    return f"{a}-{b}-{a}", f"x{a}", f""


@case(5)
def list_comprehension(n):
    return [i * i for i in range(n) if i % 2], [[j for j in range(i)] for i in range(3)]


@case(5)
def set_comprehension(n):
    return {i % 3 for i in range(n)}


@case(5)
def dict_comprehension(n):
    return {i: str(i) for i in range(n)}, {str(i): i for i in "aba"}


@case([[1], [2]])
def set_comprehension_unhashable(items):
    return {x for x in items}


@case([[1], [2]])
def dict_comprehension_unhashable(items):
    return {x: 1 for x in items}


@case(3)
def comprehension_raises_midway(n):
    return [10 // (i - 1) for i in range(n)]


@case([1, 2, 3])
def nested_containers(lst):
    return {"l": lst, "t": (lst, {1: lst}), "s": {len(lst)}}


# More than 30 items (STACK_USE_GUIDELINE) make the compiler build big displays incrementally:
# BUILD_LIST 0 + LIST_APPEND + LIST_TO_TUPLE for tuples, SET_ADD for sets (big dict displays use
# DICT_UPDATE, which the baseline refuses).
_N = 40
_ns = {}
exec(
    "def big_tuple(a, b):\n    return (" + ", ".join("a" if i % 2 else "b" for i in range(_N)) + ")\n"
    "def big_list(a, b):\n    return [" + ", ".join("a" if i % 2 else "b" for i in range(_N)) + "]\n"
    "def big_set(a, b):\n    return {" + ", ".join(f"a + {i}" if i % 2 else "b" for i in range(_N)) + "}\n",
    _ns,
)
for _name in ("big_tuple", "big_list", "big_set"):
    case(1, 2)(_ns[_name])
case(1, [])(_ns["big_set"])  # unhashable in SET_ADD
case("x", 2)(_ns["big_set"])  # TypeError while computing an item


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_containers(func, args, kwargs):
    run_both(func, *args, **kwargs)
