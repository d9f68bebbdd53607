"""The baseline's inline caches (runtime/src/jit/inline_cache.rs, baseline/src/fast_paths.rs):
each fast path must hit where it should (seen through `peregrine.profile`), take no exits, and
give the interpreter's result in every way its cache can go stale: the type modified after
warm-up, `__class__` assigned, `__slots__` and dict instances mixed at one site, an instance
dict made or an attribute deleted, globals and builtins rebound or shadowed, a module attribute
replaced, methods shadowed by instance attributes.

Each test defines its classes inside the function under test, so the interpreter's run and the
baseline's run each get their own (a run modifies them)."""

import math
import sys

import pytest

from difftest import run_both, run_both_profiled, sites

N = 40


# --------------------------------------------------------------------------------------------
# LOAD_GLOBAL


def test_load_global_hits():
    def f(n):
        total = 0
        for i in range(n):
            total += len(GLOBAL_LIST) + GLOBAL_INT
        return total

    _, prof = run_both_profiled(f, N)
    # `range` runs once; len, GLOBAL_LIST and GLOBAL_INT in the loop: one miss (the fill) each.
    loop = [s for s in sites(prof, "LOAD_GLOBAL") if s["hits"] + s["misses"] == N]
    kinds = sorted(s["cache"] for s in loop if s["misses"] == 1)
    assert kinds == ["global_builtin", "global_module", "global_module"], prof


GLOBAL_LIST = [1, 2, 3]
GLOBAL_INT = 5


def test_global_rebound_and_builtin_shadowed():
    def f(n):
        g = globals()
        out = []
        for i in range(n):
            out.append((len([1, 2]), REBOUND))
            if i == 10:
                g["REBOUND"] = "new"
            if i == 20:
                g["len"] = lambda x: "shadow"
            if i == 30:
                del g["len"]
        g["REBOUND"] = "old"
        return out

    run_both(f, N)


REBOUND = "old"


def test_builtins_changed():
    # No NameError inside the loop: an exception hands the rest of the frame to the interpreter.
    def f(n):
        import builtins
        g = globals()
        builtins.PEREGRINE_TEST_BUILTIN = 0
        out = []
        try:
            for i in range(n):
                out.append(PEREGRINE_TEST_BUILTIN)
                if i == 10:
                    builtins.PEREGRINE_TEST_BUILTIN = 1
                if i == 20:
                    g["PEREGRINE_TEST_BUILTIN"] = "global"
                if i == 30:
                    del g["PEREGRINE_TEST_BUILTIN"]
        finally:
            del builtins.PEREGRINE_TEST_BUILTIN
        return out

    _, prof = run_both_profiled(f, N)
    (site,) = [s for s in sites(prof, "LOAD_GLOBAL") if s["hits"] + s["misses"] == N]
    assert site["misses"] == 4, site  # the fill and one refill after each change


def test_globals_of_another_function_with_the_same_code():
    # One code object, two globals dicts: the cache must not carry one's value to the other.
    def f(n):
        src = "def get():\n    return WHO\n"
        a, b = {"WHO": "a"}, {"WHO": "b"}
        exec(src, a)
        exec(src, b)
        b["get"] = type(a["get"])(a["get"].__code__, b)
        return [(a["get"](), b["get"]()) for _ in range(n)]

    run_both(f, N)


COUNTER = 0


def test_globals_written_in_the_loop():
    # Storing a global changes the globals' version: names found among the globals are read
    # from their entry (no version), builtins after a check that the globals still lack them.
    def f(n):
        global COUNTER
        total = 0
        for i in range(n):
            COUNTER += 1
            total += len(GLOBAL_LIST) + GLOBAL_INT
        return total

    _, prof = run_both_profiled(f, N)
    loop = [s for s in sites(prof, "LOAD_GLOBAL") if s["hits"] + s["misses"] == N]
    assert len(loop) == 4 and all(s["misses"] <= 2 for s in loop), prof


def test_global_deleted_and_added_again():
    def f(n):
        g = globals()
        g["MOVING"] = 0
        out = []
        for i in range(n):
            out.append(MOVING)
            if i % 7 == 3:
                del g["MOVING"]
                g["PEREGRINE_FILLER_%d" % i] = i
                g["MOVING"] = i
        for k in [k for k in g if k.startswith("PEREGRINE_FILLER_")]:
            del g[k]
        del g["MOVING"]
        return out

    run_both(f, N)


def test_globals_of_a_dict_subclass():
    class Globals(dict):
        def __getitem__(self, key):
            return "from __getitem__" if key == "WHO" else dict.__getitem__(self, key)

    def f(n):
        code = compile("def get():\n    return WHO\n", "<g>", "exec")
        out = []
        for globals_ in ({"WHO": "exact"}, Globals(WHO="subclass")):
            exec(code, globals_)
            get = globals_["get"]
            out.extend(get() for _ in range(n))
        return out

    run_both(f, N)


def test_one_code_object_shared_by_both_kinds_of_globals():
    # The same function code, once with the name among its globals, once only in builtins.
    def f(n):
        import builtins
        code = compile("def get():\n    return PEREGRINE_SHARED\n", "<g>", "exec")
        builtins.PEREGRINE_SHARED = "builtin"
        try:
            a, b = {"PEREGRINE_SHARED": "global"}, {}
            exec(code, a)
            exec(code, b)
            b["get"] = type(a["get"])(a["get"].__code__, b)
            return [(a["get"](), b["get"]()) for _ in range(n)]
        finally:
            del builtins.PEREGRINE_SHARED

    run_both(f, N)


