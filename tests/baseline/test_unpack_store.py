"""UNPACK_SEQUENCE and the STORE_FASTs after it as one run (`fast_paths::unpack_store`): a
statement such as `a, b, c, d = t` compiles to a call of one shared routine instead of a template
per instruction (for four stores and more, and for any number in code objects of 1,000
instructions and more, whose loops would not fit the instruction cache as templates). The
routine copies the items into the locals while nothing is released for the last time; from the
first old value that would die (or for a sequence that would, or another iterable) the helpers
(`ops::pg_unpack_store`, `pg_unpack_store_rest`) run the instructions as ceval does, one
dispatch at a time, which is what these tests compare with the interpreter: the frame's `f_lasti`
each destructor of an old value sees (the store's own unit, or in warm code the unit of the
STORE_FAST__STORE_FAST pair it runs in), tracing switched on by such a destructor (the 'line' and
'opcode' events that follow), the generic unpack of any iterable and its errors, old values
dying in the middle of a run, and code warmed up in the middle of a run. Each test also asserts
that the run compiled to the call."""

import dis
import inspect
import sys
import textwrap

import peregrine
from difftest import assert_compiles, fresh_function, run_both

CALLS = 12  # iterations: warm after 8 (the RESUMEs and backward jumps ceval's warm-up counts)


def large(func):
    """`func` rebuilt as a code object of more than 1,000 instructions, which compiles its
    unpacking statements as runs (smaller code keeps the templates): 500 assignments of a
    constant come first."""
    src = textwrap.dedent(inspect.getsource(func)).splitlines()
    assert src[0].startswith("@large") and src[1].startswith("def ") and src[1].endswith(":"), src[:2]
    padding = ["    _pad = 0"] * 500
    ns = {}
    exec(compile("\n".join([src[1]] + padding + src[2:]) + "\n", inspect.getsourcefile(func), "exec"), func.__globals__, ns)
    return ns[func.__name__]


def fused(func):
    """Whether func's baseline code runs an UNPACK_SEQUENCE and its stores in one call."""
    f = fresh_function(func)
    peregrine.compile(f, tier="baseline")
    return "pg_unpack_store" in peregrine.disassemble(f)


class Dies:
    """Records the f_lasti of the frame that releases it."""

    def __init__(self, log, name):
        self.log, self.name = log, name

    def __del__(self):
        self.log.append((self.name, sys._getframe(1).f_lasti))


def make(log, names):
    return [Dies(log, x) for x in names]


@large
def six_dying(n):
    log = []
    a = b = c = d = e = f = None
    for i in range(n):
        # Each store releases the previous iteration's object: its destructor runs at the
        # store's unit while cold, at the pair's first unit in warm code.
        a, b, c, d, e, f = make(log, "abcdef")
        log.append(i)
    return log


def test_destructors_see_each_stores_unit_cold_and_warm():
    assert fused(six_dying)
    out = assert_compiles(six_dying, CALLS, exits={})
    stores = [i.offset for i in dis.get_instructions(six_dying) if i.opname == "STORE_FAST"][-6:]
    seen = [x for x in out.value if isinstance(x, tuple) and x[1] in stores]
    lastis = {name: {lasti for n, lasti in seen if n == name} for name in "abcdef"}
    assert all(len(v) == 2 for k, v in lastis.items() if k in "bdf")  # own unit, then the pair's
    assert all(len(v) == 1 for k, v in lastis.items() if k in "ace")  # heads: their own unit


@large
def five_dying_odd(n):
    log = []
    a = b = c = d = e = None
    for i in range(n):
        a, b, c, d, e = make(log, "abcde")
        log.append(i)                       # LOAD_FAST after the run: `e` is dispatched alone
    return log


def test_odd_run_before_a_load():
    # Warm, ceval runs the fifth store and the next LOAD_FAST as one instruction: the call runs
    # the store and goes on into the load's entry as a second half.
    assert fused(five_dying_odd)
    assert_compiles(five_dying_odd, CALLS, exits={})


@large
def five_dying_then_call(n):
    log, total = [], 0
    a = b = c = d = e = None
    for i in range(n):
        a, b, c, d, e = make(log, "abcde")
        total = len(log)                     # LOAD_GLOBAL after the run: pairs with nothing
    return log, total


def test_odd_run_before_another_instruction():
    assert fused(five_dying_then_call)
    assert_compiles(five_dying_then_call, CALLS, exits={})


class StartsTracing:
    """Its release switches tracing on (for the rest of the caller's frame)."""

    def __init__(self, events):
        self.events = events

    def __del__(self):
        events = self.events

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = True
            events.append((event, frame.f_code.co_name, frame.f_lasti))
            return tracer

        caller = sys._getframe(1)
        caller.f_trace = tracer
        caller.f_trace_opcodes = True
        sys.settrace(tracer)


