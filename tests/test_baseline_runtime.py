"""Behaviour of baseline-compiled frames that the interpreter's loop normally provides: signals
(Ctrl-C, handlers), other threads getting the GIL, tracing switched on mid-frame, recursion."""

import signal
import subprocess
import sys
import textwrap
import threading
import time

import peregrine
from conftest import clean_env


SPIN = textwrap.dedent(
    """\
    import peregrine, sys
    def spin():
        i = 0
        while True:
            i += 1
    if peregrine.is_enabled():
        peregrine.compile(spin)
    print(peregrine.tier_of(spin), flush=True)
    spin()
    """
)


def _interrupt_spin(env):
    """Runs SPIN, sends SIGINT while it loops; returns (tier it reported, stderr)."""
    proc = subprocess.Popen([sys.executable, "-c", SPIN], env=clean_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        tier = proc.stdout.readline().strip()
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return tier, err


def test_ctrl_c_interrupts_a_hot_compiled_loop():
    stock_tier, stock_err = _interrupt_spin({})
    jit_tier, jit_err = _interrupt_spin({"PEREGRINE": "1", "PEREGRINE_BASELINE_THRESHOLD": "0"})
    assert (stock_tier, jit_tier) == ("interpreter", "baseline")
    assert jit_err.endswith("KeyboardInterrupt\n")
    assert jit_err == stock_err  # same traceback, raised at the same line of the loop


def test_signal_handlers_run_inside_compiled_loops(jit):
    fired = []

    def handler(signum, frame):
        fired.append(frame.f_code.co_name)

    def wait_for_signal():
        n = 0
        while not fired:
            n += 1
        return n

    peregrine.compile(wait_for_signal)
    assert peregrine.tier_of(wait_for_signal) == "baseline"
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert wait_for_signal() > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert fired == ["wait_for_signal"]


def test_threads_share_the_gil_with_compiled_loops(jit):
    def count(n, out, key):
        total = 0
        for i in range(n):
            total += i
        out[key] = total

    peregrine.compile(count)
    out = {}
    threads = [threading.Thread(target=count, args=(200_000, out, k)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert out == {k: sum(range(200_000)) for k in range(3)}
    assert peregrine.tier_of(count) == "baseline"


def _trace_mid_frame():
    """Turns tracing on from inside a running frame (as pdb.set_trace does) and returns the
    events the tracer saw for that frame."""
    events = []

    def tracer(frame, event, arg):
        if frame.f_code is target.__code__:
            events.append((frame.f_lineno - target.__code__.co_firstlineno, event))
        return tracer

    def start_tracing():
        sys._getframe(1).f_trace = tracer
        sys.settrace(tracer)

    def target():
        a = 1
        start_tracing()
        b = a + 1
        c = b * 2
        return c

    result = target()
    sys.settrace(None)
    return result, events, target


def test_tracing_switched_on_mid_frame_sees_every_later_event(jit):
    jit.disable()
    expected = _trace_mid_frame()
    jit.enable()
    jit.set_thresholds(baseline=0)
    got = _trace_mid_frame()
    assert peregrine.tier_of(got[2]) == "baseline"
    assert got[:2] == expected[:2]
    assert expected[1][-1] == (5, "return")


def test_recursion_error_in_compiled_code_matches_the_interpreter(jit):
    def down(n):
        return down(n + 1)

    def run():
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(200)
        try:
            down(0)
        except RecursionError as exc:
            return str(exc)
        finally:
            sys.setrecursionlimit(limit)

    jit.disable()
    expected = run()
    jit.enable()
    peregrine.compile(down)
    assert run() == expected
    assert peregrine.tier_of(down) == "baseline"


def test_threads_with_a_small_stack_run_compiled_code(jit):
    # threading.stack_size() can make thread stacks tiny; the C-stack guard must leave them usable.
    def work(out):
        out.append(sum(i for i in range(1000)))

    peregrine.compile(work)
    old = threading.stack_size(256 * 1024)
    try:
        out = []
        t = threading.Thread(target=work, args=(out,))
        t.start()
        t.join(timeout=30)
    finally:
        threading.stack_size(old)
    assert out == [sum(range(1000))]


def test_a_jump_past_precall_to_its_call_is_refused():
    """The stack check books CALL's arguments on its PRECALL, as compile.c does: hand-made code
    that jumps straight to a CALL (PRECALL unreachable) must be refused, not compiled."""
    import dis
    import types

    import pytest

    op = dis.opmap

    def f(g):
        return g()

    code = bytes([
        op["RESUME"], 0, op["PUSH_NULL"], 0, op["LOAD_FAST"], 0,
        op["JUMP_FORWARD"], 2,                 # to the CALL, skipping PRECALL and its cache
        op["PRECALL"], 0, op["CACHE"], 0,
        op["CALL"], 0, *[op["CACHE"], 0] * 4,
        op["RETURN_VALUE"], 0,
    ])
    bad = types.FunctionType(f.__code__.replace(co_code=code), f.__globals__)
    with pytest.raises(peregrine.CompileError, match="jumps to a CALL"):
        peregrine.compile(bad, tier="baseline")