def test_builtins_not_a_dict():
    class Mapping:
        def __getitem__(self, key):
            if key == "magic":
                return 42
            raise KeyError(key)

    def f(n):
        code = compile("def get():\n    return magic\n", "<m>", "exec")
        out = []
        for builtins in (Mapping(), {"magic": 1}):
            ns = {"__builtins__": builtins}
            exec(code, ns)
            out.extend(ns["get"]() for _ in range(n))
        return out

    run_both(f, N)


# --------------------------------------------------------------------------------------------
# LOAD_ATTR / STORE_ATTR on instances


def test_instance_attributes_hit():
    def f(n):
        class P:
            def __init__(self, x, y):
                self.x = x
                self.y = y

        ps = [P(i, -i) for i in range(n)]
        total = 0
        for p in ps:
            p.x = p.x + 1
            total += p.x * p.y
        return total

    _, prof = run_both_profiled(f, N)
    loads = [s for s in sites(prof, "LOAD_ATTR") if s["cache"] == "instance_value"]
    stores = [s for s in sites(prof, "STORE_ATTR") if s["cache"] == "instance_value"]
    assert len(loads) == 3 and all(s["hits"] >= N - 1 for s in loads), loads
    assert len(stores) == 1 and stores[0]["hits"] >= N - 1, stores


def test_class_attributes_shadowed_by_instance_attributes():
    # A class attribute that is not a data descriptor is overridden by an instance's own: the
    # cache reads the instance and misses (the class's value) when the instance lacks it.
    def f(n):
        class NonData:
            def __get__(self, obj, tp=None):
                return "descriptor"

        class C:
            depth = 0
            label = "class"
            helper = staticmethod(len)
            make = classmethod(lambda cls: cls.__name__)
            nd = NonData()

            def __init__(self, own):
                if own:
                    self.label = "instance"
                    self.helper = "own helper"
                    self.make = "own make"
                    self.nd = "own nd"

        a, b = C(True), C(False)
        out = []
        for i in range(n):
            a.depth += 1  # loads the class's 0 the first time, then the instance's
            out.append((a.depth, a.label, b.label, a.helper, b.helper("ab"), a.make, b.make(),
                        a.nd, b.nd, b.depth))
            if i == n // 2:
                del a.label  # the class's value shows again
                C.label = "changed"
            if i == n - 5:
                b.nd = "late"
        return out, C.depth

    _, prof = run_both_profiled(f, N)
    hot = [s for s in sites(prof, "LOAD_ATTR") if s["cache"] == "instance_value" and s["hits"] >= N - 4]
    assert len(hot) >= 4, [(s["offset"], s["cache"], s["hits"], s["misses"]) for s in sites(prof, "LOAD_ATTR")]


def test_data_descriptors_are_not_shadowed():
    # A property or any descriptor with __set__ wins over an instance's dict entry.
    def f(n):
        class Data:
            def __get__(self, obj, tp=None):
                return "data"

            def __set__(self, obj, value):
                obj.__dict__["seen"] = value

        class C:
            prop = property(lambda self: "property")
            d = Data()

        c = C()
        c.__dict__["prop"] = "shadow?"
        c.__dict__["d"] = "shadow?"
        out = []
        for i in range(n):
            c.d = i
            out.append((c.prop, c.d, c.seen))
        return out

    run_both(f, N)


def test_attributes_of_instances_with_a_dict_at_an_offset():
    # ast nodes keep their dict at tp_dictoffset (no managed dict); ceval 3.11 does not
    # specialize them, the cache does.
    def f(n):
        import ast

        class Sub(ast.Name):
            extra = "class"

        nodes = [ast.Name(id=f"v{i}", ctx=ast.Load()) for i in range(n)]
        sub = Sub(id="s", ctx=ast.Store())
        out = []
        for i, node in enumerate(nodes):
            node.seen = i  # stores take the generic path
            sub.count = i
            out.append((node.id, type(node.ctx).__name__, node._fields, sub.id, sub.extra,
                        node.seen, sub.count))
            if i == n // 2:
                node.__dict__ = {"id": "replaced", "ctx": ast.Del()}
                sub.extra = "own"
            if i == n // 2 + 1:
                nodes[i + 1].__dict__[1] = "a non-str key"  # that dict is looked up generically
        return out

    _, prof = run_both_profiled(f, N)
    at = [s for s in sites(prof, "LOAD_ATTR") if s["cache"] == "instance_dict_at"]
    assert at and max(s["hits"] for s in at) >= N - 3, at


def test_type_modified_after_warmup():
    def f(n):
        class P:
            def __init__(self):
                self.x = 1

        p = P()
        out = []
        for i in range(n):
            out.append(p.x)
            if i == 10:
                P.x = property(lambda self: "property")
            if i == 20:
                del P.x
            if i == 30:
                P.__getattribute__ = lambda self, name: "getattribute"
        return out

    run_both(f, N)


def test_store_after_data_descriptor_added():
    def f(n):
        seen = []

        class P:
            def __init__(self):
                self.x = 0

        p = P()
        for i in range(n):
            p.x = i
            if i == 10:
                P.x = property(lambda self: seen[-1] if seen else None, lambda self, v: seen.append(v))
        return p.x, seen, vars(p)

    run_both(f, N)


def test_class_assigned():
    def f(n):
        class A:
            def __init__(self):
                self.a = "a"
                self.x = "A.x"

        class B:
            def __init__(self):
                self.x = "B.x"
                self.a = "b"

        o = A()
        out = []
        for i in range(n):
            out.append(o.x)
            if i == 10:
                o.__class__ = B
            if i == 20:
                o.__class__ = A
        return out

    run_both(f, N)


