"""Object-oriented code: a small class hierarchy with methods, properties and attribute updates.

Peregrine workload: LOAD_ATTR/STORE_ATTR on instances, bound-method calls, ``super()``,
properties and polymorphic dispatch over a list of mixed shapes.
"""

import math

import pyperf


class Vector:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Vector(self.x + other.x, self.y + other.y)

    def scale(self, k):
        return Vector(self.x * k, self.y * k)

    def length(self):
        return math.hypot(self.x, self.y)


class Shape:
    def __init__(self, name, origin):
        self.name = name
        self.origin = origin
        self.moves = 0

    def move(self, delta):
        self.origin = self.origin.add(delta)
        self.moves += 1

    def area(self):
        raise NotImplementedError

    def describe(self):
        return f"{self.name} at ({self.origin.x:.1f}, {self.origin.y:.1f})"


class Circle(Shape):
    def __init__(self, origin, radius):
        super().__init__("circle", origin)
        self.radius = radius

    def area(self):
        return math.pi * self.radius * self.radius


class Rectangle(Shape):
    def __init__(self, origin, width, height):
        super().__init__("rectangle", origin)
        self.width = width
        self.height = height

    @property
    def diagonal(self):
        return math.hypot(self.width, self.height)

    def area(self):
        return self.width * self.height


class Square(Rectangle):
    def __init__(self, origin, side):
        super().__init__(origin, side, side)
        self.name = "square"


def make_shapes(n):
    shapes = []
    for i in range(n):
        origin = Vector(i % 17, i % 23)
        if i % 3 == 0:
            shapes.append(Circle(origin, 1 + i % 5))
        elif i % 3 == 1:
            shapes.append(Rectangle(origin, 1 + i % 4, 2 + i % 6))
        else:
            shapes.append(Square(origin, 1 + i % 7))
    return shapes


def run():
    shapes = make_shapes(300)
    step = Vector(0.5, -0.25)
    total_area = 0.0
    for _ in range(20):
        for shape in shapes:
            shape.move(step)
            total_area += shape.area()
            if isinstance(shape, Rectangle):
                total_area += shape.diagonal
    far = sum(1 for shape in shapes if shape.origin.length() > 10)
    assert far == 299 and abs(total_area - 152_255.290018) < 1e-3, (far, total_area)
    return total_area, far, shapes[0].describe()


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Classes, methods, properties, super(), attribute access"
    runner.bench_func("oo_methods", run)
