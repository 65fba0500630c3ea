"""Every dashboard page under random input: seeded random values in its widgets (within the bounds
the browser enforces), then its submit or action buttons; the page must show no exception, and every
error it shows is a one-line message.

Bounded: a fixed number of rounds per page, request counts and replicas capped so that a round runs
in about a second; a failure names the seed and the values typed, to replay it.
"""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

import random
from typing import Any

from simulator.dashboard.state import DIST_LABELS

from .conftest import ROOT, open_app

TEXTS = ["", " ", "abc", "0", "-1", "1e309", "nan", "inf", "-0", "2, 4, x", "1,,2", "1e-300, 1e300", "3",
         "🙂 ünïcode", "a" * 5000, "../../nope", "/", "/dev/null", "/dev/zero", "/nonexistent/results.parquet",
         str(ROOT / "README.md"), str(ROOT / "examples"), str(ROOT / "pyproject.toml"), "~", "\x00", "$HOME",
         "/" + "b" * 300, "x/" * 3000]
#: Widgets whose values set the amount of work: capped so a round stays short (the guard and the
#: CLI fuzz suite cover large values).
CAPS = {"requests": 400, "replicas": 16, "workers": 1, "target_rate": 200.0}
ROUNDS = {"whatif": 20, "capacity": 4, "costs": 8, "calibration": 8, "sweeps": 8}
FRESH_EVERY = 5        # rounds before the page starts over (a field left in error hides the others' effects)
#: Buttons that start long jobs (a sweep of an example, many plans): pressed rarely.
SLOW_BUTTONS = {"Run the example", "Run the load sweep"}


def _cap(key: str, hi: float | None) -> float | None:
    for word, cap in CAPS.items():
        if word in key:
            return cap if hi is None else min(hi, cap)
    return hi


def _number(rng: random.Random, w: Any) -> float | int:
    lo = w.min if w.min is not None else -1e6
    hi = _cap(w.key or "", w.max)
    integer = isinstance(w.value, int) and float(w.step or 1).is_integer()
    top = hi if hi is not None else 1e15
    picks = [lo, top, 0, 1, w.step or 1, rng.uniform(lo, min(top, lo + 10 * (abs(w.value or 1) + 1))),
             rng.uniform(lo, top), (w.value or 0) * rng.choice([0.5, 2, 10])]
    v = min(max(rng.choice(picks), lo), top)
    return int(v) if integer else float(v)


def _value(rng: random.Random, kind: str, w: Any) -> Any:
    if kind == "number_input":
        return _number(rng, w)
    if kind in ("text_input", "text_area"):
        return rng.choice(TEXTS)
    if kind in ("checkbox", "toggle"):
        return rng.random() < 0.5
    options = list(w.options)
    if kind in ("multiselect", "pills"):
        return rng.sample(options, rng.randint(0, min(3, len(options))))
    return rng.randrange(len(options)) if options else None     # selectbox, radio: an option's index


KINDS = ("number_input", "text_input", "text_area", "selectbox", "multiselect", "pills", "checkbox", "toggle",
         "radio", "segmented_control")


def _widgets(at: Any) -> list[tuple[str, Any]]:
    return [(kind, w) for kind in KINDS for w in at.get(kind) if w.key and not w.disabled]


def _check(at: Any, log: list[str]) -> None:
    assert not at.exception, (log, [e.value for e in at.exception])
    for e in at.error:
        text = str(e.value).strip()
        assert text and "Traceback" not in text, (log, text)


def _option_value(text: str) -> Any:
    """The value behind an option shown as ``text`` (the pages' numeric options are ints or floats)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _choice_value(key: str, label: str) -> Any:
    """The value behind a select box's label where the page formats its options (AppTest sets values)."""
    if key.endswith(".dist"):
        return {v: k for k, v in DIST_LABELS.items()}[label]
    if key == "sweeps.example":
        return ROOT / "examples" / "sweeps" / label
    return label.removesuffix(" (measured)")


def _set(w: Any, kind: str, value: Any) -> None:
    if kind in ("pills", "multiselect"):      # options are shown as strings, values keep their type
        w.set_value([_option_value(v) for v in value])
    elif kind in ("selectbox", "radio", "segmented_control"):
        if value is not None:
            w.set_value(_choice_value(w.key, w.options[value]))
    else:
        w.set_value(value)


@pytest.mark.parametrize("page", list(ROUNDS))
def test_random_input_shows_errors_not_exceptions(page):
    rng = random.Random(f"servesim-fuzz-{page}")
    log: list[str] = []
    for round_ in range(ROUNDS[page]):
        if round_ % FRESH_EVERY == 0:
            log.append(f"open {page}")
            at = open_app(None if page == "whatif" else page)
            _check(at, log)
        widgets = _widgets(at)
        for kind, w in rng.sample(widgets, min(len(widgets), rng.randint(1, 4))):
            value = _value(rng, kind, w)
            shown = w.options[value] if kind in ("selectbox", "radio", "segmented_control") and value is not None \
                else value
            log.append(f"{w.key} = {shown!r}"[:200])
            _set(w, kind, value)
        submits = list(at.form_submit_button)
        buttons = [b for b in at.button if b.label not in SLOW_BUTTONS or rng.random() < 0.15]
        if submits and rng.random() < 0.8:
            b = rng.choice(submits)
        elif buttons:
            b = rng.choice(buttons)
        else:
            b = None
        log.append(f"press {b.label}" if b is not None else "rerun")
        (b.click() if b is not None else at).run(timeout=120)
        _check(at, log)
