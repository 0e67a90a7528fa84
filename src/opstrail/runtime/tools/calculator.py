"""Safe arithmetic: a small recursive-descent parser, never ``eval``.

Grammar::

    expr   := term (('+' | '-') term)*
    term   := power (('*' | '/' | '%') power)*
    power  := unary (('^' | '**') power)?
    unary  := ('+' | '-') unary | atom
    atom   := number | '(' expr ')'

Exponents are bounded so an input cannot make the process compute for minutes.
"""

from __future__ import annotations

import math
import re
from typing import Final

from opstrail.errors import RuntimeFailure

MAX_LENGTH: Final = 500
MAX_EXPONENT: Final = 1000
_TOKEN_RE: Final = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(\*\*|[-+*/%^()]))")


def _tokens(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = expression.replace("×", "*").replace("÷", "/")
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise RuntimeFailure(
                f"calculator: unexpected character {text[position:].strip()[0]!r}",
                code="tool_error",
            )
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise RuntimeFailure("calculator: the expression ends too early", code="tool_error")
        self.index += 1
        return token

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self) -> float:
        value = self.power()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.power()
            if op == "*":
                value *= right
            elif right == 0:
                raise RuntimeFailure("calculator: division by zero", code="tool_error")
            else:
                value = value / right if op == "/" else math.fmod(value, right)
        return value

    def power(self) -> float:
        base = self.unary()
        if self.peek() in ("^", "**"):
            self.take()
            exponent = self.power()
            if abs(exponent) > MAX_EXPONENT:
                raise RuntimeFailure("calculator: exponent too large", code="tool_error")
            try:
                return float(base**exponent)
            except (OverflowError, ZeroDivisionError) as exc:
                raise RuntimeFailure(f"calculator: {exc}", code="tool_error") from exc
        return base

    def unary(self) -> float:
        if self.peek() in ("+", "-"):
            sign = -1.0 if self.take() == "-" else 1.0
            return sign * self.unary()
        return self.atom()

    def atom(self) -> float:
        token = self.take()
        if token == "(":
            value = self.expr()
            if self.take() != ")":
                raise RuntimeFailure("calculator: missing ')'", code="tool_error")
            return value
        try:
            return float(token)
        except ValueError as exc:
            raise RuntimeFailure(f"calculator: unexpected {token!r}", code="tool_error") from exc


def evaluate(expression: str) -> float:
    """Evaluate an arithmetic expression.

    Raises:
        RuntimeFailure: code ``tool_error`` for anything that is not valid arithmetic
            (with the reason), division by zero, or a result too large.
    """
    if not expression.strip():
        raise RuntimeFailure("calculator: the expression is empty", code="tool_error")
    if len(expression) > MAX_LENGTH:
        raise RuntimeFailure(f"calculator: expression longer than {MAX_LENGTH}", code="tool_error")
    parser = _Parser(_tokens(expression))
    value = parser.expr()
    if parser.peek() is not None:
        raise RuntimeFailure(f"calculator: unexpected {parser.peek()!r}", code="tool_error")
    if math.isinf(value) or math.isnan(value):
        raise RuntimeFailure("calculator: the result is not a finite number", code="tool_error")
    return value


def format_number(value: float) -> str:
    """``12.0`` -> ``12``; other values with up to 12 significant digits."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"
