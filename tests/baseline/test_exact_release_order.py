"""The order in which container-building and unpacking opcodes compare, hash and release their
operands, on their normal and error paths, and the references CALL_FUNCTION_EX keeps, as stock
CPython 3.11 does them (Python/ceval.c). Objects whose __hash__/__eq__/__del__ log their calls
make the order visible; sys.getrefcount makes kept references visible; sys.getsizeof shows how a
dict display was presized."""

import dis
import sys
import types

import pytest

from difftest import Cases, run_both

case = Cases()


class Item:
    """Hashable; logs hashing, comparison and destruction. Equal when the hashes are equal."""

    def __init__(self, name, h, log):
        self.name, self.h, self.log = name, h, log

    def __hash__(self):
        self.log.append(("hash", self.name))
        return self.h

    def __eq__(self, other):
        self.log.append(("eq", self.name, getattr(other, "name", None)))
        return isinstance(other, Item) and self.h == other.h

    def __del__(self):
        self.log.append(("del", self.name))


class Unhashable:
    __hash__ = None

    def __init__(self, name, log):
        self.name, self.log = name, log

    def __del__(self):
        self.log.append(("del", self.name))


class BadHash(Item):
    def __hash__(self):
        self.log.append(("hash", self.name))
        raise KeyError(self.name)


def _outcome(log, body):
    try:
        body()
    except Exception as e:  # noqa: BLE001 - the exception is part of what is compared
        log.append(("raised", type(e).__name__, str(e)))
    return log


# ---------------------------------------------------------------------------------------------
# BUILD_SET: ceval adds the items first to last and releases each one right after adding it; on
# an error it goes on releasing the rest (without adding them), then releases the set.


@case()
def build_set_unhashable_middle():
    log = []

    def body():
        {Item("a", 1, log), Item("b", 2, log), Unhashable("c", log), Item("d", 4, log)}

    return _outcome(log, body)


@case()
def build_set_unhashable_first():
    log = []

    def body():
        {Unhashable("a", log), Item("b", 2, log), Item("c", 3, log)}

    return _outcome(log, body)


@case()
def build_set_unhashable_last():
    log = []

    def body():
        {Item("a", 1, log), Item("b", 2, log), Unhashable("c", log)}

    return _outcome(log, body)


@case()
def build_set_hash_raises():
    log = []

    def body():
        {Item("a", 1, log), BadHash("b", 2, log), Item("c", 3, log), Item("d", 4, log)}

    return _outcome(log, body)


@case()
def build_set_duplicates():
    # An item equal to one already in the set is not added, so releasing it destroys it at once.
    log = []
    s = {Item("a", 1, log), Item("a2", 1, log), Item("b", 2, log), Item("b2", 2, log), Item("c", 3, log)}
    log.append(("built", len(s)))
    del s
    return log


@case()
def build_set_duplicates_then_unhashable():
    log = []

    def body():
        {Item("a", 1, log), Item("a2", 1, log), Unhashable("u", log), Item("b", 2, log)}

    return _outcome(log, body)


# ---------------------------------------------------------------------------------------------
# UNPACK_SEQUENCE and UNPACK_EX: on an error, ceval releases the values already unpacked from
# the last one unpacked to the first, then the iterator, then the sequence.


def items(log, n, fail_after=None):
    """A generator (not a list or tuple: those take another path) of n logging items; raises
    RuntimeError after `fail_after` items if given."""
    for i in range(n):
        if i == fail_after:
            raise RuntimeError(f"stopped after {i}")
        yield Item(f"i{i}", i, log)
    log.append(("exhausted",))


@case()
def unpack_sequence_not_enough():
    log = []

    def body():
        a, b, c, d = items(log, 3)

    return _outcome(log, body)


@case()
def unpack_sequence_iterator_raises():
    log = []

    def body():
        a, b, c, d = items(log, 4, fail_after=2)

    return _outcome(log, body)


@case()
def unpack_sequence_too_many():
    log = []

    def body():
        a, b, c = items(log, 4)

    return _outcome(log, body)


@case()
def unpack_sequence_ok():
    log = []
    a, b, c = items(log, 3)
    log.append(("unpacked",))
    del b, a, c
    return log