@large
def tracing_on_in_a_run(n, at):
    events = []
    out = []
    for i in range(n):
        v = [0, 1, 2, 3, 4, 5]
        if i == n - 1:
            v[at] = StartsTracing(events)
        a, b, c, d, e, f = v
        del v
        if i == n - 1:
            # The next iteration's stores release the StartsTracing: tracing goes on there.
            a, b, c, d, e, f = [10, 11, 12, 13, 14, 15]
        out.append((a, b, c, d, e, f))
    sys.settrace(None)
    return out, events


def test_tracing_switched_on_by_a_destructor_in_the_run():
    assert fused(tracing_on_in_a_run)
    for at in range(6):
        for n in (3, CALLS):                # cold (no pairs) and warm (pairs)
            run_both(tracing_on_in_a_run, n, at)


class Countdown:
    """An iterable that is no list or tuple: the generic unpack, which calls back into Python."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


@large
def generic_unpack(n):
    out = []
    for i in range(n):
        try:
            a, b, c, d = Countdown(4 + (i % 3 == 1) - (i % 3 == 2))
            out.append((a, b, c, d))
        except ValueError as e:
            out.append((str(e), e.__traceback__.tb_lasti))
        a, b, c, d = (x * i for x in range(4))  # a generator
        out.append((a, b, c, d))
    return out


def test_generic_unpack_and_its_errors():
    assert fused(generic_unpack)
    assert_compiles(generic_unpack, CALLS, exits={})


def test_many_short_runs_in_a_large_code_object():
    # 400 statements of two stores: a code object of more than 1,000 instructions fuses even
    # two stores, which it would leave as templates in a small one.
    body = "\n".join(f"    a{i % 7}, b{i % 5} = t" for i in range(400))
    src = f"def large(t):\n{body}\n    return a0, b0, a6, b4\n"
    ns = {}
    exec(src, ns)
    large = ns["large"]

    def many(n):
        return [large((i, [i])) for i in range(n)]

    assert fused(large)
    assert not fused(lambda t: [(a, b) for a, b in [t]])
    assert_compiles(many, CALLS)


class WarmsOnDeath:
    """Its release calls `fn` often enough to warm fn's code up (as stock counts RESUMEs)."""

    def __init__(self, fn):
        self.fn = fn

    def __del__(self):
        for _ in range(CALLS):
            try:
                self.fn([], [])
            except UnboundLocalError:
                pass


@large
def warmed_in_the_middle(holder, log):
    a, b, c, d = holder.pop() if holder else None, Dies(log, "b"), Dies(log, "c"), Dies(log, "d")
    # The old `a` dies in the first store and warms the code up: from the next dispatch on the
    # stores pair (b with c), so `d` is dispatched alone, as STORE_FAST__LOAD_FAST with the load
    # of `z`, whose UnboundLocalError then shows d's unit. Later calls start warm: (a, b), (c, d)
    # and the load on its own.
    a, b, c, d = None, None, None, None
    return z
    z = None  # noqa: F841 (makes z a local)


def test_code_warmed_up_in_the_middle_of_a_run_before_a_load():
    def f():
        out = []
        g = fresh_function(warmed_in_the_middle)  # cold in each run
        for i in range(3):
            log = []
            try:
                g([WarmsOnDeath(g)] if i == 0 else [], log)
            except UnboundLocalError as e:
                tb = e.__traceback__
                while tb.tb_next:
                    tb = tb.tb_next
                out.append((log, tb.tb_lasti))
        return out

    assert fused(warmed_in_the_middle)
    assert_compiles(f, exits={})


@large
def dies_mid_run(n):
    # The sequence lives on in a local, so the shared routine copies the items straight into the
    # locals until an old value would die: `b` (the second store: in warm code the second half
    # of a pair, whose destructor sees the first store's unit) and `e` (the fifth); from there
    # on the stores run one dispatch at a time.
    log = []
    t, l = (1, 2, 3, 4, 5, 6), [1, 2, 3, 4, 5, 6]
    a = b = c = d = e = f = 0
    for i in range(n):
        b, e = Dies(log, "b"), Dies(log, "e")
        a, b, c, d, e, f = t if i % 2 else l
        log.append((i, a + b + c + d + e + f))
    return log


def test_old_values_dying_in_the_middle_of_a_run():
    assert fused(dies_mid_run)
    out = assert_compiles(dies_mid_run, CALLS, exits={})
    stores = [i.offset for i in dis.get_instructions(dies_mid_run) if i.opname == "STORE_FAST"][-6:]
    lastis = {x[1] for x in out.value if isinstance(x, tuple) and x[0] == "b"}
    assert lastis == {stores[1], stores[0]}, (lastis, stores)  # its own unit cold, the pair's warm
