"""A whole program: a tokenizer, compiler and stack virtual machine for a tiny language.

Peregrine workload: the classic interpreter loop (a big if/elif dispatch on opcodes, list-as-stack
pushes and pops), plus a recursive-descent compiler. The program it runs counts primes and sums
a series, so the VM executes tens of thousands of instructions per iteration.
"""

import re

import pyperf

SOURCE = """
count = 0; n = 2;
while n < 400 {
    d = 2; prime = 1;
    while d * d <= n { if n % d == 0 { prime = 0; } d = d + 1; }
    count = count + prime; n = n + 1;
}
total = 0; i = 0;
while i < 1500 { total = total + i * i % 7; i = i + 1; }
"""

TOKEN = re.compile(r"\s*(?:(\d+)|(\w+)|(==|<=|[-+*/%<=;{}()]))")
PRECEDENCE = {"==": 1, "<": 1, "<=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "%": 3}


def tokenize(text):
    tokens = []
    for number, name, op in TOKEN.findall(text):
        if number:
            tokens.append(("num", int(number)))
        elif name:
            tokens.append(("name", name))
        else:
            tokens.append(("op", op))
    return tokens


class Compiler:
    """Recursive descent from tokens to a flat list of (opcode, argument) pairs."""

    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0
        self.code = []

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else (None, None)

    def take(self, expected=None):
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise SyntaxError(f"expected {expected!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def emit(self, op, arg=None):
        self.code.append((op, arg))
        return len(self.code) - 1

    def program(self):
        while self.pos < len(self.tokens):
            self.statement()
        self.emit("halt")
        return self.code

    def block(self):
        self.take("{")
        while self.peek()[1] != "}":
            self.statement()
        self.take("}")

    def statement(self):
        _, value = self.take()
        if value == "while":
            start = len(self.code)
            self.expression(0)
            jump = self.emit("jump_if_false")
            self.block()
            self.emit("jump", start)
            self.code[jump] = ("jump_if_false", len(self.code))
        elif value == "if":
            self.expression(0)
            jump = self.emit("jump_if_false")
            self.block()
            self.code[jump] = ("jump_if_false", len(self.code))
        else:
            self.take("=")
            self.expression(0)
            self.take(";")
            self.emit("store", value)

    def expression(self, min_precedence):
        kind, value = self.take()
        if kind == "num":
            self.emit("push", value)
        elif kind == "name":
            self.emit("load", value)
        else:
            self.expression(0)
            self.take(")")
        while True:
            op = self.peek()[1]
            precedence = PRECEDENCE.get(op)
            if precedence is None or precedence <= min_precedence:
                return
            self.take()
            self.expression(precedence)
            self.emit("binary", op)


def execute(code):
    stack = []
    variables = {}
    pc = 0
    while True:
        op, arg = code[pc]
        pc += 1
        if op == "push":
            stack.append(arg)
        elif op == "load":
            stack.append(variables[arg])
        elif op == "store":
            variables[arg] = stack.pop()
        elif op == "binary":
            right = stack.pop()
            left = stack.pop()
            if arg == "+":
                stack.append(left + right)
            elif arg == "-":
                stack.append(left - right)
            elif arg == "*":
                stack.append(left * right)
            elif arg == "/":
                stack.append(left // right)
            elif arg == "%":
                stack.append(left % right)
            elif arg == "<":
                stack.append(int(left < right))
            elif arg == "<=":
                stack.append(int(left <= right))
            else:
                stack.append(int(left == right))
        elif op == "jump_if_false":
            if not stack.pop():
                pc = arg
        elif op == "jump":
            pc = arg
        else:
            return variables


def run():
    variables = execute(Compiler(tokenize(SOURCE)).program())
    assert variables["count"] == 78, variables
    return variables["total"]


if __name__ == "__main__":
    runner = pyperf.Runner()
    runner.metadata["description"] = "Tokenizer, compiler and stack VM for a tiny language"
    runner.bench_func("stack_vm", run)
