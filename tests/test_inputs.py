"""The input boundary: encoding, size, nesting depth, alias expansion and bounded error excerpts."""
from __future__ import annotations

import json
import time

import pytest

from simulator import inputs
from simulator.cli import main
from simulator.errors import InputError, excerpt


def _laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(levels):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    return "\n".join(lines) + "\n"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


def test_non_utf8_scenario_is_one_line(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_bytes(b"name: caf\xe9\n")
    rc, err = _run(["run", str(p)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "UTF-8" in err and "offset 9" in err


def test_billion_laughs_is_refused_quickly(tmp_path, capsys):
    p = tmp_path / "s.yaml"
    p.write_text(_laughs())
    t = time.monotonic()
    rc, err = _run(["run", str(p)], capsys)
    assert rc == 2 and "aliases expand to more than" in err
    assert time.monotonic() - t < 10


def test_recursive_alias_is_refused():
    with pytest.raises(InputError, match="aliases expand"):
        inputs.load_yaml("a: &a [*a, *a]\n", "f")


def test_a_few_aliases_still_work():
    data = inputs.load_yaml("base: &b {x: 1}\none: *b\ntwo: *b\n", "f")
    assert data == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}


@pytest.mark.parametrize("text", ["a: " + "[" * 5000, "a: " + "{x: " * 5000, "- " * 5000 + "1"])
def test_deep_yaml_is_refused(text):
    with pytest.raises(InputError, match="nesting deeper than"):
        inputs.load_yaml(text, "f")


def test_deep_json_config_is_refused(tmp_path, capsys):
    p = tmp_path / "config.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    rc, err = _run(["run", "--set", f"model={p}", "--set", "workload.requests=5"], capsys)
    assert rc == 2 and "nested deeper than" in err and len(err.splitlines()) == 1


def test_json_depth_ignores_brackets_inside_strings():
    assert inputs.load_json(json.dumps({"a": "[" * 1000}), "f") == {"a": "[" * 1000}


def test_deep_mooncake_line_is_refused(tmp_path, capsys):
    p = tmp_path / "t.jsonl"
    p.write_text('{"timestamp": 0, "input_length": 5, "output_length": 5, "x": ' + "[" * 100_000 + "\n")
    rc, err = _run(["run", "--set", f"workload={{arrival: {{process: trace, path: '{p}'}}}}"], capsys)
    assert rc == 2 and "nested deeper" in err and len(err.splitlines()) == 1


def test_long_model_name_and_long_path(capsys):
    rc, err = _run(["run", "--set", "model=" + "m" * 300], capsys)
    assert rc == 2 and "model:" in err and len(err) < 2000
    rc, err = _run(["run", "/tmp/" + "x" * 300 + ".yaml"], capsys)
    assert rc == 2 and "at most 255 bytes" in err


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.yaml"
    p.write_text("a: 1\n" * 100)
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 50)
    with pytest.raises(InputError, match="at most 50 are read"):
        inputs.read_yaml(p, "f")


def test_excerpt_is_bounded_on_huge_and_shared_values():
    leaf = ["x" * 10_000] * 10
    big = [leaf] * 10
    for _ in range(7):
        big = [big] * 10
    t = time.monotonic()
    text = excerpt(big)
    assert len(text) <= 120 and time.monotonic() - t < 1
    msg = str(InputError("f", "y" * 10_000_000, "no"))
    assert len(msg) < 300


def test_bad_value_in_set_prints_a_bounded_excerpt(capsys):
    rc, err = _run(["run", "--set", "seed=" + "z" * 100_000], capsys)
    assert rc == 2 and len(err) < 400 and err.startswith("servesim: error: seed:")


@pytest.mark.parametrize("text", ["\x00", "a: !!int ''\n", "a: !!float ''\n", "\x85\x00x: 1"])
def test_yaml_the_parser_itself_chokes_on_is_one_line(text):
    with pytest.raises(InputError, match="invalid YAML"):
        inputs.load_yaml(text, "f")


def test_read_bytes_is_bounded_and_refuses_what_is_not_a_regular_file(tmp_path):
    f = tmp_path / "r.parquet"
    f.write_bytes(b"\x00" * 100)
    assert inputs.read_bytes(f, "results path") == b"\x00" * 100
    with pytest.raises(InputError, match="the file has 100 bytes; at most 99 are read"):
        inputs.read_bytes(f, "results path", max_bytes=99)
    with pytest.raises(InputError, match="not a file"):
        inputs.read_bytes(tmp_path, "results path")
    with pytest.raises(InputError, match="no such file"):
        inputs.read_bytes(tmp_path / "nope", "results path")
    assert inputs.is_dir(tmp_path, "f") and not inputs.is_dir(f, "f")
    with pytest.raises(InputError, match="at most 4096 bytes"):
        inputs.is_dir("x/" * 3000, "f")