def test_slots_and_dicts_mixed_at_one_site():
    def f(n):
        class WithSlots:
            __slots__ = ("x", "y")

            def __init__(self, x):
                self.x = x

        class WithDict:
            def __init__(self, x):
                self.x = x

        class Sub(WithSlots):
            __slots__ = ("z",)

            def __init__(self, x):
                self.z = 0
                self.x = x

        objs = [WithSlots(1), WithDict(2), Sub(3)] * n
        total = 0
        for o in objs:
            o.x = o.x + 1
            total += o.x
        return total

    _, prof = run_both_profiled(f, N)
    # One monomorphic cache per site: the three types take turns, and the profile names them.
    for s in sites(prof, "LOAD_ATTR") + sites(prof, "STORE_ATTR"):
        assert sorted(s["types"]) == ["Sub", "WithDict", "WithSlots"], s


def test_slot_unset_and_deleted():
    def f(n):
        class S:
            __slots__ = ("x",)

        s = S()
        out = []
        for i in range(n):
            try:
                out.append(s.x)
            except AttributeError as e:
                out.append(str(e))
            if i == 5:
                s.x = 1
            if i == 15:
                del s.x
        return out

    run_both(f, N)


def test_instance_dict_made_and_attribute_deleted():
    def f(n):
        class P:
            def __init__(self):
                self.x = 1
                self.y = 2

        p = P()
        out = []
        for i in range(n):
            try:
                out.append(p.x)
            except AttributeError as e:
                out.append(str(e))
            p.y = i
            if i == 10:
                p.__dict__["x"] = "through the dict"
            if i == 20:
                del p.x
            if i == 30:
                p.x = "back"
        return out, vars(p)

    run_both(f, N)


def test_new_attributes_keep_insertion_order():
    def f(n):
        class P:
            pass

        out = []
        for i in range(n):
            p = P()
            if i % 2:
                p.b = 1
                p.a = 2
            else:
                p.a = 1
                p.b = 2
            p.a = 3
            out.append(list(vars(p)))
        return out

    run_both(f, N)


def test_getattr_fallback():
    def f(n):
        class P:
            def __init__(self):
                self.x = 1

            def __getattr__(self, name):
                return "fallback " + name

        p = P()
        out = []
        for i in range(n):
            out.append(p.x)
            if i == 10:
                del p.x
        return out

    run_both(f, N)


# --------------------------------------------------------------------------------------------
# Modules


def test_module_attribute_hits_and_is_replaced():
    def f(n):
        import types
        m = types.ModuleType("m")
        m.value = 1
        out = []
        for i in range(n):
            out.append(m.value)
            if i == 10:
                m.value = 2
            if i == 20:
                del m.value
                m.__getattr__ = lambda name: "module getattr " + name
        return out

    _, prof = run_both_profiled(f, N)
    (load,) = [s for s in sites(prof, "LOAD_ATTR") if s["cache"] is not None or s["types"] == ["module"]]
    assert load["hits"] >= 10, load


def test_class_attributes_on_the_class_hit_and_follow_changes():
    def f(n):
        class Base:
            SHARED = "base"

        class Direction(Base):
            FORWARD = 1
            BACKWARD = -1

        class Other:
            FORWARD = "other"

        out = []
        for i in range(n):
            out.append((Direction.FORWARD, Direction.SHARED))
            if i == 10:
                Direction.FORWARD = 2            # the class changed
            if i == 15:
                Base.SHARED = "changed base"     # a base changed
            if i == 20:
                del Direction.FORWARD            # gone: AttributeError from here
            if i >= 20:
                try:
                    out.append(Direction.FORWARD)
                except AttributeError as e:
                    out.append(str(e))
                Direction.FORWARD = i
            if i == 30:
                Direction = Other                # another class at the site
        return out

    _, prof = run_both_profiled(f, N)
    loads = [s for s in sites(prof, "LOAD_ATTR") if s["cache"] == "class_attr"]
    assert loads and max(s["hits"] for s in loads) >= 10, sites(prof, "LOAD_ATTR")


def test_class_attributes_that_are_not_plain_values_are_not_cached():
    def f(n):
        class Getter:
            def __get__(self, obj, cls):
                return ("got", cls.__name__)

        class Plain:
            pass

        class Meta(type):
            @property
            def FORWARD(cls):
                return "meta property"

        class C:
            descriptor = Getter()
            plain = Plain()
            method = lambda self: 1  # noqa: E731
            static = staticmethod(len)

        class M(metaclass=Meta):
            FORWARD = "shadowed by the metaclass's property"

        class Named:
            __name__ = "in the class dict, below type's data descriptor"

        out = []
        for i in range(n):
            out.append((C.descriptor, C.method is C.__dict__["method"], C.static("ab"), M.FORWARD,
                        C.__name__, C.__doc__, type(C.plain).__name__, Named.__name__))
            if i == 10:
                Plain.__get__ = lambda self, obj, cls: "plain gained __get__"
        return out

    _, prof = run_both_profiled(f, N)
    assert not [s for s in sites(prof, "LOAD_ATTR") if s["cache"] == "class_attr"], sites(prof, "LOAD_ATTR")


