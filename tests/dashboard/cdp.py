"""A small Chrome DevTools Protocol client for the dashboard's browser test (headless Chromium).

Chromium is started with ``--remote-debugging-port=0`` and writes the port it chose to
``DevToolsActivePort`` in its profile folder; the client opens one page target over a websocket
(the ``websockets`` package, which Streamlit itself depends on) and sends CDP commands to it.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """Path of a Chromium binary (Debian's ``chromium`` first), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    """A CDP command failed or a wait timed out."""


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str, width: int = 1440, height: int = 1000, timeout: float = 60.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="servesim-chromium-"))
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.width, self.height = width, height
        self.timeout = timeout          # the longest wait for one command's reply
        self._stack = ExitStack()
        self._ids = itertools.count(1)
        try:
            page = self._page_target(self._port(timeout=timeout), timeout=timeout)
            # No keepalive pings: a busy Chromium answers them late and the client would then close a
            # healthy connection ("keepalive ping timeout"); every wait here has its own deadline.
            self.ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20,
                                                        open_timeout=timeout, ping_interval=None))
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.viewport(width, height)
        except BaseException:
            self.close()
            raise

    @classmethod
    def launch(cls, binary: str, attempts: int = 2, **kwargs: Any) -> Browser:
        """A started browser; a start that fails (a slow first start on a fresh machine) is tried again."""
        for attempt in range(1, attempts + 1):
            try:
                return cls(binary, **kwargs)
            except (CDPError, OSError, TimeoutError):
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _port(self, timeout: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise CDPError(f"chromium exited with code {self.proc.returncode}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise CDPError("chromium did not open its debugging port")

    @staticmethod
    def _page_target(port: int, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]
            except OSError:
                pass
            time.sleep(0.1)
        raise CDPError("chromium has no page target")

    def send(self, method: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply (events in between are dropped), at most ``timeout`` s."""
        limit = self.timeout if timeout is None else timeout
        end = time.monotonic() + limit
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            try:
                reply = json.loads(self.ws.recv(timeout=max(end - time.monotonic(), 0.001)))
            except TimeoutError:
                raise CDPError(f"chromium did not answer {method} within {limit:.0f} s") from None
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression in the page (promises awaited)."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise CDPError(f"javascript error: {res['exceptionDetails'].get('text')} in {expression[:80]}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.1) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(interval)
        raise CDPError(f"timed out after {timeout:.0f} s waiting for: {expression[:120]}")

    def next_frames(self, frames: int = 2) -> None:
        """Return once the page has painted ``frames`` more animation frames (layout and charts caught up)."""
        self.evaluate("new Promise(r => { let n = %d; const f = () => --n > 0 ? requestAnimationFrame(f) : r(1); "
                      "requestAnimationFrame(f); })" % frames)

    def viewport(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the viewport."""
        data = self.send("Page.captureScreenshot", timeout=2 * self.timeout, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
