"""Property-based fuzzing of everything a user types: --set values on every scenario key, scenario
YAML text, config.json fields, CLI flags. Each case must end in exit 0, or exit 2 with at most six
lines naming a field; never a traceback, a hang or an unbounded allocation.

About 600 generated cases run in-process through ``main(argv)`` with a tiny workload (a few
requests), plus a few subprocess cases that check the exit code and stderr of the real console
entry point."""
from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from simulator.cli import main  # noqa: E402
from simulator.config.scenario import Scenario  # noqa: E402

TINY = ["--set", "workload.requests=3", "--no-progress", "--json"]
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _models(annotation: typing.Any) -> list[type[BaseModel]]:
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in args for m in _models(a)]


def _keys(model: type[BaseModel], prefix: str = "", depth: int = 0) -> list[str]:
    """Every dotted key of the schema (through unions and nested records)."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        if depth < 4:
            for sub in _models(field.annotation):
                out += _keys(sub, key + ".", depth + 1)
    return sorted(set(out))


KEYS = _keys(Scenario)
HOSTILE_TEXT = st.sampled_from(["", ".inf", "-.inf", ".nan", "1e400", "true", "~", "[]", "{}", "[[[[[[", "é",
                                "m" * 300, "1e30", "-1", "0", "0.0", "1.5", "2**64", "18446744073709551617",
                                "&a [*a]", "!!python/object:os.system", "\x00", "poisson", "fixed", "'nan'"])
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=30),
    HOSTILE_TEXT,
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["dist", "value", "process", "rate", "x"]),
                    st.one_of(st.integers(-3, 10**6), st.sampled_from(["fixed", "poisson", "uniform"])), max_size=3),
)


def _as_yaml(v: typing.Any) -> str:
    if isinstance(v, str) and v in HOSTILE_TEXT.elements:  # type: ignore[attr-defined]
        return v
    return yaml.safe_dump(v, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        rc = main(argv)
    except SystemExit as exc:   # argparse: one line, exit 2
        rc = exc.code
    out = capsys.readouterr()
    assert rc in (0, 2), f"exit {rc} for {argv!r}"
    if rc == 2:
        lines = out.err.strip().splitlines()
        assert 1 <= len(lines) <= 6, out.err[:2000]
        assert "Traceback" not in out.err and ": " in lines[0], out.err[:2000]


@settings(FUZZ, max_examples=800)
@given(key=st.sampled_from(KEYS), value=VALUES, key2=st.sampled_from(KEYS), value2=VALUES)
def test_set_any_key_to_any_value(key, value, key2, value2, capsys):
    _check(["run", *TINY, "--set", f"{key}={_as_yaml(value)}", "--set", f"{key2}={_as_yaml(value2)}"], capsys)


YAML_PIECES = st.sampled_from(["model: ", "deployment:\n  tp: ", "workload:\n  requests: ", "  - ", "[", "]", "{",
                               "}", "&a ", "*a", ": ", "\n", "\t", "#", "'", '"', "---\n", "? ", "!!int ", ".inf",
                               "1e9", "é", "\xff", "-1", "null"])


@settings(FUZZ, max_examples=300)
@given(pieces=st.lists(YAML_PIECES, max_size=25), raw=st.binary(max_size=40))
def test_scenario_file_of_any_text(pieces, raw, tmp_path_factory, capsys):
    p = tmp_path_factory.mktemp("fuzz") / "s.yaml"
    p.write_bytes("".join(pieces).encode("utf-8", "surrogatepass") + raw)
    _check(["run", str(p), *TINY], capsys)


LLAMA = json.loads((Path(__file__).parent / "catalog" / "fixtures" / "llama.json").read_text()) \
    if (Path(__file__).parent / "catalog" / "fixtures" / "llama.json").is_file() else None


@pytest.mark.skipif(LLAMA is None, reason="tests/catalog/fixtures/llama.json missing")
@settings(FUZZ, max_examples=100)
@given(key=st.sampled_from(sorted(LLAMA or {"x": 0}) + ["num_key_value_heads", "max_position_embeddings"]),
       value=st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none(), st.text(max_size=5),
                       st.lists(st.integers(0, 4), max_size=2)))
def test_config_json_with_any_field(key, value, tmp_path_factory, capsys):
    p = tmp_path_factory.mktemp("cfg") / "config.json"
    p.write_text(json.dumps(dict(LLAMA or {}, **{key: value})))
    _check(["run", "--set", f"model={p}", *TINY], capsys)


FLAG_TEXT = st.one_of(HOSTILE_TEXT, st.floats().map(repr), st.integers(-(2**70), 2**70).map(str), st.text(max_size=8))


@settings(FUZZ, max_examples=60)
@given(flag=st.sampled_from(["--bytes", "--gpus", "--m", "--k", "--n", "--batch", "--tp", "--context"]),
       text=FLAG_TEXT)
def test_estimate_flags(flag, text, capsys):
    argv = ["estimate", "--gpu", "h100-sxm", "--op", "all-reduce", "--bytes", "1e6", "--gpus", "8"]
    _check([*argv, f"{flag}={text}"], capsys)


@settings(FUZZ, max_examples=40)
@given(flag=st.sampled_from(["--volume", "--rate-per-replica", "--kwh-price", "--cache-hit-rate", "--attainment"]),
       text=FLAG_TEXT)
def test_cost_flags(flag, text, capsys):
    _check(["cost", "--rate-per-replica", "2", "--set", "workload.requests=3", f"{flag}={text}", "--json"], capsys)


@pytest.mark.parametrize("args", [
    ["run", "--set", "workload.requests=1e30"],
    ["run", "--set", "deployment.tp=true"],
    ["estimate", "--gpu", "h100-sxm", "--op", "all-reduce", "--bytes", "nan", "--gpus", "8"],
    ["run", "--set", "model=" + "m" * 300],
    ["run", "--bogus"],
])
def test_console_entry_point_exit_codes(args):
    r = subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and 1 <= len(r.stderr.strip().splitlines()) <= 6
