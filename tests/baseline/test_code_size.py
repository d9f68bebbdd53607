"""What keeps compiled code small, checked on the machine code itself (peregrine.disassemble):
code that is warm when compiled gets only the warm forms of its superinstruction runs, with no
warm-latch tests and no cold copies (baseline/src/lib.rs, `Emitter::warm_at_compile`)."""

import re

import peregrine

SOURCE = """
def f(a, b, c):
    x = a + b
    y = b * c
    for i in range(3):
        x, y = y + i, x - i
    return x, y, a, b, c
"""


def fresh():
    ns = {}
    exec(SOURCE, ns)
    return ns["f"]


def size(func):
    return int(re.match(r"; baseline code at \S+, (\d+) bytes", peregrine.disassemble(func)).group(1))


def latch_tests(func):
    return len(re.findall(r"cmp byte ptr \[r15\],0", peregrine.disassemble(func)))


def test_code_warm_at_compile_has_no_cold_copies():
    was = peregrine.is_enabled()
    peregrine.disable()  # warm up in the interpreter only
    try:
        cold, warm = fresh(), fresh()
        for i in range(20):  # past ceval's warm-up (8 RESUMEs): quickened
            expected = warm(i, 2, 3)
        assert expected == cold(19, 2, 3)
    finally:
        if was:
            peregrine.enable()
    peregrine.compile(cold)  # never ran: not warm
    peregrine.compile(warm)
    assert latch_tests(cold) > 0
    assert latch_tests(warm) == 0
    assert size(warm) < size(cold)
    assert warm(19, 2, 3) == expected and cold(19, 2, 3) == expected
