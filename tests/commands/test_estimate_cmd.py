"""``servesim estimate`` as text: one table row per operation kind, the shares adding up to the whole."""
from __future__ import annotations

import re

import pytest

from simulator.cli import main


def test_step_breakdown_is_a_table_whose_shares_sum_to_one(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["estimate", "--gpu", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "8",
                 "--context", "1000"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    total = float(re.search(r": ([0-9.]+) ms", lines[0]).group(1))
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    assert {r[0] for r in rows} >= {"mlp", "attention_decode", "lm_head"}
    assert sum(float(r[1]) for r in rows) == pytest.approx(total, rel=1e-3)
    assert sum(float(r[2].rstrip("%")) for r in rows) == pytest.approx(100, abs=0.1 * len(rows))
    assert max(len(line) for line in lines) <= 100