@case()
def unpack_ex_not_enough_before_star():
    log = []

    def body():
        a, b, c, *rest = items(log, 2)

    return _outcome(log, body)


@case()
def unpack_ex_not_enough_after_star():
    log = []

    def body():
        a, b, *rest, c, d, e = items(log, 4)

    return _outcome(log, body)


@case()
def unpack_ex_iterator_raises_in_star():
    log = []

    def body():
        a, b, *rest, c = items(log, 5, fail_after=3)

    return _outcome(log, body)


@case()
def unpack_ex_iterator_raises_before_star():
    log = []

    def body():
        a, b, c, *rest = items(log, 5, fail_after=2)

    return _outcome(log, body)


# ---------------------------------------------------------------------------------------------
# CALL_FUNCTION_EX: when the `*` argument is not iterable, or iterating it fails, ceval 3.11
# leaves the `**` dict it popped unreleased (a leak in CPython 3.11). The dict and its contents
# then stay referenced: the baseline keeps them too.


def callee(*args, **kwargs):
    return args, kwargs


class FailingIterable:
    def __iter__(self):
        raise ValueError("no iteration today")


@case()
def call_ex_star_not_iterable_keeps_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    try:
        callee(*1, k=value)
    except TypeError as e:
        msg = str(e)
    return sys.getrefcount(value) - before, msg


@case()
def call_ex_star_iteration_fails_keeps_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    try:
        callee(*FailingIterable(), **{"k": value})
    except ValueError as e:
        msg = str(e)
    return sys.getrefcount(value) - before, msg


@case()
def call_ex_ok_releases_kwargs():
    value = ["kwarg value"]
    before = sys.getrefcount(value)
    r = callee(*(1, 2), k=value)
    del r
    return sys.getrefcount(value) - before


def _without_dict_merge(func):
    """`func` with its `BUILD_MAP 0; LOAD_FAST d; DICT_MERGE 1` (how the compiler copies a `**`
    argument) turned into `NOP; LOAD_FAST d; NOP`, so CALL_FUNCTION_EX gets the mapping itself,
    as hand-written bytecode can give it."""
    code = bytearray(func.__code__.co_code)
    op = dis.opmap
    for i in range(0, len(code) - 4, 2):
        if (code[i], code[i + 1]) == (op["BUILD_MAP"], 0) and code[i + 2] == op["LOAD_FAST"] \
                and (code[i + 4], code[i + 5]) == (op["DICT_MERGE"], 1):
            code[i:i + 2] = bytes((op["NOP"], 0))
            code[i + 4:i + 6] = bytes((op["NOP"], 0))
            break
    else:  # pragma: no cover - the compiler changed
        raise AssertionError("no BUILD_MAP 0; LOAD_FAST; DICT_MERGE 1 in " + func.__name__)
    f = types.FunctionType(func.__code__.replace(co_code=bytes(code)), func.__globals__, func.__name__)
    f.__qualname__ = func.__qualname__
    return f


class Mapping:
    """A mapping that is not a dict: CALL_FUNCTION_EX copies it into a new dict."""

    def __init__(self, **items):
        self.items = items

    def keys(self):
        return self.items.keys()

    def __getitem__(self, key):
        return self.items[key]


def _call_ex_raw(star, kw):
    return callee(*star, **kw)


call_ex_raw = _without_dict_merge(_call_ex_raw)


def call_ex_raw_refcounts(star, make_kw):
    value = ["kwarg value"]
    kw = make_kw(value)
    before = sys.getrefcount(kw), sys.getrefcount(value)
    try:
        r = call_ex_raw(star, kw)
        del r
        msg = None
    except Exception as e:  # noqa: BLE001
        msg = (type(e).__name__, str(e))
    return sys.getrefcount(kw) - before[0], sys.getrefcount(value) - before[1], msg


def make_dict(value):
    return {"k": value}


def make_mapping(value):
    return Mapping(k=value)


def test_raw_call_ex_gets_the_mapping_itself():
    # The patched bytecode does what the tests below rely on.
    assert call_ex_raw((1,), Mapping(k=2)) == ((1,), {"k": 2})
    ops = [i.opname for i in dis.get_instructions(call_ex_raw)]
    assert "DICT_MERGE" not in ops and "CALL_FUNCTION_EX" in ops


