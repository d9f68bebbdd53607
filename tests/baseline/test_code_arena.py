"""The code arena (runtime/src/code_arena.rs): every code object's machine code lives in one
executable arena, packed, with direct `call rel32`s to the helpers, and the space of a code
object that dies is reused. What a user can observe is stats()["code_arena"] and the addresses
`peregrine.disassemble` prints; the results of the code placed there are checked by every other
test."""

import gc
import re

import peregrine

SOURCE = """
def f(x, y):
    total = 0
    for i in range(x):
        total += i * y - (i >> 1)
    return total
"""


def fresh_functions(n):
    funcs = []
    for _ in range(n):
        ns = {}
        exec(SOURCE, ns)
        funcs.append(ns["f"])
    return funcs


def code_address(func):
    """Where the function's machine code starts, and its length."""
    m = re.match(r"; baseline code at (0x[0-9a-f]+), (\d+) bytes", peregrine.disassemble(func))
    return int(m.group(1), 16), int(m.group(2))


def test_code_objects_are_packed_in_one_arena():
    funcs = fresh_functions(8)
    for f in funcs:
        peregrine.compile(f)
    arena = peregrine.stats()["code_arena"]
    assert arena["reserved"] >= 1 << 30 and arena["blocks"] >= 8
    placed = sorted(code_address(f) for f in funcs)
    addresses = [a for a, _ in placed]
    # Not one mapping each, from a page boundary: packed at 64-byte granularity, one after the
    # other when nothing else was compiled in between.
    assert all(a % 64 == 0 for a in addresses)
    assert any(a % 4096 != 0 for a in addresses), addresses
    adjacent = [b - a == -(-n // 64) * 64 for (a, n), (b, _) in zip(placed, placed[1:])]
    assert sum(adjacent) >= len(funcs) // 2, (placed, adjacent)
    assert all(f(50, 3) == funcs[0](50, 3) for f in funcs)


def test_calls_to_helpers_are_direct():
    (f,) = fresh_functions(1)
    peregrine.compile(f)
    text = peregrine.disassemble(f)
    start, length = code_address(f)
    # This library's helpers are reached with a `call rel32` from the arena, not through a
    # trampoline of the code's own (which the disassembly would name the same way).
    targets = [int(t, 16) for t in re.findall(r"call ([0-9A-F]+)h\s+; pg_frame_enter", text)]
    assert targets, text[:2000]
    assert all(not start <= t < start + length for t in targets), (hex(start), length, [hex(t) for t in targets])


def test_space_of_dead_code_objects_is_reused():
    funcs = fresh_functions(20)
    for f in funcs:
        peregrine.compile(f)
        assert f(30, 2) == 30 * 29 - sum(i >> 1 for i in range(30))
    before = peregrine.stats()["code_arena"]
    del funcs, f
    gc.collect()
    freed = peregrine.stats()["code_arena"]
    assert freed["blocks"] <= before["blocks"] - 20
    assert freed["live"] < before["live"]
    again = fresh_functions(20)
    for f in again:
        peregrine.compile(f)
        assert f(30, 2) == 30 * 29 - sum(i >> 1 for i in range(30))
    after = peregrine.stats()["code_arena"]
    # The new code took the dead code's space: the arena's used part did not grow.
    assert after["used"] <= before["used"], (before, freed, after)
    assert after["live"] <= before["live"] + 4096
