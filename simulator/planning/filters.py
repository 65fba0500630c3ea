"""Sweep filters: tiny boolean expressions over a point's scenario values, evaluated safely.

Grammar (a subset of Python expression syntax, checked node by node; nothing is ``eval``-ed)::

    expr    := expr ("and" | "or") expr | "not" expr | compare | "(" expr ")"
    compare := arith (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") arith)+
    arith   := arith ("+" | "-" | "*" | "/" | "//" | "%") arith | "-" arith | atom
    atom    := number | "string" | true | false | none | [atom, ...] | dotted.key

A dotted key names a scenario value, e.g. ``deployment.tp * deployment.pp <= 8`` or
``model in ["llama-3.1-8b", "qwen3-8b"]``.
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError

_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_NAMES = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}
#: Longest filter expression (characters) and most items a string or list built by ``*`` may hold.
MAX_CHARS, MAX_ITEMS = 2000, 100_000
ALLOWED = ("allowed: comparisons (== != < <= > >= in, not in) of dotted scenario keys, numbers, "
           "strings and lists, joined by and/or/not, with + - * / // %")


class Filter:
    """One compiled filter expression; call it with a point's values to get True (keep) or False."""

    def __init__(self, text: str, field: str = "filters") -> None:
        self.text, self.field = text, field
        if not isinstance(text, str) or not text.strip():
            raise InputError(field, text, f"give a non-empty expression; {ALLOWED}")
        if len(text) > MAX_CHARS:
            raise InputError(field, text, f"a filter has at most {MAX_CHARS} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
            self.tree = tree.body
            self.keys: list[str] = []
            self._check(self.tree)
        except SyntaxError as err:
            raise InputError(field, text, f"not a valid expression ({err.msg}); {ALLOWED}") from None
        except (RecursionError, MemoryError):
            raise InputError(field, text, "nested too deeply; split it into several filters") from None

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.Compare):
            if not all(type(op) in _CMP for op in node.ops):
                self._bad(node)
            for v in (node.left, *node.comparators):
                self._check(v)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            pass
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                self._check(e)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            key = _dotted(node)
            if key is None or any(part.startswith("_") for part in key.split(".")):
                self._bad(node)
            elif key not in _NAMES and key not in self.keys:
                self.keys.append(key)
        else:
            self._bad(node)

    def _bad(self, node: ast.AST) -> None:
        part = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        raise InputError(self.field, self.text, f"'{part}' is not supported; {ALLOWED}")

    def __call__(self, values: Mapping[str, Any]) -> bool:
        """Whether a point with these values (dotted key -> value) passes the filter."""
        try:
            return bool(self._eval(self.tree, values))
        except InputError:
            raise
        except (RecursionError, MemoryError, OverflowError):
            raise InputError(self.field, self.text, "too large to evaluate; simplify the filter") from None
        except (TypeError, ZeroDivisionError, ValueError) as err:
            raise InputError(self.field, self.text, f"cannot be evaluated on point {dict(values)} ({err})") from None

    def _check_repeat(self, left: Any, right: Any) -> None:
        """Refuse ``"a" * n`` and ``[x] * n`` that would build more than :data:`MAX_ITEMS` items."""
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(times, int) and len(seq) * times > MAX_ITEMS:
                raise InputError(self.field, self.text, f"repeats a string or list to more than {MAX_ITEMS:,} items")

    def _eval(self, node: ast.AST, values: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, values) for v in node.values)
            return any(self._eval(v, values) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, values)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, values)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp, values)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, values), self._eval(node.right, values)
            if isinstance(node.op, ast.Mult):
                self._check_repeat(left, right)
            return _BIN[type(node.op)](left, right)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(e, values) for e in node.elts]
        key = _dotted(node)
        assert key is not None
        if key in values:
            return values[key]
        if key in _NAMES:
            return _NAMES[key]
        raise InputError(self.field, self.text, f"'{key}' is not a scenario key of this sweep's points "
                                                f"(axes: {', '.join(values) or 'none'})")


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def lookup(data: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key in a nested mapping."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node
