"""No function in ``simulator/`` takes more than 7 positional parameters (``self`` and ``cls``
included; keyword-only parameters after ``*`` do not count): longer calls take a typed record or
keyword-only arguments, so that a call site names what it passes.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "simulator"
LIMIT = 7

def positional_count(args: ast.arguments) -> int:
    return len(args.posonlyargs) + len(args.args)


def long_signatures(tree: ast.AST, prefix: str, limit: int = LIMIT) -> dict[str, int]:
    """``file:Class.function`` -> positional parameter count, for those over ``limit``."""
    out: dict[str, int] = {}

    def walk(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{scope}{child.name}"
                if positional_count(child.args) > limit:
                    out[f"{prefix}:{name}"] = positional_count(child.args)
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{scope}{child.name}.")
            else:
                walk(child, scope)

    walk(tree, "")
    return out


def all_long_signatures(root: Path = PACKAGE) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.update(long_signatures(tree, path.relative_to(root).as_posix()))
    return found


def test_no_function_takes_more_than_seven_positional_parameters():
    over = all_long_signatures()
    assert over == {}, f"more than {LIMIT} positional parameters (use a typed record or keyword-only ones): {over}"


def test_the_count_includes_self_and_leaves_out_keyword_only():
    src = ("class A:\n    def m(self, a, b, c, d, e, f, g): ...\n    def k(self, a, b, c, d, e, f, *, g, h): ...\n"
           "def f(a, b, c, d, e, f, g, /, h=1, *args, i=2): ...\ndef ok(a, b, c, d, e, f, g): ...\n"
           "def outer():\n    def inner(a, b, c, d, e, f, g, h): ...\n")
    assert long_signatures(ast.parse(src), "x.py") == {"x.py:A.m": 8, "x.py:f": 8, "x.py:outer.inner": 8}
