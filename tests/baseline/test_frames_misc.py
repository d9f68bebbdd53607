"""Frame state that outside code can observe while or after compiled code runs: prev_instr (line
seen by destructors and callees), frames that outlive their function, f_locals, super() and
__class__ cells, custom globals/builtins mappings, unraisable exceptions from destructors,
tracing switched on in the middle of an expression, pending signals after a C call, and
asynchronous exceptions delivered to a thread in a compiled loop."""

import builtins
import ctypes
import signal
import sys
import threading
import time

import pytest

from difftest import Cases, run_both

case = Cases()


class RecordsDel:
    log = []

    def __del__(self):
        fr = sys._getframe(1)
        RecordsDel.log.append((fr.f_code.co_name, fr.f_lineno - fr.f_code.co_firstlineno, fr.f_lasti))


@case()
def destructor_sees_current_line():
    RecordsDel.log.clear()
    x = RecordsDel()
    x = None  # STORE_FAST releases the old value
    RecordsDel()  # POP_TOP
    y = [RecordsDel()]
    del y  # DELETE_FAST
    return list(RecordsDel.log)


def _returns_own_frame():
    a = 1
    b = [a]
    return sys._getframe()


@case()
def frame_outlives_function():
    fr = _returns_own_frame()
    return fr.f_lineno - fr.f_code.co_firstlineno, fr.f_lasti, sorted(fr.f_locals), fr.f_back is None


@case()
def f_locals_seen_by_callee():
    def peek():
        return sorted(sys._getframe(1).f_locals)
    a = 1

    def inner():
        return a
    b = 2
    del b
    return peek(), sorted(locals())


class Base:
    def m(self, x):
        return ("base", x)


class Derived(Base):
    def m(self, x):
        return super().m(x + 1), __class__.__name__

    def m_cell(self, x):
        f = lambda: self  # noqa: E731 - self becomes a cell
        return super().m(x), f() is self

    def m_reassigned(self, x):
        self = 5
        return super().m(x)

    @staticmethod
    def sm():
        return super().m(1)


@case()
def zero_argument_super():
    d = Derived()
    return d.m(1), d.m_cell(2)


@case()
def super_with_reassigned_self():
    return Derived().m_reassigned(1)


@case()
def super_in_staticmethod():
    return Derived.sm()


class Unraisable:
    def __del__(self):
        raise ValueError("in __del__")


@case()
def unraisable_from_destructor():
    got = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: got.append((u.exc_type, str(u.exc_value), u.err_msg))
    try:
        b = Unraisable()
        b = 1
    finally:
        sys.unraisablehook = old
    return got, b


class MissingBuiltins(dict):
    def __missing__(self, k):
        return ("missing", k)


class RaisingBuiltins(dict):
    def __getitem__(self, k):
        raise RuntimeError("getitem " + k)


def _function_with_builtins(bcls):
    g = {"__builtins__": bcls(builtins.__dict__)}
    exec("def f():\n    return len, nonexistent_name\n", g)
    return g["f"]


@pytest.mark.parametrize("bcls", [MissingBuiltins, RaisingBuiltins, dict])
def test_builtins_mappings(bcls):
    run_both(_function_with_builtins(bcls))


class GlobalsSubclass(dict):
    pass


def test_globals_dict_subclass():
    g = GlobalsSubclass(__builtins__=builtins)
    exec("def f():\n    global q\n    q = 1\n    r = q\n    del q\n    return r, len\n"
         "def h():\n    return zz\n", g)
    run_both(g["f"])
    run_both(g["h"])


def _helper(x):
    return x * 2


def _enable(t):
    sys.settrace(t)
    return 5


@case()
def trace_on_in_the_middle_of_an_expression():
    ev = []

    def t(frame, event, arg):
        ev.append((event, frame.f_code.co_name, frame.f_lineno - frame.f_code.co_firstlineno))
        return t
    # Values are on the stack when tracing goes on: the hand-off must carry them over.
    x = (1, _enable(t), _helper(2), [i for i in range(2)], {"k": _helper(3)})
    sys.settrace(None)
    return x, ev


@pytest.mark.parametrize("func,args,kwargs", case.params)
def test_frames_misc(func, args, kwargs):
    run_both(func, *args, **kwargs)


class Alarm(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_pending_after_c_call():
    def handler(s, f):
        raise Alarm()

    def after_c_call():
        signal.setitimer(signal.ITIMER_REAL, 0.005)
        try:
            while True:
                s = sum(range(200000))  # noqa: F841 - the signal arrives during the C call
        except Alarm as e:
            return e.__traceback__.tb_lineno - after_c_call.__code__.co_firstlineno

    old = signal.signal(signal.SIGALRM, handler)
    try:
        run_both(after_c_call)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_async_exception_reaches_compiled_loop():
    def async_exc():
        res = {}
        stop = [False]

        def loop():
            n = 0
            try:
                while not stop[0]:
                    n += 1
            except Alarm:
                res["got"] = n > 0

        t = threading.Thread(target=loop)
        t.start()
        time.sleep(0.05)
        r = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(Alarm))
        t.join(5)
        stop[0] = True
        t.join()
        return r, res

    out = run_both(async_exc)
    assert out.value == (1, {"got": True})