@pytest.mark.parametrize("star", [1, FailingIterable(), (1, 2)], ids=["not-iterable", "iter-fails", "tuple"])
@pytest.mark.parametrize("make_kw", [make_dict, make_mapping], ids=["dict", "mapping"])
def test_call_ex_kwargs_references(star, make_kw):
    # An exact dict is used as it is: on the two error paths ceval keeps the reference it popped.
    # Another mapping is copied and released at once: ceval keeps the copy, so its values.
    out = run_both(call_ex_raw_refcounts, star, make_kw)
    assert out.kind == "return"
    kept = 0 if isinstance(star, tuple) else 1
    dict_kept, value_kept = (kept, 0) if make_kw is make_dict else (0, kept)
    assert out.value[:2] == (dict_kept, value_kept), out.value


@case()
def call_ex_raw_not_a_mapping():
    try:
        return call_ex_raw((1,), 5)
    except TypeError as e:
        return str(e)


@case()
def call_ex_raw_duplicate_keyword():
    class Twice:
        def keys(self):
            return ["k", "k"]

        def __getitem__(self, key):
            return 1

    try:
        return call_ex_raw((1,), Twice())
    except TypeError as e:
        return str(e)


# ---------------------------------------------------------------------------------------------
# BUILD_TUPLE/LIST, BUILD_SLICE, LIST_EXTEND, SET_UPDATE, DICT_UPDATE, DICT_MERGE, BUILD_MAP:
# the order their operands die in, on success and on error.


@case()
def build_tuple_list_release():
    log = []
    t = (Item("a", 1, log), Item("b", 2, log), Item("c", 3, log))
    log.append(("built",))
    del t
    lst = [Item("x", 1, log), Item("y", 2, log)]
    del lst
    return log


class Sink:
    def __getitem__(self, key):
        return type(key).__name__


@case()
def build_slice_release():
    log = []
    r = Sink()[Item("a", 1, log):Item("b", 2, log):Item("c", 3, log)]
    log.append(("sliced", r))
    r = Sink()[Item("d", 1, log):Item("e", 2, log)]
    log.append(("sliced", r))
    return log


@case()
def build_slice_no_memory():
    # Only when the slice cannot be allocated can an operand die in BUILD_SLICE: ceval releases
    # start, stop, then step.
    try:
        import _testcapi
    except ImportError:  # pragma: no cover - a build without the test modules
        return None
    log = []
    keep = slice(0)  # takes the interpreter's one cached slice, so BUILD_SLICE must allocate
    # Popped from a list with room to spare (popping reallocates nothing), each operand is
    # referenced by the value stack alone.
    items = [None] * 64 + [Item("step", 3, log), Item("stop", 2, log), Item("start", 1, log)]
    s = Sink()
    try:
        _testcapi.set_nomemory(0, 1)  # the next allocation fails, the ones after it succeed
        try:
            s[items.pop():items.pop():items.pop()]
        finally:
            _testcapi.remove_mem_hooks()
    except MemoryError:
        log.append(("MemoryError",))
    return log, keep


class BadIterable:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def __iter__(self):
        self.log.append(("iter", self.name))
        raise ValueError(self.name)

    def __del__(self):
        self.log.append(("del", self.name))


class NotMapping:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def __del__(self):
        self.log.append(("del", self.name))


@case()
def list_extend_error():
    log = []

    def body():
        [Item("a", 1, log), *BadIterable("it", log), Item("b", 2, log)]

    return _outcome(log, body)


@case()
def list_extend_not_iterable():
    log = []

    def body():
        [Item("a", 1, log), *NotMapping("x", log)]

    return _outcome(log, body)


@case()
def set_update_error():
    log = []

    def body():
        {Item("a", 1, log), *[Item("b", 2, log), Unhashable("u", log)], Item("c", 3, log)}

    return _outcome(log, body)


@case()
def dict_update_not_mapping():
    log = []

    def body():
        {"a": Item("a", 1, log), **NotMapping("m", log)}

    return _outcome(log, body)


