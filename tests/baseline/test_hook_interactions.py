"""How the frame hook coexists with other users of CPython's hooks and per-code storage (these
show up under every JIT configuration, hook-only included)."""

import pytest

from conftest import run_python

CO_EXTRA_SCRIPT = r"""
import ctypes
freefunc = ctypes.CFUNCTYPE(None, ctypes.c_voidp)
request = ctypes.pythonapi._PyEval_RequestCodeExtraIndex
request.argtypes = (freefunc,)
request.restype = ctypes.c_ssize_t
SEEN = []
def myfree(ptr):
    SEEN.append(ptr)
FREE = freefunc(myfree)
request(FREE)
exec("def g():\n    return 1\ng()\n", {})  # a code object the hook sees, then frees
import gc; gc.collect()
print(len(SEEN))
"""


HOOK_ONLY = dict(PEREGRINE="1", PEREGRINE_BASELINE_THRESHOLD="off", PEREGRINE_OPTIMIZE_THRESHOLD="off")
BASELINE = dict(PEREGRINE="1", PEREGRINE_BASELINE_THRESHOLD="0", PEREGRINE_OPTIMIZE_THRESHOLD="off")


@pytest.mark.parametrize("config", [HOOK_ONLY, BASELINE], ids=["hook-only", "baseline"])
def test_other_co_extra_users_are_not_called_for_code_objects_they_never_touched(config):
    stock = run_python("-c", CO_EXTRA_SCRIPT, timeout=60)
    assert stock.returncode == 0 and stock.stdout.strip() == "0"
    jit = run_python("-c", CO_EXTRA_SCRIPT, env=config, timeout=60)
    assert (jit.returncode, jit.stdout.strip()) == (0, "0"), (jit.returncode, jit.stdout, jit.stderr[-300:])
