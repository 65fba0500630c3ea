"""Terminal tables: wrapped to the width, numbers right-aligned, no markup read into cells."""
from __future__ import annotations

import os

from simulator.tables import PIPE_WIDTH, grid, render, table, terminal_width


def test_long_cells_fold_to_the_width():
    t = table(["name", "value"])
    t.add_row("x" * 150, "1.5")
    text = render(t, width=50)
    assert max(len(line) for line in text.splitlines()) <= 50
    assert "".join(line.split("│")[1].strip() for line in text.splitlines() if line.count("│") == 3) == "x" * 150


def test_numbers_right_and_text_left():
    t = table(["name", "n", "note"], left=["note"])
    t.add_row("a", "1", "b")
    t.add_row("longer", "12345", "longer note")
    row = next(line for line in render(t, width=80).splitlines() if line.startswith("│ a "))
    cells = [c for c in row.split("│")[1:-1]]
    assert cells[0].startswith(" a ") and cells[1].endswith(" 1 ") and cells[2].startswith(" b ")


def test_brackets_are_text_not_markup():
    text = render(grid([("ci", "0.50 [0.40, 0.60]"), ("tag", "[bold]x[/bold]")]), width=80)
    assert "[0.40, 0.60]" in text and "[bold]x[/bold]" in text


def test_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal_width() == 132
    monkeypatch.setenv("COLUMNS", "10")
    assert terminal_width() == 40


def test_a_file_or_pipe_gets_the_wide_default(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert terminal_width() == PIPE_WIDTH
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=(80, 24): os.terminal_size((100, 30)))
    assert terminal_width() == 100