@case()
def dict_merge_not_mapping():
    log = []

    def body():
        callee(Item("p", 1, log), k=Item("k", 2, log), **NotMapping("m", log))

    return _outcome(log, body)


@case()
def dict_merge_duplicate():
    log = []

    def body():
        callee(k=Item("k", 2, log), **{"k": Item("k2", 3, log)})

    return _outcome(log, body)


@case()
def build_map_error_release():
    log = []

    def body():
        k = "s"
        {k: Item("v1", 1, log), Item("k2", 2, log): Item("v2", 2, log), Unhashable("k3", log): Item("v3", 3, log),
         Item("k4", 4, log): Item("v4", 4, log)}

    return _outcome(log, body)


# ---------------------------------------------------------------------------------------------
# BUILD_STRING


@case()
def build_string_starts_no_collection():
    # ceval joins the parts where they lie on the stack. With a GC threshold of 1, any GC
    # allocation there (a tuple of more than 20 parts comes from the allocator, not a free list)
    # would start a collection, which gc.callbacks report.
    import gc

    started = []

    def cb(phase, info):
        if phase == "start":
            started.append(info["generation"])

    a = "x"
    old = gc.get_threshold()
    gc.collect()
    gc.callbacks.append(cb)
    gc.set_threshold(1)
    try:
        s1 = f"{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}"
        s2 = f"{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}"
        s3 = f"{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}"
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(cb)
    return started, s1 + s2 + s3


class IntKey(int):
    """An int key whose release is logged."""

    def __new__(cls, value, log):
        key = int.__new__(cls, value)
        key.log = log
        return key

    def __del__(self):
        self.log.append(("del", "key", int(self)))


@case()
def binary_subscr_dict_warm():
    # Once warm, BINARY_SUBSCR_DICT releases the key, then the dict (and what it holds); cold,
    # the generic instruction the dict first. A missing key raises KeyError(key) with the dict
    # still on the stack, released by the unwinding (the key lives on in the exception).
    log = []
    for i in range(12):
        try:
            {0: "zero", 1: Item("dict", 1, log)}[IntKey(i % 2 * 5, log)]
        except KeyError:
            log.append("caught")
        log.append(i)
    return log


@pytest.mark.parametrize("func, args, kwargs", case.params)
def test_release_order(func, args, kwargs):
    out = run_both(func, *args, **kwargs)
    assert out.kind == "return", out


# ---------------------------------------------------------------------------------------------
# Dict displays: ceval builds BUILD_MAP and BUILD_CONST_KEY_MAP dicts with _PyDict_FromItems,
# presized for the number of pairs (more than five) with a str-only key table when every key is
# an exact str. sys.getsizeof shows the table.


def _make(src, name):
    ns = {}
    exec(src, ns)
    return ns[name]


def _const_key_display(n, key):
    return _make("def f(v):\n    return {" + ", ".join(f"{key(i)}: v" for i in range(n)) + "}\n", "f")


def _var_key_display(n):
    params = ", ".join(f"k{i}" for i in range(n))
    return _make(f"def g({params}):\n    return {{" + ", ".join(f"k{i}: {i}" for i in range(n)) + "}\n", "g")


def _sizes_of(funcs_and_args):
    return [sys.getsizeof(f(*a)) for f, a in funcs_and_args]


KEYS = {
    "str": lambda i: repr(f"k{i}"),
    "int": lambda i: str(i),
    "mixed-str-first": lambda i: repr(f"k{i}") if i % 3 else str(i),
    "mixed-int-last": lambda i: str(i) if i == 0 else repr(f"k{i}"),
    "float": lambda i: f"{i}.5",
    "tuple": lambda i: f"({i},)",
}


def sizes_const_keys(kind):
    return _sizes_of([(_const_key_display(n, KEYS[kind]), (None,)) for n in range(21)])


@pytest.mark.parametrize("kind", list(KEYS))
def test_dict_display_sizes_constant_keys(kind):
    out = run_both(sizes_const_keys, kind)
    assert out.kind == "return", out


