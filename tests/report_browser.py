"""A headless Chromium driven over the DevTools protocol (websockets), for the report tests.

`open_page(path)` loads a local file and returns what the page logged as errors
(uncaught exceptions, console.error, browser log errors such as CSP refusals), the
result of a JavaScript probe and a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processes import stop_groups
from websockets.sync.client import connect

CHROMIUM_HINT = (
    "headless Chromium is needed: install Debian's package with `apt-get install -y chromium` "
    "(it provides /usr/bin/chromium)"
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageRun:
    errors: list[str] = field(default_factory=list)
    probe: Any = None
    screenshot: bytes = b""


class _Session:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            event = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(event)
            if event.get("method") == method:
                return
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=0.1)))
            except TimeoutError:
                continue


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(json.dumps(params.get("args", []))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append(params["entry"].get("text", "")[:500])
        elif method == "Page.javascriptDialogOpening":  # alert(): a script ran
            found.append(f"dialog {params.get('type')}: {params.get('message', '')[:200]}")
    return found


def open_page(path: Path, probe_js: str, width: int = 1280, height: int = 2000,
              media: str | None = None, fragment: str = "", settle: float = 0.5) -> PageRun:
    """Load `path` (with `#fragment`, for a single-page app's route) in headless Chromium,
    let it settle for `settle` seconds; return its errors, `probe_js`'s value, a screenshot."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError(CHROMIUM_HINT)
    # Chromium's helper processes may still write to the profile for a moment after the
    # browser itself has exited: its whole process group is ended below, and a file it
    # left behind must not fail the page's test.
    with tempfile.TemporaryDirectory(prefix="chw-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        try:
            ws_url = None
            deadline = time.monotonic() + 30
            assert proc.stderr is not None
            while ws_url is None and time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line and proc.poll() is not None:
                    raise RuntimeError("chromium exited before opening its DevTools port")
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match:
                    ws_url = match.group(1)
            if ws_url is None:
                raise RuntimeError("chromium did not open its DevTools port in 30 s")
            # keep reading its chatter so a full pipe never blocks the browser
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            with connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=30) as ws:
                cdp = _Session(ws)
                target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
                sid = cdp.call("Target.attachToTarget", targetId=target, flatten=True)[
                    "sessionId"]
                for domain in ("Page", "Runtime", "Log"):
                    cdp.call(f"{domain}.enable", sid)
                cdp.call("Emulation.setDeviceMetricsOverride", sid, width=width, height=height,
                         deviceScaleFactor=1, mobile=False)
                if media:
                    cdp.call("Emulation.setEmulatedMedia", sid, media=media)
                cdp.events.clear()
                url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
                cdp.call("Page.navigate", sid, url=url)
                cdp.wait_for("Page.loadEventFired")
                cdp.drain(settle)
                probe = cdp.call("Runtime.evaluate", sid, expression=probe_js,
                                 returnByValue=True)
                shot = cdp.call("Page.captureScreenshot", sid, format="png",
                                captureBeyondViewport=True)
                return PageRun(
                    errors=_errors(cdp.events),
                    probe=probe.get("result", {}).get("value"),
                    screenshot=base64.b64decode(shot["data"]),
                )
        finally:
            stop_groups([proc], grace=10)  # the browser with its renderer and helpers
