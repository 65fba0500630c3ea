"""The scenario key reference, generated from the pydantic models (docs/reference/scenario.md embeds it)."""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .scenario import Scenario


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        names = [_type_name(a) for a in args]
        return " \\| ".join(names) + (" (optional)" if len(args) < len(typing.get_args(tp)) else "")
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(tp)[0])}" if typing.get_args(tp) else "list"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "section"
    return getattr(tp, "__name__", str(tp))


def _rows(model: type[BaseModel], prefix: str, out: list[tuple[str, str, str, str]]) -> None:
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        tp = f.annotation
        default = "" if f.is_required() else repr(f.default) if not isinstance(f.default, BaseModel) else "(section)"
        if key == "workload":
            out.append((key, "section", "", "arrival process, request count and lengths: see docs/guide/workload.md"))
            continue
        out.append((key, _type_name(tp), default, f.description or ""))
        inner = [a for a in typing.get_args(tp)] or [tp]
        for a in inner:
            if isinstance(a, type) and issubclass(a, BaseModel) and a is not model:
                _rows(a, key + ".", out)


def scenario_reference_markdown() -> str:
    """A Markdown table of every scenario key (workload arrival/length variants excluded: see docs/guide/workload.md)."""
    rows: list[tuple[str, str, str, str]] = []
    _rows(Scenario, "", rows)
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    pipe = "\\|"
    lines += [f"| `{k}` | {t} | {d.replace('|', pipe)} | {m} |" for k, t, d, m in rows]
    return "\n".join(lines)


INTRO = """# Scenario files

A scenario is one YAML file: what model is served (`model`: a catalog name from `servesim models`
or a path to a Hugging Face `config.json`), on what (`deployment`), under which traffic
(`workload`, see `docs/guide/workload.md`), against which SLOs (`slo`), with which `seed`. Unknown keys
are errors. Every key can be overridden on the command line with `--set dotted.key=value` (the
value is read as YAML: `--set deployment.tp=2`, `--set deployment.batching={policy: static}`).

    servesim run examples/chat-llama8b-h100.yaml --set workload.arrival.rate=12 --out out/

`servesim run --out DIR` writes `DIR/scenario.yaml`, which reproduces the run exactly.

## Every key

This table is generated from the pydantic models (`python -m simulator.config.reference`); a test
keeps it in sync.

"""


def write_doc(path: str = "docs/reference/scenario.md") -> None:
    """Write the scenario reference page."""
    Path(path).write_text(INTRO + scenario_reference_markdown() + "\n")


if __name__ == "__main__":
    write_doc()
