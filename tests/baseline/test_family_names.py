"""Differential tests of the baseline's names family (LOAD_NAME, STORE_NAME, DELETE_NAME,
LOAD_CLASSDEREF, LOAD_BUILD_CLASS, SETUP_ANNOTATIONS, IMPORT_NAME, IMPORT_FROM, IMPORT_STAR,
PRINT_EXPR).

Every case compiles the same source twice: one code object runs in CPython's interpreter (JIT
disabled, never compiled), the other is forced into the baseline (`peregrine.compile`, threshold 0)
and must really run there (tier and entry counter checked). Results, exception type/args/attributes
and the traceback entries of the tested code must be identical.
"""

import importlib
import sys
import textwrap
import traceback
import types

import pytest

import peregrine

FILENAME = "<names-test>"


# ---------------------------------------------------------------------------------------------
# Harness


@pytest.fixture(autouse=True)
def restore_jit():
    """Leaves the JIT, its thresholds and the sys hooks the tests touch as they were."""
    was_enabled = peregrine.is_enabled()
    thresholds = peregrine.get_thresholds()
    displayhook = sys.displayhook
    modules = set(sys.modules)
    path = list(sys.path)
    try:
        yield
    finally:
        sys.displayhook = displayhook
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
        importlib.invalidate_caches()
        peregrine.set_thresholds(**thresholds)
        if was_enabled:
            peregrine.enable()
        else:
            peregrine.disable()


def nested_codes(code):
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield c
            yield from nested_codes(c)


