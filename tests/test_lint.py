"""ruff over the whole repository with the rules in pyproject.toml ([tool.ruff.lint])."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ruff_main = pytest.importorskip("ruff.__main__", reason="ruff (test extra) is not installed")

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    cmd = [ruff_main.find_ruff_bin(), "check", "--no-cache", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_repository_passes_ruff() -> None:
    done = _ruff(".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_config_catches_a_planted_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\nx = 1  # noqa: F401\n")
    done = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "F401" in done.stdout and "RUF100" in done.stdout
