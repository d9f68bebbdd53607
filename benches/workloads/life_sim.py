"""A whole program: Conway's Game of Life plus a predator-prey agent simulation on a grid.

Peregrine workload: a simulation's step loop, nested loops over a grid stored as lists, small
objects updated in place and a seeded random number generator.
"""

import random

import pyperf

SIZE = 48


def life_step(grid):
    size = len(grid)
    new = [[0] * size for _ in range(size)]
    for y in range(size):
        above, row, below = grid[y - 1], grid[y], grid[(y + 1) % size]
        for x in range(size):
            left, right = x - 1, (x + 1) % size
            neighbours = (
                above[left] + above[x] + above[right]
                + row[left] + row[right]
                + below[left] + below[x] + below[right]
            )
            new[y][x] = 1 if neighbours == 3 or (neighbours == 2 and row[x]) else 0
    return new


class Animal:
    __slots__ = ("x", "y", "energy", "predator")

    def __init__(self, x, y, energy, predator):
        self.x = x
        self.y = y
        self.energy = energy
        self.predator = predator

    def wander(self, rng):
        self.x = (self.x + rng.choice((-1, 0, 1))) % SIZE
        self.y = (self.y + rng.choice((-1, 0, 1))) % SIZE
        self.energy -= 2 if self.predator else 1


def ecosystem_step(animals, rng):
    prey_at = {}
    for animal in animals:
        animal.wander(rng)
        if not animal.predator:
            prey_at.setdefault((animal.x, animal.y), []).append(animal)
    for animal in animals:
        if animal.predator:
            victims = prey_at.get((animal.x, animal.y))
            if victims and victims[-1].energy > 0:
                animal.energy += 8
                victims.pop().energy = 0
        else:
            animal.energy += 1
    survivors = [a for a in animals if a.energy > 0]
    babies = [Animal(a.x, a.y, a.energy // 2, a.predator) for a in survivors if a.energy > 20]
    for parent in survivors:
        if parent.energy > 20:
            parent.energy //= 2
    return survivors + babies


def run():
    rng = random.Random(7)
    grid = [[rng.random() < 0.3 for _ in range(SIZE)] for _ in range(SIZE)]
    grid = [[int(cell) for cell in row] for row in grid]
    for _ in range(8):
        grid = life_step(grid)
    animals = [Animal(rng.randrange(SIZE), rng.randrange(SIZE), 10, i % 5 == 0) for i in range(300)]
    for _ in range(15):
        animals = ecosystem_step(animals, rng)
    result = sum(map(sum, grid)), len(animals)
    assert result == (466, 226), result
    return result


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Game of Life and a predator-prey simulation"
    runner.bench_func("life_sim", run)