def describe(v, depth=0):
    """A comparable, address-free description of a value."""
    if depth > 4:
        return "..."
    if isinstance(v, types.ModuleType):
        return ("module", v.__name__)
    if isinstance(v, type):
        return ("type", v.__qualname__)
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return ("callable", getattr(v, "__qualname__", repr(v)))
    if isinstance(v, dict):
        return ("dict", sorted((repr(k), describe(x, depth + 1)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [describe(x, depth + 1) for x in v])
    if isinstance(v, (int, float, str, bytes, bool, type(None))):
        return v
    return ("object", type(v).__qualname__)


def describe_ns(ns):
    return {k: describe(v) for k, v in dict(ns).items() if k != "__builtins__"}


def describe_exc(e):
    tb = [
        (f.filename, f.lineno, f.name)
        for f in traceback.extract_tb(e.__traceback__)
        if f.filename == FILENAME
    ]
    attrs = {}
    for a in ("name", "path", "msg"):
        if isinstance(e, (NameError, ImportError, AttributeError)) and hasattr(e, a):
            attrs[a] = getattr(e, a)
    return (
        "raised",
        type(e),
        e.args,
        attrs,
        type(e.__context__),
        type(e.__cause__),
        tb,
    )


class Run:
    """One execution of `src` in a tier: its outcome and, for the baseline, proof it ran there."""

    def __init__(self, src, tier, *, env, summarize, mode, must_compile, driver):
        self.code = compile(textwrap.dedent(src), FILENAME, mode)
        if tier == "interpreter":
            peregrine.disable()
        else:
            peregrine.enable()
            peregrine.set_thresholds(baseline=0)
            peregrine.compile(self.code, tier="baseline")
            self.nested = {}
            for c in nested_codes(self.code):
                if c.co_name in must_compile:
                    peregrine.compile(c, tier="baseline")
                    self.nested[c.co_name] = c
            assert set(self.nested) == set(must_compile), "a required nested code object is missing"
            before = peregrine.stats()["baseline"]["entries"]
        ns = env()
        try:
            if driver is None:
                exec(self.code, *ns)
            else:
                driver(self.code, ns)
            self.outcome = ("ok", summarize(*ns))
        except BaseException as e:  # noqa: B902 - the outcome is compared, whatever it is
            self.outcome = describe_exc(e)
        finally:
            peregrine.disable()
        if tier == "baseline":
            assert peregrine.tier_of(self.code) == "baseline"
            for c in self.nested.values():
                assert peregrine.tier_of(c) == "baseline", c.co_name
            assert peregrine.stats()["baseline"]["entries"] > before


def differential(
    src,
    *,
    env=lambda: ({},),
    summarize=lambda *ns: [describe_ns(n) for n in ns],
    mode="exec",
    must_compile=(),
    driver=None,
    before=None,
):
    """Runs `src` in both tiers and asserts the same outcome; returns it."""
    outcomes = []
    for tier in ("interpreter", "baseline"):
        if before is not None:
            before()
        run = Run(src, tier, env=env, summarize=summarize, mode=mode, must_compile=must_compile, driver=driver)
        outcomes.append(run.outcome)
    assert outcomes[1] == outcomes[0]
    return outcomes[0]


def raised(outcome, exc_type, message=None):
    assert outcome[0] == "raised", outcome
    assert outcome[1] is exc_type, outcome
    if message is not None:
        assert outcome[2] == (message,), outcome
    return outcome


class Mapping:
    """A non-dict locals mapping that records what the frame does to it."""

    def __init__(self, data=None, fail_on=()):
        self.data = dict(data or {})
        self.log = []
        self.fail_on = fail_on

    def __getitem__(self, key):
        self.log.append(("get", key))
        if key in self.fail_on:
            raise RuntimeError(f"get {key}")
        return self.data[key]

    def __setitem__(self, key, value):
        self.log.append(("set", key))
        if key in self.fail_on:
            raise RuntimeError(f"set {key}")
        self.data[key] = value

    def __delitem__(self, key):
        self.log.append(("del", key))
        if key in self.fail_on:
            raise RuntimeError(f"del {key}")
        del self.data[key]


def mapping_summary(g, m):
    return describe_ns(g), describe_ns(m.data), m.log


# ---------------------------------------------------------------------------------------------
# LOAD_NAME / STORE_NAME / DELETE_NAME


def test_load_name_order_locals_globals_builtins():
    out = differential(
        """
        len = 'module len'
        a = len
        b = abs(-3)
        c = (a, b)
        """
    )
    assert out[0] == "ok" and out[1][0]["c"] == ("tuple", ["module len", 3])


def test_load_store_name_with_separate_locals_dict():
    out = differential(
        """
        x = g1 + 1
        g1 = 'shadowed in locals'
        y = g1
        """,
        env=lambda: ({"g1": 41}, {}),
    )
    assert out[1][1]["x"] == 42 and out[1][1]["y"] == "shadowed in locals"
    assert out[1][0]["g1"] == 41


def test_name_ops_with_non_dict_locals():
    out = differential(
        """
        x = present
        y = from_globals
        z = len('abc')
        w = x + y + z
        del present
        """,
        env=lambda: ({"from_globals": 10}, Mapping({"present": 1})),
        summarize=mapping_summary,
    )
    assert out[0] == "ok"
    assert out[1][2][:4] == [("get", "present"), ("set", "x"), ("get", "from_globals"), ("set", "y")]


def test_load_name_missing_raises_name_error_with_name():
    out = differential(
        """
        a = 1
        b = a + 1
        c = missing_name_xyz
        """
    )
    raised(out, NameError, "name 'missing_name_xyz' is not defined")
    assert out[3] == {"name": "missing_name_xyz"}
    assert out[6] == [(FILENAME, 4, "<module>")]


def test_load_name_missing_with_non_dict_locals():
    out = differential(
        "\nv = nowhere\n",
        env=lambda: ({}, Mapping()),
        summarize=mapping_summary,
    )
    raised(out, NameError, "name 'nowhere' is not defined")
    assert out[3] == {"name": "nowhere"}


def test_load_name_mapping_error_propagates():
    out = differential(
        "a = 1\nb = boom\n",
        env=lambda: ({}, Mapping(fail_on=("boom",))),
        summarize=mapping_summary,
    )
    raised(out, RuntimeError, "get boom")
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_load_name_builtins_non_dict_mapping():
    class Builtins:
        def __getitem__(self, key):
            if key == "magic":
                return 7
            raise KeyError(key)

    out = differential(
        "a = magic\n",
        env=lambda: ({"__builtins__": Builtins()}, {}),
    )
    assert out[0] == "ok" and out[1][1]["a"] == 7
    out = differential(
        "a = 1\nb = nomagic\n",
        env=lambda: ({"__builtins__": Builtins()}, {}),
    )
    raised(out, NameError, "name 'nomagic' is not defined")
    assert out[3] == {"name": "nomagic"}


def test_load_name_builtins_mapping_other_error():
    class Builtins:
        def __getitem__(self, key):
            raise ValueError(key)

    out = differential("a = 1\nb = anything\n", env=lambda: ({"__builtins__": Builtins()}, {}))
    raised(out, ValueError, "anything")


def test_store_name_mapping_error():
    out = differential(
        "a = 1\nbad = 2\nc = 3\n",
        env=lambda: ({}, Mapping(fail_on=("bad",))),
        summarize=mapping_summary,
    )
    raised(out, RuntimeError, "set bad")
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_delete_name_ok_and_missing():
    out = differential("a = 1\ndel a\nb = 2\n")
    assert out[0] == "ok" and "a" not in out[1][0]
    out = differential("a = 1\ndel a\ndel a\n")
    raised(out, NameError, "name 'a' is not defined")
    assert out[3] == {"name": "a"}
    assert out[4] is type(None)  # ceval's message replaces the KeyError without chaining
    assert out[6] == [(FILENAME, 3, "<module>")]


def test_delete_name_mapping_error_becomes_name_error():
    out = differential(
        "x = 1\ndel x\n",
        env=lambda: ({}, Mapping(fail_on=("x",))),
    )
    # __setitem__ of x fails first; use a mapping failing only on delete for the DELETE_NAME path.
    raised(out, RuntimeError, "set x")

    class DelFails(Mapping):
        def __delitem__(self, key):
            raise RuntimeError("no deleting")

    out = differential("x = 1\ndel x\n", env=lambda: ({}, DelFails()), summarize=mapping_summary)
    raised(out, NameError, "name 'x' is not defined")
    assert out[3] == {"name": "x"}


# ---------------------------------------------------------------------------------------------
# Class bodies: LOAD_BUILD_CLASS, LOAD_CLASSDEREF, SETUP_ANNOTATIONS


CLASSES = """
base = 10
class A:
    y = base + 1
    z: int = 3
    def method(self):
        return __class__
def outer():
    q = 5
    class B(A):
        r = q
        s: str
    return B
B = outer()
result = (A.y, A.__annotations__ == {'z': int}, B.r, B.__annotations__ == {'s': str},
          A().method() is A, B.__mro__ == (B, A, object), B.__qualname__)
"""


def test_class_bodies():
    out = differential(CLASSES, must_compile=("A", "B", "outer"))
    assert out[0] == "ok"
    assert out[1][0]["result"] == ("tuple", [11, True, 5, True, True, True, "outer.<locals>.B"])


def test_load_classderef_prefers_class_namespace():
    src = """
    class Meta(type):
        @classmethod
        def __prepare__(mcls, name, bases):
            return NS({'q': 'from namespace'}) if name == 'M' else {'q': 'from dict'}
    class NS(dict):
        pass
    def outer():
        q = 'from cell'
        class D(metaclass=Meta):
            r = q
        class M(metaclass=Meta):
            r = q
        class E:
            r = q
        return D.r, M.r, E.r
    result = outer()
    """
    out = differential(src, must_compile=("outer", "D", "M", "E"))
    assert out[1][0]["result"] == ("tuple", ["from dict", "from namespace", "from cell"])


def test_load_classderef_non_dict_namespace():
    src = """
    class NS:
        def __init__(self): self.d = {'__name__': 'x'}
        def __getitem__(self, k):
            if k == 'boom': raise LookupError('boom')
            return self.d[k]
        def __setitem__(self, k, v): self.d[k] = v
    class Meta(type):
        @classmethod
        def __prepare__(mcls, name, bases): return NS()
        def __new__(mcls, name, bases, ns): return ns.d
    def outer():
        q = 'cell q'
        boom = 'cell boom'
        class C(metaclass=Meta):
            r = q
        class F(metaclass=Meta):
            r = boom
        return C
    result = outer()
    """
    out = differential(src, must_compile=("outer", "C", "F"))
    raised(out, LookupError, "boom")
    assert [line for _, line, _ in out[6]] == [20, 17, 18, 5]


def test_load_classderef_unbound_free_variable():
    src = """
    def outer():
        class C:
            r = later
        later = 1
        return C
    outer()
    """
    out = differential(src, must_compile=("outer", "C"))
    raised(
        out,
        NameError,
        "cannot access free variable 'later' where it is not associated with a value in enclosing scope",
    )
    assert out[3] == {"name": "later"}
    assert out[6] == [(FILENAME, 7, "<module>"), (FILENAME, 3, "outer"), (FILENAME, 4, "C")]


def test_load_build_class_missing():
    out = differential("x = 1\nclass A:\n    pass\n", env=lambda: ({"__builtins__": {}},))
    raised(out, NameError, "__build_class__ not found")
    assert out[3] == {"name": None}  # not format_exc_check_arg: no name recorded
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_load_build_class_non_dict_builtins():
    class Builtins:
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            return self.data[key]

    calls = []

    def build_class(func, name, *bases):
        calls.append(name)
        return name.upper()

    out = differential(
        "class A:\n    pass\nr = A\n",
        env=lambda: ({"__builtins__": Builtins({"__build_class__": build_class})},),
    )
    assert out[1][0]["r"] == "A" and calls == ["A", "A"]
    out = differential("x = 1\nclass A:\n    pass\n", env=lambda: ({"__builtins__": Builtins({})},))
    raised(out, NameError, "__build_class__ not found")

    class Raising:
        def __getitem__(self, key):
            raise TypeError("builtins broken")

    out = differential("class A:\n    pass\n", env=lambda: ({"__builtins__": Raising()},))
    raised(out, TypeError, "builtins broken")


def test_setup_annotations_module_dict_and_existing():
    out = differential("a: int = 1\nb: 'str'\n")
    assert out[1][0]["__annotations__"] == ("dict", [("'a'", ("type", "int")), ("'b'", "str")])
    out = differential(
        "a: int = 1\n",
        env=lambda: ({"__annotations__": {"pre": 1}},),
    )
    assert out[1][0]["__annotations__"] == ("dict", [("'a'", ("type", "int")), ("'pre'", 1)])


def test_setup_annotations_non_dict_locals():
    out = differential(
        "a: int = 1\nb: float\n",
        env=lambda: ({}, Mapping()),
        summarize=mapping_summary,
    )
    assert out[0] == "ok"
    assert out[1][2][:2] == [("get", "__annotations__"), ("set", "__annotations__")]
    out = differential(
        "a: int = 1\n",
        env=lambda: ({}, Mapping({"__annotations__": {"old": 2}})),
        summarize=mapping_summary,
    )
    assert out[1][1]["__annotations__"] == ("dict", [("'a'", ("type", "int")), ("'old'", 2)])
    out = differential(
        "x = 1\na: int = 1\n",
        env=lambda: ({}, Mapping(fail_on=("__annotations__",))),
        summarize=mapping_summary,
    )
    raised(out, RuntimeError, "get __annotations__")
    assert out[6] == [(FILENAME, 1, "<module>")]  # SETUP_ANNOTATIONS runs first


# ---------------------------------------------------------------------------------------------
# IMPORT_NAME / IMPORT_FROM


def test_imports_of_stdlib_modules():
    src = """
    import os.path
    import json as j
    from collections import OrderedDict, namedtuple as nt
    from os import path as p
    result = (os.path.join('a', 'b'), j.dumps((1, 2)), OrderedDict.__name__, nt.__name__, p is os.path)
    """
    out = differential(src)
    assert out[1][0]["result"] == ("tuple", ["a/b", "[1, 2]", "OrderedDict", "namedtuple", True])


def test_lazy_import_in_function():
    src = """
    def f():
        import json
        from os.path import join
        return json.dumps(join('x', 'y'))
    result = f()
    """
    out = differential(src, must_compile=("f",))
    assert out[1][0]["result"] == '"x/y"'


def recording_builtins():
    import builtins

    log = []

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        log.append((name, type(globals).__name__, locals is None, fromlist, level))
        return builtins.__import__(name, globals, locals, fromlist, level)

    b = dict(builtins.__dict__)
    b["__import__"] = fake_import
    return b, log


def test_import_name_calls_frame_builtins_import():
    src = """
    import os
    from json import dumps
    def f():
        import sys
        return sys.version_info[0]
    v = f()
    """
    logs = []

    def env():
        b, log = recording_builtins()
        logs.append(log)
        return ({"__builtins__": b},)

    out = differential(src, env=env, must_compile=("f",))
    assert out[0] == "ok"
    assert logs[0] == logs[1] == [
        ("os", "dict", False, None, 0),
        ("json", "dict", False, ("dumps",), 0),
        ("sys", "dict", True, None, 0),  # a function frame has no locals: None is passed
    ]


def test_import_name_locals_mapping_is_passed():
    seen = []

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        seen.append(type(locals).__name__)
        return sys

    out = differential(
        "import anything\n",
        env=lambda: ({"__builtins__": {"__import__": fake_import}}, Mapping()),
        summarize=mapping_summary,
    )
    assert out[0] == "ok" and seen == ["Mapping", "Mapping"]


def test_import_name_errors():
    out = differential("x = 1\nimport no_such_module_names_test\n")
    raised(out, ModuleNotFoundError, "No module named 'no_such_module_names_test'")
    assert out[3]["name"] == "no_such_module_names_test"
    assert out[6] == [(FILENAME, 2, "<module>")]
    out = differential("x = 1\nfrom . import sibling\n")
    raised(out, KeyError, "'__name__' not in globals")
    out = differential("x = 1\nfrom . import sibling\n", env=lambda: ({"__name__": "__main__"},))
    raised(out, ImportError, "attempted relative import with no known parent package")
    assert out[6] == [(FILENAME, 2, "<module>")]
    out = differential("x = 1\nfrom .. import up\n", env=lambda: ({"__package__": "pkg", "__name__": "pkg.mod"},))
    raised(out, ImportError)
    out = differential("import os\n", env=lambda: ({"__builtins__": {}},))
    raised(out, ImportError, "__import__ not found")
    assert out[6] == [(FILENAME, 1, "<module>")]


def test_import_name_import_raising():
    def fake_import(*args):
        raise KeyError("imp")

    out = differential("x = 1\nimport foo\n", env=lambda: ({"__builtins__": {"__import__": fake_import}},))
    raised(out, KeyError, "imp")
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_import_from_missing_name():
    out = differential("x = 1\nfrom os import no_such_name_here\n")
    import os

    raised(out, ImportError, f"cannot import name 'no_such_name_here' from 'os' ({os.__file__})")
    assert out[3] == {"name": "os", "path": os.__file__, "msg": out[2][0]}
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_import_from_unknown_location():
    out = differential("from sys import no_such_name_here\n")
    raised(out, ImportError, "cannot import name 'no_such_name_here' from 'sys' (unknown location)")
    assert out[3] == {"name": "sys", "path": None, "msg": out[2][0]}


def test_import_from_sys_modules_fallback():
    src = """
    import sys, types
    pkg = types.ModuleType('names_fake_pkg')
    sys.modules['names_fake_pkg'] = pkg
    sys.modules['names_fake_pkg.sub'] = 'the submodule'
    from names_fake_pkg import sub
    try:
        from names_fake_pkg import other
    finally:
        del sys.modules['names_fake_pkg'], sys.modules['names_fake_pkg.sub']
    """
    out = differential(src, summarize=lambda g: g["sub"])
    raised(out, ImportError, "cannot import name 'other' from 'names_fake_pkg' (unknown location)")


@pytest.mark.parametrize(
    "obj_src",
    [
        "object()",  # no __name__: '<unknown module name>'
        "type('T', (), {'__name__': 5})()",  # non-str __name__
        "type('T', (), {'__name__': 'named', '__file__': 'f.py'})()",  # not a module: no filename
        "types.SimpleNamespace(__name__='ns')",
    ],
)
def test_import_from_non_module_objects(obj_src):
    # The frame's builtins come from the globals at exec time, so install __import__ up front.
    import builtins

    def env():
        b = dict(vars(builtins))
        ns = {}
        exec(f"import types\ndef imp(name, *args):\n    return {obj_src}\n", ns)
        b["__import__"] = ns["imp"]
        return ({"__builtins__": b},)

    out = differential("x = 1\nfrom whatever import thing\n", env=env)
    assert out[0] == "raised" and out[1] is ImportError
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_import_from_attribute_error_propagates():
    class Weird:
        __name__ = "weird"

        def __getattr__(self, name):
            raise ValueError("getattr exploded")

    out = differential(
        "from w import thing\n",
        env=lambda: ({"__builtins__": {"__import__": lambda *a: Weird()}},),
    )
    raised(out, ValueError, "getattr exploded")


@pytest.fixture
def tmp_pkgs(tmp_path):
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def forget(*prefixes):
    def before():
        for name in list(sys.modules):
            if name.split(".")[0] in prefixes:
                del sys.modules[name]
        importlib.invalidate_caches()

    return before


def test_relative_imports_in_package(tmp_pkgs):
    write(tmp_pkgs / "names_pkg" / "__init__.py", "VALUE = 'init'\n")
    write(tmp_pkgs / "names_pkg" / "sub.py", "SUB = 'sub'\n")
    env = lambda: ({"__name__": "names_pkg.driver", "__package__": "names_pkg"},)  # noqa: E731
    out = differential(
        "from . import sub\nfrom .sub import SUB\nfrom . import VALUE\nr = (sub.SUB, SUB, VALUE)\n",
        env=env,
        before=forget("names_pkg"),
    )
    assert out[1][0]["r"] == ("tuple", ["sub", "sub", "init"])
    out = differential("x = 1\nfrom .sub import MISSING\n", env=env, before=forget("names_pkg"))
    raised(out, ImportError, f"cannot import name 'MISSING' from 'names_pkg.sub' ({tmp_pkgs / 'names_pkg' / 'sub.py'})")
    out = differential("x = 1\nfrom . import nosub\n", env=env, before=forget("names_pkg"))
    raised(out, ImportError)
    assert "nosub" in out[2][0] and out[6] == [(FILENAME, 2, "<module>")]
    out = differential("x = 1\nfrom ... import beyond\n", env=env, before=forget("names_pkg"))
    raised(out, ImportError, "attempted relative import beyond top-level package")


def test_circular_import_message(tmp_pkgs):
    # names_circ's body runs the tested code while names_circ is partially initialized.
    write(
        tmp_pkgs / "names_circ.py",
        """
        import sys
        sys.modules['names_test_hook'].run()
        late = 1
        """,
    )

    def driver(code, ns):
        hook = types.ModuleType("names_test_hook")
        hook.run = lambda: exec(code, *ns)
        sys.modules["names_test_hook"] = hook
        try:
            importlib.import_module("names_circ")
        finally:
            del sys.modules["names_test_hook"]

    out = differential("x = 1\nfrom names_circ import late\n", driver=driver, before=forget("names_circ"))
    raised(
        out,
        ImportError,
        "cannot import name 'late' from partially initialized module 'names_circ' "
        f"(most likely due to a circular import) ({tmp_pkgs / 'names_circ.py'})",
    )
    assert out[6] == [(FILENAME, 2, "<module>")]


# ---------------------------------------------------------------------------------------------
# IMPORT_STAR


def test_import_star_module_level():
    out = differential("from os.path import *\nr = join('a', 'b')\n")
    import os.path

    names = set(out[1][0])
    assert set(os.path.__all__) <= names and out[1][0]["r"] == "a/b"


def test_import_star_dict_without_all_skips_underscores():
    mod = types.ModuleType("names_star_mod")
    mod.public = 1
    mod._private = 2
    setattr(mod, "", "empty name")  # ceval reads the empty name's first code point as NUL
    sys.modules["names_star_mod"] = mod
    out = differential("from names_star_mod import *\n")
    assert out[1][0]["public"] == 1 and "_private" not in out[1][0] and out[1][0][""] == "empty name"


def test_import_star_non_dict_locals():
    out = differential(
        "from os.path import *\n",
        env=lambda: ({}, Mapping()),
        summarize=mapping_summary,
    )
    import os.path

    assert set(os.path.__all__) <= set(out[1][1])
    out = differential(
        "from os.path import *\n",
        env=lambda: ({}, Mapping(fail_on=("join",))),
        summarize=mapping_summary,
    )
    raised(out, RuntimeError, "set join")


@pytest.mark.parametrize(
    "attrs, exc, message",
    [
        ({"__all__": ["a", 3]}, TypeError, "Item in names_star_bad.__all__ must be str, not int"),
        ({"__all__": ["a", "missing"]}, AttributeError, "module 'names_star_bad' has no attribute 'missing'"),
        ({"__all__": 5}, TypeError, None),
        ({"__all__": ["a", 3], "__name__": 7}, TypeError, "module __name__ must be a string, not int"),
    ],
)
def test_import_star_errors(attrs, exc, message):
    mod = types.ModuleType("names_star_bad")
    mod.a = 1
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules["names_star_bad"] = mod
    out = differential("x = 1\nfrom names_star_bad import *\n")
    raised(out, exc, message)
    assert out[6] == [(FILENAME, 2, "<module>")]


def test_import_star_non_str_key_in_dict():
    class Obj:
        pass

    o = Obj()
    o.__dict__[5] = "int key"
    out = differential(
        "x = 1\nfrom o import *\n",
        env=lambda: ({"__builtins__": {"__import__": lambda *a: o}},),
    )
    raised(out, AttributeError)  # Obj has no __name__ attribute: the lookup of it fails
    o2 = types.ModuleType("names_star_keys")
    o2.__dict__[5] = "int key"
    sys.modules["names_star_keys"] = o2
    out = differential("x = 1\nfrom names_star_keys import *\n")
    raised(out, TypeError, "Key in names_star_keys.__dict__ must be str, not int")


def test_import_star_object_without_dict_or_all():
    out = differential(
        "x = 1\nfrom five import *\n",
        env=lambda: ({"__builtins__": {"__import__": lambda *a: 5}},),
    )
    raised(out, ImportError, "from-import-* object has no __dict__ and no __all__")


def test_import_star_with_fast_locals_is_refused():
    code = compile("from os.path import *\n", FILENAME, "exec").replace(co_varnames=("a",), co_nlocals=1)
    peregrine.enable()
    with pytest.raises(peregrine.CompileError, match="not supported: IMPORT_STAR: in a code object with fast locals"):
        peregrine.compile(code, tier="baseline")
    assert peregrine.tier_of(code) == "interpreter"
    g = {}
    exec(code, g)  # runs in the interpreter
    assert "join" in g


def test_import_star_creates_missing_f_locals():
    # A function code object without fast locals running IMPORT_STAR (hand-made: Python's
    # compiler refuses it): ceval creates f_locals; the names land there, not in globals.
    mod = compile("from os.path import *\n", FILENAME, "exec")
    fcode = mod.replace(co_flags=mod.co_flags | 0x3)  # CO_OPTIMIZED | CO_NEWLOCALS
    outcomes = []
    for tier in ("interpreter", "baseline"):
        f = types.FunctionType(fcode.replace(), {})
        if tier == "baseline":
            peregrine.enable()
            peregrine.compile(f.__code__, tier="baseline")
            before = peregrine.stats()["baseline"]["entries"]
        else:
            peregrine.disable()
        outcomes.append((f(), sorted(f.__globals__)))
        if tier == "baseline":
            assert peregrine.tier_of(f.__code__) == "baseline"
            assert peregrine.stats()["baseline"]["entries"] > before
        peregrine.disable()
    assert outcomes[0] == outcomes[1] == (None, [])


# ---------------------------------------------------------------------------------------------
# PRINT_EXPR


def test_print_expr():
    shown = []

    def hook(v):
        shown.append(v)

    def env():
        sys.displayhook = hook
        return ({},)

    out = differential("1 + 1; None; 'x'; (1, 2)\n", mode="single", env=env)
    assert out[0] == "ok"
    assert shown == [2, None, "x", (1, 2)] * 2


def test_print_expr_errors():
    def failing(v):
        raise ValueError(f"hook got {v!r}")

    def env():
        sys.displayhook = failing
        return ({},)

    out = differential("x = 1; x + 1\n", mode="single", env=env)
    raised(out, ValueError, "hook got 2")
    assert out[6] == [(FILENAME, 1, "<module>")]

    def env_lost():
        if hasattr(sys, "displayhook"):
            del sys.displayhook
        return ({},)

    out = differential("x = 1; x + 1\n", mode="single", env=env_lost)
    raised(out, RuntimeError, "lost sys.displayhook")
