"""Exactly what stock CPython 3.11 shows, where a frame's state leaks out: trace events around
jumps and loop ends when tracing is switched on mid-instruction, and the caller's last
instruction (`f_lasti`, `tb_lasti`) as callees and tracebacks see it, cold and warm.

Each case is differential (`run_both`): the stock interpreter with the hook disabled against the
same code forced into the baseline. Measured on stock 3.11 (see docs/architecture.md, "prev_instr
per instruction"): a callee sees the caller's own instruction unit, except
- a Python function called by CALL (stock pushes its frame inline): CALL's last cache unit;
- a Python `__getitem__` in warm code (BINARY_SUBSCR_GETITEM, inlined too): the last cache unit;
- a C function called by a specialized PRECALL form in warm code: the PRECALL unit;
- the second half of a superinstruction in warm code (LOAD_FAST__LOAD_FAST, STORE_FAST__STORE_FAST,
  ...): the first half's unit.
"""

import sys

import pytest

from difftest import run_both

# Warm: stock quickens a code object at its 8th RESUME or JUMP_BACKWARD; 12 calls cover cold
# calls, the quickening one and warm ones.
CALLS = 12


def _rel(frame):
    return frame.f_lineno - frame.f_code.co_firstlineno


def _event(frame, event, arg):
    exc = arg[0].__name__ if event == "exception" else None
    return (event, frame.f_code.co_name, _rel(frame), exc)


def _tb_lastis(exc, name):
    """tb_lasti of every traceback entry of a frame of code `name`."""
    out = []
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == name:
            out.append(tb.tb_lasti)
        tb = tb.tb_next
    return out


# ---------------------------------------------------------------------------------------------
# 1a. Tracing switched on while a conditional jump evaluates its condition


class SwitchOn:
    """Truthy `n` times (falsy, with `truthy` False); on the `at`-th evaluation switches tracing on
    for the thread and for the evaluating frame (so that frame gets 'line' events), as a debugger
    attaching would."""

    def __init__(self, tracer, n, at, truthy=True):
        self.tracer, self.n, self.at, self.truthy, self.seen = tracer, n, at, truthy, 0

    def __bool__(self):
        self.seen += 1
        if self.seen == self.at:
            sys.settrace(self.tracer)
            sys._getframe(1).f_trace = self.tracer
        return (self.seen <= self.n) == self.truthy


class SwitchOnAtDeath:
    """Switches tracing on for the frame that drops the last reference to it."""

    def __init__(self, tracer):
        self.tracer = tracer

    def __del__(self):
        sys.settrace(self.tracer)
        sys._getframe(1).f_trace = self.tracer


def test_backward_jump_if_true_on_one_line():
    # `while c: i += 1` on one line: the jump target's previous code unit is on the same line, so
    # only the backward edge makes stock report the 'line' event.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 3, 2)
        i = 0
        while c: i += 1  # noqa: E701
        sys.settrace(None)
        return i, events

    out = run_both(f)
    assert out.value[1][0] == ("line", "f", 9, None), out.value  # the event this is about


def test_backward_jump_if_true_multiline():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 3, 2)
        i = 0
        while c:
            i += 1
            i += 10
        sys.settrace(None)
        return i, events

    run_both(f)


def test_backward_jump_if_false_taken():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 3, 2, truthy=False)
        i = 0
        while not c: i += 1  # noqa: E701 - POP_JUMP_BACKWARD_IF_FALSE at the bottom
        sys.settrace(None)
        return i, events

    out = run_both(f)
    assert out.value[1][0] == ("line", "f", 9, None), out.value


def test_backward_jump_if_not_none_tracing_on_in_destructor():
    # POP_JUMP_BACKWARD_IF_NOT_NONE pops the value and drops it: its __del__ switches tracing on.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        state = {"n": 0}

        def make():
            state["n"] += 1
            if state["n"] == 2:
                return SwitchOnAtDeath(tracer)
            return None if state["n"] > 3 else 1

        i = 0
        while make() is not None: i += 1  # noqa: E701
        sys.settrace(None)
        return i, events

    out = run_both(f)
    assert out.value[1][0] == ("line", "f", 16, None), out.value


def test_forward_jump_if_false_or_pop_keeps_line():
    # JUMP_IF_FALSE_OR_POP jumps to the store on the first line; the code unit before the target
    # is on the second line, so only the jump's own line tells stock not to report a 'line' event.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 0, 1)  # falsy: the jump is taken
        x = (c and
             len("ab"))
        sys.settrace(None)
        return bool(x), events

    run_both(f)


