"""The arithmetic the rule-based teacher checks and writes, exactly.

Expressions are parsed (numbers, + - * / and parentheses, unary minus; nothing
else) and evaluated with fractions, one operation at a time in the order of
operations. In a line of a trace, `find_equation` finds a chain `a op b = c (= ...)`
and says where each part sits, so a wrong result can be corrected in place and the
rest of the line, the learner's notation, left as it was.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

_MATH = re.compile(r"[\d\s+\-*/×÷−().,=]+")
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?(?!\d|\.\d)")
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class NotArithmetic(ValueError):
    pass


_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_BARE_POINT = re.compile(r"\d\.(?!\d)|(?<!\d)\.\d")


def normalise(expression: str) -> str:
    return _THOUSANDS.sub("", expression.replace("×", "*").replace("÷", "/").replace("−", "-")).strip()


def parse(expression: str) -> ast.expr:
    """The expression's tree; NotArithmetic for anything but numbers, + - * /, parentheses and unary minus."""
    text = normalise(expression)
    if not text or not any(c.isdigit() for c in text):
        raise NotArithmetic(f"{expression!r} holds no number")
    if _BARE_POINT.search(text):  # "7." is a number followed by a full stop, not 7.0
        raise NotArithmetic(f"{expression!r} has a point that is not a decimal point")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise NotArithmetic(f"{expression!r} is not an arithmetic expression") from error
    for node in ast.walk(tree):
        allowed = (ast.BinOp, ast.UnaryOp, ast.Constant, ast.USub, ast.UAdd, *_OPS)
        if not isinstance(node, allowed) or (isinstance(node, ast.Constant) and
                                             not isinstance(node.value, int | float)):
            raise NotArithmetic(f"{expression!r} is not an arithmetic expression")
    return tree


def value(expression: str | ast.expr) -> Fraction:
    node = parse(expression) if isinstance(expression, str) else expression
    if isinstance(node, ast.Constant):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp):
        inner = value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    return _apply(node.op, value(node.left), value(node.right))


def _apply(op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
    if isinstance(op, ast.Div):
        if right == 0:
            raise NotArithmetic("division by zero")
        return left / right
    return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[type(op)]


def numbers(text: str) -> list[Fraction]:
    """The numbers written in a text, as values."""
    return [Fraction(m.group(0)) for m in _NUMBER.finditer(_THOUSANDS.sub("", text))]


def fmt(number: Fraction) -> str:
    """An exact value as people write it: 7, -3, 2.5; a fraction that does not end as a decimal as a/b."""
    if number.denominator == 1:
        return str(number.numerator)
    denominator, twos, fives = number.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{number.numerator}/{number.denominator}"
    places = max(twos, fives)
    return f"{float(number):.{places}f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Operation:
    """One step of an evaluation: `left op right = result`, operands as already-computed values."""

    left: Fraction
    op: str
    right: Fraction
    result: Fraction

    def text(self) -> str:
        return f"{fmt(self.left)} {self.op} {fmt(self.right)}"  # "4 - -2": as the problems and the learner write it


def operations(expression: str) -> list[Operation]:
    """Every binary operation in evaluation order (innermost and leftmost first, precedence respected)."""
    steps: list[Operation] = []

    def walk(node: ast.expr) -> Fraction:
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            result = _apply(node.op, left, right)
            steps.append(Operation(left, _OPS[type(node.op)], right, result))
            return result
        return value(node)

    walk(parse(expression))
    return steps


@dataclass(frozen=True)
class Equation:
    """A chain `part0 = part1 = ...` found in a line: the parts' text and where each sits in the line."""

    line: str
    spans: tuple[tuple[int, int], ...]

    @property
    def parts(self) -> list[str]:
        return [self.line[a:b] for a, b in self.spans]

    def values(self) -> list[Fraction]:
        return [value(p) for p in self.parts]

    def wrong(self) -> bool:
        first, *rest = self.values()
        return any(v != first for v in rest)

    def corrected(self, carried: dict[str, str] | None = None) -> str:
        """The line with every part after the first set to the first's value (in the line's own notation), after
        replacing in the first part numbers a corrected earlier step had carried (`carried`: wrong -> right)."""
        (start, end), line = self.spans[0], self.line
        left = line[start:end]
        if carried:
            left = _NUMBER.sub(lambda m: carried.get(m.group(0), m.group(0)), left)
        right = value(left)
        pieces, last = [], 0
        for k, (a, b) in enumerate(self.spans):
            pieces.append(line[last:a])
            pieces.append(left if k == 0 else (line[a:b] if value(line[a:b]) == right else fmt(right)))
            last = b
        pieces.append(line[last:])
        return "".join(pieces)

    def result(self) -> Fraction:
        return self.values()[-1]


def find_equation(line: str) -> Equation | None:
    """The first arithmetic chain with an `=` in the line, or None."""
    found = find_equations(line)
    return found[0] if found else None


def find_equations(line: str) -> list[Equation]:
    """Every arithmetic chain with an `=` in the line, in order. Each part is trimmed to the longest piece that
    parses (a list number before it, a word's full stop after it stay outside)."""
    found = []
    for match in _MATH.finditer(line):
        if "=" not in match.group(0):
            continue
        raw = match.group(0).split("=")
        position, spans = match.start(), []
        for k, part in enumerate(raw):
            spans.append(_trim(line, position, position + len(part), first=k == 0, last=k == len(raw) - 1))
            position += len(part) + 1
        if spans[0] is None and len(spans) > 2:  # "T = 233 - 152 = 81": a name before the chain
            spans = spans[1:]
        if None not in spans and len(spans) >= 2:
            found.append(Equation(line, tuple(spans)))
    return found


def _trim(line: str, start: int, end: int, *, first: bool, last: bool) -> tuple[int, int] | None:
    """The widest (start, end) inside the given one whose text parses, trimming whitespace, and from the left
    only on the first part (a step number), from the right only on the last (a full stop, a closing bracket)."""
    while start < end and line[start].isspace():
        start += 1
    while end > start and line[end - 1].isspace():
        end -= 1
    starts = [start] + ([i for i in range(start + 1, end) if line[i - 1].isspace()] if first else [])
    ends = [end] + ([i for i in range(end - 1, start, -1) if line[i] in ".)," or line[i].isspace()] if last else [])
    for a in starts:
        for b in ends:
            if b <= a:
                continue
            try:
                parse(line[a:b])
            except NotArithmetic:
                continue
            return a, b
    return None


def checked_steps(text: str) -> tuple[int, int]:
    """(steps that hold, steps checked): every arithmetic chain with an `=` in the text, evaluated exactly. A chain
    that does not evaluate (a division by zero, a part that is not arithmetic) is not counted either way."""
    holding = checked = 0
    for line in text.splitlines():
        for equation in find_equations(line):
            try:
                wrong = equation.wrong()
            except (NotArithmetic, ZeroDivisionError, OverflowError):
                continue
            checked += 1
            holding += not wrong
    return holding, checked