VAR_KEYS = {
    "str": lambda n: [f"k{i}" for i in range(n)],
    "int": lambda n: list(range(n)),
    "str-then-int": lambda n: ([f"k{i}" for i in range(n - 1)] + [0])[:n],
    "int-then-str": lambda n: ([0] + [f"k{i}" for i in range(n - 1)])[:n],
    "str-subclass": lambda n: [type("S", (str,), {})(f"k{i}") for i in range(n)],
    "same-str": lambda n: ["k"] * n,
    "some-duplicates": lambda n: [f"k{i % 3}" for i in range(n)],
}


def sizes_var_keys(kind):
    return _sizes_of([(_var_key_display(n), VAR_KEYS[kind](n)) for n in range(21)])


@pytest.mark.parametrize("kind", list(VAR_KEYS))
def test_dict_display_sizes_variable_keys(kind):
    out = run_both(sizes_var_keys, kind)
    assert out.kind == "return", out


def sizes_mixed_displays():
    v = 1
    a, b = "a", "b"
    return [
        sys.getsizeof({"a": v, "b": v, "c": v, "d": v, "e": v, "f": v, **{}}),
        sys.getsizeof({a: 1, b: 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}),
        sys.getsizeof({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "a": 7}),  # noqa: F601
        sys.getsizeof(dict(a=1, b=2, c=3, d=4, e=5, f=6)),
    ]


def test_dict_display_sizes_mixed():
    out = run_both(sizes_mixed_displays)
    assert out.kind == "return", out


def test_sizes_are_stock_values():
    # The figures of a 64-bit CPython 3.11: a six-key str display is 272 bytes, not 352.
    out = run_both(sizes_const_keys, "str")
    assert out.value[6] == 272, out.value


def _hand_written_map(npairs, const_keys):
    """A function of 2 * npairs (or npairs) arguments returning a dict built by one BUILD_MAP
    (or BUILD_CONST_KEY_MAP) of npairs, more than the compiler ever puts in one instruction."""
    op = dis.opmap
    nargs = npairs if const_keys else 2 * npairs
    code = [op["RESUME"], 0]
    for i in range(nargs):
        code += [op["LOAD_FAST"], i]
    if const_keys:
        code += [op["LOAD_CONST"], 1, op["BUILD_CONST_KEY_MAP"], npairs]
    else:
        code += [op["BUILD_MAP"], npairs]
    code += [op["RETURN_VALUE"], 0]
    names = tuple(f"a{i}" for i in range(nargs))
    template = _make("def h():\n    return None\n", "h").__code__
    co = template.replace(co_code=bytes(code), co_argcount=nargs, co_nlocals=nargs, co_varnames=names,
                          co_stacksize=nargs + 1, co_linetable=b"", co_exceptiontable=b"",
                          co_consts=(None, tuple(f"k{i}" for i in range(npairs))))
    return types.FunctionType(co, globals(), f"map{npairs}")


def sizes_hand_written_maps(kind):
    out = []
    for n in (5, 6, 15, 16, 17, 20, 40, 100):
        if kind == "const-str":
            out.append(sys.getsizeof(_hand_written_map(n, True)(*range(n))))
            continue
        keys = {"str": [f"k{i}" for i in range(n)], "same-str": ["k"] * n,
                "str-then-int": [f"k{i}" for i in range(n - 1)] + [0]}[kind]
        args = [x for k in keys for x in (k, 1)]
        out.append(sys.getsizeof(_hand_written_map(n, False)(*args)))
    return out


@pytest.mark.parametrize("kind", ["const-str", "str", "same-str", "str-then-int"])
def test_dict_sizes_hand_written_large_maps(kind):
    # More pairs than the helper's on-stack keys buffer holds.
    out = run_both(sizes_hand_written_maps, kind)
    assert out.kind == "return", out


def is_op_releases_left_then_right(n):
    # IS_OP (inline in the baseline) releases the left operand, then the right one.
    log = []
    out = []
    for i in range(n):
        out.append(Item("l", i, log) is Item("r", i, log))
        out.append(Item("l2", i, log) is not Item("r2", i, log))
        x = Item("x", i, log)
        out.append(x is x)
        del x
    return out, log[-12:]


def test_is_op_release_order():
    run_both(is_op_releases_left_then_right, 12)
