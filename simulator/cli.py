"""The ``servesim`` command line: one subcommand per job; bad input exits 2 with one line."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
import typing
from typing import Any

from .errors import ServesimError

Handler = Callable[[argparse.Namespace], int]
_REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    """Decorator: a function that adds one subparser (and sets its ``handler``)."""
    _REGISTRY.append(register)
    return register


def print_json(obj: Any) -> None:
    """Print one JSON object (numpy scalars converted)."""
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and a pointer to ``--help``), exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        line = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {line[:300]} (see {self.prog} --help)\n")


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan``, ``inf`` and overflowing values are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text[:40]!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # noqa: F401  (registers the subcommands)

    p = OneLineParser(prog="servesim", description="Simulate and plan LLM inference serving.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for register in _REGISTRY:
        register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "pass_through", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = extra
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ServesimError as err:
        print(f"servesim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("servesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a program that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