def test_forward_jump_if_false_conditional_expression():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 0, 1)
        x = (1 if c
             else 2)
        sys.settrace(None)
        return x, events

    run_both(f)


@pytest.mark.parametrize("opcodes", [False, True], ids=["lines", "opcodes"])
def test_backward_jump_with_opcode_events(opcodes):
    def f():
        events = []

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = opcodes
            events.append(_event(frame, event, arg))
            return tracer

        c = SwitchOn(tracer, 3, 2)
        i = 0
        while c: i += 1  # noqa: E701
        sys.settrace(None)
        return i, events

    run_both(f)


def test_backward_jump_tracer_raises_on_line_event():
    # The 'line' event at the jump target raises: the exception is raised at the target.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            if event == "line" and frame.f_code.co_name == "f":
                sys.settrace(None)
                raise KeyError("from the tracer")
            return tracer

        c = SwitchOn(tracer, 3, 2)
        i = 0
        try:
            while c: i += 1  # noqa: E701
        except KeyError:
            i += 100
        sys.settrace(None)
        return i, events

    run_both(f)


def test_backward_jump_tracer_jumps_from_the_line_event():
    # The trace function sets f_lineno at the jump target's 'line' event: stock reports the
    # 'opcode' event at the new instruction and runs it, with no other event there.
    def f(opcodes):
        events = []

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = opcodes
            events.append(_event(frame, event, arg))
            if event == "line" and frame.f_code.co_name == "f" and _rel(frame) == 12:
                frame.f_lineno = frame.f_code.co_firstlineno + 13
            return tracer

        c = SwitchOn(tracer, 3, 2)
        i = 0
        while c: i += 1  # noqa: E701
        i += 1000
        sys.settrace(None)
        return i, events

    for opcodes in (False, True):
        out = run_both(f, opcodes)
        assert out.value[0] == 1001, out.value  # jumped out of the loop


def test_tracing_on_in_first_half_of_a_superinstruction():
    # Warm, `a = d` then `z` run STORE_FAST a; LOAD_FAST z as one instruction: the destructor of
    # the old `a` switches tracing on in the first half; stock checks for a 'line' event only at
    # the instruction after the pair, against STORE_FAST's line, and reports no 'opcode' event
    # for the second half.
    def f():
        events = []

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = True
            events.append(_event(frame, event, arg))
            return tracer

        def body(last):
            a = SwitchOnAtDeath(tracer) if last else 1
            d = z = 2
            a = d
            z
            return a + z

        for i in range(CALLS):
            body(i == CALLS - 1)
        sys.settrace(None)
        return events

    run_both(f)


# ---------------------------------------------------------------------------------------------
# 1b. FOR_ITER ending while a trace function is set


class SwitchOnIterator:
    """Yields 1, 2; before ending the loop switches tracing on for the looping frame."""

    def __init__(self, tracer):
        self.tracer, self.i = tracer, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i += 1
        if self.i > 2:
            sys.settrace(self.tracer)
            sys._getframe(1).f_trace = self.tracer
            raise StopIteration
        return self.i


def test_for_iter_end_reports_stop_iteration_to_tracer():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        total = 0
        for x in SwitchOnIterator(tracer):
            total += x
        sys.settrace(None)
        return total, events

    out = run_both(f)
    assert out.value[1][0] == ("exception", "f", 8, "StopIteration"), out.value


def test_for_iter_end_of_generator_returning_a_value():
    # A generator that returns a value ends with StopIteration(value) set: reported too.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        def gen():
            yield 1
            sys.settrace(tracer)
            sys._getframe(1).f_trace = tracer
            return 5

        total = 0
        for x in gen():
            total += x
        sys.settrace(None)
        return total, events

    run_both(f)


def test_for_iter_end_tracer_switched_on_in_loop_body():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        total = 0
        for x in [1, 2, 3]:
            if x == 3:
                sys.settrace(tracer)
                sys._getframe().f_trace = tracer
            total += x
        sys.settrace(None)
        return total, events

    run_both(f)


def test_for_iter_end_tracer_raises_on_exception_event():
    # ceval clears whatever the tracer raised along with the StopIteration.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            if event == "exception":
                raise KeyError("from the tracer")
            return tracer

        total = 0
        for x in SwitchOnIterator(tracer):
            total += x
        sys.settrace(None)
        return total, events

    run_both(f)


