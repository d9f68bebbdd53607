"""A whole program: a Sudoku solver with constraint propagation and backtracking search.

Peregrine workload: Peter Norvig's design (peers, units, eliminate/assign) over dicts of strings,
mixing recursion, string operations, comprehensions and early exits.
"""

import pyperf

DIGITS = "123456789"
ROWS = "ABCDEFGHI"
SQUARES = [r + c for r in ROWS for c in DIGITS]
UNITS_LIST = (
    [[r + c for r in ROWS] for c in DIGITS]
    + [[r + c for c in DIGITS] for r in ROWS]
    + [[r + c for r in rs for c in cs] for rs in ("ABC", "DEF", "GHI") for cs in ("123", "456", "789")]
)
UNITS = {s: [u for u in UNITS_LIST if s in u] for s in SQUARES}
PEERS = {s: set().union(*UNITS[s]) - {s} for s in SQUARES}

PUZZLES = [
    "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......",
    "52...6.........7.13...........4..8..6......5...........418.........3..2...87.....",
    "..53.....8......2..7..1.5..4....53...1..7...6..32...8..6.5....9..4....3......97..",
]


def assign(values, square, digit):
    other = values[square].replace(digit, "")
    if all(eliminate(values, square, d) for d in other):
        return values
    return False


def eliminate(values, square, digit):
    if digit not in values[square]:
        return values
    values[square] = values[square].replace(digit, "")
    remaining = values[square]
    if not remaining:
        return False
    if len(remaining) == 1 and not all(eliminate(values, peer, remaining) for peer in PEERS[square]):
        return False
    for unit in UNITS[square]:
        places = [s for s in unit if digit in values[s]]
        if not places:
            return False
        if len(places) == 1 and not assign(values, places[0], digit):
            return False
    return values


def parse(grid):
    values = {s: DIGITS for s in SQUARES}
    for square, char in zip(SQUARES, grid):
        if char in DIGITS and not assign(values, square, char):
            return False
    return values


def search(values):
    if values is False:
        return False
    if all(len(values[s]) == 1 for s in SQUARES):
        return values
    _, square = min((len(values[s]), s) for s in SQUARES if len(values[s]) > 1)
    for digit in values[square]:
        result = search(assign(values.copy(), square, digit))
        if result:
            return result
    return False


def solve(grid):
    solution = search(parse(grid))
    assert solution and all(len(solution[s]) == 1 for s in SQUARES)
    return "".join(solution[s] for s in SQUARES)


def run():
    return [solve(puzzle) for puzzle in PUZZLES]


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Sudoku: constraint propagation and backtracking"
    runner.bench_func("sudoku", run)
