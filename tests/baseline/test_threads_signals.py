"""Threads and the eval breaker: two threads running compiled loops (the GIL must be handed over
from compiled code: both finish with the right results), and a signal handler that raises inside a
compiled loop (the exception appears where the interpreter would raise it)."""

import signal
import sys
import threading

import pytest

import peregrine
from difftest import fresh_function, run_both


def spin(n, out, key):
    total = 0
    i = 0
    while i < n:
        total += i % 7
        i += 1
    out[key] = total


def test_two_threads_in_compiled_loops():
    def expected(n):
        return sum(i % 7 for i in range(n))

    was, thresholds = peregrine.is_enabled(), peregrine.get_thresholds()
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # many GIL drop requests while the loops run
    f = fresh_function(spin)
    peregrine.compile(f, tier="baseline")
    assert peregrine.tier_of(f) == "baseline"
    peregrine.set_thresholds(baseline=0, optimize="off")
    peregrine.enable()
    try:
        out = {}
        switches = []

        def watcher():
            # Proves the GIL was released while the other threads were in compiled loops.
            while len(out) < 2:
                switches.append(1)
                threading.Event().wait(0.001)

        threads = [threading.Thread(target=f, args=(300_000 + k, out, k)) for k in range(2)]
        w = threading.Thread(target=watcher)
        for t in threads + [w]:
            t.start()
        for t in threads + [w]:
            t.join(timeout=120)
            assert not t.is_alive(), "a thread running compiled code never finished"
    finally:
        sys.setswitchinterval(old_interval)
        peregrine.set_thresholds(**thresholds)
        if not was:
            peregrine.disable()
    assert out == {0: expected(300_000), 1: expected(300_001)}
    assert len(switches) > 1


class Alarm(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_handler_raises_in_compiled_loop():
    def handler(signum, frame):
        raise Alarm(signum)

    def f():
        n = 0
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        try:
            while True:
                n += 1
        except Alarm as e:
            return "alarm", e.args, n > 0

    old = signal.signal(signal.SIGALRM, handler)
    try:
        run_both(f)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_handler_uncaught_traceback():
    def handler(signum, frame):
        raise Alarm("uncaught")

    def f():
        n = 0
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        while True:
            n += 1

    old = signal.signal(signal.SIGALRM, handler)
    try:
        out = run_both(f)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert out.value[0] == "Alarm"
