"""The dashboard in a real browser: ``streamlit run app.py`` on a free local port, each page opened in
headless Chromium (Chrome DevTools protocol), charts rendered, no error on the page, one screenshot
per page under ``test-output/screenshots/``.

Each test gets a fresh Chromium (a hung or crashed one fails that test only), waits for the app's
ready element (rendered after the page's script ran to its end) rather than for fixed times, and
every wait has a deadline.

Skipped when no Chromium is installed (Debian: ``apt-get install chromium``).
"""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")
pytest.importorskip("altair", reason="the dashboard needs the 'app' extra: pip install -e '.[app]'")

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from simulator.dashboard import READY_KEY

from .cdp import Browser, find_chromium
from .conftest import ROOT

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found: install Debian's chromium package "
                                                        "(apt-get install chromium) to run the browser test")
SHOTS = ROOT / "test-output" / "screenshots"
CHARTS_JS = "document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length"
RUNNING_JS = "!!document.querySelector('[data-testid=\"stStatusWidget\"]')"
READY_JS = f"(!!document.querySelector('.st-key-{READY_KEY}') && !{RUNNING_JS})"
EXCEPTION_JS = "!!document.querySelector('[data-testid=\"stException\"]')"
ERRORS_JS = ("[...document.querySelectorAll('[data-testid=\"stException\"], [data-testid=\"stAlertContentError\"]')]"
             ".map(e => e.innerText.trim().slice(0, 200))")
HEIGHT_JS = ("Math.max(...[...document.querySelectorAll('[data-testid=\"stMainBlockContainer\"], "
             "[data-testid=\"stSidebarContent\"]')].map(e => e.scrollHeight))")
WIDTH = 1440
PAGE_TIMEOUT = 180.0        # a page's first visit on a fresh 2-core machine imports and runs a simulation


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``streamlit run app.py`` bound to 127.0.0.1 on a free port; its base URL. Stopped afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail(f"streamlit did not start (exit {proc.poll()}):\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A fresh headless Chromium for each test."""
    assert CHROMIUM is not None
    with Browser.launch(CHROMIUM, width=WIDTH, height=1000) as b:
        yield b


@pytest.fixture(scope="module")
def sweep_results(tmp_path_factory) -> Path:
    from simulator.planning.runner import run_sweep
    from simulator.planning.sweep import load_sweep

    spec, base = load_sweep(ROOT / "examples" / "sweeps" / "tp-rate.yaml")
    out = tmp_path_factory.mktemp("sweep")
    run_sweep(spec, base, out, flush_every_s=0.0)
    return out / "results.parquet"


def settle(b: Browser, charts: int = 0, timeout: float = PAGE_TIMEOUT) -> None:
    """Wait until the page's script has run to its end and at least ``charts`` Vega charts have drawn
    (or an exception is shown: then fail with its text)."""
    done = f"({READY_JS} && {CHARTS_JS} >= {charts}) || {EXCEPTION_JS}"
    for _ in range(2):       # once more after a painted frame: the charts did not redraw meanwhile
        b.wait_for(done, timeout=timeout)
        assert not b.evaluate(EXCEPTION_JS), b.evaluate(ERRORS_JS)
        b.next_frames()


def shoot(b: Browser, name: str, charts: int) -> Path:
    """Resize the viewport to the page's full height and save a PNG."""
    height = int(b.evaluate(HEIGHT_JS) or 1000) + 120
    b.viewport(WIDTH, min(max(height, 900), 7000))
    b.next_frames()
    settle(b, charts)
    path = SHOTS / f"{name}.png"
    b.screenshot(path)
    b.viewport(WIDTH, 1000)
    return path


PAGES = [   # (screenshot name, path and query, charts expected)
    ("whatif", "/?workload.requests=600", 5),
    ("capacity", "/capacity", 2),
    ("costs", "/costs", 1),
    ("calibration", "/calibration", 2 if (ROOT / "docs" / "validation" / "whole_model.csv").is_file() else 1),
    ("sweeps", "/sweeps?results={results}", 2),
]


@pytest.mark.parametrize("name,path,charts", PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_its_charts_without_errors(server, browser, sweep_results, name, path, charts):
    browser.navigate(server + path.format(results=sweep_results))
    settle(browser, charts)
    assert browser.evaluate(ERRORS_JS) == []
    shot = shoot(browser, name, charts)
    assert shot.stat().st_size > 20_000         # a rendered page, not a blank one
    assert browser.evaluate(f"{CHARTS_JS}") >= charts


def test_the_error_check_sees_errors(server, browser):
    """A scenario the simulator rejects shows its one-line message as an error element, no exception."""
    browser.navigate(server + "/?deployment.tp=3&workload.requests=100")
    settle(browser)
    errors = browser.evaluate(ERRORS_JS)
    assert any("tp: got 3; must divide llama-3.1-8b's 32 attention heads" in e for e in errors), errors
    assert browser.evaluate("document.querySelectorAll('[data-testid=\"stException\"]').length") == 0


def test_url_of_an_edited_scenario_reproduces_it(server, browser):
    """The URL holds the scenario: a link with overrides fills the form and runs that scenario."""
    browser.navigate(server + "/?deployment.tp=2&workload.requests=150&slo.ttft_s=0.5")
    settle(browser, 5)
    text = browser.evaluate("document.querySelector('[data-testid=\"stMain\"]').innerText")
    assert "150 of 150 requests completed" in text
    tp = browser.evaluate("[...document.querySelectorAll('[data-testid=\"stNumberInput\"]')]"
                          ".find(e => e.innerText.startsWith('TP')).querySelector('input').value")
    assert tp == "2"
    params = browser.evaluate("Object.fromEntries(new URLSearchParams(location.search))")
    assert params == {"deployment.tp": "2", "workload.requests": "150", "slo.ttft_s": "0.5"}