# ---------------------------------------------------------------------------------------------
# 2. The caller's last instruction, as callees and tracebacks see it

def lasti_of_caller():
    return sys._getframe(2).f_lasti


def _seen(log):
    log.append(sys._getframe(2).f_lasti)


class Probe:
    """Every special method records the caller's f_lasti in `log`."""

    def __init__(self, log):
        object.__setattr__(self, "log", log)

    def __getitem__(self, k):
        _seen(self.log)
        return k

    def __setitem__(self, k, v):
        _seen(self.log)

    def __delitem__(self, k):
        _seen(self.log)

    def __getattr__(self, name):
        _seen(self.log)
        return name

    @property
    def prop(self):
        _seen(self.log)
        return 1

    @prop.setter
    def prop(self, v):
        _seen(self.log)

    def __setattr__(self, name, v):
        _seen(self.log)

    def __add__(self, o):
        _seen(self.log)
        return 1

    def __lt__(self, o):
        _seen(self.log)
        return True

    def __eq__(self, o):
        _seen(self.log)
        return False

    __hash__ = object.__hash__

    def __len__(self):
        _seen(self.log)
        return 2

    def __iter__(self):
        _seen(self.log)
        return iter((1, 2))

    def __contains__(self, x):
        _seen(self.log)
        return True

    def __format__(self, spec):
        _seen(self.log)
        return "p"

    def __str__(self):
        _seen(self.log)
        return "p"

    def __abs__(self):
        _seen(self.log)
        return 1

    def __enter__(self):
        _seen(self.log)
        return self

    def __exit__(self, *exc):
        _seen(self.log)

    def meth(self):
        _seen(self.log)

    def __call__(self):
        _seen(self.log)


class Init:
    def __init__(self, log):
        _seen(log)


class Meta(type):
    def __instancecheck__(cls, x):
        _seen(x.log)
        return True


class WithMeta(metaclass=Meta):
    pass


def _pyfunc(log, *rest, k=None):
    _seen(log)


def test_lasti_python_callees_cold_and_warm():
    def f():
        out = []

        def body(log, p):
            _pyfunc(log)                # CALL of a Python function
            _pyfunc(log, k=1)           # with KW_NAMES
            p.meth()                    # LOAD_METHOD + CALL
            m = p.meth
            m()                         # a bound method object (PRECALL unpacks it)
            (lambda: _seen(log))()
            Init(log)                   # a class: its __init__ is called from C
            p()                         # __call__, from C
            _pyfunc(*(log,))            # CALL_FUNCTION_EX

            def inner():
                _seen(log)
            inner()

        for _ in range(CALLS):
            log = []
            body(log, Probe(log))
            out.append(log)
        return out

    out = run_both(f)
    assert out.value[0] != [out.value[0][0]] * len(out.value[0])  # not all one unit


def test_lasti_special_methods_cold_and_warm():
    def f():
        out = []

        def body(log, p):
            p[1]
            p[1] = 2
            del p[1]
            p.missing
            p.prop
            p.prop = 1
            p.other = 1
            p + 1
            p < 1
            1 in p
            a, b = p
            for x in p:
                pass
            f"{p}"
            with p:
                pass

        for _ in range(CALLS):
            log = []
            body(log, Probe(log))
            out.append(log)
        return out

    run_both(f)


def test_lasti_getitem_of_several_types():
    # Warm BINARY_SUBSCR specializes only for a heap type whose __getitem__ is a simple Python
    # function.
    class VarArgs:
        def __getitem__(self, *k):
            _seen(log_holder[0])

    class Sub(dict):
        def __getitem__(self, k):
            _seen(log_holder[0])

    log_holder = []

    def f(classes):
        out = []

        def body(objs):
            for o in objs:
                o[1]

        for _ in range(CALLS):
            log = []
            log_holder[:] = [log]
            body([cls() for cls in classes])
            out.append(log)
        return out

    run_both(f, [VarArgs])
    run_both(f, [Sub])


