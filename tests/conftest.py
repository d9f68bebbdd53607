"""Shared helpers: run Python in a subprocess with a controlled PEREGRINE* environment, so start-up
behaviour is tested as a user meets it, and each in-process test leaves the JIT as it found it."""

import os
import subprocess
import sys

import pytest

import peregrine


def clean_env(**overrides):
    """The current environment without any PEREGRINE* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEREGRINE")}
    env.update(overrides)
    return env


def run_python(*args, env=None, cwd=None, timeout=120):
    """Runs `python3 *args` and returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [sys.executable, *args],
        env=clean_env(**(env or {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def with_unreachable_bad_constant(func):
    """A copy of `func` whose bytecode ends, after its last RETURN_VALUE, with a LOAD_CONST of a
    constant that does not exist. The interpreter never reaches it, so the function still runs;
    a compiler must refuse the code object as malformed rather than trust the index."""
    import opcode
    import types

    code = func.__code__
    assert len(code.co_consts) < 255
    bad = bytes([opcode.opmap["LOAD_CONST"], 255, opcode.opmap["RETURN_VALUE"], 0])
    return types.FunctionType(code.replace(co_code=code.co_code + bad), func.__globals__, func.__name__)


@pytest.fixture
def jit():
    """Enables the JIT for one test and restores the previous state and thresholds afterwards."""
    was_enabled = peregrine.is_enabled()
    thresholds = peregrine.get_thresholds()
    peregrine.enable()
    try:
        yield peregrine
    finally:
        peregrine.set_thresholds(**thresholds)
        if not was_enabled:
            peregrine.disable()
