"""Formulas of virtual meters (virtueller Zähler, TOR-4.1v, SM-3).

A virtual meter is a sum or sum-difference of other meters, written as a formula::

    incl-solar - excl-solar                 # SM-3: Production = incl. solar - excl. solar
    hak.import - 0.5 * (apt-1 + apt-2)
    pv.export + battery.export

Grammar (``*`` only with a constant on one side, so a formula stays linear)::

    expr    := term (("+" | "-") term)*
    term    := unary ("*" unary)*
    unary   := ("+" | "-") unary | primary
    primary := NUMBER | REF | "(" expr ")"
    REF     := ID ["." ("import" | "export")]

``ID`` is a location or virtual meter id (letters, digits, ``_`` and ``-``). A hyphen between two
letters belongs to the id, so subtraction needs spaces: ``a - b`` subtracts, ``a-b`` is one id.

A bare ``ID`` stands for the meter's net energy per slot (import - export); ``ID.import`` and
``ID.export`` for one direction alone. The formula is evaluated per 15-minute slot only, never
across slots, on whole numpy arrays (:func:`evaluate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Selector = Literal["net", "import", "export"]

__all__ = [
    "BinOp",
    "FormulaError",
    "Neg",
    "Node",
    "Num",
    "Ref",
    "evaluate",
    "parse_formula",
    "references",
    "to_text",
]


class FormulaError(ValueError):
    """A formula that cannot be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Num:
    """A constant factor."""

    value: float


@dataclass(frozen=True)
class Ref:
    """A meter operand: its net energy (``selector='net'``) or one direction."""

    id: str
    selector: Selector = "net"


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinOp:
    """``left op right`` with ``op`` one of ``+``, ``-``, ``*``."""

    op: Literal["+", "-", "*"]
    left: Node
    right: Node


Node = Num | Ref | Neg | BinOp

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ref>[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*(?:\.[A-Za-z]+)?)
  | (?P<op>[-+*()])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: Literal["num", "ref", "op", "end"]
    text: str
    pos: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormulaError(
                f"unexpected character {text[pos]!r} at position {pos + 1}: a formula may hold "
                "meter ids, numbers, '+', '-', '*', parentheses and '.import'/'.export'",
                pos,
            )
        kind = match.lastgroup
        if kind != "space":
            out.append(_Token(kind, match.group(), pos))  # type: ignore[arg-type]
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


def _is_constant(node: Node) -> bool:
    return not any(True for _ in _refs(node))


def _refs(node: Node) -> Iterator[Ref]:
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Neg):
        yield from _refs(node.operand)
    elif isinstance(node, BinOp):
        yield from _refs(node.left)
        yield from _refs(node.right)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _at_end(self) -> bool:
        return self.tok.kind == "end"

    def _error(self, message: str, token: _Token | None = None) -> FormulaError:
        token = token or self.tok
        return FormulaError(f"{message} at position {token.pos + 1}", token.pos)

    def parse(self) -> Node:
        if self._at_end():
            raise self._error("empty formula")
        node = self.expr()
        if not self._at_end():
            raise self._error(f"unexpected {self.tok.text!r}: expected an operator '+', '-', '*'")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op: Literal["+", "-"] = "+" if self.tok.text == "+" else "-"
            self.i += 1
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text == "*":
            star = self.tok
            self.i += 1
            right = self.unary()
            if not (_is_constant(node) or _is_constant(right)):
                raise self._error(
                    "two meters multiplied: a virtual meter may multiply a meter by a constant "
                    "only",
                    star,
                )
            node = BinOp("*", node, right)
        return node

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in "+-":
            negative = self.tok.text == "-"
            self.i += 1
            operand = self.unary()
            return Neg(operand) if negative else operand
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return Num(float(tok.text))
        if tok.kind == "ref":
            self.i += 1
            name, dot, selector = tok.text.partition(".")
            if not dot:
                return Ref(name)
            if selector == "import":
                return Ref(name, "import")
            if selector == "export":
                return Ref(name, "export")
            raise self._error(
                f"unknown selector '.{selector}' of {name!r}: use '.import' or '.export'", tok
            )
        if tok.kind == "op" and tok.text == "(":
            self.i += 1
            node = self.expr()
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise self._error("missing ')'")
            self.i += 1
            return node
        if self._at_end():
            raise self._error("formula ends too early: expected a meter id, a number or '('")
        raise self._error(f"unexpected {tok.text!r}: expected a meter id, a number or '('")


def parse_formula(text: str) -> Node:
    """Parse a virtual meter formula to its syntax tree; raises :class:`FormulaError`."""
    return _Parser(text).parse()


def references(node: Node) -> list[Ref]:
    """The meter operands of a formula, in the order they appear."""
    return list(_refs(node))


def evaluate(node: Node, operand: Callable[[Ref], FloatArray], length: int) -> FloatArray:
    """The formula's value per slot, on whole arrays.

    ``operand(ref)`` returns the array (one value per slot, kWh) that a reference stands for: the
    net energy of the meter or one direction. Each slot is computed from the same slot of every
    operand only; a ``NaN`` (missing value) in any operand gives ``NaN`` in that slot.
    """
    if isinstance(node, Num):
        return np.full(length, node.value, dtype=np.float64)
    if isinstance(node, Ref):
        return np.asarray(operand(node), dtype=np.float64)
    if isinstance(node, Neg):
        return -evaluate(node.operand, operand, length)
    left = evaluate(node.left, operand, length)
    right = evaluate(node.right, operand, length)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    return left * right


def to_text(node: Node) -> str:
    """The formula written back as text (fully parenthesised where needed)."""
    if isinstance(node, Num):
        return f"{node.value:g}"
    if isinstance(node, Ref):
        return node.id if node.selector == "net" else f"{node.id}.{node.selector}"
    if isinstance(node, Neg):
        return f"-{_wrap(node.operand)}"
    return f"{_wrap(node.left)} {node.op} {_wrap(node.right)}"


def _wrap(node: Node) -> str:
    return f"({to_text(node)})" if isinstance(node, BinOp) else to_text(node)
