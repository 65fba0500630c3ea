"""Commands (argument lists) written as shell scripts for ``servesim plan --emit``."""
from __future__ import annotations

import shlex
from pathlib import Path


def shell_lines(cmd: list[str]) -> list[str]:
    """The command quoted for the shell: the program and its positional words first, then one
    ``--flag value...`` group per line."""
    parts: list[str] = []
    for c in cmd:
        if not parts or c.startswith("--"):
            parts.append(shlex.quote(c))
        else:
            parts[-1] += " " + shlex.quote(c)
    return parts


def script_text(head: list[str], cmd: list[str], env: dict[str, str] | None = None, in_own_dir: bool = False) -> str:
    """A bash script: comment lines ``head``, ``export`` of ``env``, then ``cmd`` one flag per line;
    ``in_own_dir``: it first changes to its own directory (where the files it names are)."""
    lines = ["#!/usr/bin/env bash", *(f"# {h}" for h in head), "set -euo pipefail"]
    if in_own_dir:
        lines.append('cd "$(dirname "$0")"')
    lines += [f"export {k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return "\n".join(lines) + "\n" + " \\\n    ".join(shell_lines(cmd)) + "\n"


def write_script(path: Path, text: str) -> Path:
    """Write an executable script; its path."""
    path.write_text(text)
    path.chmod(0o755)
    return path