def test_module_method_call():
    def f(n):
        total = 0.0
        for i in range(n):
            total += math.floor(i / 3) + math.sqrt(i)
        return total

    _, prof = run_both_profiled(f, N)
    # `math` is a global; `math.floor` a module attribute (a LOAD_ATTR before PRECALL here; a
    # LOAD_METHOD would leave NULL, attribute).
    attrs = [s for s in sites(prof, "LOAD_ATTR") + sites(prof, "LOAD_METHOD") if s["cache"] == "module"]
    assert len(attrs) == 2 and all(s["hits"] >= N - 1 for s in attrs), prof


def test_module_load_method():
    def f(n):
        import types
        m = types.ModuleType("m")
        m.size = len
        out = []
        for i in range(n):
            out.append(m.size([i] * i))
            if i == 10:
                m.size = lambda x: "replaced"
        return out

    _, prof = run_both_profiled(f, N)
    assert any(s["cache"] == "module" and s["hits"] >= N - 3 for s in prof), prof


def test_module_subclass_and_dunder():
    def f(n):
        import types

        class M(types.ModuleType):
            @property
            def value(self):
                return "property"

        plain, sub = types.ModuleType("plain"), M("sub")
        plain.value = "plain"
        out = []
        for i in range(n):
            for m in (plain, sub):
                out.append((m.value, m.__name__, type(m.__dict__).__name__))
        return out

    run_both(f, N)


# --------------------------------------------------------------------------------------------
# LOAD_METHOD


def test_methods_hit():
    def f(n):
        class P:
            def __init__(self):
                self.v = 1

            def get(self):
                return self.v

        class S:
            __slots__ = ("v",)

            def __init__(self):
                self.v = 2

            def get(self):
                return self.v

        out = []
        p, s = P(), S()
        for i in range(n):
            out.append(p.get() + s.get())
            out.append(",".join(["a", "b"]))
        return out

    _, prof = run_both_profiled(f, N)
    kinds = sorted(s["cache"] for s in sites(prof, "LOAD_METHOD") if s["cache"])
    assert "method_with_values" in kinds and kinds.count("method_no_dict") >= 2, prof


def test_methods_hit_while_instances_gain_attributes():
    # New attribute names join the type's shared keys without a new type version: the method
    # cache re-arms for the new entry count instead of missing from then on.
    def f(n):
        class P:
            def __init__(self):
                self.v = 1

            def get(self):
                return self.v

        p, q = P(), P()
        out = []
        for i in range(n):
            out.append(p.get())
            if i % 8 == 3:
                setattr(q, f"extra{i}", i)  # a new name in the shared keys
        return out, sorted(vars(q))

    _, prof = run_both_profiled(f, N)
    get = [s for s in sites(prof, "LOAD_METHOD") if s["cache"] == "method_with_values"]
    assert get and get[0]["hits"] >= N - 8, get


def test_method_shadowed_by_instance_attribute():
    def f(n):
        class P:
            def __init__(self):
                self.v = 1

            def get(self):
                return "method"

        p = P()
        out = []
        for i in range(n):
            out.append(p.get())
            if i == 10:
                p.get = lambda: "instance attribute"
            if i == 20:
                del p.get
            if i == 30:
                p.__dict__["get"] = lambda: "through the dict"
        return out

    run_both(f, N)


