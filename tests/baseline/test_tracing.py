"""sys.settrace / sys.setprofile switched on in the middle of a compiled frame: the trace events
must be the interpreter's (compiled code hands the frame to the interpreter when tracing goes on)."""

import sys

import pytest

from difftest import run_both


def helper(x):
    y = x + 1
    return y * 2


def raiser():
    raise ValueError("traced")


def _rel(frame):
    return frame.f_lineno - frame.f_code.co_firstlineno


def test_settrace_midway():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append((event, frame.f_code.co_name, _rel(frame)))
            return tracer

        a = helper(1)
        sys.settrace(tracer)
        b = helper(2)
        for i in range(2):
            b += i
        try:
            raiser()
        except ValueError:
            b += 100
        sys.settrace(None)
        c = helper(3)
        return a, b, c, events

    run_both(f)


def test_settrace_with_f_trace_on_current_frame():
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append((event, frame.f_code.co_name, _rel(frame), repr(arg) if event != "call" else None))
            return tracer

        x = 0
        sys._getframe().f_trace = tracer
        sys.settrace(tracer)
        x += 1
        x = helper(x)
        for i in range(3):
            x += i
        sys.settrace(None)
        return x, events

    run_both(f)


def test_setprofile_midway():
    def f():
        events = []

        def profiler(frame, event, arg):
            name = getattr(arg, "__name__", None) if event.startswith("c_") else None
            events.append((event, frame.f_code.co_name, name))

        a = helper(1)
        sys.setprofile(profiler)
        b = helper(2)
        c = len("abc") + abs(-1)
        try:
            int("x")
        except ValueError:
            pass
        sys.setprofile(None)
        return a, b, c, events

    run_both(f)


def test_settrace_set_in_callee():
    def enable(tracer):
        sys.settrace(tracer)

    def f():
        events = []

        def tracer(frame, event, arg):
            events.append((event, frame.f_code.co_name, _rel(frame)))
            return tracer

        enable(tracer)  # tracing goes on inside a callee; the compiled caller continues
        x = helper(5)
        sys.settrace(None)
        return x, events

    run_both(f)


def test_f_lineno_of_compiled_frames():
    def who():
        f = sys._getframe(1)
        return f.f_lineno - f.f_code.co_firstlineno

    def f():
        a = who()
        b = [who(),
             who()]
        return a, b, sys._getframe().f_lineno - f.__code__.co_firstlineno

    run_both(f)


def _enable_trace_and_raise(tracer):
    sys.settrace(tracer)
    raise KeyError("after settrace")


def _enable_profile_and_raise(profiler):
    sys.setprofile(profiler)
    raise KeyError("after setprofile")


def test_exception_handoff_right_after_settrace_in_callee():
    # The failing CALL hands the caller to the interpreter with throwflag=1 while tracing is on:
    # the interpreter's spurious 'call' event for the caller must not reach the tracer.
    def f():
        events = []

        def tracer(frame, event, arg):
            events.append((event, frame.f_code.co_name, _rel(frame)))
            return tracer

        try:
            _enable_trace_and_raise(tracer)
        except KeyError:
            x = helper(1)
        sys.settrace(None)
        return x, events

    run_both(f)


def test_exception_handoff_right_after_setprofile_in_callee():
    def f():
        events = []

        def profiler(frame, event, arg):
            name = getattr(arg, "__name__", None) if event.startswith("c_") else None
            events.append((event, frame.f_code.co_name, name))

        try:
            _enable_profile_and_raise(profiler)
        except KeyError:
            x = helper(1) + len("ab")
        sys.setprofile(None)
        return x, events

    run_both(f)


def test_exception_handoff_with_both_trace_and_profile():
    def enable_both_and_raise(t):
        sys.setprofile(t)
        sys.settrace(t)
        raise KeyError("both")

    def f():
        events = []

        def t(frame, event, arg):
            events.append((event, frame.f_code.co_name))
            return t

        try:
            enable_both_and_raise(t)
        except KeyError:
            x = helper(2)
        sys.settrace(None)
        sys.setprofile(None)
        y = helper(3)  # no events any more
        return x, y, events

    run_both(f)


def _kw_only(a, *, k):
    return a, k


def _enable_trace_returning(value):
    sys.settrace(lambda *a: None)
    return value


def _enable_profile_returning(value):
    sys.setprofile(lambda *a: None)
    return value


@pytest.mark.parametrize("enable", [_enable_trace_returning, _enable_profile_returning],
                         ids=["settrace", "setprofile"])
def test_tracing_on_while_evaluating_keyword_argument(enable):
    def f():
        try:
            return _kw_only(1, k=enable("K"))
        finally:
            sys.settrace(None)
            sys.setprofile(None)

    run_both(f)


def test_tracing_on_while_evaluating_positional_argument_of_keyword_call():
    # The same hand-off, but the tracing call is not the last argument: KW_NAMES comes later and
    # is run by the interpreter, so this one works.
    def f():
        try:
            return _kw_only(_enable_trace_returning(1), k="K")
        finally:
            sys.settrace(None)

    run_both(f)