def test_lasti_warm_direct_c_calls():
    def f():
        out = []

        def body(log, p):
            len(p)                      # PRECALL_NO_KW_LEN
            isinstance(p, WithMeta)     # PRECALL_NO_KW_ISINSTANCE
            abs(p)                      # PRECALL_NO_KW_BUILTIN_O
            sorted([p, p])              # PRECALL_BUILTIN_FAST_WITH_KEYWORDS
            str(p)                      # PRECALL_NO_KW_STR_1
            tuple(p)                    # PRECALL_NO_KW_TUPLE_1
            list(p)                     # PRECALL_BUILTIN_CLASS
            [p].count(p)                # PRECALL_NO_KW_METHOD_DESCRIPTOR_O
            [p, p].sort()               # PRECALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS
            {}.get(p)                   # PRECALL_NO_KW_METHOD_DESCRIPTOR_FAST (hash only)
            [1].index(1, 0, p)          # METH_FASTCALL: __index__ is not defined: TypeError
            max(p, p)                   # METH_VARARGS|METH_KEYWORDS: never specialized

        for _ in range(CALLS):
            log = []
            try:
                body(log, Probe(log))
            except TypeError as e:
                log.append(("TypeError", _tb_lastis(e, "body")))
            out.append(log)
        return out

    run_both(f)


class Dies:
    def __init__(self, log):
        self.log = log

    def __del__(self):
        _seen(self.log)


def test_lasti_destructors_in_warm_code():
    def f():
        out = []

        def body(log):
            x = Dies(log)
            y, x = 2, 0                 # STORE_FAST y; STORE_FAST x: x's old value dies
            type(Dies(log))             # PRECALL_NO_KW_TYPE_1 drops the argument
            lst = [Dies(log)]
            lst.clear()                 # PRECALL_NO_KW_METHOD_DESCRIPTOR_NOARGS
            return y

        for _ in range(CALLS):
            log = []
            body(log)
            out.append(log)
        return out

    run_both(f)


def _raises():
    raise ValueError("callee")


class RaisingGetitem:
    def __getitem__(self, k):
        raise KeyError(k)


def test_tb_lasti_of_the_caller():
    def f():
        out = []

        def body(case):
            if case == 0:
                _raises()               # a Python callee raised
            elif case == 1:
                _pyfunc()               # its arguments do not bind: raised by CALL itself
            elif case == 2:
                RaisingGetitem()[1]
            elif case == 3:
                len(5)                  # a C callee raised
            elif case == 4:
                abs("x")
            elif case == 5:
                int("x")

        for _ in range(CALLS):
            row = []
            for case in range(6):
                try:
                    body(case)
                except Exception as e:
                    row.append((type(e).__name__, _tb_lastis(e, "body")))
            out.append(row)
        return out

    run_both(f)


def test_tb_lasti_recursion_error():
    def f():
        def rec(n):
            return rec(n + 1)

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(120)
        try:
            rec(0)
        except RecursionError as e:
            lastis = _tb_lastis(e, "rec")
            return len(lastis), sorted(set(lastis))
        finally:
            sys.setrecursionlimit(limit)

    run_both(f)


def test_unbound_local_in_second_half_of_load_fast_pair():
    # Warm, `y + a` runs as LOAD_FAST__LOAD_FAST: the traceback entry points at `y`.
    def f():
        out = []

        def body(flag):
            a = 1
            y = 2
            if flag:
                del a
            return y + a

        for i in range(CALLS):
            try:
                out.append(body(i % 3 == 2))
            except UnboundLocalError as e:
                import traceback
                fs = traceback.extract_tb(e.__traceback__)[-1]
                out.append((_tb_lastis(e, "body"), fs.lineno - fs.lineno, fs.colno, fs.end_colno))
        return out

    run_both(f)


def test_superinstruction_pairs_depend_on_the_path():
    # `y + z` after `if c: x = 1`: reached by the jump, LOAD_FAST y; LOAD_FAST z run as one
    # instruction; reached by falling through, STORE_FAST x; LOAD_FAST y do, and z runs alone.
    def f():
        out = []

        def body(c, unbound):
            y = z = 1
            if unbound == "y":
                del y
            elif unbound == "z":
                del z
            if c:
                x = 1
            return y + z

        for i in range(CALLS):
            for c in (False, True):
                for unbound in ("y", "z"):
                    try:
                        body(c, unbound)
                    except UnboundLocalError as e:
                        import traceback
                        fs = traceback.extract_tb(e.__traceback__)[-1]
                        out.append((i, c, unbound, _tb_lastis(e, "body"), fs.lineno, fs.colno))
        return out

    run_both(f)