def test_method_shadowed_in_a_combined_instance_dict():
    # A dict with a non-str key is no longer split: a name added to it leaves the type's shared
    # keys as they were, so only the check for an instance dict sees the shadowing.
    def f(n):
        class P:
            def __init__(self):
                self.v = 1

            def get(self):
                return "method"

        objs = [P() for _ in range(n)]
        odd = objs[n // 2]
        odd.__dict__[1] = "not a str"
        odd.__dict__["get"] = lambda: "shadow"
        return [o.get() for o in objs]

    run_both(f, N)


def test_method_replaced_on_the_class_and_subclass():
    def f(n):
        class P:
            def get(self):
                return "P"

        class Q(P):
            pass

        objs = [P(), Q()]
        out = []
        for i in range(n):
            for o in objs:
                out.append(o.get())
            if i == 10:
                P.get = lambda self: "replaced"
            if i == 20:
                Q.get = lambda self: "Q"
        return out

    run_both(f, N)


def test_method_of_a_builtin_type():
    def f(n):
        out = []
        for i in range(n):
            lst = []
            lst.append(i)
            d = {}
            d.setdefault("k", []).append(i)
            out.append((lst, d, "x".upper()))
        return out

    run_both(f, N)


# --------------------------------------------------------------------------------------------
# BINARY_OP and COMPARE_OP inline


def test_binary_op_profile():
    def f(n):
        x, k = 0.5, 0
        for i in range(n):
            x = x * 1.0001 + 0.25
            k = (k + i) & 0xFFFF
        return x, k

    _, prof = run_both_profiled(f, N)
    ops = sites(prof, "BINARY_OP")
    assert sum(s["float_hits"] for s in ops) >= 2 * N and sum(s["int_hits"] for s in ops) >= 2 * N, ops


@pytest.mark.parametrize("a,b", [(2 ** 30 - 1, 1), (-(2 ** 30 - 1), -1), (2 ** 30 - 1, 2 ** 30 - 1),
                                 (-(2 ** 29), 2 ** 29), (7, -9)])
def test_int_results_that_overflow_one_digit(a, b):
    def f(a, b):
        out = []
        for _ in range(3):
            out.append((a + b, a - b, a * b, a & b, a | b, a ^ b, -a - b))
        return out

    run_both(f, a, b)


def test_compare_and_jump_inline():
    def f(n):
        hits = 0
        x = 0.0
        for i in range(n):
            if i < n // 2:
                hits += 1
            if x <= 3.5:
                hits += 2
            x += 0.25
        return hits

    _, prof = run_both_profiled(f, N)
    compares = sites(prof, "COMPARE_OP")
    # Warm after 8 backward jumps (ceval's quickening delay): the forms specialize then.
    assert sum(s["hits"] for s in compares) >= 2 * (N - 9), compares


@pytest.mark.parametrize("values", [
    [0.0, -0.0], [float("nan"), 1.0], [1.0, float("nan")], [float("inf"), float("-inf")],
    [2 ** 30 - 1, 2 ** 30], [-(2 ** 30), 2 ** 30 - 1], [0, -0], [True, 1], [1.0, 1],
], ids=repr)
def test_compare_edges(values):
    def f(values):
        out = []
        for a in values:
            for b in values:
                for _ in range(12):  # warm: the sites specialize
                    r = []
                    if a < b:
                        r.append("<")
                    if a <= b:
                        r.append("<=")
                    if a == b:
                        r.append("==")
                    if a != b:
                        r.append("!=")
                    if a > b:
                        r.append(">")
                    if a >= b:
                        r.append(">=")
                    out.append(r)
        return out

    run_both(f, values)


# --------------------------------------------------------------------------------------------
# Instances whose dict was made


def test_attributes_of_instances_with_a_dict():
    def f(n):
        class P:
            def __init__(self, i):
                self.x = i
                self.y = -i

        class D(dict):
            def __missing__(self, key):
                return "missing"  # attribute lookup never calls it

        objs = [P(i) for i in range(n)]
        for o in objs[::2]:
            o.__dict__  # made: the values move into a dict
        objs[3].__dict__[1] = "a non-str key"
        objs[5].__dict__ = {"x": 50, "y": 0}
        objs[7].__dict__ = D(x=70, y=0)
        total = 0
        for o in objs:
            o.y = o.x * 2
            total += o.x + o.y
        return total, [vars(o) for o in objs[:8]]

    _, prof = run_both_profiled(f, N)
    loop = [s for s in sites(prof, "LOAD_ATTR") + sites(prof, "STORE_ATTR") if s["hits"] + s["misses"] == N]
    assert len(loop) == 4 and all(s["cache"] == "instance_value" and s["hits"] >= N - 3 for s in loop), prof


def test_names_only_in_instance_dicts():
    def f(n):
        class P:
            def __init__(self, i):
                self.x = i

        objs = [P(i) for i in range(n)]
        for o in objs:
            # A dict of its own (not split from the type's shared keys): the name stays out of
            # the shared keys.
            o.__dict__ = {"x": o.x, "only_in_dict": o.x}
        total = 0
        for o in objs:
            o.only_in_dict += 1
            total += o.only_in_dict
        late = P(0)
        late.only_in_dict = "late"  # now it is among the shared keys, in late's values
        return total, late.only_in_dict, [o.only_in_dict for o in (objs[0], late)]

    _, prof = run_both_profiled(f, N)
    kinds = {s["cache"] for s in sites(prof, "LOAD_ATTR") if s["hits"] >= N - 1}
    assert "instance_dict" in kinds, prof


def test_string_compares_inline():
    def f(words):
        counts = [0, 0, 0]
        for w in words:
            if w == "push":
                counts[0] += 1
            elif w != "pop":
                counts[1] += 1
            else:
                counts[2] += 1
        return counts

    words = ["push", "pop", "p" + "ush", "add", "pop"] * 10
    _, prof = run_both_profiled(f, words)
    assert sum(s["hits"] for s in sites(prof, "COMPARE_OP")) >= 60, prof


def test_globals_that_are_a_split_dict():
    # An instance's dict is split (values kept apart from the shared keys): its entries hold no
    # values, so an entry index cached from an ordinary dict must not be read there.
    def f(n):
        class O:
            pass

        o = O()
        o.WHO = "split"
        split = o.__dict__
        code = compile("def get():\n    return WHO\n", "<g>", "exec")
        out = []
        for globals_ in ({"WHO": "exact"}, split):
            exec(code, globals_)
            get = globals_["get"]
            out.extend(get() for _ in range(n))
        return out

    run_both(f, N)


def test_instance_dict_lookup_that_raises():
    # A key whose hash collides with the attribute name and whose __eq__ raises: the lookup
    # raises, in compiled code as in the interpreter, and runs __eq__ as often.
    def f(n):
        calls = []

        class Key:
            def __hash__(self):
                return hash("get")

            def __eq__(self, other):
                calls.append(other)
                raise RuntimeError("eq")

        class P:
            def __init__(self):
                self.v = 1

            def get(self):
                return "method"

        objs = [P() for _ in range(n)]
        odd = objs[-1]
        odd.__dict__[Key()] = 1
        out = []
        try:
            for o in objs:
                out.append(o.get())
        except RuntimeError as e:
            out.append(str(e))
        return out, len(calls)

    run_both(f, N)


def test_string_compare_site_given_other_types():
    # A site specialized for strs later compares equal tuples, ints and mixed types.
    def f(n):
        a, b = (1, 2), (1, 2)
        x, y = float("1.5"), float("1.5")  # equal, distinct
        big, other = int("1000"), int("1000")
        values = [("x" + str(i % 3), "x1") for i in range(n)]
        values += [(a, b), (3, 3), (a, "x"), (None, None), (x, y), (big, other), ([1], [1])] * 5
        out = []
        for l, r in values:  # compares before a jump: the combined form's site
            if l == r:
                out.append("==")
            if l != r:
                out.append("!=")
        return out

    run_both(f, N)


# --------------------------------------------------------------------------------------------
# Subscripts and unpacking


def test_list_and_tuple_subscripts_hit():
    def f(n):
        lst, tup = list(range(n)), tuple(range(n))
        total = 0
        for i in range(n):
            total += lst[i] * tup[i]
            lst[i] = total
        return total, lst

    _, prof = run_both_profiled(f, N)
    subs = sites(prof, "BINARY_SUBSCR")
    # Warm (and specialized) after ceval's 8-jump delay; the forms' guards then pass.
    assert len(subs) == 2 and all(s["hits"] >= N - 10 for s in subs), subs


def test_subscript_edges():
    def f(n):
        class L(list):
            def __getitem__(self, i):
                return "sub"

        lst, tup = [10, 20, 30], (1, 2, 3)
        out = []
        for i in range(n):
            for container in (lst, tup, L(lst)):
                for index in (0, 2, -1, True, 2 ** 40, 1.0 if i == 30 else 1):
                    try:
                        out.append(container[index])
                    except (IndexError, TypeError) as e:
                        out.append(type(e).__name__)
        return out

    # Exceptions hand the frame to the interpreter; run each container's warm loop compiled.
    run_both(f, N)


def test_list_resized_while_indexed():
    def f(n):
        lst = list(range(n))
        out = []
        i = 0
        while i < len(lst):
            out.append(lst[i])
            if i % 5 == 0:
                lst.pop()
            i += 1
        return out

    run_both(f, N)


def test_list_store_releases_the_old_item_after_storing():
    def f(n):
        seen = []
        box = [None]

        class Noisy:
            def __init__(self, tag):
                self.tag = tag

            def __del__(self):
                seen.append((self.tag, box[0].tag if box[0] is not None else None))

        for i in range(n):
            box[0] = Noisy(i)
        box[0] = None
        return seen

    run_both(f, N)


def test_list_store_edges():
    def f(n):
        lst = [0] * 4
        out = []
        for i in range(n):
            for index in (0, 3, -1, True):
                lst[index] = i
            try:
                lst[4] = i
            except IndexError as e:
                out.append(str(e))
        return lst, out

    run_both(f, N)


def test_unpacking_hits_and_edges():
    def f(n):
        pairs = [(i, -i) for i in range(n)]
        lists = [[i, i + 1, i + 2] for i in range(n)]
        total = 0
        for a, b in pairs:
            total += a - b
        for x, y, z in lists:
            total += x * y - z
        return total

    _assert_both_unpacks_hit(f)


def _assert_both_unpacks_hit(f):
    """f(N) agrees with the interpreter, and both its UNPACK_SEQUENCE sites hit when warm."""
    _, prof = run_both_profiled(f, N)
    unpacks = sites(prof, "UNPACK_SEQUENCE")
    assert len(unpacks) == 2 and all(s["hits"] >= N - 10 for s in unpacks), unpacks


def test_unpacking_long_sequences_hits():
    # More items than the unrolled copy: the copy loop, for tuples and lists, with the items'
    # order and reference counts seen afterwards (the sequence may die with the unpacking).
    def f(n):
        total = []
        for i in range(n):
            t = tuple(range(i, i + 10))
            a, b, c, d, e, f_, g, h, i2, j = t
            lst = [str(k) for k in range(12)]
            p, q, r, s, u, v, w, x, y, z, aa, bb = lst
            del t, lst
            total.append((a, j, b + i2, p, bb, q + aa, sys.getrefcount(bb)))
        return total

    _assert_both_unpacks_hit(f)


def test_unpacking_wrong_sizes_and_kinds():
    def f(n):
        out = []
        for i in range(n):
            seq = [(1, 2), [3, 4], (5, 6, 7), "ab", range(2), [8]][i % 6]
            try:
                a, b = seq
                out.append((a, b))
            except ValueError as e:
                out.append(str(e))
        big = tuple(range(10))
        for _ in range(n):
            a, b, c, d, e, f_, g, h, i, j = big
            out.append(j)
        return out

    run_both(f, N)


# Warm-up first, edges after: an exception hands the raising frame to the interpreter, so each
# access runs in its own small compiled function (warm after 8 calls, as in ceval), whose every
# call enters compiled code again.
WARM = 12


def test_warm_subscript_edges():
    def f():
        def get(container, index):
            return container[index]

        class L(list):
            def __getitem__(self, i):
                return "L.__getitem__"

        class T(tuple):
            pass

        lst, tup = [10, 20, 30], (1, 2, 3)
        for _ in range(WARM):
            get(lst, 1)
        out = []
        for container in (lst, L(lst), tup, T(tup)):
            for index in (0, 2, 3, -1, -4, True, 2 ** 30, 2 ** 40, 2 ** 40 + 1, -(2 ** 40), 1.0, "x", [], ()):
                try:
                    out.append(get(container, index))
                except (IndexError, TypeError) as e:
                    out.append(type(e).__name__ + ": " + str(e))
        for _ in range(60):
            get(tup, 1)  # 53 misses send the site back to adaptive; then the tuple form
        for container in (tup, T(tup), lst):
            for index in (0, 2, 3, -1, 2 ** 40):
                try:
                    out.append(get(container, index))
                except (IndexError, TypeError) as e:
                    out.append(type(e).__name__ + ": " + str(e))
        return out

    run_both(f)


def test_warm_store_edges():
    def f():
        def put(container, index, value):
            container[index] = value

        class L(list):
            def __setitem__(self, i, v):
                list.__setitem__(self, 0, ("L.__setitem__", i, v))

        lst = [0, 0, 0]
        for i in range(WARM):
            put(lst, 1, i)
        out = []
        for container in (lst, L(lst)):
            for index in (0, 2, 3, -1, -4, True, 2 ** 40, 2 ** 40 + 1, 1.0):
                try:
                    put(container, index, index)
                except (IndexError, TypeError) as e:
                    out.append(type(e).__name__ + ": " + str(e))
            out.append(list(container))
        return out

    run_both(f)


def test_warm_unpack_edges():
    def f():
        def two(seq):
            a, b = seq
            return a, b

        class L(list):
            def __iter__(self):
                return iter(("L", "iter"))

        for _ in range(WARM):
            two([1, 2])  # the list form
        out = []
        for seq in ((3, 4), L([5, 6]), [7], [7, 8, 9], "ab", [10, 11]):
            try:
                out.append(two(seq))
            except ValueError as e:
                out.append(str(e))
        for _ in range(WARM):
            two((1, 2))  # back to adaptive, then the tuple form
        for seq in ([3, 4], (5,), (5, 6, 7), (8, 9)):
            try:
                out.append(two(seq))
            except ValueError as e:
                out.append(str(e))
        return out

    run_both(f)


# --------------------------------------------------------------------------------------------
# FOR_ITER and truth tests inline


def test_for_over_lists_tuples_and_ranges():
    def f(n):
        out = []
        lst = list(range(n))
        for x in lst:
            if x > 0 and x % 7 == 0:
                lst.append(-x)  # grows while iterated: the iterator sees the new items
            if x == 20:
                del lst[25:30]
            out.append(x)
        for x in tuple(range(5)):
            out.append(x)
        for r in (range(n), range(n, -n, -3), range(2 ** 62, 2 ** 62 + 5), range(-(2 ** 63), -(2 ** 63) + 3),
                  range(2 ** 64, 2 ** 64 + 3), range(0), range(5, 0)):
            for x in r:
                out.append(x)
        it = iter([1, 2, 3, 4])
        for x in it:
            out.append((x, next(it, None)))
        for x in it:  # exhausted
            out.append("never")
        return out

    run_both(f, N)


def test_truth_tests_inline():
    def f(n):
        class Falsy(int):
            def __bool__(self):
                return False

        class Sized(list):
            def __len__(self):
                return 0

        values = [0, 1, -1, 2 ** 40, -(2 ** 40), [], [0], (), (0,), {}, {1: 2}, "", "a", None, 0.0, 1.5,
                  Falsy(5), Sized([1]), set(), frozenset([1]), b"", b"x", True, False]
        out = []
        for _ in range(n // 10):
            for v in values:
                if v:
                    out.append(1)
                else:
                    out.append(0)
                while v:
                    out.append("w")
                    break
        return out

    run_both(f, N)


def test_new_attributes_in_init_hit_and_keep_their_order():
    def f(n):
        class P:
            def __init__(self, i):
                if i % 3:
                    self.b = i
                    self.a = -i
                else:
                    self.a = i
                    self.b = -i
                self.c = i * 2

        objs = [P(i) for i in range(n)]
        for o in objs[::4]:
            del o.a
            o.a = "again"  # deleted, then new again: it moves to the end of the order
        return [list(vars(o).items()) for o in objs]

    run_both(f, N)


def test_init_stores_hit():
    class P:
        def __init__(self, i):
            self.x = i
            self.y = -i
            self.z = i * 2

    def f(n):
        return [vars(P(i)) for i in range(n)]

    import peregrine
    from difftest import fresh_function
    init = fresh_function(P.__init__)
    P.__init__ = init
    peregrine.compile(init, tier="baseline")
    run_both(f, N)
    stores = sites(peregrine.profile(init), "STORE_ATTR")
    assert len(stores) == 3 and all(s["cache"] == "instance_value" and s["hits"] >= N - 1 for s in stores), stores


def test_slot_borrowed_from_an_unrelated_class():
    # CPython's test_opcache: a member descriptor of one class placed on another does not apply
    # to its instances (TypeError), so its offset must never be used.
    def f():
        class Class:
            __slots__ = ("slot",)

        class Sneaky:
            borrowed = Class.slot

        def load(o):
            return o.borrowed

        def store(o):
            o.borrowed = 42

        out = []
        o = Sneaky()
        for fn in (load, store):
            for _ in range(WARM):
                try:
                    out.append(fn(o))
                except TypeError as e:
                    out.append(str(e))
        return out

    run_both(f)



# --------------------------------------------------------------------------------------------
# Several types at one site: the ways of a LOAD_ATTR or LOAD_METHOD cache


def test_sites_that_see_several_types_hit_for_each():
    def f(n):
        class A:
            def __init__(self):
                self.x = 1

            def area(self):
                return 1

        class B:
            __slots__ = ("x",)

            def __init__(self):
                self.x = 2

            def area(self):
                return 2

        class C(A):
            def area(self):
                return 3

        import types
        m = types.ModuleType("m")
        m.x = 4
        m.area = lambda: 4
        shapes = [A(), B(), C(), m]
        total = 0
        for i in range(n):
            s = shapes[i % 4]
            total += s.x + s.area()        # four types (a module among them) at each site
        return total

    _, prof = run_both_profiled(f, 4 * N, exits={})
    for op in ("LOAD_ATTR", "LOAD_METHOD"):
        (site,) = [s for s in sites(prof, op) if s["hits"] + s["misses"] == 4 * N]
        assert site["ways"] == 4 and site["misses"] == 4, site


def test_several_types_modified_after_warmup():
    # Each way keeps its own guard: a class modified (its version changes), a method replaced,
    # an instance's __class__ assigned, an instance dict shadowing a method, all in the second
    # and later ways.
    def f(n):
        class A:
            def __init__(self):
                self.x = "a"

            def m(self):
                return "A.m"

        class B:
            def __init__(self):
                self.x = "b"

            def m(self):
                return "B.m"

        class C:
            __slots__ = ("x",)

            def __init__(self):
                self.x = "c"

            def m(self):
                return "C.m"

        objs = [A(), B(), C()]
        out = []
        for i in range(n):
            o = objs[i % 3]
            out.append((o.x, o.m()))
            if i == n // 4:
                B.x = property(lambda self: "B.x property")   # a data descriptor now wins
            if i == n // 3:
                C.m = lambda self: "C.m replaced"
            if i == n // 2:
                objs[1].__class__ = A                         # a B becomes an A
            if i == 2 * n // 3:
                objs[0].m = lambda: "instance m"              # shadows A.m for one instance
        return out

    run_both(f, 6 * N)


class _Shape:
    def __init__(self, v):
        self.v = v

    def get(self):
        return self.v


def _shape_classes(k):
    return [type(f"S{j}", (_Shape,), {}) for j in range(k)]


def test_more_types_than_ways():
    # Six types at one site: four ways stay armed, the rest take the slow path, and every result
    # is the interpreter's.
    def f(n):
        objs = [cls(j) for j, cls in enumerate(_shape_classes(6))]
        total = 0
        for i in range(n):
            o = objs[i % 6]
            total += o.v + o.get()
        return total

    _, prof = run_both_profiled(f, 6 * N, exits={})
    for op in ("LOAD_ATTR", "LOAD_METHOD"):
        site = max(sites(prof, op), key=lambda s: s["hits"] + s["misses"])
        assert site["ways"] == 4 and site["hits"] >= 3 * N, site


def test_stores_at_a_site_that_sees_several_types():
    # STORE_ATTR's inline guard tries each way: instance values of two classes, a slot, an
    # instance whose dict was made; then one class gains a data descriptor, another instance
    # is given a new class.
    def f(n):
        class A:
            def __init__(self):
                self.x = 0

        class B:
            def __init__(self):
                self.y, self.x = 0, 0

        class S:
            __slots__ = ("x",)

        class D:
            pass

        d = D()
        d.__dict__["other"] = 1               # a dict made before any attribute is set
        objs = [A(), B(), S(), d]
        log = []
        for i in range(n):
            o = objs[i % 4]
            o.x = i                           # one site, four types
            if i == n // 2:
                B.x = property(lambda self: "B.x", lambda self, v: log.append(("set", v)))
            if i == 3 * n // 4:
                objs[0].__class__ = D
        return [getattr(o, "x", None) for o in objs], log

    _, prof = run_both_profiled(f, 8 * N, exits={})
    site = max(sites(prof, "STORE_ATTR"), key=lambda s: s["hits"] + s["misses"])
    assert site["ways"] >= 3 and site["hits"] >= 4 * N, site


# --------------------------------------------------------------------------------------------
# Instances whose dict was made: the hint into a combined table, the split table's values


def test_dict_hint_follows_each_instances_own_order():
    # Attributes outside the type's shared keys live in each instance's own (combined) dict, in
    # the order each instance got them: the hint (where the first instance had the name) must be
    # checked against every instance's entry.
    def f(n):
        class P:
            pass

        a, b = P(), P()
        a.__dict__[0] = "non-str key"   # a dict of general keys: looked up the slow way
        a.p, a.q = "a.p", "a.q"
        b.q, b.p = "b.q", "b.p"         # the other order
        c = P()
        c.q = "c.q"
        c.r = "c.r"
        objs = [b, c, a]
        out = []
        for i in range(n):
            o = objs[i % 3]
            out.append(o.q)
            if i == n // 2:
                del b.q                  # the entry is deleted, then added again at the end
                b.q = "b.q again"
            if i == 2 * n // 3:
                setattr(c, "".join(["q"]), "c.q by an equal str")  # not the interned name
        return out

    run_both(f, 6 * N)


def test_attributes_of_instances_whose_dict_was_made():
    # `vars(obj)` makes the dict from the values (a split table sharing the type's keys); a new
    # attribute outside them makes it combined; a deleted one lets the class attribute show.
    def f(n):
        class V:
            x = "class x"
            z = "class z"

            def __init__(self, i):
                self.x, self.y = i, -i

        objs = [V(i) for i in range(4)]
        objs[0].z = "own z"              # z joins the shared keys; the others leave it unset
        vars(objs[1])                    # split, z's value missing: the class attribute
        vars(objs[2])["w"] = "new key"
        out = []
        for i in range(n):
            o = objs[i % 4]
            out.append((o.x, o.y, o.z))
            if i == n // 2:
                del objs[1].x            # split dict: the class attribute again
            if i == 2 * n // 3:
                objs[3].__dict__         # made now, while the site is warm
        return out

    _, prof = run_both_profiled(f, 8 * N, exits={})
    # x and y hit for every instance, whatever its dict (z is unset in three of the four: those
    # take the generic path, which finds the class attribute).
    x, y, z = [s for s in sites(prof, "LOAD_ATTR") if s["hits"] + s["misses"] == 8 * N]
    assert x["hits"] >= 6 * N and y["hits"] >= 7 * N, (x, y)  # (x deleted from one: misses)
