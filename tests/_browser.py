"""A headless Chromium driven over the Chrome DevTools Protocol, for the tests that look at pages as a reader's
browser shows them (the documentation site, the Brax viewer page). ``from _browser import ...``.

Where no Chromium is installed the tests skip (``.ci/run`` installs it with apt-get, and fails a CI run that
would skip them).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def require_chromium() -> str:
    """The Chromium binary, or skip the test (fail it on CI)."""
    binary = chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser checks: .ci/run installs Chromium with apt-get")
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("websockets", reason="the docs extra is not installed (no websockets)")
    return binary


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """``directory`` served over HTTP on a free local port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target. ``on_event`` (optional) sees every event
    as it arrives, e.g. to answer ``Fetch.requestPaused``."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []
        self.on_event: Callable[[DevTools, dict], None] | None = None

    def _receive(self, timeout: float) -> dict:
        msg = json.loads(self.ws.recv(timeout=timeout))
        if "method" in msg:
            self.events.append(msg)
            if self.on_event is not None:
                self.on_event(self, msg)
        return msg

    def send(self, method: str, **params) -> int:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        my_id = self.send(method, **params)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._receive(max(0.1, deadline - time.monotonic()))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self._receive(max(0.1, deadline - time.monotonic()))

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self._receive(max(0.01, end - time.monotonic()))
            except TimeoutError:
                return

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-able values)."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def set_width(self, width: int, height: int = 1000) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def load(self, url: str, settle: float = 0.2) -> None:
        """Open ``url`` and wait for its load event and ``settle`` seconds of late messages."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.drain(settle)

    def problems(self, name: str) -> list[str]:
        """JavaScript errors, console errors and failed loads seen since the last :meth:`load`."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"{name}: JavaScript error: {d.get('exception', {}).get('description') or d.get('text')}")
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"{name}: console error: "
                           f"{' '.join(str(a.get('value', a.get('description'))) for a in p['args'])}")
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{name}: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out


def fulfill(cdp: DevTools, request_id: str, body: str, content_type: str = "application/javascript") -> None:
    """Answer a paused request (``Fetch.requestPaused``) with ``body``, without waiting for the reply."""
    cdp.send("Fetch.fulfillRequest", requestId=request_id, responseCode=200,
             responseHeaders=[{"name": "Content-Type", "value": content_type},
                              {"name": "Access-Control-Allow-Origin", "value": "*"}],
             body=base64.b64encode(body.encode()).decode("ascii"))


@contextlib.contextmanager
def headless(profile: Path, width: int = 1280, height: int = 1000) -> Iterator[DevTools]:
    """A headless Chromium with one page at ``width`` x ``height`` px (Page, Runtime and Log enabled)."""
    from websockets.sync.client import connect

    binary = require_chromium()
    browser = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert browser.poll() is None, "Chromium exited at start"
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port in 30 s"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            cdp = DevTools(ws)
            for domain in ("Page", "Runtime", "Log"):
                cdp.call(f"{domain}.enable")
            cdp.set_width(width, height)
            yield cdp
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
