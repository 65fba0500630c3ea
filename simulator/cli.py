"""The ``servesim`` command line: one subcommand per job; bad input exits 2 with one line."""
from __future__ import annotations

import argparse
import os
import sys
import typing
from collections.abc import Sequence

from . import commands  # noqa: F401  (importing the package registers every subcommand)
from .commands.registry import REGISTRY
from .errors import ServesimError


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and a pointer to ``--help``), exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        line = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {line[:300]} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="servesim", description="Simulate and plan LLM inference serving.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for register in REGISTRY:
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