def test_store_pair_destructor_in_a_loop():
    def f():
        out = []

        def body(log, n):
            d = Dies(log)
            i = 0
            while i < n:
                d, i = Dies(log), i + 1     # STORE_FAST i; STORE_FAST d: the old `d` dies
            return i

        for n in range(CALLS):
            log = []
            body(log, n % 3)
            out.append(log)
        return out

    run_both(f)


class WarmsOnDeath:
    """Its death calls `fn` often enough to warm fn's code up (as stock counts RESUMEs)."""

    def __init__(self, fn):
        self.fn = fn

    def __del__(self):
        for _ in range(CALLS):
            self.fn([], [])


def test_code_warmed_up_in_the_middle_of_a_store_run():
    # a, b, c, d = ... is UNPACK_SEQUENCE then a run of four STORE_FASTs. In the first call the
    # code is cold (no pairs) until the old `a`, the only reference to a WarmsOnDeath, dies in the
    # first STORE_FAST: its destructor warms the code up, so from the next dispatch on the rest
    # of the run pairs: STORE_FAST b; STORE_FAST c run as one instruction (the old `c` dies at
    # b's unit), d alone. Later calls start the run warm: (a, b) and (c, d) pair.
    def f():
        out = []

        def body(holder, log):
            a, b, c, d = holder.pop() if holder else None, Dies(log), Dies(log), Dies(log)
            if not log:
                return
            a, b, c, d = None, None, None, None
            return a

        for i in range(4):
            log = [i]
            body([WarmsOnDeath(body)] if i == 0 else [], log)
            out.append(log)
        return out

    out = run_both(f)
    first, warm = out.value[0][1:], out.value[1][1:]
    assert first[1] == first[0] and warm[0] != warm[1] == warm[2], out.value


def test_unbound_local_in_a_pair_that_straddles_a_try_block():
    # STORE_FAST x ends the try body, LOAD_FAST y starts the finally body of the normal exit: in
    # warm code they run as one instruction, whose traceback entry is STORE_FAST's while the
    # exception table is searched at LOAD_FAST (outside the try, so the finally is not run again).
    def f():
        out = []

        def body(flag):
            y = 1
            if flag:
                del y
            try:
                x = 1
            finally:
                y
            return x

        for i in range(CALLS):
            try:
                out.append(body(i % 3 == 2))
            except UnboundLocalError as e:
                import traceback
                fs = traceback.extract_tb(e.__traceback__)[-1]
                out.append((_tb_lastis(e, "body"), fs.lineno, fs.colno, repr(e.__context__)))
        return out

    run_both(f)


class Suppress:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        return self

    def __exit__(self, ty, exc, tb):
        self.log.append((ty.__name__ if ty else None, _tb_lastis(exc, "body_with") if exc else None))
        return True


def test_unbound_local_in_a_pair_that_straddles_into_an_outer_handler():
    # The first half is in an inner try, the second in an outer one: the outer handler gets the
    # exception directly (an except clause; a with block's cleanup, which is pushed lasti). One
    # exception per frame: after a hand-off the frame finishes in the interpreter.
    def f():
        out = []

        def body(flag, log):
            y = 1
            if flag:
                del y
            try:
                try:
                    x = 1
                finally:
                    y
            except UnboundLocalError as e:
                log.append(("except", _tb_lastis(e, "body")))
            return x

        def body_with(flag, log):
            y = 1
            if flag:
                del y
            with Suppress(log):
                try:
                    x = 2
                finally:
                    y
            return x

        for i in range(CALLS):
            log = []
            out.append((body(i % 3 == 2, log), body_with(i % 3 == 2, log), log))
        return out

    run_both(f)


def test_unbound_local_in_a_straddling_pair_with_tracing_switched_on():
    # The first half's destructor switches tracing on: the exception and 'line' events at the
    # handler (or the 'return' event of the frame the exception leaves) are stock's.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append(_event(frame, event, arg))
            return tracer

        def body(last):
            x = SwitchOnAtDeath(tracer) if last else 0
            y = 1
            if last:
                del y
            try:
                try:
                    x = 1
                finally:
                    y
            except UnboundLocalError:
                pass
            return x

        def body2(last):
            x = SwitchOnAtDeath(tracer) if last else 0
            y = 1
            if last:
                del y
            try:
                x = 1
            finally:
                y
            return x

        for i in range(CALLS):
            body(i == CALLS - 1)
        sys.settrace(None)
        try:
            for i in range(CALLS):
                body2(i == CALLS - 1)
        except UnboundLocalError as e:
            events.append(("raised", _tb_lastis(e, "body2")))
        sys.settrace(None)
        return events

    out = run_both(f)
    assert out.value[0] == ("exception", "body", 7, "UnboundLocalError"), out.value  # at `x = 1`


class OtherGetitem:
    def __getitem__(self, k):
        _seen(log_of_other[0])
        return k


log_of_other = [None]


def test_lasti_at_polymorphic_sites():
    # Stock keeps the form a site specialized for at its first warm execution, takes the generic
    # path for callables or containers that miss it, goes back to adaptive after 53 misses and
    # backs off when specializing fails: the site's history, not only the current call, decides.
    def f(n):
        out = []

        def call(fn, p):
            fn(p)

        def subscr(o):
            o[1]

        for i in range(n):
            log = []
            log_of_other[0] = log
            p = Probe(log)
            call(abs if i % 3 else len, p)      # first warm call: len (PRECALL_NO_KW_LEN)
            call(len if i % 5 else abs, p)
            subscr(OtherGetitem() if i % 4 else p)
            subscr(p if i % 7 else [1, 2])
            if i == 60:
                OtherGetitem.extra = 1          # a new type version: GETITEM misses
            out.append(log)
        return out

    run_both(f, 150)


# ---------------------------------------------------------------------------------------------
# Preludes left out (baseline/src/emitter.rs `Prelude`): after instructions that run nothing,
# no tracing check; LOAD_CONST, PUSH_NULL, COPY and SWAP store no `prev_instr`. Tracing switched
# on anywhere before such a run must still give stock's events, and everything that reads
# `prev_instr` afterwards stock's line.


@pytest.mark.parametrize("where", ["store", "pop", "call", "operator"])
def test_tracing_on_before_instructions_without_a_check(where):
    def f(where):
        events = []

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = True
            events.append(_event(frame, event, arg))
            return tracer

        def switch():
            sys.settrace(tracer)
            sys._getframe(1).f_trace = tracer

        class Op:
            def __add__(self, other):
                switch()
                return 1

        def body(last):
            a = SwitchOnAtDeath(tracer) if last else 1
            b = 2
            if last and where == "store":
                a = 3                       # the old a dies here: tracing on
            if last and where == "pop":
                a                           # noqa: B018  (POP_TOP of the last reference below)
                del a
                a = 3
            if last and where == "call":
                switch()
            if last and where == "operator":
                Op() + 1
            x, y = b, 5                     # LOAD_FAST, LOAD_CONST, SWAP: no checks of their own
            c = (1, 2, b)
            return x + y + c[2] + b

        for i in range(CALLS):
            body(i == CALLS - 1)
        sys.settrace(None)
        return events

    run_both(f, where)


def test_lineno_after_instructions_without_prev_instr():
    # f_lineno and a traceback read prev_instr: after LOAD_CONST/COPY/SWAP runs, the next
    # instruction that can observe it must have set its own.
    def f():
        out = []

        class Watch:
            def __del__(self):
                out.append(sys._getframe(1).f_lineno - sys._getframe(1).f_code.co_firstlineno)

        def body():
            w = Watch()
            k = 1
            x = (
                1,
                2)
            w = None
            try:
                z = k + (
                    "s")
            except TypeError as e:
                out.append(e.__traceback__.tb_lineno - body.__code__.co_firstlineno)
            return x

        for _ in range(CALLS):
            body()
        return out

    run_both(f)


def test_tracing_on_before_a_jump_target_after_a_run_without_checks():
    # `c = a and b`: when `a` is false JUMP_IF_FALSE_OR_POP jumps to STORE_FAST c, whose
    # predecessor in code order (LOAD_FAST b) runs nothing; but the jump came from a __bool__
    # that switched tracing on, so STORE_FAST must check as a jump target.
    def f():
        events = []

        def tracer(frame, event, arg):
            frame.f_trace_opcodes = True
            events.append(_event(frame, event, arg))
            return tracer

        class Falsy:
            def __bool__(self):
                sys.settrace(tracer)
                sys._getframe(1).f_trace = tracer
                return False

        def body(last):
            a = Falsy() if last else 0
            b = 1
            c = a and b
            return c

        for i in range(CALLS):
            body(i == CALLS - 1)
        sys.settrace(None)
        return events

    run_both(f)
